"""From per-sample records to suite metrics: avg@n with its standard error, pass@k, maj@k, and breakdowns.

Only tasks with all n samples count; the report says how many tasks that is. maj@k clusters each task's final
answers (`voting.py`) and takes the subset expectation of `metrics.maj_at_k`, seeded by the run's seed and the task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlvr.benchmarks.metrics import maj_at_k, mean_and_std_error, pass_at_k
from rlvr.benchmarks.records import SampleRecord
from rlvr.benchmarks.voting import BatchVerifier, Clusters, exact_clusters, math_clusters


@dataclass(frozen=True)
class TaskScores:
    """The per-task values the suite averages: `values["pass@4"]` etc., and the task's breakdown labels."""

    task_index: int
    values: dict[str, float]
    labels: dict[str, str]
    maj_exact: bool = True


def metric_names(metrics: Sequence[str], n: int, ks: Sequence[int]) -> list[str]:
    """The reported names, e.g. ["avg@4", "pass@1", "pass@4", "maj@1", "maj@4"] (only k <= n)."""
    names = [f"avg@{n}"] if "avg" in metrics else []
    for kind in ("pass", "maj"):
        if kind in metrics:
            names += [f"{kind}@{k}" for k in ks if k <= n]
    return names


def task_scores(
    samples: Sequence[SampleRecord],
    *,
    metrics: Sequence[str],
    ks: Sequence[int],
    vote: str | None,
    breakdowns: Sequence[str],
    verifier: BatchVerifier | None,
    seed: int,
) -> TaskScores:
    """The metrics of one task from its n samples."""
    n = len(samples)
    c = sum(record.correct for record in samples)
    values: dict[str, float] = {}
    if "avg" in metrics:
        values[f"avg@{n}"] = c / n
    if "pass" in metrics:
        values.update({f"pass@{k}": pass_at_k(n, c, k) for k in ks if k <= n})
    exact = True
    if "maj" in metrics:
        clusters = answer_clusters(samples, vote, verifier)
        for k in (k for k in ks if k <= n):
            result = maj_at_k(clusters.ids, clusters.correct, k, seed=seed + samples[0].task_index)
            values[f"maj@{k}"] = result.value
            exact = exact and result.exact
    first = samples[0].metadata
    labels = {name: str(first[name]) for name in breakdowns if first.get(name) is not None}
    return TaskScores(samples[0].task_index, values, labels, exact)


def answer_clusters(
    samples: Sequence[SampleRecord], vote: str | None, verifier: BatchVerifier | None
) -> Clusters:
    """The task's final answers clustered by the suite's vote rule."""
    answers = [record.extracted for record in samples]
    gold = samples[0].gold or ""
    if vote == "math":
        if verifier is None:
            raise ValueError("maj@k by math equivalence needs a verifier")
        return math_clusters(answers, gold, verifier)
    if vote == "exact":
        return exact_clusters(answers, gold)
    raise ValueError(f"maj@k needs a vote rule, got {vote!r}")


def aggregate(scores: Sequence[TaskScores], names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each metric's mean over tasks and the standard error of that mean."""
    result = {}
    for name in names:
        mean, error = mean_and_std_error([s.values[name] for s in scores if name in s.values])
        result[name] = {"value": mean, "std_error": error}
    return result


def breakdown(
    scores: Sequence[TaskScores], fields: Sequence[str], names: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """field -> label -> {"problems": count, "metrics": {name: {"value", "std_error"}}}, labels sorted."""
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for name in fields:
        groups: dict[str, list[TaskScores]] = {}
        for score in scores:
            if name in score.labels:
                groups.setdefault(score.labels[name], []).append(score)
        if groups:
            tables[name] = {
                label: {"problems": len(group), "metrics": aggregate(group, names)}
                for label, group in sorted(groups.items(), key=lambda item: _label_key(item[0]))
            }
    return tables


def _label_key(label: str) -> tuple[int, float | str]:
    try:
        return 0, float(label)
    except ValueError:
        return 1, label


def sample_stats(records: Sequence[SampleRecord]) -> dict[str, Any]:
    """Counts over all samples: verdict reasons, truncation, generated tokens."""
    count = len(records)
    tokens = [record.num_tokens for record in records]
    return {
        "samples": count,
        "reasons": dict(Counter(record.reason for record in records).most_common()),
        "truncated": sum(record.finish_reason == "length" for record in records) / count if count else 0.0,
        "mean_tokens": sum(tokens) / count if count else 0.0,
    }
