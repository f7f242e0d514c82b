"""The evaluator: n samples per task through the suite's environment, scored by its reward pipeline, resumable.

    tasks -> batches of consecutive samples -> rollout (one environment per sample, one generate per turn)
          -> SampleRecord lines appended to OUT/<suite>/samples.jsonl -> metrics -> summary.json, summary.md

Resuming: the samples file is the state. A rerun with the same settings skips every (task, sample) already in it;
different settings (model, sampling, prompt, data) are refused, so a directory never mixes two runs. Sample
g = task * n + j; a batch of consecutive samples from g0 is sampled with seed `seed + g0` (`seeded_batches`), so
a batch regenerated after an interruption draws what it would have drawn before (bit for bit on a deterministic
engine, given the same batch size), and engines that seed each request (vLLM: seed + r) give every sample its own
seed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlvr.atomic import write_text_atomic
from rlvr.benchmarks.provenance import data_provenance, run_provenance
from rlvr.benchmarks.records import SampleRecord, append_records, by_task, read_records, repair_tail
from rlvr.benchmarks.report import markdown_report
from rlvr.benchmarks.scoring import aggregate, breakdown, metric_names, sample_stats, task_scores
from rlvr.benchmarks.suites import BenchmarkSuite
from rlvr.envs.registry import make
from rlvr.envs.rollout import Trajectory, rollout
from rlvr.envs.types import Sampling
from rlvr.errors import ConfigError

SAMPLES_FILE = "samples.jsonl"
SETTINGS_FILE = "settings.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "summary.md"


@dataclass(frozen=True)
class EvalSettings:
    """One suite's evaluation: the suite's defaults with the command line's choices laid over them."""

    n: int
    ks: tuple[int, ...]
    temperature: float
    top_p: float
    max_tokens: int
    seed: int = 0
    limit: int | None = None
    data_path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"n must be an integer >= 1, got {self.n!r}")
        too_big = [k for k in self.ks if k > self.n]
        if too_big:
            raise ConfigError(
                f"k = {too_big} is larger than n = {self.n}: pass --n >= {max(too_big)} or drop it"
            )
        try:
            Sampling(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p)
        except ValueError as exc:  # say it as a setting to fix, not as a crash
            raise ConfigError(f"{exc} (--max-tokens, --temperature, --top-p)") from None
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"limit must be an integer >= 1, got {self.limit!r}")

    def sampling(self, seed: int) -> Sampling:
        return Sampling(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p, seed=seed)


def settings_for(
    suite: BenchmarkSuite,
    *,
    n: int | None = None,
    ks: Sequence[int] | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    seed: int = 0,
    limit: int | None = None,
    data_path: str | None = None,
) -> EvalSettings:
    """The suite's defaults, overridden by what is given; without `ks`, the suite's k that fit in n (and n)."""
    n = suite.n if n is None else n
    if ks is None:
        ks = tuple({k for k in suite.k if k <= n} | {n})
    return EvalSettings(
        n=n,
        ks=tuple(sorted(set(ks))),
        temperature=suite.temperature if temperature is None else temperature,
        top_p=suite.top_p if top_p is None else top_p,
        max_tokens=suite.max_tokens if max_tokens is None else max_tokens,
        seed=seed,
        limit=suite.limit if limit is None else limit,
        data_path=data_path,
    )


def suite_folder(out_dir: Path, suite: BenchmarkSuite) -> Path:
    """OUT/<suite name>, with "/" of environment ids replaced by "__"."""
    return out_dir / suite.name.replace("/", "__")


def env_overrides(suite: BenchmarkSuite, settings: EvalSettings) -> dict[str, Any]:
    """Keyword arguments for `make(suite.env_id, ...)`."""
    overrides = dict(suite.env_kwargs)
    if suite.prompt_template is not None:
        overrides["prompt_template"] = suite.prompt_template
    if suite.system_prompt is not None:
        overrides["system_prompt"] = suite.system_prompt
    if settings.data_path is not None:
        if suite.dataset is None:
            raise ConfigError(f"suite {suite.name} has no dataset to replace: --data does not apply to it")
        overrides["data_path"] = settings.data_path
    return overrides


def fingerprint(
    suite: BenchmarkSuite,
    settings: EvalSettings,
    data: dict[str, Any],
    model: dict[str, Any],
    engine: str,
    template: str,
) -> dict[str, Any]:
    """What the samples depend on: a rerun into the same folder must match it to resume."""
    return {
        "suite": suite.name,
        "env_id": suite.env_id,
        "env_kwargs": dict(suite.env_kwargs),
        "prompt_template": template,
        "system_prompt": suite.system_prompt,
        "data": {key: value for key, value in data.items() if key != "path"},
        "model": model,
        "engine": engine,
        "sampling": {
            "n": settings.n,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_tokens,
            "seed": settings.seed,
        },
    }


