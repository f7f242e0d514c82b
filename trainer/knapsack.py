"""Knapsack-RL budget allocation (Li et al. 2025, arXiv 2509.25849; ALGORITHMS.md 7e; issue 16 item 3).

A step's rollout budget B = prompts_per_step * group_size is split over the step's candidate prompts as group
sizes n_i in [min_group, max_group] with sum_i n_i = B, maximising

    sum_i Value(n_i, p_i),   Value(n, p) = (1 - p^n - (1 - p)^n) * InfoGain(p),   InfoGain(p) = p (1 - p)^2

(the paper's task value: the chance that a group of n has both a success and a failure, i.e. a non-zero GRPO
gradient, times its approximation of the success-rate gain of one update). Value(0, p) = 0: an empty group
teaches nothing (the formula would give -InfoGain). p_i comes from the task's history (task_history.py, with
its Beta prior), so it is never exactly 0 or 1 there; a p of exactly 0 or 1 has value 0 at every n.

`min_group` may be 0: a candidate given n_i = 0 is not sampled this step, so drawing more candidates than
prompts_per_step (`candidate_count(..., overprovision > 1)`) lets the knapsack choose which to sample as well
as how much. With min_group >= 1 every candidate is sampled. Exact solution by dynamic programming over the
budget, O(candidates * B * (max_group - min_group + 1)) numpy work. (The greedy marginal-gain rule is not
exact here: Value(1, p) = 0, so the gains in n are not decreasing from n = 0.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rlvr.errors import ConfigError


def info_gain(p: float | np.ndarray) -> float | np.ndarray:
    """InfoGain(p) = p (1 - p)^2 (the paper's approximation)."""
    return p * (1.0 - p) ** 2


def value(n: int | np.ndarray, p: float) -> float | np.ndarray:
    """Value(n, p) = (1 - p^n - (1 - p)^n) * InfoGain(p); 0 for n = 0."""
    n = np.asarray(n)
    v = (1.0 - p**n - (1.0 - p) ** n) * info_gain(p)
    return np.where(n > 0, v, 0.0)


def _check(pass_rates: Sequence[float], budget: int, min_group: int, max_group: int) -> None:
    k = len(pass_rates)
    if not 0 <= min_group <= max_group or max_group < 1:
        raise ConfigError(
            f"rollout.min_group={min_group}, rollout.max_group={max_group}: need "
            "0 <= min_group <= max_group and max_group >= 1"
        )
    if not k * min_group <= budget <= k * max_group:
        raise ConfigError(
            f"knapsack allocation cannot split a budget of {budget} samples over {k} prompts with groups in "
            f"[{min_group}, {max_group}]: needs {k * min_group} <= {budget} <= {k * max_group}; change "
            "rollout.min_group/max_group or the number of prompts drawn"
        )
    if any(not 0.0 <= p <= 1.0 for p in pass_rates):
        raise ConfigError(f"pass rates must lie in [0, 1], got {list(pass_rates)}")


def allocate(pass_rates: Sequence[float], budget: int, min_group: int, max_group: int) -> list[int]:
    """Group sizes n_i in [min_group, max_group], summing to `budget`, maximising sum_i Value(n_i, p_i).

    dp[i][b] = max over n of dp[i-1][b - n] + Value(n, p_i); ties go to the smallest n for the later prompt
    (deterministic). Raises ConfigError when no split exists."""
    _check(pass_rates, budget, min_group, max_group)
    sizes = np.arange(min_group, max_group + 1)  # (C,) the allowed group sizes
    best = np.full(budget + 1, -np.inf)
    best[0] = 0.0  # (B + 1,) best value of the prompts so far at each total
    choices = np.zeros((len(pass_rates), budget + 1), dtype=np.int64)  # (K, B + 1) index into `sizes`
    for i, p in enumerate(pass_rates):
        gains = value(sizes, float(p))  # (C,)
        candidates = np.full((len(sizes), budget + 1), -np.inf)  # (C, B + 1) previous total b - n, plus n
        for c, n in enumerate(sizes[sizes <= budget]):
            candidates[c, n:] = best[: budget + 1 - n] + gains[c]
        choices[i] = np.argmax(candidates, axis=0)  # first maximum: the smallest n
        best = candidates[choices[i], np.arange(budget + 1)]
    allocation, remaining = [], budget
    for i in range(len(pass_rates) - 1, -1, -1):
        n = int(sizes[choices[i, remaining]])
        allocation.append(n)
        remaining -= n
    return allocation[::-1]


def total_value(pass_rates: Sequence[float], sizes: Sequence[int]) -> float:
    """sum_i Value(n_i, p_i)."""
    return float(sum(value(n, float(p)) for p, n in zip(pass_rates, sizes, strict=True)))


def candidate_count(
    prompts: int, group_size: int, min_group: int, max_group: int, overprovision: float = 1.0
) -> int:
    """Prompts to draw for a budget B = prompts * group_size: ceil(prompts * overprovision), clamped so the
    allocation is feasible (>= ceil(B / max_group); <= B // min_group when min_group > 0).

    1.0 (the paper's setting): the same prompts as uniform sampling, the budget moved between them. Above 1
    with min_group = 0 the knapsack also drops the least valuable candidates (n_i = 0)."""
    if prompts < 1 or group_size < 1 or not overprovision >= 1.0:
        raise ConfigError(
            f"prompts={prompts} and group_size={group_size} must be >= 1, overprovision={overprovision} >= 1"
        )
    budget = prompts * group_size
    low = math.ceil(budget / max(max_group, 1))
    high = budget // min_group if min_group > 0 else math.inf
    if low > high or max_group < 1:
        raise ConfigError(
            f"no prompt count fits a budget of {budget} with groups in [{min_group}, {max_group}]; widen "
            "rollout.min_group/max_group"
        )
    return int(min(max(math.ceil(prompts * overprovision), low), high))


def group_offsets(sizes: Sequence[int]) -> list[int]:
    """Start of each group in the flat sample list, then the end: group i is samples[o[i]:o[i + 1]]."""
    return [0, *np.cumsum(sizes, dtype=np.int64).tolist()]
