"""Tree rollouts (TreePO) against independent sampling at the same number of leaves, on the `hf` engine.

Workload: the first `--prompts` chat-templated level-3 arithmetic questions (`ArithmeticEnv(level=3)`) on
SmolLM2-135M-Instruct in float32 (`--device`, default cpu with `--threads` torch threads), temperature 1.0, at
most `--max-tokens` new tokens per sample. Both sides give every prompt `leaves = roots x branching^depth`
samples in one batch (the engine's max_batch_size is raised to fit it):
  tree         `generate_tree(engine, prompts, roots, segment_tokens, branching, depth)`: segments of
               `--segment-tokens`, every live path copied `--branching` times after each of the first `--depth`
               segments (KV-cache rows copied; shared prefixes decoded once);
  independent  `engine.generate(conversations, n=leaves)`: the baseline, `leaves` independent samples per
               prompt (the prompt is prefilled once there too).
Generated tokens are the tokens the engine decoded: each tree node's tokens once for the tree, every sample's
tokens for the baseline; completion tokens are those the samples hold (a shared prefix once per sample), so
generated / completion is the tree's saving on its own samples, free of the two sides' different sample lengths.
Per sample = / the samples returned (every one is finished: EOS or max_tokens). Time per sample = wall seconds of
the call / samples. A path that stops before the last branch point has no children, so the tree can return fewer
than `leaves` samples per prompt: the count is printed.

The two sides alternate (tree, independent, tree, ...) `--repeats` times after one untimed warm-up each (up to one
segment past the last branch point), with seed = repeat index on both sides. Medians are reported with the ratio
tree / independent from this same run, and the machine's load: CPU seconds all processes used per wall second
(2 = two busy cores), this benchmark's share, and the load average.

Run: .venv/bin/python benchmarks/perf/tree_rollout.py [--prompts 4 --roots 2 --branching 2 --depth 2
     --segment-tokens 16 --max-tokens 128 --repeats 2 --threads 2 --device cpu --json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from perf_common import busy_cpu_seconds, source_state

MODEL = "smollm2-135m-instruct"


def arithmetic_conversations(count: int) -> list[list[dict]]:
    """The first `count` level-3 arithmetic questions as the environment shows them to the model."""
    from rlvr.envs.procedural.arithmetic import ArithmeticEnv

    env = ArithmeticEnv(level=3)
    return [env.initial_messages(env.tasks[i]) for i in range(count)]


def tree_side(engine: Any, prompts: list[list[int]], args: argparse.Namespace, seed: int) -> dict[str, float]:
    from rlvr.envs.types import Sampling
    from rlvr.trainer.engines.tree import generate_tree
    from rlvr.trainer.tree_advantages import distinct_tokens

    sampling = Sampling(max_tokens=args.max_tokens, temperature=1.0, seed=seed)
    started = time.perf_counter()
    leaves = generate_tree(
        engine,
        prompts,
        sampling,
        roots=args.roots,
        segment_tokens=args.segment_tokens,
        branching=args.branching,
        depth=args.depth,
    )
    seconds = time.perf_counter() - started
    stopped = sum(leaf.completion.finish_reason == "stop" for leaf in leaves)
    held = sum(len(leaf.completion.token_ids) for leaf in leaves)
    return summary(distinct_tokens(leaves), held, len(leaves), stopped, seconds)


def independent_side(
    engine: Any, conversations: list[list[dict]], args: argparse.Namespace, seed: int
) -> dict[str, float]:
    from rlvr.envs.types import Sampling

    sampling = Sampling(max_tokens=args.max_tokens, temperature=1.0, seed=seed)
    started = time.perf_counter()
    completions = engine.generate(conversations, sampling, n=leaves_per_prompt(args))
    seconds = time.perf_counter() - started
    stopped = sum(c.finish_reason == "stop" for c in completions)
    held = sum(len(c.token_ids) for c in completions)
    return summary(held, held, len(completions), stopped, seconds)


def summary(tokens: int, held: int, samples: int, stopped: int, seconds: float) -> dict[str, float]:
    """`tokens`: decoded; `held`: in the samples' completions (shared prefixes counted once per sample)."""
    return {
        "tokens": tokens,
        "held": held,
        "decoded_share": tokens / held,
        "samples": samples,
        "stopped": stopped,
        "seconds": seconds,
        "tokens_per_sample": tokens / samples,
        "seconds_per_sample": seconds / samples,
    }


