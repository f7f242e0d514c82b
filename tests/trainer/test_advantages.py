"""Advantage estimators against hand-computed values (ALGORITHMS.md section 2)."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.errors import ConfigError
from rlvr.trainer.advantages import (
    ADVANTAGE_NAMES,
    ESTIMATORS,
    group_advantages,
    reinforce_pp_advantages,
)

# Three groups, interleaved and of unequal size:
#   group 0 at indices 0, 2, 4, 5: rewards [1, 0, 0, 1]
#   group 7 at indices 1, 3, 6:    rewards [2, 4, 0]
#   group 3 at index 7:            reward  [5]   (a lone sample)
REWARDS = torch.tensor([1.0, 2.0, 0.0, 4.0, 0.0, 1.0, 0.0, 5.0])
GROUPS = torch.tensor([0, 7, 0, 7, 0, 0, 7, 3])
H = math.sqrt(3) / 2  # group 0: mean 0.5, deviations +-0.5, var = 4 * 0.25 / (4 - 1) = 1/3, 0.5 / sqrt(1/3)

# grpo: group 0 -> +-sqrt(3)/2; group 7: mean 2, deviations [0, 2, -2], var = 8 / 2 = 4, std 2 -> [0, 1, -1];
# group 3 -> 0 (size 1).
GRPO = [H, 0.0, -H, 1.0, -H, H, -1.0, 0.0]
# dr_grpo: r - mean: group 0 -> +-0.5, group 7 -> [0, 2, -2], group 3 -> 5 - 5 = 0.
DR_GRPO = [0.5, 0.0, -0.5, 2.0, -0.5, 0.5, -2.0, 0.0]
# rloo: r_i - mean of the others. group 0: 1 - mean(0, 0, 1) = 2/3, 0 - mean(1, 0, 1) = -2/3;
# group 7: 2 - mean(4, 0) = 0, 4 - mean(2, 0) = 3, 0 - mean(2, 4) = -3; group 3 -> 0.
RLOO = [2 / 3, 0.0, -2 / 3, 3.0, -2 / 3, 2 / 3, -3.0, 0.0]


@pytest.mark.parametrize(
    ("estimator", "expected"), [("grpo", GRPO), ("gpg", GRPO), ("dr_grpo", DR_GRPO), ("rloo", RLOO)]
)
def test_group_estimators_hand_values(estimator, expected):
    adv = group_advantages(REWARDS, GROUPS, estimator)
    torch.testing.assert_close(adv, torch.tensor(expected), atol=1e-5, rtol=0)


def test_remax_subtracts_the_greedy_reward():
    baselines = torch.tensor(
        [1.0, 3.0, 1.0, 3.0, 1.0, 1.0, 3.0, 2.0]
    )  # greedy reward of each sample's prompt
    adv = group_advantages(REWARDS, GROUPS, "remax", baselines=baselines)
    torch.testing.assert_close(adv, torch.tensor([0.0, -1.0, -1.0, 1.0, -1.0, 0.0, -3.0, 3.0]))


def test_remax_without_baselines_is_a_config_error():
    with pytest.raises(ConfigError, match="greedy"):
        group_advantages(REWARDS, GROUPS, "remax")


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS.keys() - {"remax"}))
def test_equal_rewards_give_zero_advantage(estimator):
    adv = group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]), torch.tensor([0, 0, 0, 1, 1]), estimator)
    assert torch.equal(adv, torch.zeros(5))


def test_integer_rewards_are_accepted():
    adv = group_advantages(torch.tensor([1, 0]), torch.tensor([0, 0]), "dr_grpo")
    torch.testing.assert_close(adv, torch.tensor([0.5, -0.5]))


def test_unknown_estimator_lists_the_valid_names():
    with pytest.raises(ConfigError, match="dr_grpo"):
        group_advantages(REWARDS, GROUPS, "ppo")
    with pytest.raises(ConfigError, match="reinforce_pp_advantages"):
        group_advantages(REWARDS, GROUPS, "reinforce_pp")


def test_advantage_names():
    assert set(ADVANTAGE_NAMES) == {"grpo", "dr_grpo", "rloo", "remax", "reinforce_pp", "gpg"}


def test_reinforce_pp_multi_turn_gap_and_kl():
    # kl_coef 0.5. Row 0: mask [1, 1, 0, 1, 0] (t=2 an environment token, t=4 padding), r = 1,
    #   kl at policy tokens [0.4, 0.2, ., 0.4] -> token rewards [-0.2, -0.1, ., -0.2 + 1 = 0.8]
    #   returns: t3 = 0.8, t1 = 0.8 - 0.1 = 0.7, t0 = 0.7 - 0.2 = 0.5 (the gap neither adds nor resets).
    # Row 1: mask [1, 1, 1, 0, 0], r = -1, kl [0.2, 0.4, 0.2] -> rewards [-0.1, -0.2, -0.1 - 1 = -1.1]
    #   returns: t2 = -1.1, t1 = -1.3, t0 = -1.4.
    # Policy returns [0.5, 0.7, 0.8, -1.4, -1.3, -1.1]: mean -1.8 / 6 = -0.3,
    #   deviations [0.8, 1.0, 1.1, -1.1, -1.0, -0.8], sum of squares 5.7, unbiased var 5.7 / 5 = 1.14.
    mask = torch.tensor([[1, 1, 0, 1, 0], [1, 1, 1, 0, 0]], dtype=torch.float64)
    kl = torch.tensor([[0.4, 0.2, 9.0, 0.4, 9.0], [0.2, 0.4, 0.2, 9.0, 9.0]], dtype=torch.float64)
    rewards = torch.tensor([1.0, -1.0], dtype=torch.float64)
    adv = reinforce_pp_advantages(rewards, mask, kl, kl_coef=0.5, eps=0.0)
    s = math.sqrt(1.14)
    expected = (
        torch.tensor([[0.8, 1.0, 0.0, 1.1, 0.0], [-1.1, -1.0, -0.8, 0.0, 0.0]], dtype=torch.float64) / s
    )
    torch.testing.assert_close(adv, expected)


def test_reinforce_pp_without_kl_bool_mask_and_empty_row():
    # Row 0: mask [1, 0, 1], r = 2 -> returns [2, ., 2]; row 1: mask [1, 1, 0], r = 0 -> [0, 0];
    # row 2 has no policy token. Policy values [2, 2, 0, 0]: mean 1, var 4 / 3 -> +-1 / sqrt(4/3) = +-H.
    mask = torch.tensor([[True, False, True], [True, True, False], [False, False, False]])
    adv = reinforce_pp_advantages(torch.tensor([2.0, 0.0, 5.0]), mask, None, kl_coef=0.1, eps=0.0)
    expected = torch.tensor([[H, 0.0, H], [-H, -H, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(adv, expected)
