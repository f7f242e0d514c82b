"""Asynchronous one-step-off-policy training (`rollout.async`) against the synchronous loop: step time and overlap.

Workload: the CPU quickstart (`rlvr/data/quickstart.yaml`: SmolLM2-135M-Instruct, float32, level-2 arithmetic,
6 prompts x 6 samples, 24 tokens), `--steps` steps per run, no held-out evaluation, `--threads` torch threads.
Three runs from the same starting model and seed, in this order:
  sync        `rollout.async: false`: generate, then update, one after the other;
  async       `rollout.async: true, async_staleness: 1`: step t+1 is generated on the worker thread while update t
              runs (the worker has its own copy of the policy);
  async-s0    `async_staleness: 0`: the same worker, the synchronous schedule (the worker's own overhead).
Reported per run, the median over steps 2..N (step 1 has nothing to overlap with): the step's wall time, the
generation and update times, and for the async runs `async/overlap_frac` (1 - the trainer's wait / the worker's
generation time) and the wait. The ratio async / sync of the step time is this run's result.

On a GPU the worker's generation and the trainer's update run on different devices or streams, so an async step
should take about max(generation, update) instead of their sum: the expected ratio is printed from the sync run's
own times, max(g, u) / (g + u). On a 2-core CPU both threads share the cores, so the measured ratio stays near 1.

Run: .venv/bin/python benchmarks/perf/async_overlap.py [--steps 5 --threads 2 --json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from perf_common import busy_cpu_seconds, source_state

REPO = Path(__file__).resolve().parents[2]
RUNS = {
    "sync": ("rollout.async=false",),
    "async": ("rollout.async=true", "rollout.async_staleness=1"),
    "async-s0": ("rollout.async=true", "rollout.async_staleness=0"),
}


def run(name: str, steps: int, threads: int, out: Path) -> dict[str, Any]:
    """Train one run of the quickstart and return its medians over steps 2..N."""
    from rlvr.trainer.config import default_config_path, load_config
    from rlvr.trainer.loop import train

    overrides = [
        f"run.steps={steps}",
        f"run.output_dir={out / name}",
        f"model.threads={threads}",
        "env.eval_tasks=0",
        "run.save_every=0",
        "run.save_model=false",
        "run.sample_every=0",
        "run.eval_every=0",
        "run.plot=false",
        "run.progress=false",
        *RUNS[name],
    ]
    busy, wall = busy_cpu_seconds(), time.perf_counter()
    history = train(load_config(default_config_path(), overrides)).history[1:]
    wall = time.perf_counter() - wall
    machine = (busy_cpu_seconds() - busy) / wall if busy is not None else float("nan")

    def median(key: str) -> float:
        values = [h[key] for h in history if key in h]
        return statistics.median(values) if values else float("nan")

    return {
        "run": name,
        "step_s": median("time/step_s"),
        "generation_s": median("time/generation_s"),
        "training_s": median("time/training_s"),
        "worker_generation_s": median("async/generation_s"),
        "wait_s": median("async/wait_s"),
        "overlap_frac": median("async/overlap_frac"),
        "machine_cores": round(machine, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be >= 2: step 1 has nothing to overlap with")
    with tempfile.TemporaryDirectory() as folder:
        rows = [run(name, args.steps, args.threads, Path(folder)) for name in RUNS]
    sync = rows[0]
    g, u = sync["generation_s"], sync["training_s"]
    result = {
        "rows": rows,
        "async_over_sync": rows[1]["step_s"] / sync["step_s"],
        "async_s0_over_sync": rows[2]["step_s"] / sync["step_s"],
        "expected_gpu_ratio": max(g, u) / (g + u),
        "steps": args.steps,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "loadavg_end": os.getloadavg()[0],
        "source": source_state(str(REPO)),
    }
    print("| run | step s | generation s | update s | worker generation s | wait s | overlap | cores busy |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['run']} | {r['step_s']:.2f} | {r['generation_s']:.2f} | {r['training_s']:.2f} | "
            f"{r['worker_generation_s']:.2f} | {r['wait_s']:.2f} | {r['overlap_frac']:.2f} | {r['machine_cores']} |"
        )
    print(
        f"\nasync / sync step time: {result['async_over_sync']:.2f}; async staleness 0 / sync: "
        f"{result['async_s0_over_sync']:.2f}; expected on a GPU, max(g, u) / (g + u) from the sync run: "
        f"{result['expected_gpu_ratio']:.2f}",
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
