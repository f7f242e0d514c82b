"""Seconds per training step of rlvr's trainer against TRL's GRPOTrainer on the same workload, on this CPU.

Workload (both sides): SmolLM2-135M-Instruct (the embedded folder, `resolve_model("smollm2-135m-instruct")`) in
float32 with `--threads` torch threads (default 2); `rlvr/arithmetic-v0` level 2 with the system prompt "Answer
briefly.", reward 1/0 from `check_integer`; per step `--prompts` tasks x `--group` completions of at most
`--max-tokens` tokens at temperature 0.8 (top_p 1, no top-k); GRPO advantages (group mean and std), token-level
loss (rlvr `loss_agg=token_mean`, TRL `loss_type="dapo"`: both divide by the tokens of the whole batch), clip
0.2 / 0.28, no KL and no reference model, one optimiser step per batch (AdamW, lr 2e-5, betas (0.9, 0.99), no
weight decay, grad norm clipped at 1, constant schedule), one forward + backward over the whole batch (rlvr
`optim.micro_batch_size` = TRL `per_device_train_batch_size` = prompts x group), no gradient checkpointing, no
evaluation, no saving inside the timed steps. The tasks are the ones rlvr's suite draws for `--seed` (the same
`Suite(..., seed=seed * 1000)` as `train()`), in the same order; TRL gets them as a conversational dataset in that
order (`shuffle_dataset=False`).
  rlvr  `rlvr.trainer.loop.train(load_config(None, overrides))` with the `hf` engine; per step from metrics.jsonl:
        time/step_s, time/generation_s (rollout: generation + the environments' rewards), time/forward_s
        (training forward + loss), time/backward_s.
  trl   `GRPOTrainer` (transformers `generate`, no vLLM) on the same model folder and tokenizer; a step is timed by a
        TrainerCallback (on_step_begin .. on_step_end: generation, rewards, advantages, forward, backward,
        optimiser); inside it, for this benchmark only, `model.generate` (generation),
        `_get_per_token_logps_and_entropies` (log-probs: the training forward) and `accelerator.backward`
        (backward) are wrapped with timers.
Each side runs `--steps` timed steps after one untimed warm-up step, in its own subprocess, alternating (rlvr,
trl, rlvr, trl, ...) `--repeats` times. "Other" is computed per timed step: the step's time outside generation,
log-probs and backward (never negative). While each side runs, the script measures the CPU that other processes
use (busy cores from /proc/stat, less this script and its workers); a repeat in which either side saw more than
10 % of the machine used by others is DISTURBED. Reported: one line per repeat (each side's median s/step,
TRL / rlvr, the others' busy cores, the flag); a table of median seconds per step and per part over the timed
steps of the quiet repeats (of all repeats, flagged, if every one was disturbed) and TRL / rlvr (the speed-up;
target >= 1.5x; "n/a" where rlvr's time is under a millisecond). Also shown: mean completion tokens and reward
per side (sampling differs, so lengths differ a little), and the machine's load during the run.

Differences that remain (by design, they are what is being compared): rlvr decodes with its own lean loop
(finished rows pruned, no `generate` machinery) while TRL calls `model.generate`, which keeps finished rows until
the last ends; rlvr's generation time includes scoring by the environments (TRL's reward function runs outside its
`generate`, in "other"); rlvr's forward includes the loss, TRL's log-probs are its fused log-prob forward only.
The samples themselves differ (different random streams), so completion lengths are reported next to the times.

Run: .venv/bin/python benchmarks/perf/trainer_vs_trl.py [--prompts 6 --group 6 --max-tokens 24 --steps 3
     --repeats 1 --threads 2 --seed 0 --json-out PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from perf_common import busy_cpu_seconds, source_state

MODEL = "smollm2-135m-instruct"
ENV_ID = "rlvr/arithmetic-v0"
ENV_OVERRIDES = {"level": 2, "system_prompt": "Answer briefly."}
TEMPERATURE = 0.8
LR = 2e-5
CLIP_LOW, CLIP_HIGH = 0.2, 0.28
RESULT = "RESULT "  # prefix of the JSON line a worker prints
PARTS = ("step_s", "generation_s", "logprobs_s", "backward_s")
SIDES = ("rlvr", "trl")
DISTURBED_SHARE = 0.10  # a run is disturbed when other processes used more than this share of the cores
OVERLAP_TOLERANCE_S = 1e-3  # parts may exceed their step by timer granularity
MIN_RATIO_DENOMINATOR_S = 1e-3  # below this a time is timer noise, and a ratio to it is meaningless


def task_draws(args: argparse.Namespace) -> list[list[int]]:
    """The task indices rlvr's training loop draws, per step (warm-up step first)."""
    from rlvr.envs.suite import Suite, SuiteEntry

    suite = Suite([SuiteEntry(ENV_ID, 1.0, ENV_OVERRIDES)], seed=args.seed * 1000)  # as train() builds it
    return [[d.task_index for d in suite.sample(args.prompts)] for _ in range(args.steps + 1)]


