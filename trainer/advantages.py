"""Advantage estimators (ALGORITHMS.md section 2): group baselines and REINFORCE++.

Group estimators map one scalar reward per completion to one scalar advantage per completion; the trainer
broadcasts it to the completion's tokens. Groups are given by an id per sample and need not be contiguous
or equal-sized. ``reinforce_pp`` works per token and lives in its own function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rlvr.errors import ConfigError


@dataclass(frozen=True)
class GroupStats:
    """Per-sample statistics of the sample's group, each (N,)."""

    size: Tensor  # G, the group's sample count
    mean: Tensor  # mean_g r
    std: Tensor  # unbiased (Bessel) std; 0 for a group of size 1
    varies: Tensor  # bool: the group's rewards are not all equal (compared exactly, not via std > 0)


def group_stats(rewards: Tensor, group_ids: Tensor) -> GroupStats:
    """Size, mean, unbiased std and reward spread of each sample's group, broadcast back to the samples."""
    _, inverse = torch.unique(group_ids, return_inverse=True)  # (N,) group index in 0..n_groups-1
    n_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    zeros = rewards.new_zeros(n_groups)
    size = zeros.index_add(0, inverse, torch.ones_like(rewards))  # (n_groups,)
    mean = zeros.index_add(0, inverse, rewards) / size
    centred = rewards - mean[inverse]  # (N,)
    var = zeros.index_add(0, inverse, centred**2) / (size - 1).clamp(min=1)  # Bessel: / (G - 1)
    high = zeros.scatter_reduce(0, inverse, rewards, reduce="amax", include_self=False)
    low = zeros.scatter_reduce(0, inverse, rewards, reduce="amin", include_self=False)
    varies = (high > low)[inverse]
    return GroupStats(size=size[inverse], mean=mean[inverse], std=var.sqrt()[inverse], varies=varies)


def _grpo(rewards: Tensor, g: GroupStats, baselines: Tensor | None, eps: float) -> Tensor:
    # A_i = (r_i - mean_g) / (std_g + eps); a lone sample has no baseline -> 0
    adv = (rewards - g.mean) / (g.std + eps)
    return torch.where(g.size > 1, adv, torch.zeros_like(adv))


def _dr_grpo(rewards: Tensor, g: GroupStats, baselines: Tensor | None, eps: float) -> Tensor:
    # A_i = r_i - mean_g
    return rewards - g.mean


def _rloo(rewards: Tensor, g: GroupStats, baselines: Tensor | None, eps: float) -> Tensor:
    # A_i = r_i - mean_{j != i} r_j = G / (G - 1) * (r_i - mean_g); a lone sample -> 0
    adv = g.size / (g.size - 1).clamp(min=1) * (rewards - g.mean)
    return torch.where(g.size > 1, adv, torch.zeros_like(adv))


def _remax(rewards: Tensor, g: GroupStats, baselines: Tensor | None, eps: float) -> Tensor:
    # A_i = r_i - r(greedy completion of the same prompt)
    if baselines is None:
        raise ConfigError(
            "advantage='remax' needs baselines: the reward of the greedy completion of each sample's prompt; "
            "generate one greedy sample per prompt and pass its reward per sample"
        )
    if baselines.shape != rewards.shape:
        raise ConfigError(
            f"remax baselines have shape {tuple(baselines.shape)}, rewards {tuple(rewards.shape)}; "
            "pass one baseline per sample (broadcast the prompt's greedy reward to its samples)"
        )
    return rewards - baselines.to(rewards.dtype)


def _gpg(rewards: Tensor, g: GroupStats, baselines: Tensor | None, eps: float) -> Tensor:
    # GPG (arXiv 2504.02546, F_norm = 1): A_i = alpha * (r_i - mean_g), alpha = B / B_valid, where B_valid counts
    # the samples of groups whose rewards differ (the others have A = 0 and no gradient; alpha rescales the
    # batch gradient to the samples that carry one). A lone sample, or an all-equal group, gets exactly 0.
    alpha = rewards.numel() / g.varies.sum().clamp(min=1).to(rewards.dtype)  # in the rewards' precision
    adv = alpha * (rewards - g.mean)
    return torch.where(g.varies, adv, torch.zeros_like(adv))


