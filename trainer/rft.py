"""Rejection-sampling fine-tuning (RFT), offline and iterative: sample, keep the verified-correct, fine-tune,
repeat.

    round r:  model_{r-1} -- n samples per task, scored by the environment --> OUT/round-r/samples.jsonl
                          -- the correct ones, deduplicated, <= k per task --> OUT/round-r/kept.jsonl
                          -- SFT on them (trainer/sft.py) -------------------> OUT/round-r/model/
    model_0 is the starting model; round r + 1 samples with OUT/round-r/model.

The stages pass real files. Sampling is the evaluator's (`evaluate_suite`, what `rlvr eval` runs): the same
rollout, seeds, `SampleRecord` lines, resume check (`settings.json`) and metrics (`summary.json`: avg@n and
pass@n of the round's model on the sampled tasks), on the environment's training split. `kept.jsonl` holds
`SampleRecord` lines too. A round is finished when its model folder is there: the folder is written beside it
and renamed into place, with `rft.json` (what the round did) inside.

Rerunning the same command skips the finished rounds and resumes the unfinished one (its samples are kept); a
larger `rounds` adds rounds. `OUT/config.json` records the settings: a rerun with other settings (other than
`rounds`) is refused, and `overwrite` removes what this module wrote (`config.json`, `summary.json`,
`round-N/`) and starts again.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlvr.atomic import write_text_atomic
from rlvr.benchmarks.records import SampleRecord
from rlvr.benchmarks.suites import BenchmarkSuite
from rlvr.errors import ConfigError, DataError
from rlvr.trainer.sft import SFTConfig, SFTExample, SFTResult

SAMPLES = "samples.jsonl"
KEPT = "kept.jsonl"
MODEL = "model"
ROUND_INFO = "rft.json"
"""Inside a round's model folder: what the round did. Its presence marks the round finished."""
CONFIG = "config.json"
SUMMARY = "summary.json"
_ROUND = re.compile(r"round-\d+")


@dataclass(frozen=True)
class SampleConfig:
    """The sampling stage: n completions for each of the first `tasks` tasks of the environment's training
    split."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """`rlvr.make` keywords (level, system_prompt, prompt_template, data_path, ...)."""
    n: int = 8
    tasks: int = 64
    max_tokens: int = 512
    temperature: float = 0.8
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 64
    """Conversations per generate call."""

    def __post_init__(self) -> None:
        for name in ("n", "tasks", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{name} must be an integer >= 1, got {value!r} (--{name.replace('_', '-')})"
                )
        if self.temperature <= 0:
            raise ConfigError(
                f"temperature must be > 0 to draw different samples of a task, got {self.temperature}"
            )

    def suite(self, name: str) -> BenchmarkSuite:
        """The environment as an evaluator suite named `name` (its folder); a dataset's training split."""
        import gymnasium as gym

        from rlvr.envs.catalog import get_spec

        dataset = gym.spec(self.env_id).kwargs.get("dataset")
        kwargs = dict(self.env_kwargs)
        if isinstance(dataset, str) and "split" not in kwargs:
            kwargs["split"] = get_spec(dataset).split  # a suite would default to the test split
        return BenchmarkSuite(
            name=name,
            env_id=self.env_id,
            dataset=dataset if isinstance(dataset, str) else None,
            description=f"rlvr rft samples of {self.env_id}",
            env_kwargs=kwargs,
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            k=(1, self.n),
            metrics=("avg", "pass"),
            vote=None,
            limit=self.tasks,
        )