def run_rlvr(args: argparse.Namespace) -> dict[str, Any]:
    from rlvr.envs import make
    from rlvr.trainer.config import load_config
    from rlvr.trainer.loop import train

    batch = args.prompts * args.group
    with tempfile.TemporaryDirectory(prefix="rlvr-bench-") as out:
        overrides = [
            f"model.name={MODEL}",
            "model.dtype=float32",
            "model.device=cpu",
            f"model.threads={args.threads}",
            f"env.suite={ENV_ID}",
            f"env.overrides={json.dumps({ENV_ID: ENV_OVERRIDES})}",
            "env.eval_tasks=0",
            "rollout.engine=hf",
            f"rollout.prompts_per_step={args.prompts}",
            f"rollout.group_size={args.group}",
            f"rollout.max_tokens={args.max_tokens}",
            f"rollout.temperature={TEMPERATURE}",
            f"rollout.max_batch_size={max(64, batch)}",
            "algorithm.preset=grpo",
            "algorithm.kl_coef=0",
            "algorithm.loss_agg=token_mean",
            f"algorithm.clip_low={CLIP_LOW}",
            f"algorithm.clip_high={CLIP_HIGH}",
            "algorithm.num_iterations=1",
            "algorithm.minibatches=1",
            f"optim.lr={LR}",
            f"optim.micro_batch_size={batch}",
            f"run.steps={args.steps + 1}",
            f"run.seed={args.seed}",
            f"run.output_dir={out}",
            "run.save_every=0",
            "run.save_model=false",
            "run.plot=false",
            "run.progress=false",
            "run.sample_every=1",
        ]
        train(load_config(None, overrides))
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line]
        samples = [
            json.loads(line) for line in (Path(out) / "samples.jsonl").read_text().splitlines() if line
        ]
    env = make(ENV_ID, **ENV_OVERRIDES)
    expected = [env.unwrapped.tasks[indices[0]].id for indices in task_draws(args)]
    first_tasks = [next(s["task"] for s in samples if s["step"] == step) for step in range(1, args.steps + 2)]
    if first_tasks != expected:
        raise SystemExit(f"rlvr drew other tasks than expected: {first_tasks} != {expected}")
    steps = [
        {
            "step_s": r["time/step_s"],
            "generation_s": r["time/generation_s"],
            "logprobs_s": r["time/forward_s"],
            "backward_s": r["time/backward_s"],
            "completion_tokens": r["length/mean"],
            "reward": r["reward/mean"],
        }
        for r in rows
    ]
    return {"side": "rlvr", "steps": steps[1:], "warmup": steps[0]}