def _reinforce(rewards: Tensor, g: GroupStats, baselines: Tensor | None, eps: float) -> Tensor:
    # REINFORCE (Williams 1992): A_i = r_i, no baseline (the group is ignored)
    return rewards.clone()


def _raft(rewards: Tensor, g: GroupStats, baselines: Tensor | None, eps: float) -> Tensor:
    # RAFT / RAFT++: A_i = 1 on every kept sample (the family keeps only solved ones; see families.py)
    return torch.ones_like(rewards)


Estimator = Callable[[Tensor, GroupStats, "Tensor | None", float], Tensor]

ESTIMATORS: dict[str, Estimator] = {
    "grpo": _grpo,
    "dr_grpo": _dr_grpo,
    "rloo": _rloo,
    "remax": _remax,
    "gpg": _gpg,
    "reinforce": _reinforce,
    "raft": _raft,
}

ADVANTAGE_NAMES: tuple[str, ...] = (*ESTIMATORS, "reinforce_pp", "gae", "treepo")


def group_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    estimator: str,
    *,
    baselines: Tensor | None = None,
    eps: float = 1e-6,
) -> Tensor:
    """One advantage per sample, (N,), from rewards (N,) and group ids (N,) with the named group estimator.

    A group of size 1 gets advantage 0 under ``grpo``, ``gpg`` and ``rloo`` (no baseline to compare with);
    ``dr_grpo`` gives it 0 too since r_i = mean_g. ``gpg`` scales by a batch-level alpha: pass the whole batch.
    """
    if estimator not in ESTIMATORS:
        hint = (
            " (use reinforce_pp_advantages for per-token advantages)" if estimator == "reinforce_pp" else ""
        )
        raise ConfigError(
            f"unknown group advantage estimator {estimator!r}; valid: {sorted(ESTIMATORS)}{hint}"
        )
    if rewards.shape != group_ids.shape or rewards.dim() != 1:
        raise ConfigError(
            f"rewards {tuple(rewards.shape)} and group_ids {tuple(group_ids.shape)} must both be (N,)"
        )
    rewards = rewards if rewards.is_floating_point() else rewards.float()
    return ESTIMATORS[estimator](rewards, group_stats(rewards, group_ids), baselines, eps)


def reinforce_pp_advantages(
    rewards: Tensor,
    mask: Tensor,
    token_kl: Tensor | None,
    kl_coef: float,
    eps: float = 1e-6,
) -> Tensor:
    """REINFORCE++ token advantages (B, T).

    Token reward -kl_coef * kl_t on policy tokens (mask == 1), plus r_i at the sequence's last policy token;
    return-to-go with gamma = 1 over policy tokens only (environment tokens in a multi-turn mask, 0s between
    turns, add nothing and do not reset the return); whitened over all policy tokens of the batch with the
    unbiased std; 0 where mask == 0.
    """
    rewards = rewards if rewards.is_floating_point() else rewards.float()
    m = mask.to(rewards.dtype)  # (B, T)
    B, T = m.shape
    if rewards.shape != (B,):
        raise ConfigError(f"rewards {tuple(rewards.shape)} must be (B,) with B = {B} rows of the mask")
    token_reward = torch.zeros_like(m) if token_kl is None else -kl_coef * token_kl.to(m.dtype) * m  # (B, T)
    has_policy = m.sum(dim=1) > 0  # (B,)
    last = T - 1 - m.flip(dims=[1]).argmax(dim=1)  # (B,) index of the last policy token (argmax: first max)
    rows = torch.arange(B, device=m.device)
    token_reward = token_reward.index_put(
        (rows, last), torch.where(has_policy, rewards, 0.0), accumulate=True
    )
    returns = token_reward.flip(dims=[1]).cumsum(dim=1).flip(dims=[1])  # (B, T) G_t = sum_{s >= t} r_s
    n = m.sum()
    mean = (returns * m).sum() / n.clamp(min=1)
    var = (((returns - mean) * m) ** 2).sum() / (n - 1).clamp(min=1)  # Bessel, over policy tokens
    whitened = (returns - mean) / (var.sqrt() + eps)
    return torch.where(m > 0, whitened, torch.zeros_like(whitened))
