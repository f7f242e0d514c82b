"""The ablation table: every algorithm preset on one task and one budget, 3 seeds each (issue 15 item 6).

Task: the CPU quickstart's (`rlvr/data/quickstart.yaml`: `rlvr/arithmetic-v0` level 2, system prompt "Answer
briefly.", SmolLM2-135M-Instruct in float32, 6 prompts x 6 samples per step, at most 24 tokens, temperature 0.8,
greedy accuracy on 100 held-out tasks of the test split). Budget: the same `--steps` optimiser steps of the same
batch (steps x 6 x 6 sampled completions) and the same `--lr` for every preset. Each preset keeps its own
algorithm defaults: the quickstart's explicit algorithm settings (GRPO with clip-higher, token-mean, no KL) are
left out, since explicit values override a preset's. The exceptions, the same for all seeds:
  dapo      `algorithm.max_gen_batches=1`: dynamic sampling only filters (no extra generation batches);
  ppo, vapo `critic.lr=--critic-lr` (the same for both); vapo keeps its 2 critic-only steps (value pretraining).

Each run writes to ROOT/<preset>-seed<k>/ (the trainer's metrics.jsonl, config.json, summary.json; the final
checkpoint is deleted once the run is recorded) and its result to ROOT/<preset>-seed<k>/ablation.json (atomic
write). A rerun skips every run with a result and redoes one that was killed midway (it had no checkpoint to
resume from: `run.save_every=0`), so the table can be completed over several sittings. The held-out accuracy
before training is the same for every run (greedy decoding of the same starting model on the same tasks): it is
measured once into ROOT/before.json, and the runs skip theirs (`run.eval_before=false`).

After every run ROOT/table.md and the plot (`--plot`, default docs/results/ablation.png) are rewritten from the
results found so far; `--report` only rewrites them.

Run: .venv/bin/python benchmarks/ablation.py [--steps 8 --lr 2e-5 --critic-lr 1e-4 --seeds 0,1,2
     --presets grpo,ppo --root runs/ablation --plot docs/results/ablation.png --jobs 2 --threads 1 --report]
(`--jobs 2 --threads 1`: two runs at a time, one torch thread each, in their own processes.)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.atomic import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
PRESETS = (  # GRPO first: the reference the budget was chosen for
    "grpo",
    "reinforce",
    "remax",
    "rloo",
    "dr_grpo",
    "dapo",
    "gspo",
    "gpg",
    "reinforce_pp",
    "ppo",
    "vapo",
    "raft",
    "raft_pp",
)
SEEDS = (0, 1, 2)
CRITIC_PRESETS = ("ppo", "vapo")
# Per-preset settings of the ablation (everything else: the preset's own defaults).
PRESET_SETTINGS: dict[str, dict[str, Any]] = {"dapo": {"max_gen_batches": 1}}
RESULT_FILE = "ablation.json"
SOURCE_FOLDERS = ("rlvr", "trainer", "envs", "verifiers")


@dataclass(frozen=True)
class Budget:
    """What every run gets: the same steps of the same batch, the same learning rates and held-out tasks."""

    steps: int = 8
    lr: float = 2e-5
    critic_lr: float = 1e-4
    prompts_per_step: int = 6
    group_size: int = 6
    eval_tasks: int = 100

    @property
    def completions(self) -> int:
        """Sampled completions per run (ReMax adds one greedy completion per prompt)."""
        return self.steps * self.prompts_per_step * self.group_size


def run_name(preset: str, seed: int) -> str:
    return f"{preset}-seed{seed}"


def base_config() -> dict[str, Any]:
    """The packaged quickstart config as a dict, without its algorithm section."""
    import yaml

    from rlvr.trainer.config import default_config_path

    data = yaml.safe_load(default_config_path().read_text(encoding="utf-8"))
    data.pop("algorithm", None)
    return data


def run_config(preset: str, seed: int, budget: Budget, root: Path, threads: int = 0) -> dict[str, Any]:
    """The config dict of one run: the quickstart's model, task, sampling and optimiser, the preset's defaults."""
    data = base_config()
    data["model"]["threads"] = threads
    data["algorithm"] = {"preset": preset, **PRESET_SETTINGS.get(preset, {})}
    if preset in CRITIC_PRESETS:
        data["critic"] = {"lr": budget.critic_lr}
    data["env"]["eval_tasks"] = budget.eval_tasks
    data["rollout"].update(prompts_per_step=budget.prompts_per_step, group_size=budget.group_size)
    data["optim"]["lr"] = budget.lr
    data["run"] = {
        "steps": budget.steps,
        "seed": seed,
        "output_dir": str(root / run_name(preset, seed)),
        "save_every": 0,  # the trainer still saves at the last step; the run deletes it once recorded
        "sample_every": 0,
        "eval_every": 0,
        "eval_before": False,  # measured once for all runs (before.json)
        "save_model": False,
        "plot": False,
        "progress": False,
    }
    return data


def source_state() -> dict[str, str]:
    """The commit, and a digest of the package's Python sources (uncommitted edits included)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *SOURCE_FOLDERS],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", ""
    digest = hashlib.sha256()
    for folder in SOURCE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return {"commit": commit, "dirty": "yes" if dirty else "no", "sources": digest.hexdigest()[:12]}


