"""Advantage estimators against hand-computed values (ALGORITHMS.md section 2)."""

from __future__ import annotations

import math
from collections import defaultdict

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
# gpg: alpha * (r - mean), alpha = B / B_valid = 8 / 7 (groups 0 and 7 have differing rewards, the lone sample
# does not); the lone sample gets 0.
GPG = [8 / 7 * a for a in DR_GRPO]


@pytest.mark.parametrize(
    ("estimator", "expected"), [("grpo", GRPO), ("gpg", GPG), ("dr_grpo", DR_GRPO), ("rloo", RLOO)]
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


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS.keys() - {"remax", "reinforce", "raft"}))
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
    assert set(ADVANTAGE_NAMES) == {
        "grpo",
        "dr_grpo",
        "rloo",
        "remax",
        "reinforce_pp",
        "gpg",
        "reinforce",
        "raft",
        "gae",
        "treepo",
    }


def test_reinforce_is_the_reward_and_raft_is_one():
    # REINFORCE has no baseline: equal rewards keep their value; RAFT weighs every kept sample by 1
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.5])
    groups = torch.tensor([0, 0, 1, 1])
    assert torch.equal(group_advantages(rewards, groups, "reinforce"), rewards)
    assert torch.equal(group_advantages(rewards, groups, "raft"), torch.ones(4))


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


# ---------------------------------------------------------------------------------------------------------
# GPG against verl


@pytest.fixture
def float64_default():
    """verl computes alpha = B / count in torch's default dtype: make it float64 so the comparisons are exact."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def verl_gpg_outcome_advantage(token_level_rewards, response_mask, index, f_norm=1.0):
    """verl's `compute_gpg_outcome_advantage` (verl/trainer/ppo/core_algos.py), transcribed: (B, T) advantages.

    score_i = sum_t reward_{i,t}; alpha = B / (number of NONZERO scores); a group of one gets mean 0 (so
    A = alpha * r); A_i = alpha * (score_i - mean_g) / f_norm (verl computes the group std but does not use it).
    """
    scores = token_level_rewards.sum(dim=-1)
    bsz = scores.shape[0]
    alpha = bsz / torch.count_nonzero(scores).clamp(min=1)
    members = defaultdict(list)
    for i in range(bsz):
        members[index[i]].append(scores[i])
    mean = {
        key: torch.stack(values).mean() if len(values) > 1 else torch.tensor(0.0, dtype=scores.dtype)
        for key, values in members.items()
    }
    out = torch.stack([alpha * (scores[i] - mean[index[i]]) / f_norm for i in range(bsz)])
    return out[:, None] * response_mask


def outcome_tokens(rewards, lengths, width=5):
    """verl's inputs: the reward on each response's last token (B, T), and the response mask (B, T)."""
    mask = torch.zeros(len(rewards), width, dtype=torch.float64)
    token_rewards = torch.zeros_like(mask)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
        token_rewards[i, n - 1] = rewards[i]
    return token_rewards, mask


def test_gpg_matches_verl_when_both_count_the_same_valid_samples(float64_default):
    # groups 0: [1, 1, 0, 0] (differs), 1: [1, 1] (all equal), 2: [0, 0, 0] (all equal). B = 9.
    # Paper: B_valid = 4 (group 0). verl: 4 nonzero scores. Both alpha = 9 / 4.
    rewards = torch.tensor([1, 1, 0, 0, 1, 1, 0, 0, 0], dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2])
    token_rewards, mask = outcome_tokens(rewards, [5, 3, 4, 1, 2, 5, 3, 3, 4])
    ours = group_advantages(rewards, groups, "gpg")
    theirs = verl_gpg_outcome_advantage(token_rewards, mask, groups.tolist())
    torch.testing.assert_close(ours[:, None] * mask, theirs, rtol=0, atol=1e-10)
    torch.testing.assert_close(ours[:4], 9 / 4 * torch.tensor([0.5, 0.5, -0.5, -0.5], dtype=torch.float64))


def test_gpg_differs_from_verl_only_in_how_alpha_counts_valid_samples(float64_default):
    # 0/1 rewards in groups of 4, some all-correct, some all-wrong. The paper's alpha = B / B_valid counts the
    # samples of groups whose rewards differ; verl's counts the samples with a nonzero reward (for 0/1 rewards:
    # the correct ones, all-correct groups included). Rescaled to one alpha, the advantages are identical.
    gen = torch.Generator().manual_seed(3)
    rewards = (torch.rand(40, generator=gen) < 0.5).to(torch.float64)
    rewards[0:4], rewards[4:8] = 1.0, 0.0  # one all-correct and one all-wrong group, at least
    groups = torch.arange(40) // 4
    token_rewards, mask = outcome_tokens(rewards, (torch.arange(40) % 5 + 1).tolist())
    ours = group_advantages(rewards, groups, "gpg")
    theirs = verl_gpg_outcome_advantage(token_rewards, mask, groups.tolist())
    varies = torch.tensor(
        [len(set(rewards[g * 4 : g * 4 + 4].tolist())) > 1 for g in range(10)]
    ).repeat_interleave(4)
    alpha_paper = 40 / varies.sum()
    alpha_verl = 40 / torch.count_nonzero(rewards)
    assert alpha_paper != alpha_verl
    torch.testing.assert_close(ours[:, None] * mask * (alpha_verl / alpha_paper), theirs, rtol=0, atol=1e-10)


def test_gpg_lone_sample_gets_zero_where_verl_gives_alpha_times_reward(float64_default):
    # a deliberate difference (docs/TRAINING.md): a group of one has no baseline, so its advantage is 0 here as
    # under every group estimator; verl uses mean 0 for it, giving alpha * r.
    rewards = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    groups = torch.tensor([0, 0, 1])
    token_rewards, mask = outcome_tokens(rewards, [2, 2, 2])
    ours = group_advantages(rewards, groups, "gpg")
    theirs = verl_gpg_outcome_advantage(token_rewards, mask, groups.tolist())
    # ours: B_valid = 2, alpha = 3 / 2 -> [0.75, -0.75, 0]; verl: alpha = 3 / 2 too, lone sample 1.5 * 1
    torch.testing.assert_close(ours, torch.tensor([0.75, -0.75, 0.0], dtype=torch.float64))
    torch.testing.assert_close(theirs[:, 0], torch.tensor([0.75, -0.75, 1.5], dtype=torch.float64))