def check_resumable(folder: Path, current: dict[str, Any], overwrite: bool) -> None:
    """Refuse to add samples made with other settings to a folder; `overwrite` starts the folder afresh."""
    settings_path = folder / SETTINGS_FILE
    if overwrite:
        for name in (SAMPLES_FILE, SETTINGS_FILE):
            (folder / name).unlink(missing_ok=True)
    elif settings_path.exists():
        previous = json.loads(settings_path.read_text(encoding="utf-8"))
        if previous != current:
            changed = sorted(key for key in {*previous, *current} if previous.get(key) != current.get(key))
            raise ConfigError(
                f"{folder} holds samples made with other settings (differing: {', '.join(changed)}); "
                "pass another --out to keep both, or --overwrite to start this suite again"
            )
    elif (folder / SAMPLES_FILE).exists():
        raise ConfigError(
            f"{folder / SAMPLES_FILE} exists without {SETTINGS_FILE}; move it away or pass --overwrite"
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(settings_path, json.dumps(current, indent=2, ensure_ascii=False))


def evaluate_suite(
    engine: Any,
    suite: BenchmarkSuite,
    settings: EvalSettings,
    out_dir: str | Path,
    *,
    model: dict[str, Any],
    batch_size: int = 64,
    overwrite: bool = False,
    verifier: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Sample what is missing, then score everything in the folder; returns the suite's summary."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    folder = suite_folder(Path(out_dir), suite)
    overrides = env_overrides(suite, settings)
    probe = make(suite.env_id, **overrides)  # a missing or malformed data file fails here, with its DataError
    envs = [probe]
    try:
        data = data_provenance(suite, settings.data_path)
        engine_info = engine.describe()
        template = prompt_template(suite, probe)
        current = fingerprint(suite, settings, data, model, engine_info["engine"], template)
        check_resumable(folder, current, overwrite)
        samples_path = folder / SAMPLES_FILE
        repair_tail(samples_path)
        done = {record.key for record in read_records(samples_path)}
        tasks = probe.unwrapped.tasks
        count = len(tasks) if settings.limit is None else min(len(tasks), settings.limit)
        todo = [(i, j) for i in range(count) for j in range(settings.n) if (i, j) not in done]
        envs += [make(suite.env_id, **overrides) for _ in range(min(batch_size, len(todo)) - 1)]
        started = time.perf_counter()
        generated_tokens = _sample(engine, suite, settings, envs, tasks, todo, samples_path, progress)
    finally:
        for env in envs:
            env.close()
    seconds = time.perf_counter() - started
    timing = {
        "new_samples": len(todo),
        "seconds": round(seconds, 2),
        "generated_tokens": generated_tokens,
        "tokens_per_s": round(generated_tokens / seconds, 1) if todo and seconds > 0 else None,
    }
    if not todo:  # nothing sampled now: keep the timing of the invocation that sampled
        timing = _previous_timing(folder) or timing
    summary = score_folder(suite, settings, samples_path, count, verifier)
    summary.update(
        provenance={
            **run_provenance(),
            "data": data,
            "prompt_template": template,
            "system_prompt": suite.system_prompt,
            "sampling": {**_sampling_dict(settings), "seed_rule": SEED_RULE},
            "engine": engine_info,
            "model": model,
            "batch_size": batch_size,
        },
        timing=timing,
    )
    write_text_atomic(folder / SUMMARY_FILE, json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


SEED_RULE = "sample g = task * n + j; a generate call over samples g0..g0+m-1 is seeded with seed + g0"


def seeded_batches(keys: Sequence[tuple[int, int]], n: int, size: int) -> list[list[tuple[int, int]]]:
    """`keys` (task, sample) cut into runs of consecutive samples g = task * n + sample, at most `size` long.

    Each run is one generate call seeded with seed + (its first g): an engine that seeds request r with
    seed + r (vLLM) gives sample g the seed seed + g however the work is batched, and a run regenerated after an
    interruption is the same call as before.
    """
    runs: list[list[tuple[int, int]]] = []
    previous = None
    for task, sample in keys:
        g = task * n + sample
        if runs and previous == g - 1 and len(runs[-1]) < size:
            runs[-1].append((task, sample))
        else:
            runs.append([(task, sample)])
        previous = g
    return runs


def _sample(
    engine: Any,
    suite: BenchmarkSuite,
    settings: EvalSettings,
    envs: list[Any],
    tasks: Sequence[Any],
    todo: list[tuple[int, int]],
    samples_path: Path,
    progress: bool,
) -> int:
    """Generate and score the `todo` samples, appending each finished batch; returns the tokens generated."""
    bar = _progress(len(todo), suite.name, progress)
    generated = 0
    try:
        for batch in seeded_batches(todo, settings.n, len(envs)):
            first_task, first_sample = batch[0]
            trajectories = rollout(
                envs[: len(batch)],
                engine,
                options=[{"task_index": task} for task, _ in batch],
                sampling=settings.sampling(settings.seed + first_task * settings.n + first_sample),
            )
            records = [
                sample_record(suite, tasks[task], task, sample, trajectory)
                for (task, sample), trajectory in zip(batch, trajectories, strict=True)
            ]
            append_records(samples_path, records)
            generated += sum(record.num_tokens for record in records)
            if bar is not None:
                bar.update(len(records))
    finally:
        if bar is not None:
            bar.close()
    return generated


def score_folder(
    suite: BenchmarkSuite, settings: EvalSettings, samples_path: Path, count: int, verifier: Any = None
) -> dict[str, Any]:
    """The metrics of the first `count` tasks whose n samples are all in the file."""
    groups = by_task(read_records(samples_path))
    complete = [
        samples[: settings.n]
        for index, samples in groups.items()
        if index < count and len(samples) >= settings.n
    ]
    if "maj" in suite.metrics and suite.vote == "math" and verifier is None:
        from rlvr.verifiers import default_verifier

        verifier = default_verifier()
    scores = [
        task_scores(
            samples,
            metrics=suite.metrics,
            ks=settings.ks,
            vote=suite.vote,
            breakdowns=suite.breakdowns,
            verifier=verifier,
            seed=settings.seed,
        )
        for samples in complete
    ]
    names = metric_names(suite.metrics, settings.n, settings.ks)
    flat = [record for samples in complete for record in samples]
    return {
        "suite": suite.name,
        "env_id": suite.env_id,
        "description": suite.description,
        "problems": len(complete),
        "problems_asked": count,
        "n": settings.n,
        "k": list(settings.ks),
        "metrics": aggregate(scores, names),
        "vote": suite.vote if "maj" in suite.metrics else None,
        "maj_estimate": _maj_estimate(suite, scores),
        "breakdowns": breakdown(scores, suite.breakdowns, names),
        "samples": sample_stats(flat),
    }


def sample_record(
    suite: BenchmarkSuite, task: Any, index: int, sample: int, trajectory: Trajectory
) -> SampleRecord:
    """One trajectory as a record (the last turn's verdict decides)."""
    last = trajectory.turns[-1]
    verdict = last.verdict
    prompt = []
    for message in trajectory.messages:
        if message.get("role") == "assistant":
            break
        prompt.append(dict(message))
    extra: dict[str, Any] = {}
    for name in ("passed", "total"):
        if hasattr(verdict, name):
            extra[name] = getattr(verdict, name)
    gold = str(task.answer) if isinstance(task.answer, (str, int, float)) else None  # code: tests, not a gold
    extracted = getattr(verdict, "extracted", None)
    return SampleRecord(
        suite=suite.name,
        task_index=index,
        task_id=task.id,
        sample=sample,
        prompt=prompt,
        completion=last.completion.text,
        gold=gold,
        extracted=extracted if isinstance(extracted, str) else None,
        correct=bool(getattr(verdict, "correct", trajectory.solved)),
        score=float(getattr(verdict, "score", trajectory.reward)),
        reason=str(getattr(verdict, "reason", "")),
        reward=trajectory.reward,
        rewards=trajectory.rewards,
        finish_reason=last.completion.finish_reason,
        num_tokens=sum(generated_tokens(turn.completion) for turn in trajectory.turns),
        turns=len(trajectory.turns),
        metadata={
            name: task.metadata[name] for name in suite.breakdowns if task.metadata.get(name) is not None
        },
        verdict=extra,
    )


def generated_tokens(completion: Any) -> int:
    """Tokens in a completion: its token ids, else its log-probabilities (one per token; servers that return no
    ids), else 0."""
    if completion.token_ids is not None:
        return len(completion.token_ids)
    return len(completion.logprobs) if completion.logprobs is not None else 0


def write_reports(out_dir: str | Path, summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Merge these suite summaries into OUT/summary.json (other suites already there stay) and OUT/summary.md."""
    out_dir = Path(out_dir)
    path = out_dir / SUMMARY_FILE
    previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    suites = {**previous.get("suites", {}), **{s["suite"]: s for s in summaries}}
    report = {**run_provenance(), "suites": suites}
    write_text_atomic(path, json.dumps(report, indent=2, ensure_ascii=False))
    write_text_atomic(out_dir / REPORT_FILE, markdown_report(report))
    return report


def _previous_timing(folder: Path) -> dict[str, Any] | None:
    path = folder / SUMMARY_FILE
    if not path.exists():
        return None
    timing = json.loads(path.read_text(encoding="utf-8")).get("timing")
    if not timing or not timing.get("new_samples"):
        return None
    return {**timing, "note": "sampled by an earlier invocation; later ones only rescored"}


def _maj_estimate(suite: BenchmarkSuite, scores: Sequence[Any]) -> str | None:
    if "maj" not in suite.metrics:
        return None
    return "exact" if all(s.maj_exact for s in scores) else "monte-carlo"


def _sampling_dict(settings: EvalSettings) -> dict[str, Any]:
    values = asdict(settings)
    values.pop("data_path")
    values["ks"] = list(settings.ks)
    return values


def prompt_template(suite: BenchmarkSuite, env: Any) -> str:
    """The template the environment renders prompts with: the suite's, else the environment's own
    (`prompt_template` of math environments), else a note (code and game environments build their prompts in
    code; every sample's record holds its prompt)."""
    template = suite.prompt_template or getattr(env.unwrapped, "prompt_template", None)
    if isinstance(template, str):
        return template
    return f"built by {type(env.unwrapped).__name__} ({suite.env_id}); see each sample's `prompt`"


def _progress(total: int, name: str, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="sample", file=sys.stderr)
