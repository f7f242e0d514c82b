"""Speed on Math-Verify's 270-row table (issue 14, item 5): sequential in-process Math-Verify against rlvr.

Run from the repository root: `.venv/bin/python benchmarks/perf/math_verify_table.py [--workers 2] [--rounds 3]`.
Each round, in one process: (a) `math_verify.verify(parse(gold), parse(pred))` per row, twice, the second pass
timed (warm, as a long-running evaluator is); (b) a `MathVerifier(extraction="math_verify")` after `warmup()`,
one untimed `verify_batch` over the rows, `clear_cache()`, then one timed `verify_batch` (warm workers, no cached
decisions); (c) `verify()` once per row on the same verifier after `clear_cache()`, timed per call. Prints the
medians over rounds and the 1-minute load average (the machine may be shared: compare figures of one run only).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path

from math_verify import parse, verify

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


def one_round(golds: list[str], preds: list[str], workers: int) -> dict[str, float]:
    sequential(golds, preds)
    baseline = sequential(golds, preds)
    with MathVerifier(MathVerifyConfig(workers=workers, extraction="math_verify")) as verifier:
        verifier.warmup()
        verifier.verify_batch(golds, preds)
        verifier.clear_cache()
        start = time.perf_counter()
        verifier.verify_batch(golds, preds)
        batch = time.perf_counter() - start
        verifier.clear_cache()
        per_call = []
        for gold, pred in zip(golds, preds, strict=True):
            start = time.perf_counter()
            verifier.verify(gold, pred)
            per_call.append(time.perf_counter() - start)
    return {
        "sequential_per_s": len(golds) / sum(baseline),
        "batch_per_s": len(golds) / batch,
        "ratio": sum(baseline) / batch,
        "sequential_p50_ms": 1000 * statistics.median(baseline),
        "verify_p50_ms": 1000 * statistics.median(per_call),
        "sequential_mean_ms": 1000 * statistics.mean(baseline),
        "verify_mean_ms": 1000 * statistics.mean(per_call),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    rows = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    golds, preds = [r["gold"] for r in rows], [r["pred"] for r in rows]
    rounds = [one_round(golds, preds, args.workers) for _ in range(args.rounds)]
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(
            f"{key}: median {statistics.median(values):.2f} (rounds {' / '.join(f'{v:.2f}' for v in values)})"
        )
    print(f"rows {len(rows)}, workers {args.workers}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
