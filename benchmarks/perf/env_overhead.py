"""What an environment costs over calling its verifier directly, and rollout throughput over a suite.

Overhead (one completion at a time, both sides on the same verifier / sandbox, `--rounds` in alternation
with the order swapped every round, after one untimed warm-up pass, medians reported; the math verifier's cache is cleared before every pass so each pass really verifies):
  math  the 800 Qwen2.5-Math responses to 100 MATH problems (../shared/data/math/
        qwen25math_math_cot_100_samples.jsonl): direct `MathVerifier.verify(gold, response)` vs
        `MathEnv.reset(task_index) + step(response)`;
  code  the 164 HumanEval canonical solutions (../shared/data/code/humaneval.jsonl): direct
        `CodeVerifier.verify(program, tests)` vs `CodeEnv.reset + step(program)`.
  overhead = env time / direct time - 1 (target < 5 %).

Rollout throughput: `--episodes` episodes drawn from a suite (arithmetic, countdown, game24, guess-number,
wordle, rg-gcd, math-gsm8k from the local file), each played by its reference player through a ReplayPolicy:
`rollout()` (one batched policy call per turn, environments stepped on a thread pool) vs the same episodes
played one after another with reset/step (the baseline). Reported as episodes/s and their ratio.

Run: .venv/bin/python benchmarks/perf/env_overhead.py [--rounds 3 --episodes 400 --json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from perf_common import REPO, source_state

from rlvr.envs.catalog import load_tasks
from rlvr.envs.code_env import CodeEnv
from rlvr.envs.math_env import MathEnv
from rlvr.envs.resources import shared_math_verifier, shared_sandbox
from rlvr.envs.rollout import ReplayPolicy, rollout
from rlvr.envs.sources import ListSource
from rlvr.envs.suite import Suite, SuiteEntry
from rlvr.envs.types import Task
from rlvr.verifiers.code import CodeConfig, CodeVerifier

DATA = REPO.parent / "shared" / "data"
SUITE = (
    "rlvr/arithmetic-v0",
    "rlvr/countdown-v0",
    "rlvr/game24-v0",
    "rlvr/guess-number-v0",
    "rlvr/wordle-v0",
    "rlvr/rg-gcd-v0",
    "rlvr/math-gsm8k-v0",
)


def math_workload() -> tuple[list[Task], list[tuple[int, str]]]:
    rows = [json.loads(line) for line in (DATA / "math" / "qwen25math_math_cot_100_samples.jsonl").open()]
    tasks = [Task(f"qwen-{row['idx']}", row["question"], row["gt"]) for row in rows]
    pairs = [(index, response) for index, row in enumerate(rows) for response in row["code"]]
    return tasks, pairs


def time_math(tasks: list[Task], pairs: list[tuple[int, str]], env_first: bool) -> dict[str, float]:
    verifier = shared_math_verifier()
    env = MathEnv(tasks=ListSource(tasks))

    def direct() -> list[float]:
        return [verifier.verify(tasks[index].answer, response).score for index, response in pairs]

    def through_env() -> list[float]:
        rewards = []
        for index, response in pairs:
            env.reset(options={"task_index": index})
            rewards.append(env.step(response)[1])
        return rewards

    timings, scores = {}, {}
    for name, run in (
        (("env", through_env), ("direct", direct))
        if env_first
        else (("direct", direct), ("env", through_env))
    ):
        verifier.clear_cache()
        started = time.perf_counter()
        scores[name] = run()
        timings[f"{name}_s"] = time.perf_counter() - started
    if scores["direct"] != scores["env"]:
        raise SystemExit("math: the environment's rewards differ from the verifier's scores")
    return timings


def time_code(tasks, programs: list[str]) -> dict[str, float]:
    verifier = CodeVerifier(shared_sandbox(), CodeConfig())
    env = CodeEnv(tasks=tasks)
    started = time.perf_counter()
    direct = [
        verifier.verify(program, task.answer).score for task, program in zip(tasks, programs, strict=True)
    ]
    direct_s = time.perf_counter() - started
    started = time.perf_counter()
    through_env = []
    for index, program in enumerate(programs):
        env.reset(options={"task_index": index})
        through_env.append(env.step(program)[1])
    env_s = time.perf_counter() - started
    if direct != through_env or min(direct) < 1.0:
        raise SystemExit("code: canonical solutions must all pass, directly and through the environment")
    return {"direct_s": direct_s, "env_s": env_s}


def play_episodes(suite: Suite, draws, parallel: bool) -> float:
    """Seconds to play every draw with reference players: `rollout` or a sequential reset/step loop."""
    envs, options = suite.episodes(draws)
    started = time.perf_counter()
    if parallel:
        policy = ReplayPolicy(lambda conversation, episode: envs[episode].unwrapped.reference_action())
        trajectories = rollout(envs, policy, options=options)
        solved = sum(t.solved for t in trajectories)
    else:
        solved = 0
        for env, option in zip(envs, options, strict=True):
            env.reset(options=option)
            done, info = False, {}
            while not done:
                _, _, terminated, truncated, info = env.step(env.unwrapped.reference_action())
                done = terminated or truncated
            solved += bool(info.get("solved"))
    elapsed = time.perf_counter() - started
    if solved != len(draws):
        raise SystemExit(f"reference players solved {solved}/{len(draws)} episodes")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    math_tasks, math_pairs = math_workload()
    code_source = load_tasks("humaneval", path=str(DATA / "code" / "humaneval.jsonl"))
    code_tasks = [code_source[i] for i in range(len(code_source))]
    code_programs = [task.metadata["canonical_solution"] for task in code_tasks]
    shared_math_verifier().warmup()
    shared_sandbox().start()
    gsm8k = {"data_path": str(DATA / "math" / "gsm8k_test.jsonl")}
    suite = Suite([SuiteEntry(env_id, 1.0, gsm8k if "gsm8k" in env_id else {}) for env_id in SUITE], seed=0)
    draws = suite.sample(args.episodes)
    play_episodes(suite, draws[:20], parallel=True)  # warm the pools and the per-id environment objects
    time_math(math_tasks, math_pairs, env_first=False)  # warm Math-Verify's workers and the extraction code

    results: dict[str, list[dict[str, float]]] = {"math": [], "code": [], "rollout": []}
    for round_index in range(args.rounds):
        results["math"].append(time_math(math_tasks, math_pairs, env_first=round_index % 2 == 1))
        results["code"].append(time_code(code_tasks, code_programs))
        sequential = play_episodes(suite, draws, parallel=False)
        parallel = play_episodes(suite, draws, parallel=True)
        results["rollout"].append({"sequential_s": sequential, "rollout_s": parallel})
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    summary: dict[str, object] = {
        "commit": source_state("envs"),
        "python": platform.python_version(),
        "rounds": args.rounds,
    }
    for name, count in (("math", len(math_pairs)), ("code", len(code_tasks))):
        direct = statistics.median(r["direct_s"] for r in results[name])
        env = statistics.median(r["env_s"] for r in results[name])
        summary[name] = {
            "items": count,
            "direct_ms_per_item": 1000 * direct / count,
            "env_ms_per_item": 1000 * env / count,
            "overhead_pct": 100 * (env / direct - 1),
        }
        print(
            f"{name:5} {count} items: direct {1000 * direct / count:.3f} ms/item, env {1000 * env / count:.3f} "
            f"ms/item, overhead {100 * (env / direct - 1):+.2f} % (target < 5 %)"
        )
    sequential = statistics.median(r["sequential_s"] for r in results["rollout"])
    parallel = statistics.median(r["rollout_s"] for r in results["rollout"])
    summary["rollout"] = {
        "episodes": len(draws),
        "suite": list(SUITE),
        "sequential_episodes_per_s": len(draws) / sequential,
        "rollout_episodes_per_s": len(draws) / parallel,
        "ratio": sequential / parallel,
    }
    print(
        f"rollout {len(draws)} episodes: sequential {len(draws) / sequential:.1f} ep/s, rollout "
        f"{len(draws) / parallel:.1f} ep/s = {sequential / parallel:.2f}x the sequential loop"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