@dataclass(frozen=True)
class RFTConfig:
    """An RFT run: the starting model, the stages' settings and the number of rounds."""

    model: str
    sample: SampleConfig
    k: int | None = None
    """Completions kept per task at most (None: every distinct correct one)."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    rounds: int = 1
    dtype: str = "float32"
    device: str | None = None
    """cpu, cuda (None: cuda when available)."""

    def __post_init__(self) -> None:
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise ConfigError(f"rounds must be an integer >= 1, got {self.rounds!r} (--rounds)")
        check_k(self.k)

    def settings(self) -> dict[str, Any]:
        """What a rerun into the same folder must match."""
        values = asdict(self)
        for name in ("rounds", "device"):  # more rounds extend the run; another device may continue it
            values.pop(name)
        return values


def check_k(k: int | None) -> None:
    if k is not None and (not isinstance(k, int) or k < 1):
        raise ConfigError(f"k must be an integer >= 1 (or unset: all), got {k!r} (--k)")


def check_environment(sample: SampleConfig) -> None:
    """Unknown environment or keyword: ConfigError (before any model loads); a warning for a benchmark's
    split."""
    from rlvr.envs.registry import check_overrides, resolve
    from rlvr.envs.splits import benchmark_overlap

    env_id = resolve(sample.env_id)
    check_overrides(env_id, sample.env_kwargs)
    warning = benchmark_overlap(env_id, sample.env_kwargs)
    if warning:
        print(warning, file=sys.stderr)


# ---------------------------------------------------------------------------------------------------------
# Stage 1: sample


def sample_stage(
    engine: Any,
    config: SampleConfig,
    folder: Path,
    *,
    model: str,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """n samples per task into folder/samples.jsonl (with settings.json and summary.json, as `rlvr eval`
    writes them); resumes an interrupted stage. Returns the evaluator's summary."""
    from rlvr.benchmarks.evaluator import evaluate_suite, settings_for
    from rlvr.benchmarks.provenance import model_provenance

    folder = folder.resolve()
    # the evaluator writes OUT/<suite name>/: a suite named after the folder writes straight into it
    suite = config.suite(folder.name)
    settings = settings_for(suite, seed=config.seed)
    return evaluate_suite(
        engine,
        suite,
        settings,
        folder.parent,
        model=model_provenance(model, "hf"),
        batch_size=config.batch_size,
        overwrite=overwrite,
        progress=progress,
    )


# ---------------------------------------------------------------------------------------------------------
# Stage 2: filter


@dataclass
class FilterStats:
    """What the filter did with a samples file."""

    samples: int = 0
    tasks: int = 0
    correct: int = 0
    truncated: int = 0
    """Correct samples cut at max_tokens: dropped (the reply did not end; its answer may be an accident)."""
    multi_turn: int = 0
    """Correct samples of several turns: dropped (a record holds only the last turn)."""
    duplicates: int = 0
    over_k: int = 0
    kept: int = 0
    tasks_kept: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def filter_samples(
    records: Sequence[SampleRecord], k: int | None = None
) -> tuple[list[SampleRecord], FilterStats]:
    """The verified-correct samples that stopped by themselves, each distinct completion of a task once (its
    text with outer whitespace stripped), at most `k` per task, in file order."""
    check_k(k)
    stats = FilterStats(samples=len(records), tasks=len({r.task_index for r in records}))
    seen: set[tuple[int, str]] = set()
    per_task: dict[int, int] = {}
    kept = []
    for record in records:
        stats.reasons[record.reason] = stats.reasons.get(record.reason, 0) + 1
        if not record.correct:
            continue
        stats.correct += 1
        key = (record.task_index, record.completion.strip())
        if record.finish_reason == "length":
            stats.truncated += 1
        elif record.turns != 1:
            stats.multi_turn += 1
        elif key in seen:
            stats.duplicates += 1
        elif k is not None and per_task.get(record.task_index, 0) >= k:
            stats.over_k += 1
        else:
            seen.add(key)
            per_task[record.task_index] = per_task.get(record.task_index, 0) + 1
            kept.append(record)
    stats.kept, stats.tasks_kept = len(kept), len(per_task)
    return kept, stats


def read_samples(path: Path) -> list[SampleRecord]:
    """The records of a samples file (`rlvr eval`, `rlvr rft sample`); DataError naming a bad row's line."""
    records = []
    for number, row in _jsonl_rows(path):
        try:
            records.append(SampleRecord.from_dict(row))
        except TypeError as exc:
            raise DataError(
                f"{path}:{number} is not a sample record of `rlvr eval` or `rlvr rft sample` ({exc})"
            ) from None
    return records


