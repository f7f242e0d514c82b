"""pass@k, maj@k and avg@n against brute-force enumeration of subsets, and the tie rule."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from fractions import Fraction

import pytest

from rlvr.benchmarks.metrics import maj_at_k, mean_and_std_error, pass_at_k, vote_credit


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """The share of size-k subsets of n samples (the first c correct) that hold a correct sample."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n():
    # C(1000, 500) has ~300 digits: the product form never forms it.
    n, c, k = 1000, 3, 500
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)
    assert pass_at_k(1000, 0, 1000) == 0.0
    assert pass_at_k(1000, 1, 1000) == 1.0


def test_pass_at_1_is_the_mean():
    assert pass_at_k(16, 5, 1) == pytest.approx(5 / 16)


@pytest.mark.parametrize(("n", "c", "k"), [(0, 0, 1), (4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def brute_maj_at_k(clusters, correct, k):
    """The mean vote credit over every size-k subset."""
    subsets = list(itertools.combinations(range(len(clusters)), k))
    total = 0.0
    for subset in subsets:
        counts = Counter(clusters[i] for i in subset if clusters[i] is not None)
        total += vote_credit([counts.get(j, 0) for j in range(len(correct))], correct)
    return total / len(subsets)


CASES = [
    # (sample clusters, cluster correct)
    ([0, 0, 1, 1, 1, None], [True, False]),
    ([0, 1, 2, 3, 0, 1, None, None], [False, True, False, False]),
    ([None, None, None, 0], [True]),
    ([0, 1, 0, 1, 2, 2, 2, 1, 0], [False, False, True]),
    ([0] * 5, [False]),
]


@pytest.mark.parametrize(("clusters", "correct"), CASES)
def test_maj_at_k_exact_expectation_equals_enumeration(clusters, correct):
    for k in range(1, len(clusters) + 1):
        result = maj_at_k(clusters, correct, k)
        assert result.exact
        assert result.value == pytest.approx(brute_maj_at_k(clusters, correct, k), abs=1e-12), k


def test_maj_at_k_monte_carlo_is_seeded_and_close():
    clusters = [j % 5 for j in range(24)] + [None] * 4  # 5 clusters of 5 or 4, 4 without an answer
    correct = [False, True, False, False, False]
    exact = maj_at_k(clusters, correct, 9).value
    estimate = maj_at_k(clusters, correct, 9, exact_limit=10, mc_samples=20_000, seed=3)
    again = maj_at_k(clusters, correct, 9, exact_limit=10, mc_samples=20_000, seed=3)
    assert not estimate.exact
    assert estimate.value == again.value  # same seed, same estimate
    assert estimate.value == pytest.approx(exact, abs=0.01)


def test_tie_rule_is_the_expected_credit_of_a_uniform_draw():
    assert vote_credit([2, 2], [True, False]) == 0.5
    assert vote_credit([2, 2, 2], [False, True, False]) == pytest.approx(1 / 3)
    assert vote_credit([3, 2], [False, True]) == 0.0  # the larger cluster wins
    assert vote_credit([1, 3], [False, True]) == 1.0
    assert vote_credit([], []) == 0.0  # no answer at all
    assert vote_credit([0, 0], [True, False]) == 0.0


def test_maj_at_n_votes_once_over_all_samples():
    assert maj_at_k([0, 1, 1, None], [True, False], 4).value == 0.0
    assert maj_at_k([0, 0, 1, None], [True, False], 4).value == 1.0
    assert maj_at_k([0, 1, None, None], [True, False], 4).value == 0.5


def test_maj_at_k_rejects_bad_input():
    with pytest.raises(ValueError):
        maj_at_k([0, 1], [True, False], 3)
    with pytest.raises(ValueError):
        maj_at_k([0, 2], [True, False], 1)  # cluster 2 has no truth value


def test_mean_and_standard_error():
    values = [0.0, 0.25, 1.0, 0.5, 0.75]
    mean, error = mean_and_std_error(values)
    assert mean == pytest.approx(statistics.mean(values))
    assert error == pytest.approx(statistics.stdev(values) / math.sqrt(len(values)))
    assert mean_and_std_error([0.5]) == (0.5, 0.0)
    assert mean_and_std_error([]) == (0.0, 0.0)
