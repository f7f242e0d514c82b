"""Exploration and data scheduling against uniform draws, at the same generation budget (issue 16 item 6).

Task: mixed difficulty, `rlvr/arithmetic-v0` with `level: [1, 2, 3, 4]` (task i at level i % 4 + 1) and a
training pool of `--pool` tasks (6 per level by default, so each task comes back about 2-3 times: the history
and the curriculum learn from earlier visits). Held out: the first `--eval-tasks` tasks of the test split of the
same mixture (25 per level), greedy, before and after. Model, prompt and sampling are the CPU quickstart's
(SmolLM2-135M-Instruct, float32, "Answer briefly.", 24 tokens, temperature 0.8), and so is the algorithm (GRPO
with clip-higher, token-mean loss, no KL, lr 2e-5); every option changes only what it names:

  uniform     tasks drawn uniformly, group_size samples each (the baseline);
  dapo        DAPO dynamic sampling: all-equal groups are dropped and refilled, at most 3 generation batches;
  history     SRPO history resampling: a task whose last group was all correct leaves the pool;
  curriculum  tasks drawn with weights p(1 - p) of their estimated pass rate;
  knapsack    Knapsack-RL: the step's samples split over its tasks by their estimated pass rates;
  treepo      TreePO: each group a tree (segments of 4 tokens, 2 branches after each of the first 2), with
              subtree baselines.

Budget: the same number of sampled completions, steps x prompts x group (`run.sample_budget`): a run stops at the
step that reaches it, so DAPO (its discarded groups count) takes fewer optimiser steps, and a tree whose paths
stop before branching (fewer leaves) takes more (at most 2 x steps).

Each run writes ROOT/<option>-seed<k>/ (metrics.jsonl, summary.json, its result ablation.json: atomic); a rerun
skips finished runs, so the table can be completed over several sittings. The held-out accuracy before is the
same for every run (greedy, the same starting model): measured once, ROOT/before.json.

Reported per option, mean ± std over seeds: the fraction of sampled groups with a non-zero advantage (not all
equal), held-out accuracy after (and the gain over before), optimiser steps, generated tokens (tokens the engine
decoded, each tree node once), wall time per run.

Run: .venv/bin/python benchmarks/exploration.py [--steps 10 --seeds 0,1,2 --options uniform,dapo
     --root runs/exploration --plot docs/results/exploration.png --jobs 2 --threads 1 --report]
"""

from __future__ import annotations

import argparse
import functools
import math
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.benchmarks.ablation import (
    LoadMeter,
    Tabulation,
    _mean_std,
    _pm,
    add_table_arguments,
    run_all,
    run_missing,
    run_name,
    write_report,
)

ENV = "rlvr/arithmetic-v0"
LEVELS = [1, 2, 3, 4]
SYSTEM_PROMPT = "Answer briefly."
MAX_GEN_BATCHES = 3
TREE = {"segment_tokens": 4, "branching": 2, "depth": 2}
OPTIONS: dict[str, dict[str, dict[str, Any]]] = {  # config sections laid over the common run's
    "uniform": {},
    "dapo": {"algorithm": {"filter_groups": True, "max_gen_batches": MAX_GEN_BATCHES}},
    "history": {"env": {"history_resampling": True}},
    "curriculum": {"env": {"curriculum": "pass_rate"}},
    "knapsack": {"rollout": {"allocation": "knapsack"}},
    "treepo": {"algorithm": {"advantage": "treepo"}, "rollout": {"tree": TREE}},
}
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Budget:
    """What every run gets: the same sampled completions of the same task pool, the same held-out tasks."""

    steps: int = 10
    prompts_per_step: int = 6
    group_size: int = 8
    pool: int = 24
    eval_tasks: int = 100
    lr: float = 2e-5

    @property
    def completions(self) -> int:
        return self.steps * self.prompts_per_step * self.group_size