def keep_correct(samples: Path, kept: Path, k: int | None, *, overwrite: bool = False) -> FilterStats:
    """Filter a samples file into `kept` (written atomically). A `kept` file that holds other rows (edited by
    hand, or another k) is not replaced without `overwrite`; DataError when no sample is kept."""
    records = read_samples(samples)
    rows, stats = filter_samples(records, k)
    if not rows:
        reasons = ", ".join(f"{name} {count}" for name, count in sorted(stats.reasons.items())) or "none"
        raise DataError(
            f"{samples}: no verified-correct completion to keep among {stats.samples} samples of "
            f"{stats.tasks} tasks (verdicts: {reasons}; correct but cut at max_tokens: {stats.truncated}); "
            "sample more (--n, --tasks), raise --max-tokens, or start from a stronger model"
        )
    text = "".join(row.to_json() + "\n" for row in rows)
    if kept.exists() and not overwrite and kept.read_text(encoding="utf-8") != text:
        raise ConfigError(
            f"{kept} exists and differs from what the filter keeps of {samples} (edited by hand, or another "
            "--k); train on it with `rlvr rft sft --data`, or pass --overwrite to replace it"
        )
    kept.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(kept, text)
    return stats


# ---------------------------------------------------------------------------------------------------------
# Stage 3: fine-tune


def read_examples(path: Path) -> list[SFTExample]:
    """SFT examples from JSONL rows with `prompt` (chat messages) and `completion` (text), as in kept.jsonl;
    a row with `finish_reason: "length"` gets no end-of-sequence target. DataError naming a bad row's line."""
    examples = []
    for number, row in _jsonl_rows(path):
        prompt, completion = row.get("prompt"), row.get("completion")
        if not _is_messages(prompt) or not isinstance(completion, str) or not completion.strip():
            raise DataError(
                f"{path}:{number} needs `prompt` (a list of {{role, content}} messages) and `completion` "
                "(non-empty text), as the rows of kept.jsonl have them"
            )
        examples.append(SFTExample(prompt, completion, stopped=row.get("finish_reason") != "length"))
    if not examples:
        raise DataError(f"{path} holds no rows to fine-tune on")
    return examples