def run_trl(args: argparse.Namespace) -> dict[str, Any]:
    import datasets
    import torch
    import trl
    from transformers import TrainerCallback

    from rlvr.envs import make
    from rlvr.envs.procedural.arithmetic import check_integer
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    env = make(ENV_ID, **ENV_OVERRIDES)
    rows = []
    for indices in task_draws(args):
        for index in indices:
            messages, _ = env.reset(options={"task_index": index})
            rows.append({"prompt": messages, "answer": int(env.unwrapped.task.answer)})
    dataset = datasets.Dataset.from_list(rows)

    def correct(completions: list, answer: list, **_: Any) -> list[float]:
        return [check_integer(a, c[-1]["content"]).score for c, a in zip(completions, answer, strict=True)]

    tokenizer = load_tokenizer(MODEL)
    model = load_model(MODEL, dtype="float32", device="cpu")
    with tempfile.TemporaryDirectory(prefix="trl-bench-") as out:
        config = trl.GRPOConfig(
            output_dir=out,
            use_cpu=True,
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
            per_device_train_batch_size=args.prompts * args.group,
            num_generations=args.group,
            gradient_accumulation_steps=1,
            steps_per_generation=1,
            num_iterations=1,
            max_steps=args.steps + 1,
            max_completion_length=args.max_tokens,
            temperature=TEMPERATURE,
            top_p=1.0,
            top_k=0,
            beta=0.0,
            loss_type="dapo",
            scale_rewards="group",
            epsilon=CLIP_LOW,
            epsilon_high=CLIP_HIGH,
            learning_rate=LR,
            lr_scheduler_type="constant",
            warmup_steps=0,
            optim="adamw_torch",
            adam_beta1=0.9,
            adam_beta2=0.99,
            weight_decay=0.0,
            max_grad_norm=1.0,
            shuffle_dataset=False,
            seed=args.seed,
            eval_strategy="no",
            save_strategy="no",
            report_to="none",
            logging_steps=1,
            disable_tqdm=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            log_completions=False,
        )
        trainer = trl.GRPOTrainer(
            model=model,
            reward_funcs=[correct],
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        spent = {"generation_s": 0.0, "logprobs_s": 0.0, "backward_s": 0.0}

        def timed(fn: Any, key: str) -> Any:
            @functools.wraps(fn)
            def wrapper(*a: Any, **k: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    spent[key] += time.perf_counter() - started

            return wrapper

        # Benchmark-only instance patches (TRL calls these through the instance).
        trainer.model.generate = timed(trainer.model.generate, "generation_s")
        trainer._get_per_token_logps_and_entropies = timed(
            trainer._get_per_token_logps_and_entropies, "logprobs_s"
        )
        trainer.accelerator.backward = timed(trainer.accelerator.backward, "backward_s")
        steps: list[dict[str, float]] = []

        class StepTimer(TrainerCallback):
            def on_step_begin(self, *_: Any, **__: Any) -> None:
                self.begun, self.before = time.perf_counter(), dict(spent)

            def on_step_end(self, *_: Any, **__: Any) -> None:
                row = {"step_s": time.perf_counter() - self.begun}
                row.update({k: spent[k] - self.before[k] for k in spent})
                steps.append(row)

        trainer.add_callback(StepTimer())
        trainer.train()
        logs = [entry for entry in trainer.state.log_history if "completions/mean_length" in entry]
    for row, entry in zip(steps, logs, strict=True):
        row["completion_tokens"] = entry["completions/mean_length"]
        row["reward"] = entry["reward"]
    if torch.get_num_threads() != args.threads:
        raise SystemExit(f"TRL ran with {torch.get_num_threads()} torch threads, not {args.threads}")
    if min(row["generation_s"] for row in steps) <= 0 or min(row["backward_s"] for row in steps) <= 0:
        raise SystemExit("a TRL timer saw no calls: the patched names no longer match TRL's code")
    return {"side": "trl", "steps": steps[1:], "warmup": steps[0], "trl_version": trl.__version__}


def worker(args: argparse.Namespace) -> None:
    result = {"rlvr": run_rlvr, "trl": run_trl}[args.worker](args)
    print(RESULT + json.dumps(result), flush=True)


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for (the workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def spawn(side: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one side in a fresh interpreter; return its result with the CPU other processes used meanwhile."""
    command = [sys.executable, __file__, "--worker", side]
    for name in ("prompts", "group", "max_tokens", "steps", "threads", "seed"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }
    busy_before, own_before, started = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=Path(__file__).parent)
    wall = time.perf_counter() - started
    busy_after, own_after = busy_cpu_seconds(), own_cpu_seconds()
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
        raise SystemExit(f"the {side} worker failed (exit {done.returncode})")
    result = json.loads(lines[-1][len(RESULT) :])
    result["process_s"] = wall
    result["others_busy_cores"] = None  # what other processes used, in cores, while this side ran
    if busy_before is not None and busy_after is not None:
        others = (busy_after - busy_before) - (own_after - own_before)
        result["others_busy_cores"] = max(0.0, others) / wall
    return result


# -- aggregation: per step, then per repeat ------------------------------------------------------------------


def step_parts(row: dict[str, float]) -> dict[str, float]:
    """One timed step's parts and `other_s`, the step's time outside generation, log-probs and backward.

    Computed per step, so it is never negative: the difference of medians (median step minus the parts'
    medians) is, whenever the parts' medians come from different steps. `overlap_s` is how much the parts
    exceed the step (timers that are not nested in the step's timer: a bug in the measurement)."""
    parts = sum(row[part] for part in PARTS[1:])
    return {
        **{part: row[part] for part in PARTS},
        "other_s": max(0.0, row["step_s"] - parts),
        "overlap_s": max(0.0, parts - row["step_s"]),
    }


def medians(steps: list[dict[str, float]]) -> dict[str, Any]:
    """Median seconds per part over timed steps (with per-step `other_s`), mean length and reward."""
    rows = [step_parts(row) for row in steps]
    summary: dict[str, Any] = {
        part: statistics.median(row[part] for row in rows) for part in (*PARTS, "other_s")
    }
    summary["completion_tokens"] = statistics.mean(row["completion_tokens"] for row in steps)
    summary["reward"] = statistics.mean(row["reward"] for row in steps)
    summary["timed_steps"] = len(rows)
    summary["per_step_s"] = [round(row["step_s"], 3) for row in rows]
    summary["steps_with_overlap"] = sum(row["overlap_s"] > OVERLAP_TOLERANCE_S for row in rows)
    return summary


def ratio(slow: float, fast: float) -> float | None:
    """slow / fast; None where `fast` is under a millisecond, where a ratio only measures timer noise."""
    return slow / fast if fast >= MIN_RATIO_DENOMINATOR_S and slow >= 0 else None


def aggregate(results: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    """Per-repeat figures with a disturbed flag each, and medians over the timed steps of the quiet repeats.

    A repeat is disturbed when, during its rlvr or its TRL run, other processes used more than
    `DISTURBED_SHARE` of the machine's cores. The headline medians leave disturbed repeats out, unless every
    repeat was disturbed (then they use all, and `all_disturbed` says so)."""
    repeats = []
    for index in sorted({r["repeat"] for r in results}):
        runs = {r["side"]: r for r in results if r["repeat"] == index}
        sides = {side: medians(runs[side]["steps"]) for side in SIDES}
        others = {side: runs[side].get("others_busy_cores") for side in SIDES}
        disturbed = any(o is not None and o > DISTURBED_SHARE * cores for o in others.values())
        repeats.append(
            {
                "repeat": index,
                **sides,
                "speedup_step": ratio(sides["trl"]["step_s"], sides["rlvr"]["step_s"]),
                "others_busy_cores": others,
                "disturbed": disturbed,
            }
        )
    quiet = [r["repeat"] for r in repeats if not r["disturbed"]]
    used = quiet or [r["repeat"] for r in repeats]
    sides = {
        side: medians(
            [row for r in results if r["side"] == side and r["repeat"] in used for row in r["steps"]]
        )
        for side in SIDES
    }
    return {
        "repeats": repeats,
        "used_repeats": used,
        "all_disturbed": not quiet,
        **sides,
        "speedup": {part: ratio(sides["trl"][part], sides["rlvr"][part]) for part in (*PARTS, "other_s")},
    }


def times(value: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:{width - 1}.2f}x"


def report(figures: dict[str, Any], args: argparse.Namespace, cores: int) -> None:
    """Print the table of the quiet repeats, one line per repeat, and the headline."""
    used, speedup = figures["used_repeats"], figures["speedup"]
    scope = f"repeat{'s' if len(used) > 1 else ''} {', '.join(map(str, used))} of {args.repeats}"
    if figures["all_disturbed"]:
        scope += ", ALL DISTURBED"
    print(
        f"\n{args.prompts} prompts x {args.group} completions, <= {args.max_tokens} tokens, float32, "
        f"{args.threads} threads; medians over the {figures['rlvr']['timed_steps']} timed steps per side of {scope}"
    )
    print(
        f"{'':8} {'s/step':>8} {'generation':>11} {'log-probs':>10} {'backward':>9} {'other':>7} {'tokens':>7}"
    )
    for side in SIDES:
        s = figures[side]
        print(
            f"{side:8} {s['step_s']:8.2f} {s['generation_s']:11.2f} {s['logprobs_s']:10.2f} "
            f"{s['backward_s']:9.2f} {s['other_s']:7.2f} {s['completion_tokens']:7.1f}"
        )
    print(
        f"{'trl/rlvr':8} {times(speedup['step_s'], 8)} {times(speedup['generation_s'], 11)} "
        f"{times(speedup['logprobs_s'], 10)} {times(speedup['backward_s'], 9)} {times(speedup['other_s'], 7)}"
    )
    for side in SIDES:
        if figures[side]["steps_with_overlap"]:
            print(
                f"WARNING: {side}: in {figures[side]['steps_with_overlap']} steps the parts exceed the step"
            )
    for r in figures["repeats"]:
        others = "/".join("?" if o is None else f"{o:.2f}" for o in r["others_busy_cores"].values())
        flag = f"DISTURBED (> {DISTURBED_SHARE:.0%} of {cores} cores)" if r["disturbed"] else "quiet"
        print(
            f"repeat {r['repeat']}: rlvr {r['rlvr']['step_s']:.2f} s/step, trl {r['trl']['step_s']:.2f} s/step, "
            f"{times(r['speedup_step'], 6).strip()}; other processes {others} busy cores "
            f"during the rlvr/trl runs: {flag}"
        )
    step = speedup["step_s"]
    if step is None:
        print("rlvr's step time is under a millisecond: no speed-up to report")
        return
    verdict = "meets" if step >= 1.5 else "misses"
    print(f"rlvr is {step:.2f}x faster per step than TRL's GRPOTrainer ({verdict} the 1.5x target)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--group", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run (after 1 warm-up step)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    cores = os.cpu_count() or 1
    busy_before, wall_before = busy_cpu_seconds(), time.perf_counter()
    results = []
    for repeat in range(1, args.repeats + 1):
        for side in SIDES:
            results.append({**spawn(side, args), "repeat": repeat})
            print(
                f"repeat {repeat}/{args.repeats}: {side} done ({results[-1]['process_s']:.0f} s)", flush=True
            )
    busy_after, wall = busy_cpu_seconds(), time.perf_counter() - wall_before
    figures = aggregate(results, cores)
    report(figures, args, cores)
    load = None
    if busy_before is not None and busy_after is not None:
        load = (busy_after - busy_before) / wall
        print(f"machine load during the run: {load:.2f} busy cores (load average {os.getloadavg()[0]:.2f})")

    summary = {
        "commit": source_state("trainer"),
        "python": platform.python_version(),
        "trl_version": next(r["trl_version"] for r in results if r["side"] == "trl"),
        "shape": {
            "prompts": args.prompts,
            "group": args.group,
            "max_tokens": args.max_tokens,
            "steps": args.steps,
            "repeats": args.repeats,
            "threads": args.threads,
            "seed": args.seed,
            "dtype": "float32",
            "temperature": TEMPERATURE,
        },
        **figures,
        "busy_cores": load,
        "cores": cores,
    }
    print(json.dumps(summary))
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