def busy_cpu_seconds() -> float:
    """CPU seconds all processes of the machine have used (Linux /proc/stat; 0 elsewhere)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """CPU cores busy during a stretch of wall time: the whole machine's, and this process's own."""

    def __init__(self) -> None:
        self.wall, self.busy, self.own = time.perf_counter(), busy_cpu_seconds(), time.process_time()

    def read(self) -> dict[str, float]:
        wall = max(time.perf_counter() - self.wall, 1e-9)
        return {
            "machine_cores": round((busy_cpu_seconds() - self.busy) / wall, 2),
            "own_cores": round((time.process_time() - self.own) / wall, 2),
            "cpu_seconds": round(time.process_time() - self.own, 1),  # this process's, all its threads
            "loadavg_end": round(os.getloadavg()[0], 2),
        }


def held_out_before(data: dict[str, Any], seed: int = 0, threads: int = 0) -> dict[str, Any]:
    """Held-out greedy accuracy of the starting model of the run config `data` (the function `train()` uses)."""
    import torch

    from rlvr.trainer.config import from_dict
    from rlvr.trainer.engines.hf import HFEngine
    from rlvr.trainer.engines.models import load_model, load_tokenizer
    from rlvr.trainer.evaluate import held_out_accuracy
    from rlvr.trainer.run_envs import run_environments

    config = from_dict(data)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)  # greedy decoding: the seed must not matter (checked once, docs/ABLATION.md)
    environments = run_environments(config.env)
    tokenizer = load_tokenizer(config.model.name)
    device = config.model.device
    if device == "auto":  # as train() resolves it (without its process group)
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(config.model.name, dtype=config.model.dtype, device=device)
    engine = HFEngine(model, tokenizer, max_batch_size=config.rollout.max_batch_size)
    try:
        result = held_out_accuracy(
            engine,
            environments.held_out_id,
            environments.held_out_overrides,
            config.env.eval_tasks,
            config.env.eval_max_tokens or config.rollout.max_tokens,
            tokenizer,
        )
    finally:
        engine.close()
    return {"seed": seed, "tasks": result.tasks, "solved": result.solved, "accuracy": result.accuracy}


def train_run(preset: str, seed: int, budget: Budget, root: Path, threads: int = 0) -> dict[str, Any]:
    """Train one run (replacing a half-finished one) and return its result record."""
    from rlvr.trainer.config import from_dict
    from rlvr.trainer.loop import train

    config = from_dict(run_config(preset, seed, budget, root, threads))
    out = Path(config.run.output_dir)
    meter = LoadMeter()
    result = train(config, overwrite=True)
    load = meter.read()
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # 1.6 GB a run; the table needs none of it
    history = result.history
    after = result.after
    return {
        "preset": preset,
        "seed": seed,
        "after": {"tasks": after.tasks, "solved": after.solved, "accuracy": after.accuracy},
        "seconds": round(result.seconds, 1),
        "reward_curve": [h["reward/mean"] for h in history],
        "accuracy_curve": [h["accuracy"] for h in history],
        "entropy_curve": [h.get("entropy", math.nan) for h in history],
        "zero_variance_curve": [h["groups/zero_variance_frac"] for h in history],
        "trajectories_curve": [h.get("batch/trajectories", math.nan) for h in history],
        "step_seconds": [h["time/step_s"] for h in history],
        "load": load,
        "threads": threads,
    }


def result_path(root: Path, preset: str, seed: int) -> Path:
    return root / run_name(preset, seed) / RESULT_FILE


def read_result(path: Path, budget: Budget) -> dict[str, Any] | None:
    """A finished run's record, or None; a record made with another budget is an error (not overwritten)."""
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("budget") != dataclasses.asdict(budget):
        raise SystemExit(
            f"{path} was made with the budget {record.get('budget')}, not {dataclasses.asdict(budget)}: "
            "pass that budget to complete its table, or another --root for a new one"
        )
    return record