def sft_stage(
    model: Any,
    tokenizer: Any,
    examples: Sequence[SFTExample],
    config: SFTConfig,
    target: Path,
    *,
    info: dict[str, Any] | None = None,
    progress: bool = False,
) -> SFTResult:
    """Fine-tune `model` on `examples`, then publish it as the HF folder `target` (written beside it, with
    `rft.json` = `info` plus the SFT result, and renamed into place; an older `target` is replaced)."""
    from rlvr.trainer.checkpoint import publish_folder
    from rlvr.trainer.sft import sft

    bar = None
    if progress:
        from tqdm import tqdm

        steps = config.epochs * -(-len(examples) // config.batch_size)
        bar = tqdm(total=steps, desc="fine-tuning", unit="step", file=sys.stderr)

    def on_step(step: int, nll: float) -> None:
        if bar is not None:
            bar.set_postfix(nll=f"{nll:.3f}", refresh=False)
            bar.update(1)

    try:
        result = sft(model, tokenizer, examples, config, on_step=on_step)
    finally:
        if bar is not None:
            bar.close()
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    record = {**(info or {}), "sft": {**asdict(config), **asdict(result)}}
    write_text_atomic(staging / ROUND_INFO, json.dumps(record, indent=2, ensure_ascii=False))
    publish_folder(staging, target)
    return result


def check_model_target(target: Path, overwrite: bool) -> None:
    """A folder that already holds something is not replaced without `overwrite`."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise ConfigError(f"{target} already exists; choose another --out, or pass --overwrite to replace it")


# ---------------------------------------------------------------------------------------------------------
# The rounds


@dataclass
class RFTResult:
    out: Path
    rounds: list[dict[str, Any]]
    """Each round's rft.json."""
    skipped: list[int]
    """Rounds already finished before this call."""

    @property
    def model(self) -> Path:
        return self.out / f"round-{len(self.rounds)}" / MODEL


def round_done(folder: Path) -> bool:
    return (folder / MODEL / ROUND_INFO).is_file()


def prepare_out(out: Path, config: RFTConfig, overwrite: bool) -> None:
    """Refuse a folder holding an RFT run with other settings (or remove that run with `overwrite`); record
    this run's settings."""
    settings = json.loads(json.dumps(config.settings()))  # as it reads back (tuples as lists)
    path = out / CONFIG
    found = [p for p in (path, out / SUMMARY) if p.exists()]
    found += sorted(p for p in out.glob("round-*") if _ROUND.fullmatch(p.name)) if out.is_dir() else []
    if overwrite and found:
        names = ", ".join(p.name for p in found)
        print(f"rlvr: replacing the rft run in {out} (--overwrite): removing {names}", file=sys.stderr)
        for p in found:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    elif path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != settings:
            old, new = _flat(previous), _flat(settings)
            changed = sorted(key for key in {*old, *new} if old.get(key) != new.get(key))
            raise ConfigError(
                f"{out} holds an rft run with other settings (differing: {', '.join(changed)}); pass another "
                "--out to keep both, or --overwrite to start again"
            )
    elif found:
        raise ConfigError(
            f"{out} holds rft files without {CONFIG} ({', '.join(p.name for p in found)}); move them away "
            "or pass --overwrite"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --out {out}: {exc.strerror}; choose another --out") from exc
    write_text_atomic(path, json.dumps(settings, indent=2, ensure_ascii=False))


def run_rft(
    config: RFTConfig,
    out: Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> RFTResult:
    """`config.rounds` rounds of sample -> filter -> SFT into `out`; finished rounds are skipped."""
    from rlvr.trainer.engines.models import resolve_model

    check_environment(config.sample)
    resolve_model(config.model)  # an unknown model fails before anything is written
    prepare_out(out, config, overwrite)
    source, rounds, skipped = config.model, [], []
    for r in range(1, config.rounds + 1):
        folder = out / f"round-{r}"
        if round_done(folder):
            say(f"round {r}: finished earlier, skipped ({folder / MODEL})")
            skipped.append(r)
        else:
            _one_round(config, r, source, folder, progress, say)
        rounds.append(json.loads((folder / MODEL / ROUND_INFO).read_text(encoding="utf-8")))
        write_text_atomic(out / SUMMARY, json.dumps({"rounds": rounds}, indent=2, ensure_ascii=False))
        source = str(folder / MODEL)
    return RFTResult(out, rounds, skipped)


def _one_round(
    config: RFTConfig, r: int, source: str, folder: Path, progress: bool, say: Callable[[str], None]
) -> None:
    from rlvr.trainer.engines.hf import HFEngine
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    sample = config.sample
    say(f"round {r}: sampling {sample.n} x {sample.tasks} tasks of {sample.env_id} with {source}")
    tokenizer = load_tokenizer(source)
    model = load_model(source, dtype=config.dtype, device=config.device or default_device())
    engine = HFEngine(model, tokenizer, max_batch_size=sample.batch_size)  # the same object SFT then trains
    try:
        summary = sample_stage(engine, sample, folder, model=source, progress=progress)
    finally:
        engine.close()
    metrics = {name: value["value"] for name, value in summary["metrics"].items()}
    stats = keep_correct(folder / SAMPLES, folder / KEPT, config.k)
    say(
        f"round {r}: {stats.correct}/{stats.samples} samples correct (avg@{sample.n} "
        f"{metrics[f'avg@{sample.n}']:.1%}, pass@{sample.n} {metrics[f'pass@{sample.n}']:.1%}); kept "
        f"{stats.kept} of {stats.tasks_kept} tasks ({stats.duplicates} duplicates, {stats.over_k} over k, "
        f"{stats.truncated} cut at max_tokens) -> {folder / KEPT}"
    )
    examples = read_examples(folder / KEPT)
    info = {"round": r, "model_in": source, "sampling": metrics, "filter": asdict(stats)}
    result = sft_stage(model, tokenizer, examples, config.sft, folder / MODEL, info=info, progress=progress)
    say(
        f"round {r}: SFT on {result.examples} completions ({result.completion_tokens} tokens), "
        f"{result.steps} steps: NLL by epoch {' -> '.join(f'{x:.3f}' for x in result.epoch_nll)} "
        f"({result.seconds:.0f} s) -> {folder / MODEL}"
    )


# ---------------------------------------------------------------------------------------------------------


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; DataError for a missing file or a line that is no
    object."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number} is not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number} is not a JSON object")
            rows.append((number, row))
    return rows


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"sft": {"lr": 1}} -> {"sft.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value
        )
    )


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