def run_config(option: str, seed: int, budget: Budget, root: Path, threads: int = 0) -> dict[str, Any]:
    """The config dict of one run: the quickstart's model, sampling and algorithm on the mixed task, the option."""
    import yaml

    from rlvr.trainer.config import default_config_path

    data = yaml.safe_load(
        default_config_path().read_text(encoding="utf-8")
    )  # the quickstart's, algorithm too
    data["model"]["threads"] = threads
    mixed = {"level": LEVELS, "system_prompt": SYSTEM_PROMPT}
    data["env"] = {
        "suite": ENV,
        "overrides": {ENV: {**mixed, "size": budget.pool}},
        "eval_overrides": {ENV: mixed},
        "eval_tasks": budget.eval_tasks,
    }
    data["rollout"].update(prompts_per_step=budget.prompts_per_step, group_size=budget.group_size)
    data["optim"]["lr"] = budget.lr
    data["run"] = {
        "steps": 2 * budget.steps,  # an upper bound: the sample budget ends the run
        "sample_budget": budget.completions,
        "seed": seed,
        "output_dir": str(root / run_name(option, seed)),
        "save_every": 0,
        "sample_every": 0,
        "eval_every": 0,
        "eval_before": False,  # measured once for all runs (before.json)
        "save_model": False,
        "plot": False,
        "progress": False,
    }
    for section, values in OPTIONS[option].items():
        data[section].update(values)
    return data


def train_run(option: str, seed: int, budget: Budget, root: Path, threads: int = 0) -> dict[str, Any]:
    """Train one run (replacing a half-finished one) and return its result record."""
    from rlvr.trainer.config import from_dict
    from rlvr.trainer.loop import train

    config = from_dict(run_config(option, seed, budget, root, threads))
    meter = LoadMeter()
    result = train(config, overwrite=True)
    load = meter.read()
    shutil.rmtree(Path(config.run.output_dir) / "checkpoints", ignore_errors=True)  # the table needs none
    history, after = result.history, result.after
    return {
        "preset": option,  # the key the shared runner and loader use
        "seed": seed,
        "after": {"tasks": after.tasks, "solved": after.solved, "accuracy": after.accuracy},
        "seconds": round(result.seconds, 1),
        "steps": result.steps,
        "samples": [h["samples/total"] for h in history],
        "groups_drawn": [h["groups/drawn"] for h in history],
        "zero_variance": [h["groups/zero_variance_frac"] for h in history],
        "tokens": [h["tokens/generated"] for h in history],
        "reward_curve": [h["reward/mean"] for h in history],
        "load": load,
        "threads": threads,
    }


def informative_fraction(record: dict[str, Any]) -> float:
    """Sampled groups with a non-zero advantage (accuracies not all equal) / all sampled groups of the run."""
    drawn = record["groups_drawn"]
    informative = sum(n * (1 - z) for n, z in zip(drawn, record["zero_variance"], strict=True))
    return informative / max(sum(drawn), 1)


def summarise(records: list[dict], options: list[str]) -> list[dict[str, Any]]:
    """One row per option with at least one finished seed: means and stds over its seeds."""
    rows = []
    for option in options:
        runs = sorted((r for r in records if r["preset"] == option), key=lambda r: r["seed"])
        if not runs:
            continue
        rows.append(
            {
                "option": option,
                "seeds": [r["seed"] for r in runs],
                "informative": _mean_std([informative_fraction(r) for r in runs]),
                "after": _mean_std([100 * r["after"]["accuracy"] for r in runs]),
                "steps": _mean_std([float(r["steps"]) for r in runs]),
                "completions": _mean_std([r["samples"][-1] for r in runs]),
                "tokens": _mean_std([sum(r["tokens"]) for r in runs]),
                "seconds": _mean_std([r["seconds"] for r in runs]),
                "machine_cores": statistics.fmean(r["load"]["machine_cores"] for r in runs),
            }
        )
    return rows


def markdown_table(rows: list[dict[str, Any]], before: dict[str, Any] | None, budget: Budget) -> str:
    before_pct = 100 * before["accuracy"] if before else math.nan
    lines = [
        "| option | seeds | groups with signal | before | after (mean ± std) | gain | optimiser steps | "
        "completions | generated tokens | wall s/run | machine busy (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['option']}` | {','.join(map(str, row['seeds']))} | {_pm(row['informative'], '.2f')} | "
            f"{before_pct:.0f}% | {_pm(row['after'], '.1f')}% | {row['after'][0] - before_pct:+.1f} | "
            f"{_pm(row['steps'], '.1f')} | {_pm(row['completions'], '.0f')} | {_pm(row['tokens'], '.0f')} | "
            f"{_pm(row['seconds'], '.0f')} | {row['machine_cores']:.1f} |"
        )
    lines.append("")
    lines.append(
        f"Budget: {budget.completions} sampled completions per run ({budget.steps} steps x "
        f"{budget.prompts_per_step} prompts x {budget.group_size} samples at uniform draws), a pool of "
        f"{budget.pool} training tasks (levels {LEVELS} mixed), lr {budget.lr:g}, {budget.eval_tasks} held-out "
        "tasks of the same mixture."
    )
    return "\n".join(lines) + "\n"