def leaves_per_prompt(args: argparse.Namespace) -> int:
    return args.roots * args.branching**args.depth


def measure(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    import torch

    from rlvr.trainer.engines.hf import HFEngine

    torch.set_num_threads(args.threads)
    engine = HFEngine(MODEL, dtype="float32", device=args.device)
    engine.max_batch_size = max(engine.max_batch_size, args.prompts * leaves_per_prompt(args))
    conversations = arithmetic_conversations(args.prompts)
    prompts = [engine.prompt_ids(c) for c in conversations]
    # the warm-up goes one segment past the last branch point: every row count of the tree's first steps is seen
    warm_tokens = min(args.max_tokens, args.segment_tokens * (args.depth + 1))
    warm = argparse.Namespace(**{**vars(args), "max_tokens": warm_tokens})
    (
        tree_side(engine, prompts, warm, seed=-1 % 2**31),
        independent_side(engine, conversations, warm, 2**31 - 1),
    )
    results: dict[str, list[dict[str, float]]] = {"tree": [], "independent": []}
    for repeat in range(args.repeats):
        results["tree"].append(tree_side(engine, prompts, args, seed=repeat))
        results["independent"].append(independent_side(engine, conversations, args, seed=repeat))
        t, i = results["tree"][-1], results["independent"][-1]
        print(
            f"repeat {repeat + 1}/{args.repeats}: tree {t['samples']} samples {t['tokens']} tokens "
            f"{t['seconds']:.1f}s; independent {i['samples']} samples {i['tokens']} tokens {i['seconds']:.1f}s",
            flush=True,
        )
    return results


def report(
    results: dict[str, list[dict[str, float]]], args: argparse.Namespace, load: dict[str, Any]
) -> None:
    medians = {
        side: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for side, runs in results.items()
    }
    tree, independent = medians["tree"], medians["independent"]
    print(
        f"\n{args.prompts} prompts x {leaves_per_prompt(args)} leaves (roots {args.roots}, branching "
        f"{args.branching}, depth {args.depth}, segment {args.segment_tokens} tokens), max_tokens {args.max_tokens}, "
        f"{args.device}, {args.threads} threads; medians of {args.repeats}\n"
    )
    print(
        "| side | samples | ended on EOS | completion tokens / sample | generated tokens / sample | "
        "generated / completion | seconds / sample |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, row in (("tree", tree), ("independent", independent)):
        print(
            f"| {name} | {row['samples']:.0f} | {row['stopped']:.0f} | {row['held'] / row['samples']:.1f} | "
            f"{row['tokens_per_sample']:.1f} | {row['decoded_share']:.2f} | {row['seconds_per_sample']:.3f} |"
        )
    print(
        f"| tree / independent | | | | {tree['tokens_per_sample'] / independent['tokens_per_sample']:.2f}x | | "
        f"{tree['seconds_per_sample'] / independent['seconds_per_sample']:.2f}x |"
    )
    print(
        f"\nmachine load: {load['busy_cores']:.2f} busy cores, {load['own_cores']:.2f} of them this benchmark; "
        f"load average {load['loadavg']}; source {load['source']}; {platform.processor() or platform.machine()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--roots", type=int, default=2)
    parser.add_argument("--branching", type=int, default=2)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--segment-tokens", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    busy_before, wall_before, own_before = busy_cpu_seconds(), time.perf_counter(), time.process_time()
    results = measure(args)
    wall = time.perf_counter() - wall_before
    busy_after = busy_cpu_seconds()
    load = {
        "busy_cores": (busy_after - busy_before) / wall if busy_before is not None else float("nan"),
        "own_cores": (time.process_time() - own_before) / wall,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "source": source_state("trainer"),
    }
    report(results, args, load)
    if args.json_out:
        args.json_out.write_text(
            json.dumps({"args": vars(args) | {"json_out": None}, "results": results, "load": load})
        )


if __name__ == "__main__":
    main()