RunFn = Callable[[str, int, Budget, Path], dict[str, Any]]


def run_all(
    presets: Sequence[str],
    seeds: Sequence[int],
    budget: Budget,
    root: Path,
    run_fn: RunFn = train_run,
    after_each: Callable[[], None] | None = None,
) -> dict[str, list[str]]:
    """Run every (preset, seed) without a result, seed by seed (a partial table has every preset early).

    Returns the names of the runs done now, skipped (finished before) and failed (raised: retried next time).
    """
    state = source_state()
    done: dict[str, list[str]] = {"ran": [], "skipped": [], "failed": []}
    todo = [(p, s) for s in seeds for p in presets]
    for index, (preset, seed) in enumerate(todo, 1):
        name, path = run_name(preset, seed), result_path(root, preset, seed)
        if read_result(path, budget) is not None:
            done["skipped"].append(name)
            continue
        print(f"ablation [{index}/{len(todo)}] {name}: training", file=sys.stderr, flush=True)
        started = time.time()
        try:
            record = run_fn(preset, seed, budget, root)
        except Exception as exc:  # one preset's failure must not stop the table; it is retried next time
            print(f"ablation: {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            done["failed"].append(name)
            continue
        finally:
            gc.collect()
        record = {**record, "budget": dataclasses.asdict(budget), "source": state, "started": started}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(record, indent=1))
        done["ran"].append(name)
        print(f"ablation: {name}: {_one_line(record)}", file=sys.stderr, flush=True)
        if after_each is not None:
            after_each()
    return done


def run_in_processes(
    presets: Sequence[str],
    seeds: Sequence[int],
    budget: Budget,
    root: Path,
    command: Callable[[str, int], list[str]],
    jobs: int,
    after_each: Callable[[], None] | None = None,
    poll_s: float = 2.0,
) -> dict[str, list[str]]:
    """`run_all` with `jobs` runs at a time, each in its own process (`command(preset, seed)`, which writes the
    run's result itself; its output goes to ROOT/<run>/ablation.log). Same order, same skipping."""
    done: dict[str, list[str]] = {"ran": [], "skipped": [], "failed": []}
    queue = []
    for seed in seeds:
        for preset in presets:
            finished = read_result(result_path(root, preset, seed), budget) is not None
            (done["skipped"].append(run_name(preset, seed)) if finished else queue.append((preset, seed)))
    running: dict[str, tuple[subprocess.Popen, Any]] = {}
    while queue or running:
        while queue and len(running) < jobs:
            preset, seed = queue.pop(0)
            name = run_name(preset, seed)
            (root / name).mkdir(parents=True, exist_ok=True)
            log = (root / name / "ablation.log").open("w", encoding="utf-8")
            print(
                f"ablation: {name}: training (log: {root / name / 'ablation.log'})",
                file=sys.stderr,
                flush=True,
            )
            running[name] = (subprocess.Popen(command(preset, seed), stdout=log, stderr=log), log)
        time.sleep(poll_s)
        for name, (process, log) in list(running.items()):
            if process.poll() is None:
                continue
            log.close()
            del running[name]
            preset, _, seed = name.rpartition("-seed")
            record = read_result(result_path(root, preset, int(seed)), budget)
            done["ran" if record is not None else "failed"].append(name)
            print(
                f"ablation: {name}: {_one_line(record) if record else 'failed'}", file=sys.stderr, flush=True
            )
            if after_each is not None:
                after_each()
    return done


