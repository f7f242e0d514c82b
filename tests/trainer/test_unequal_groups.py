"""Group advantage estimators with groups of unequal size (issue 16 item 3, Knapsack-RL), each against a
from-scratch computation of its definition (ALGORITHMS.md section 2).

Definitions, per group g of size G (a lone sample has no baseline):
    grpo      (r_i - mean_g) / (std_g + 1e-6), std_g unbiased (Bessel, / (G - 1), as torch.std, TRL and verl);
              0 when G = 1. ALGORITHMS.md says "std(r)" without saying which; advantages.py documents Bessel.
    dr_grpo   r_i - mean_g
    rloo      r_i - mean_{j != i} r_j; 0 when G = 1
    gpg       alpha * (r_i - mean_g), alpha = B / B_valid (samples in the batch / samples of groups whose
              rewards differ); 0 in groups whose rewards are all equal
    reinforce r_i
    raft      1
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from rlvr.trainer.advantages import group_advantages

SIZES = (1, 2, 5, 9)


def _batch(seed: int, binary: bool) -> tuple[list[float], list[int]]:
    """Rewards and group ids for groups of SIZES, samples shuffled (groups interleaved), ids not 0..n-1."""
    rng = random.Random(seed)
    rows = []
    for g, size in enumerate(SIZES):
        for _ in range(size):
            rows.append((float(rng.random() < 0.4) if binary else rng.uniform(-1, 2), 10 * g + 3))
    rng.shuffle(rows)
    return [r for r, _ in rows], [g for _, g in rows]


def _members(groups: list[int]) -> dict[int, list[int]]:
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return members


def _reference(estimator: str, rewards: list[float], groups: list[int]) -> list[float]:
    """Each definition computed directly, one sample at a time."""
    members = _members(groups)
    varies = {g: len({rewards[j] for j in idx}) > 1 for g, idx in members.items()}
    valid = sum(len(idx) for g, idx in members.items() if varies[g])
    out = []
    for i, r in enumerate(rewards):
        mine = [rewards[j] for j in members[groups[i]]]
        size, mean = len(mine), sum(mine) / len(mine)
        others = [rewards[j] for j in members[groups[i]] if j != i]
        if estimator == "grpo":
            std = math.sqrt(sum((x - mean) ** 2 for x in mine) / (size - 1)) if size > 1 else 0.0
            out.append((r - mean) / (std + 1e-6) if size > 1 else 0.0)
        elif estimator == "dr_grpo":
            out.append(r - mean)
        elif estimator == "rloo":
            out.append(r - sum(others) / len(others) if others else 0.0)
        elif estimator == "gpg":
            out.append(len(rewards) / max(valid, 1) * (r - mean) if varies[groups[i]] else 0.0)
        elif estimator == "reinforce":
            out.append(r)
        else:  # raft
            out.append(1.0)
    return out


ESTIMATORS = ("grpo", "dr_grpo", "rloo", "gpg", "reinforce", "raft")


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unequal_groups_match_the_definition(estimator: str, binary: bool, seed: int) -> None:
    rewards, groups = _batch(seed, binary)
    got = group_advantages(
        torch.tensor(rewards, dtype=torch.float64), torch.tensor(groups), estimator
    ).tolist()
    assert got == pytest.approx(_reference(estimator, rewards, groups), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("estimator", ["grpo", "dr_grpo", "rloo", "reinforce", "raft"])
def test_a_groups_advantages_do_not_depend_on_the_other_groups(estimator: str) -> None:
    """Per-group estimators: a group alone gets what it gets in a batch of groups of other sizes."""
    rewards, groups = _batch(5, binary=False)
    together = group_advantages(torch.tensor(rewards, dtype=torch.float64), torch.tensor(groups), estimator)
    for idx in _members(groups).values():
        alone = group_advantages(
            torch.tensor([rewards[i] for i in idx], dtype=torch.float64),
            torch.zeros(len(idx), dtype=torch.long),
            estimator,
        )
        assert alone.tolist() == pytest.approx(together[idx].tolist(), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("estimator", ["grpo", "dr_grpo", "rloo", "gpg"])
def test_baselined_advantages_sum_to_zero_in_every_group(estimator: str) -> None:
    rewards, groups = _batch(7, binary=False)
    adv = group_advantages(torch.tensor(rewards, dtype=torch.float64), torch.tensor(groups), estimator)
    for idx in _members(groups).values():
        assert abs(float(adv[idx].sum())) < 1e-9


def test_gpg_alpha_counts_samples_not_groups() -> None:
    """Sizes 1, 2, 5, 9 with the size-9 group all equal: B = 17, B_valid = 2 + 5 = 7, alpha = 17 / 7."""
    rewards = [1.0] + [0.0, 1.0] + [1.0, 0.0, 0.0, 0.0, 0.0] + [1.0] * 9
    groups = [0] + [1] * 2 + [2] * 5 + [3] * 9
    adv = group_advantages(torch.tensor(rewards, dtype=torch.float64), torch.tensor(groups), "gpg")
    assert adv[1:3].tolist() == pytest.approx([-17 / 7 * 0.5, 17 / 7 * 0.5])
    assert adv[3].item() == pytest.approx(17 / 7 * 0.8)
    assert adv[0].item() == 0.0 and adv[8:].abs().sum().item() == 0.0
