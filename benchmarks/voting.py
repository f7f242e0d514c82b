"""Clusters of equivalent final answers, for maj@k: the verifier decides equivalence, not string equality.

Answers are taken in sample order; each joins the first cluster whose representative (its first answer) the
verifier finds equivalent, `verify(gold=representative, completion="\\boxed{answer}")`, or starts a new cluster.
So `1/2`, `0.5` and `\\frac{1}{2}` are one cluster. An answer that is an equation votes for its last right side
(`final_value`: "4 + 4 = 8" votes for 8) when the gold answer is a value, not an equation. A cluster's answer is correct when its representative verifies against
the problem's gold answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rlvr.verifiers.types import Verdict


class BatchVerifier(Protocol):
    """What clustering needs from a verifier (`rlvr.verifiers.MathVerifier` is one)."""

    def verify_batch(self, golds: Sequence[str], completions: Sequence[str]) -> list[Verdict]: ...


_EQUALS = re.compile(r"(?<![<>!=\\])=(?!=)")

Equivalent = Callable[[Sequence[str], str], list[bool]]
"""equivalent(representatives, answer) -> whether `answer` equals each representative."""


@dataclass(frozen=True)
class Clusters:
    """`ids[i]`: sample i's cluster (None: no answer); `answers[j]`/`correct[j]`: cluster j's answer and truth."""

    ids: list[int | None]
    answers: list[str]
    correct: list[bool]


def cluster_answers(
    answers: Sequence[str | None], equivalent: Equivalent
) -> tuple[list[int | None], list[str]]:
    """Cluster ids per answer (None for a missing answer) and each cluster's representative."""
    representatives: list[str] = []
    ids: list[int | None] = []
    for answer in answers:
        if answer is None or not answer.strip():
            ids.append(None)
            continue
        if answer in representatives:
            ids.append(representatives.index(answer))
            continue
        matches = equivalent(representatives, answer) if representatives else []
        found = next((j for j, same in enumerate(matches) if same), None)
        if found is None:
            representatives.append(answer)
            found = len(representatives) - 1
        ids.append(found)
    return ids, representatives


def math_equivalence(verifier: BatchVerifier) -> Equivalent:
    """Equivalence by a `MathVerifier`: the answer, boxed, verified against each representative as gold."""

    def equivalent(representatives: Sequence[str], answer: str) -> list[bool]:
        verdicts = verifier.verify_batch(list(representatives), [boxed(answer)] * len(representatives))
        return [verdict.correct for verdict in verdicts]

    return equivalent


def final_value(answer: str) -> str:
    """What an answer states last: the right side of its last `=` ("4 + 4 = 8" -> "8"; `<=`, `>=`, `!=` and
    `==` are not split). Two true equations ("12 + 2 = 14", "4 + 4 = 8") would otherwise be one cluster: the
    verifier finds two true statements equivalent."""
    parts = _EQUALS.split(answer)
    return parts[-1].strip() or answer.strip()


def math_clusters(answers: Sequence[str | None], gold: str, verifier: BatchVerifier) -> Clusters:
    """Clusters of one problem's final answers, each correct when it verifies against `gold`; when the gold is a
    value (no `=`), each answer votes for its `final_value`."""
    reduce = final_value if not _EQUALS.search(gold) else str.strip
    values = [None if answer is None or not answer.strip() else reduce(answer) for answer in answers]
    ids, representatives = cluster_answers(values, math_equivalence(verifier))
    verdicts = verifier.verify_batch([gold] * len(representatives), [boxed(a) for a in representatives])
    return Clusters(ids, representatives, [verdict.correct for verdict in verdicts])


def exact_clusters(answers: Sequence[str | None], gold: str) -> Clusters:
    """Clusters of identical answers (after stripping whitespace), correct when equal to `gold`."""
    stripped = [None if a is None or not a.strip() else a.strip() for a in answers]
    ids, representatives = cluster_answers(stripped, lambda reps, answer: [r == answer for r in reps])
    return Clusters(ids, representatives, [r == gold.strip() for r in representatives])


def boxed(answer: str) -> str:
    """`answer` as a completion whose final answer is exactly it."""
    return f"\\boxed{{{answer}}}"