def plot(records: list[dict], rows: list[dict], before: dict | None, path: Path) -> None:
    """Left: training reward against completions sampled (seed 0's run per option). Right: held-out accuracy
    after (± std), each bar labelled with the fraction of groups with signal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10")
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for index, row in enumerate(rows):
        for k, run in enumerate(r for r in records if r["preset"] == row["option"]):
            label = row["option"] if k == 0 else None
            curves.plot(run["samples"], run["reward_curve"], color=colours(index), alpha=0.7, label=label)
        value, std = row["after"]
        bars.barh(index, value, xerr=0 if math.isnan(std) else std, color=colours(index), capsize=3)
        note = f"{value:.0f}%  (signal {row['informative'][0]:.2f})"
        bars.text(value + (0 if math.isnan(std) else std) + 0.5, index, note, va="center", fontsize=8)
    curves.set(xlabel="completions sampled", ylabel="training reward", title="Reward per step (each seed)")
    curves.legend(fontsize=8)
    curves.grid(alpha=0.3)
    bars.set_yticks(range(len(rows)), [r["option"] for r in rows])
    bars.invert_yaxis()
    bars.set_xlim(0, 100)
    if before is not None:
        bars.axvline(100 * before["accuracy"], color="black", linestyle=":", label="before")
        bars.legend(fontsize=8, loc="lower right")
    bars.set(xlabel="held-out greedy accuracy after, % (mean ± std)", title="Held-out accuracy (levels 1-4)")
    bars.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(root: Path, options: list[str], seeds: list[int], budget: Budget, plot_path: Path) -> str:
    """Rewrite ROOT/table.md and the plot from the results found; return the table."""
    return write_report(root, options, seeds, budget, plot_path, Tabulation(summarise, markdown_table, plot))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Budget()
    parser.add_argument("--steps", type=int, default=default.steps)
    parser.add_argument("--pool", type=int, default=default.pool)
    parser.add_argument("--eval-tasks", type=int, default=default.eval_tasks)
    parser.add_argument("--options", default=",".join(OPTIONS))
    add_table_arguments(parser, SEEDS, Path("runs/exploration"), Path("docs/results/exploration.png"))
    args = parser.parse_args(argv)
    budget = Budget(steps=args.steps, pool=args.pool, eval_tasks=args.eval_tasks)
    options = [o for o in args.options.split(",") if o]
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        parser.error(f"unknown options {unknown}; choose from {', '.join(OPTIONS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    run_fn = functools.partial(train_run, threads=args.threads)
    if args.child:
        return 1 if run_all(options, seeds, budget, args.root, run_fn=run_fn)["failed"] else 0

    def command(option: str, seed: int) -> list[str]:
        forwarded = [
            "--steps",
            str(args.steps),
            "--pool",
            str(args.pool),
            "--eval-tasks",
            str(args.eval_tasks),
        ]
        one = [
            "--options",
            option,
            "--seeds",
            str(seed),
            "--root",
            str(args.root),
            "--threads",
            str(args.threads),
        ]
        return [sys.executable, str(Path(__file__).resolve()), "--child", *one, *forwarded]

    if not args.report:
        done = run_missing(
            options,
            seeds,
            budget,
            args.root,
            before_config=run_config("uniform", 0, budget, args.root, args.threads),
            run_fn=run_fn,
            command=command,
            jobs=args.jobs,
            refresh=functools.partial(report, args.root, options, seeds, budget, args.plot),
            threads=args.threads,
        )
        print(
            f"exploration: ran {len(done['ran'])}, skipped {len(done['skipped'])} finished, "
            f"failed {len(done['failed'])} {done['failed'] or ''}",
            file=sys.stderr,
        )
    print(report(args.root, options, seeds, budget, args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
