"""Evaluation metrics over n samples per problem: pass@k, maj@k, avg@n (ALGORITHMS.md, section 8).

Per problem, with n samples of which c are correct:

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i)      (unbiased; Chen et al. 2021)
    avg@n  = c / n                                                                   (the mean over samples)
    maj@k  = E over size-k subsets S of the n samples [ credit(S) ]

credit(S): the answers of S are grouped into clusters of equivalent answers (samples without an answer join no
cluster); the largest clusters are the vote. Tie rule: when t clusters share the largest size, the vote is a
uniform draw among them, and credit(S) is its expectation, (correct clusters among the t) / t; no answer at all
scores 0. The expectation over subsets is exact (enumerating how many samples each cluster contributes, weighted
by the multivariate hypergeometric law) when that takes at most `MAJ_EXACT_LIMIT` terms, otherwise a seeded
Monte-Carlo mean over `MAJ_MC_SAMPLES` random subsets.

Suite-level numbers are means over problems; `std_error` is the standard error of that mean across problems.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MAJ_EXACT_LIMIT = 200_000
"""Most count vectors the exact maj@k expectation enumerates per problem before it switches to Monte-Carlo."""
MAJ_MC_SAMPLES = 4_000
"""Random subsets drawn per problem by the Monte-Carlo maj@k estimate."""


def _check_counts(n: int, k: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, n = {n}], got {k!r}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one problem with `c` correct among `n` samples, as a stable product."""
    _check_counts(n, k)
    if not isinstance(c, int) or not 0 <= c <= n:
        raise ValueError(f"c must be an integer in [0, n = {n}], got {c!r}")
    if n - c < k:  # every size-k subset holds a correct sample
        return 1.0
    all_wrong = 1.0  # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i)
    for i in range(n - c + 1, n + 1):
        all_wrong *= 1.0 - k / i
    return 1.0 - all_wrong


def vote_credit(counts: Sequence[int], correct: Sequence[bool]) -> float:
    """The credit of one vote: clusters with `counts[j]` members each, `correct[j]` when cluster j's answer is right.

    The largest clusters tie for the vote; the credit is the share of them that are correct (0 with no answer).
    """
    top = max(counts, default=0)
    if top == 0:
        return 0.0
    tied = [j for j, count in enumerate(counts) if count == top]
    return sum(bool(correct[j]) for j in tied) / len(tied)


def maj_at_k(
    clusters: Sequence[int | None],
    correct: Sequence[bool],
    k: int,
    *,
    seed: int = 0,
    exact_limit: int = MAJ_EXACT_LIMIT,
    mc_samples: int = MAJ_MC_SAMPLES,
) -> MajResult:
    """maj@k of one problem: `clusters[i]` is sample i's cluster (None: no answer), `correct[j]` cluster j's truth.

    The expectation over the size-k subsets of the n samples: exact when it takes at most `exact_limit` terms,
    else a Monte-Carlo mean over `mc_samples` subsets drawn with `random.Random(seed)`.
    """
    n = len(clusters)
    _check_counts(n, k)
    sizes = [0] * len(correct)
    for cluster in clusters:
        if cluster is not None:
            if not 0 <= cluster < len(correct):
                raise ValueError(f"cluster id {cluster} has no entry in correct ({len(correct)} clusters)")
            sizes[cluster] += 1
    unanswered = n - sum(sizes)
    if k == n:
        return MajResult(vote_credit(sizes, correct), exact=True)
    if _count_vectors_bound([*sizes, unanswered], k) <= exact_limit:
        return MajResult(_exact_expectation(sizes, unanswered, correct, k), exact=True)
    rng = random.Random(seed)
    members = list(clusters)
    total = 0.0
    for _ in range(mc_samples):
        counts = Counter(c for c in rng.sample(members, k) if c is not None)
        total += vote_credit([counts.get(j, 0) for j in range(len(correct))], correct)
    return MajResult(total / mc_samples, exact=False)


@dataclass(frozen=True)
class MajResult:
    """maj@k of one problem, and whether it is the exact expectation or a Monte-Carlo estimate."""

    value: float
    exact: bool


def _count_vectors_bound(sizes: Sequence[int], k: int) -> int:
    """An upper bound on the count vectors (m_j <= sizes[j], sum = k) the exact expectation visits."""
    bound = 1
    for size in sizes:
        bound *= min(size, k) + 1
        if bound > 10**12:
            break
    return bound


def _exact_expectation(sizes: Sequence[int], unanswered: int, correct: Sequence[bool], k: int) -> float:
    """sum over count vectors m (sum m = k) of prod_j C(size_j, m_j) / C(n, k) * credit(m)."""
    n = sum(sizes) + unanswered
    groups = [*sizes, unanswered]
    weighted = sum(ways * vote_credit(counts[:-1], correct) for counts, ways in _count_vectors(groups, k))
    return weighted / math.comb(n, k)


def _count_vectors(groups: Sequence[int], k: int) -> Iterator[tuple[list[int], int]]:
    """Every (m_0..m_last) with 0 <= m_j <= groups[j] and sum k, with its number of subsets prod C(g_j, m_j)."""
    suffix = [0] * (len(groups) + 1)
    for j in range(len(groups) - 1, -1, -1):
        suffix[j] = suffix[j + 1] + groups[j]
    counts = [0] * len(groups)

    def visit(j: int, left: int, ways: int) -> Iterator[tuple[list[int], int]]:
        if j == len(groups):
            if left == 0:
                yield list(counts), ways
            return
        low = max(0, left - suffix[j + 1])
        for m in range(low, min(groups[j], left) + 1):
            counts[j] = m
            yield from visit(j + 1, left - m, ways * math.comb(groups[j], m))
        counts[j] = 0

    yield from visit(0, k, 1)


def mean_and_std_error(values: Sequence[float]) -> tuple[float, float]:
    """The mean of per-problem values and its standard error, sqrt(var / P) with the unbiased variance (0 for P < 2)."""
    count = len(values)
    if count == 0:
        return 0.0, 0.0
    mean = sum(values) / count
    if count < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (count - 1)
    return mean, math.sqrt(variance / count)