def _one_line(record: dict[str, Any]) -> str:
    load = record.get("load", {})
    return (
        f"after {record['after']['accuracy']:.0%}, {record['seconds']:.0f} s, machine busy "
        f"{load.get('machine_cores', math.nan):.1f} cores (this run {load.get('own_cores', math.nan):.1f})"
    )


def load_results(root: Path, presets: Sequence[str], seeds: Sequence[int], budget: Budget) -> list[dict]:
    found = (read_result(result_path(root, p, s), budget) for p in presets for s in seeds)
    return [r for r in found if r is not None]


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def summarise(records: list[dict], presets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per preset with at least one finished seed: the means (and std) over its seeds."""
    rows = []
    for preset in presets:
        runs = sorted((r for r in records if r["preset"] == preset), key=lambda r: r["seed"])
        if not runs:
            continue
        after = _mean_std([100 * r["after"]["accuracy"] for r in runs])
        rows.append(
            {
                "preset": preset,
                "seeds": [r["seed"] for r in runs],
                "after": after,
                "final_entropy": _mean_std([_last_finite(r["entropy_curve"]) for r in runs]),
                "zero_variance": _mean_std([statistics.fmean(r["zero_variance_curve"]) for r in runs]),
                "seconds": _mean_std([r["seconds"] for r in runs]),
                "reward_last": _mean_std([statistics.fmean(r["reward_curve"][-2:]) for r in runs]),
                "cpu_seconds": _mean_std([r["load"].get("cpu_seconds", math.nan) for r in runs]),
                "machine_cores": statistics.fmean(r["load"]["machine_cores"] for r in runs),
            }
        )
    return rows


def _last_finite(values: list[float]) -> float:
    """The last logged value (a step that trained nothing, e.g. RAFT with no solved sample, logs none)."""
    return next((v for v in reversed(values) if not math.isnan(v)), math.nan)


def _pm(pair: tuple[float, float], fmt: str) -> str:
    mean, std = pair
    if math.isnan(mean):
        return "n/a"
    return format(mean, fmt) + ("" if math.isnan(std) else " ± " + format(std, fmt))


def markdown_table(rows: list[dict[str, Any]], before: dict[str, Any] | None, budget: Budget) -> str:
    """The ablation table in markdown (percent for accuracies, points for the gain)."""
    before_pct = 100 * before["accuracy"] if before else math.nan
    lines = [
        "| preset | seeds | before | after (mean ± std) | gain | final entropy | zero-variance groups | "
        "reward, last 2 steps | wall s/run | CPU s/run | machine busy (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        gain = row["after"][0] - before_pct
        lines.append(
            f"| `{row['preset']}` | {','.join(map(str, row['seeds']))} | {before_pct:.0f}% | "
            f"{_pm(row['after'], '.1f')}% | {gain:+.1f} | {_pm(row['final_entropy'], '.2f')} | "
            f"{_pm(row['zero_variance'], '.2f')} | {_pm(row['reward_last'], '.2f')} | "
            f"{_pm(row['seconds'], '.0f')} | {_pm(row['cpu_seconds'], '.0f')} | {row['machine_cores']:.1f} |"
        )
    lines.append("")
    lines.append(
        f"Budget: {budget.steps} steps x {budget.prompts_per_step} prompts x {budget.group_size} samples "
        f"({budget.completions} completions) per run, lr {budget.lr:g}, critic lr {budget.critic_lr:g}, "
        f"{budget.eval_tasks} held-out tasks."
    )
    return "\n".join(lines) + "\n"


def plot(records: list[dict], rows: list[dict], before: dict | None, path: Path) -> None:
    """Left: training reward per step, mean over seeds, per preset. Right: held-out accuracy after, +- std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab20")
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for index, row in enumerate(rows):
        runs = [r for r in records if r["preset"] == row["preset"]]
        steps = min(len(r["reward_curve"]) for r in runs)
        mean = [statistics.fmean(r["reward_curve"][i] for r in runs) for i in range(steps)]
        style = "-" if index < 10 else "--"
        curves.plot(range(1, steps + 1), mean, style, color=colours(index), label=row["preset"], marker=".")
        value, std = row["after"]
        bars.barh(index, value, xerr=0 if math.isnan(std) else std, color=colours(index), capsize=3)
        bars.text(
            value + (0 if math.isnan(std) else std) + 0.5, index, f"{value:.0f}", va="center", fontsize=8
        )
    curves.set(xlabel="step", ylabel="training reward (mean over seeds)", title="Reward curve")
    curves.legend(fontsize=8, ncol=2)
    curves.grid(alpha=0.3)
    lowest = min([row["after"][0] for row in rows] + ([100 * before["accuracy"]] if before else []))
    bars.set_xlim(max(0, 10 * math.floor(lowest / 10) - 10), 100)
    bars.set_yticks(range(len(rows)), [r["preset"] for r in rows])
    bars.invert_yaxis()
    if before is not None:
        bars.axvline(100 * before["accuracy"], color="black", linestyle=":", label="before")
        bars.legend(fontsize=8, loc="lower right")
    bars.set(xlabel="held-out greedy accuracy after, % (mean ± std over seeds)", title="Held-out accuracy")
    bars.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(root: Path, presets: Sequence[str], seeds: Sequence[int], budget: Budget, plot_path: Path) -> str:
    """Rewrite ROOT/table.md and the plot from the results found; return the table."""
    return write_report(root, presets, seeds, budget, plot_path, Tabulation(summarise, markdown_table, plot))


@dataclass(frozen=True)
class Tabulation:
    """How a table of runs is made from their records: rows, their markdown, the plot."""

    rows: Callable[[list[dict], Sequence[str]], list[dict[str, Any]]]  # (records, names) -> rows
    markdown: Callable[[list[dict[str, Any]], dict[str, Any] | None, Any], str]  # (rows, before, budget)
    plot: Callable[
        [list[dict], list[dict], dict[str, Any] | None, Path], None
    ]  # (records, rows, before, path)


def write_report(
    root: Path, names: Sequence[str], seeds: Sequence[int], budget: Any, plot_path: Path, tab: Tabulation
) -> str:
    """ROOT/table.md (atomic) and the plot from the results found under ROOT, with the missing runs named."""
    records = load_results(root, names, seeds, budget)
    before_file = root / "before.json"
    before = json.loads(before_file.read_text(encoding="utf-8")) if before_file.is_file() else None
    if before is not None and before["tasks"] != budget.eval_tasks:
        before = None  # measured on another number of held-out tasks
    rows = tab.rows(records, names)
    missing = [run_name(p, s) for s in seeds for p in names if not result_path(root, p, s).is_file()]
    table = tab.markdown(rows, before, budget)
    if missing:
        table += (
            f"\nPartial: {len(records)} of {len(names) * len(seeds)} runs; missing: {', '.join(missing)}\n"
        )
    write_text_atomic(root / "table.md", table)
    if rows:
        tab.plot(records, rows, before, plot_path)
    return table


def run_missing(
    names: Sequence[str],
    seeds: Sequence[int],
    budget: Any,
    root: Path,
    *,
    before_config: dict[str, Any],
    run_fn: RunFn,
    command: Callable[[str, int], list[str]],
    jobs: int,
    refresh: Callable[[], None],
    threads: int = 0,
) -> dict[str, list[str]]:
    """Measure ROOT/before.json once (from `before_config`), then every run without a result: `jobs` at a time
    in their own processes (`command`), or one by one in this one (`run_fn`)."""
    root.mkdir(parents=True, exist_ok=True)
    before_file = root / "before.json"
    if not before_file.is_file():
        meter = LoadMeter()
        before = held_out_before(before_config, threads=threads)
        before.update(budget=dataclasses.asdict(budget), load=meter.read(), source=source_state())
        write_text_atomic(before_file, json.dumps(before, indent=1))
    if jobs > 1:
        return run_in_processes(names, seeds, budget, root, command, jobs, after_each=refresh)
    return run_all(names, seeds, budget, root, run_fn=run_fn, after_each=refresh)


def add_table_arguments(
    parser: argparse.ArgumentParser, seeds: Sequence[int], root: Path, plot: Path
) -> None:
    """The options of a table of runs: seeds, where results and the plot go, report only, threads, jobs."""
    parser.add_argument("--seeds", default=",".join(map(str, seeds)))
    parser.add_argument("--root", type=Path, default=root)
    parser.add_argument("--plot", type=Path, default=plot)
    parser.add_argument("--report", action="store_true", help="only rewrite the table and the plot")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: torch's default)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each in its own process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one process of --jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Budget()
    parser.add_argument("--steps", type=int, default=default.steps)
    parser.add_argument("--lr", type=float, default=default.lr)
    parser.add_argument("--critic-lr", type=float, default=default.critic_lr)
    parser.add_argument("--eval-tasks", type=int, default=default.eval_tasks)
    parser.add_argument("--presets", default=",".join(PRESETS))
    add_table_arguments(parser, SEEDS, Path("runs/ablation"), Path("docs/results/ablation.png"))
    args = parser.parse_args(argv)
    budget = Budget(steps=args.steps, lr=args.lr, critic_lr=args.critic_lr, eval_tasks=args.eval_tasks)
    presets = [p for p in args.presets.split(",") if p]
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown:
        parser.error(f"unknown presets {unknown}; choose from {', '.join(PRESETS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]

    run_fn = functools.partial(train_run, threads=args.threads)
    if args.child:
        return 1 if run_all(presets, seeds, budget, args.root, run_fn=run_fn)["failed"] else 0

    def refresh() -> None:
        report(args.root, presets, seeds, budget, args.plot)

    def command(preset: str, seed: int) -> list[str]:
        forwarded = ["--steps", str(args.steps), "--lr", repr(args.lr), "--critic-lr", repr(args.critic_lr)]
        forwarded += ["--eval-tasks", str(args.eval_tasks), "--threads", str(args.threads)]
        one = ["--presets", preset, "--seeds", str(seed), "--root", str(args.root)]
        return [sys.executable, str(Path(__file__).resolve()), "--child", *one, *forwarded]

    if not args.report:
        before_config = run_config("grpo", 0, budget, Path("unused"), args.threads)
        done = run_missing(
            presets,
            seeds,
            budget,
            args.root,
            before_config=before_config,
            run_fn=run_fn,
            command=command,
            jobs=args.jobs,
            refresh=refresh,
            threads=args.threads,
        )
        print(
            f"ablation: ran {len(done['ran'])}, skipped {len(done['skipped'])} finished, "
            f"failed {len(done['failed'])} {done['failed'] or ''}",
            file=sys.stderr,
        )
    print(report(args.root, presets, seeds, budget, args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
