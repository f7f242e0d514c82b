"""Speed on Math-Verify's 270-row table (issue 14, item 5): sequential in-process Math-Verify against rlvr.

Run from the repository root: `.venv/bin/python benchmarks/perf/math_verify_table.py [--workers 2] [--rounds 3]`.
Each round, in one process:
  (a) `math_verify.verify(parse(gold), parse(pred))` per row, twice; the second pass is the baseline (warm, as a
      long-running evaluator is: sympy's caches hold the first pass);
  (a fresh) the same, once, in a new process that first ran the warm-up of an rlvr worker
      (`math_equiv.warm_up`): Math-Verify on strings it has never seen, as (b fresh) sees them;
  (b fresh) a new `MathVerifier(extraction="math_verify")` after `warmup()`, one timed `verify_batch`: its
      workers have never seen these strings;
  (b) `clear_cache()`, then the same batch again, timed: no cached decisions, but each worker has parsed its
      strings once (it keeps one parse per distinct string), as for the golds and answers that recur in a run;
  (c fresh) a second new verifier after `warmup()`, `verify()` once per row, timed per call;
  (c) `clear_cache()`, `verify()` once per row again.
Prints the medians over rounds, the commit and the 1-minute load average (the machine may be shared: compare
figures of one run only).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from math_verify import parse, verify
from perf_common import source_state

from rlvr.verifiers import MathVerifier, MathVerifyConfig

CASES = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "peers"
    / "math_verify_tests"
    / "cases.jsonl"
)


def sequential(golds: list[str], preds: list[str]) -> list[float]:
    seconds = []
    for gold, pred in zip(golds, preds, strict=True):
        start = time.perf_counter()
        try:
            verify(parse(gold), parse(pred))
        except Exception:  # a row Math-Verify cannot handle still costs its time
            pass
        seconds.append(time.perf_counter() - start)
    return seconds


FRESH_SEQUENTIAL = """
import json, sys, time
from math_verify import parse, verify
from rlvr.verifiers.math_equiv import warm_up
warm_up()
seconds = []
for line in open(sys.argv[1]):
    if line.strip():
        row = json.loads(line)
        start = time.perf_counter()
        try:
            verify(parse(row["gold"]), parse(row["pred"]))
        except Exception:
            pass
        seconds.append(time.perf_counter() - start)
print(json.dumps(seconds))
"""


def fresh_sequential() -> list[float]:
    """Seconds per row of (a fresh): one pass in a new process after an rlvr worker's warm-up."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH_SEQUENTIAL, str(CASES)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def per_call(verifier: MathVerifier, golds: list[str], preds: list[str]) -> list[float]:
    seconds = []
    for gold, pred in zip(golds, preds, strict=True):
        start = time.perf_counter()
        verifier.verify(gold, pred)
        seconds.append(time.perf_counter() - start)
    return seconds


def fresh_verifier(workers: int) -> MathVerifier:
    verifier = MathVerifier(MathVerifyConfig(workers=workers, extraction="math_verify"))
    if not verifier.warmup():
        raise RuntimeError("verifier workers did not become ready")
    return verifier


def one_round(golds: list[str], preds: list[str], workers: int) -> dict[str, float]:
    sequential(golds, preds)
    baseline = sequential(golds, preds)
    fresh_baseline = fresh_sequential()
    with fresh_verifier(workers) as verifier:
        start = time.perf_counter()
        verifier.verify_batch(golds, preds)
        fresh = time.perf_counter() - start
        verifier.clear_cache()
        start = time.perf_counter()
        verifier.verify_batch(golds, preds)
        batch = time.perf_counter() - start
        pool_calls = verifier.stats.pool_calls / 2
    with fresh_verifier(workers) as verifier:
        fresh_calls = per_call(verifier, golds, preds)
        verifier.clear_cache()
        calls = per_call(verifier, golds, preds)
    return {
        "sequential_per_s": len(golds) / sum(baseline),
        "fresh_sequential_per_s": len(golds) / sum(fresh_baseline),
        "fresh_batch_per_s": len(golds) / fresh,
        "fresh_ratio": sum(fresh_baseline) / fresh,
        "fresh_batch_over_warm_sequential": sum(baseline) / fresh,
        "batch_per_s": len(golds) / batch,
        "ratio": sum(baseline) / batch,
        "sequential_p50_ms": 1000 * statistics.median(baseline),
        "verify_p50_ms": 1000 * statistics.median(calls),
        "fresh_sequential_p50_ms": 1000 * statistics.median(fresh_baseline),
        "fresh_verify_p50_ms": 1000 * statistics.median(fresh_calls),
        "sequential_mean_ms": 1000 * statistics.mean(baseline),
        "verify_mean_ms": 1000 * statistics.mean(calls),
        "fresh_sequential_mean_ms": 1000 * statistics.mean(fresh_baseline),
        "fresh_verify_mean_ms": 1000 * statistics.mean(fresh_calls),
        "pool_calls_per_batch": pool_calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    rows = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    golds, preds = [r["gold"] for r in rows], [r["pred"] for r in rows]
    load_before = os.getloadavg()[0]
    rounds = [one_round(golds, preds, args.workers) for _ in range(args.rounds)]
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(
            f"{key}: median {statistics.median(values):.2f} (rounds {' / '.join(f'{v:.2f}' for v in values)})"
        )
    print(
        f"rows {len(rows)}, workers {args.workers}, rlvr {source_state('verifiers')}, "
        f"1-min load average before/after {load_before:.2f}/{os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
