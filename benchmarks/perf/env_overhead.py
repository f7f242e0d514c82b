"""What an environment costs over calling its verifier directly, and rollout throughput over a suite.

Overhead (one completion at a time, both sides on the same verifier / sandbox, `--rounds` in alternation with
the order swapped every round, after one untimed warm-up pass, medians reported; the math verifier's cache is
cleared before every pass, so each pass verifies as a fresh training step would):
  math  the 800 Qwen2.5-Math responses to 100 MATH problems (../shared/data/math/
        qwen25math_math_cot_100_samples.jsonl): direct `MathVerifier.verify(gold, response)` vs
        `MathEnv.reset(task_index) + step(response)`;
  code  the 164 HumanEval canonical solutions (../shared/data/code/humaneval.jsonl): direct
        `CodeVerifier.verify(program, tests)` vs `CodeEnv.reset + step(program)`.
  overhead = env time / direct time - 1 (target < 5 %); for math also the environment's own cost measured
  alone (MathEnv with the verifier replaced by a constant verdict), in us per reset + step.

Rollout throughput: `--episodes` episodes drawn from each suite of `SUITES` ("cpu": procedural, games,
reasoning-gym and gsm8k, all decided in this process; "with-code": HumanEval and MBPP in the sandbox, gsm8k,
countdown), each played by its reference player through a ReplayPolicy: `rollout()` (one batched policy call
per turn, environments stepped on a thread pool) vs the same episodes played one after another with reset/step
(the baseline). Reported as episodes/s and their ratio.

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
from rlvr.verifiers.code import CodeVerifier
from rlvr.verifiers.types import Verdict

DATA = REPO.parent / "shared" / "data"
SUITES = {
    # Steps that are pure Python in this process (the GIL): threads cannot overlap them.
    "cpu": (
        "rlvr/arithmetic-v0",
        "rlvr/countdown-v0",
        "rlvr/game24-v0",
        "rlvr/guess-number-v0",
        "rlvr/wordle-v0",
        "rlvr/rg-gcd-v0",
        "rlvr/math-gsm8k-v0",
    ),
    # Half the episodes run programs in the sandbox, whose runners work while other threads wait.
    "with-code": ("rlvr/code-humaneval-v0", "rlvr/code-mbpp-v0", "rlvr/math-gsm8k-v0", "rlvr/countdown-v0"),
}
LOCAL_FILES = {
    "rlvr/math-gsm8k-v0": "math/gsm8k_test.jsonl",
    "rlvr/code-humaneval-v0": "code/humaneval.jsonl",
    "rlvr/code-mbpp-v0": "code/mbpp.jsonl",
}


def math_workload() -> tuple[list[Task], list[tuple[int, str]]]:
    rows = [json.loads(line) for line in (DATA / "math" / "qwen25math_math_cot_100_samples.jsonl").open()]
    tasks = [Task(f"qwen-{row['idx']}", row["question"], row["gt"]) for row in rows]
    pairs = [(index, response) for index, row in enumerate(rows) for response in row["code"]]
    return tasks, pairs


def time_both(direct, through_env, env_first: bool, before=lambda: None) -> dict[str, float]:
    """Seconds of the direct and the environment pass (in the given order); their scores must agree."""
    timings, scores = {}, {}
    passes = [("direct", direct), ("env", through_env)]
    for name, run in reversed(passes) if env_first else passes:
        before()
        started = time.perf_counter()
        scores[name] = run()
        timings[f"{name}_s"] = time.perf_counter() - started
    if scores["direct"] != scores["env"]:
        raise SystemExit("the environment's rewards differ from the verifier's scores")
    return timings


def env_rewards(env, actions: list[tuple[int, str]]) -> list[float]:
    """Reward of `reset(task_index) + step(action)` for each (task index, action)."""
    rewards = []
    for index, action in actions:
        env.reset(options={"task_index": index})
        rewards.append(env.step(action)[1])
    return rewards


def time_math(tasks: list[Task], pairs: list[tuple[int, str]], env_first: bool) -> dict[str, float]:
    verifier = shared_math_verifier()
    env = MathEnv(tasks=ListSource(tasks))
    return time_both(
        lambda: [verifier.verify(tasks[index].answer, response).score for index, response in pairs],
        lambda: env_rewards(env, pairs),
        env_first,
        before=verifier.clear_cache,
    )


def time_code(tasks: list[Task], programs: list[str], env_first: bool) -> dict[str, float]:
    env = CodeEnv(tasks=tasks)
    verifier = CodeVerifier(shared_sandbox(), env.grader.config)  # the environment's own scoring options
    if (
        min(
            verifier.verify(program, task.answer).score for task, program in zip(tasks, programs, strict=True)
        )
        < 1.0
    ):
        raise SystemExit("code: every canonical solution must pass")
    return time_both(
        lambda: [
            verifier.verify(program, task.answer).score for task, program in zip(tasks, programs, strict=True)
        ],
        lambda: env_rewards(env, list(enumerate(programs))),
        env_first,
    )


def bookkeeping_us(tasks: list[Task], pairs: list[tuple[int, str]]) -> float:
    """Microseconds of one MathEnv reset + step with the verifier replaced by a constant verdict: the
    environment's own cost (prompt, copies, info, the Gymnasium contract)."""
    constant = Verdict(1.0, True, "correct", {"extracted": "1", "method": "boxed"})

    class BookkeepingOnly(MathEnv):
        def verdict(self, task: Task, completion: object) -> Verdict:
            return constant

    env = BookkeepingOnly(tasks=ListSource(tasks))
    started = time.perf_counter()
    env_rewards(env, pairs)
    return 1e6 * (time.perf_counter() - started) / len(pairs)


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
    suites, draws = {}, {}
    for name, ids in SUITES.items():
        entries = [
            SuiteEntry(i, 1.0, {"data_path": str(DATA / LOCAL_FILES[i])} if i in LOCAL_FILES else {})
            for i in ids
        ]
        suites[name] = Suite(entries, seed=0)
        draws[name] = suites[name].sample(args.episodes)
        play_episodes(suites[name], draws[name][:20], parallel=True)  # warm the pools and environment objects
    time_math(math_tasks, math_pairs, env_first=False)  # warm Math-Verify's workers and the extraction code

    bookkeeping = []
    results: dict[str, list[dict[str, float]]] = {
        "math": [],
        "code": [],
        **{f"rollout-{n}": [] for n in SUITES},
    }
    for round_index in range(args.rounds):
        results["math"].append(time_math(math_tasks, math_pairs, env_first=round_index % 2 == 1))
        bookkeeping.append(bookkeeping_us(math_tasks, math_pairs))
        results["code"].append(time_code(code_tasks, code_programs, env_first=round_index % 2 == 1))
        for name, suite in suites.items():
            sequential = play_episodes(suite, draws[name], parallel=False)
            parallel = play_episodes(suite, draws[name], parallel=True)
            results[f"rollout-{name}"].append({"sequential_s": sequential, "rollout_s": parallel})
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
    own_us = statistics.median(bookkeeping)
    direct_us = 1000 * summary["math"]["direct_ms_per_item"]  # type: ignore[index]
    summary["math"]["bookkeeping_us_per_item"] = own_us  # type: ignore[index]
    print(
        f"math  environment bookkeeping alone (verifier replaced by a constant): {own_us:.1f} us per reset + step "
        f"= {100 * own_us / direct_us:.1f} % of a direct verification"
    )
    for name, ids in SUITES.items():
        count = len(draws[name])
        sequential = statistics.median(r["sequential_s"] for r in results[f"rollout-{name}"])
        parallel = statistics.median(r["rollout_s"] for r in results[f"rollout-{name}"])
        summary[f"rollout-{name}"] = {
            "episodes": count,
            "suite": list(ids),
            "sequential_episodes_per_s": count / sequential,
            "rollout_episodes_per_s": count / parallel,
            "ratio": sequential / parallel,
        }
        print(
            f"rollout, suite {name} ({count} episodes): sequential {count / sequential:.1f} ep/s, rollout "
            f"{count / parallel:.1f} ep/s = {sequential / parallel:.2f}x the sequential loop"
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
