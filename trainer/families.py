"""Algorithm families: the part of a training step that differs between kinds of algorithm.

A family turns a step's scored samples into advantages; it may first select samples (rejection sampling) and
may train a critic on the way (PPO, VAPO). The loop calls the same few things for every family, so a new family
is a class here and an entry in `FAMILIES`, never a branch in the loop:

    family = make_family(config.algorithm, critic=critic, dist=dist)
    family.needs_greedy                          # ReMax: one greedy sample per prompt, its reward the baseline
    groups = family.select(groups)               # RAFT: the solved samples of each group
    advantages, metrics = family.advantages(scored)   # (B,) or (B, L); PPO/VAPO: GAE, and the critic learns
    family.moves_policy(step)                    # False while the critic warms up (value pretraining)
    family.save(folder) / family.restore(folder) # the critic's weights and optimiser, in each checkpoint

| family        | advantage (config)                      | presets                                   |
|---------------|-----------------------------------------|-------------------------------------------|
| GroupBaseline | grpo, dr_grpo, rloo, remax, gpg, reinforce | grpo, dapo, dr_grpo, gspo, rloo, remax, gpg, reinforce |
| ReinforcePP   | reinforce_pp                            | reinforce_pp                              |
| ActorCritic   | gae                                     | ppo, vapo                                 |
| Rejection     | raft                                    | raft, raft_pp                             |
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rlvr.trainer.advantages import group_advantages, reinforce_pp_advantages
from rlvr.trainer.batch import PolicyBatch, token_mask
from rlvr.trainer.groups import Group


@dataclass
class ScoredBatch:
    """A step's training samples as tensors, with what the advantage stage needs."""

    groups: list[Group]
    batch: PolicyBatch
    rewards: Tensor  # (B,) episode returns, with the overlong shaping
    token_kl: Tensor | None  # (B, span) KL per policy token against the reference, when it goes in the reward
    kl_coef: float

    @property
    def trajectories(self) -> list[Any]:
        return [t for g in self.groups for t in g.trajectories]


class GroupBaseline:
    """One scalar advantage per sample from its group's rewards (advantages.py); the KL, when it goes into the
    reward, is summed over the sample's policy tokens first."""

    needs_greedy = False

    def __init__(self, algo: Any) -> None:
        self.estimator = algo.advantage
        self.needs_greedy = algo.advantage == "remax"

    def select(self, groups: list[Group]) -> list[Group]:
        return groups

    def advantages(self, scored: ScoredBatch) -> tuple[Tensor, dict[str, float]]:
        rewards = scored.rewards
        if scored.token_kl is not None:
            rewards = rewards - scored.kl_coef * scored.token_kl.sum(dim=1).to(rewards.device)
        group_ids = torch.tensor([g.key for g in scored.groups for _ in g.trajectories])
        baselines = None
        if self.needs_greedy:
            baselines = torch.tensor([g.baseline for g in scored.groups for _ in g.trajectories]).float()
        return group_advantages(rewards, group_ids, self.estimator, baselines=baselines), {}

    def moves_policy(self, step: int) -> bool:
        return True

    def save(self, folder: Path) -> None:
        pass

    def restore(self, folder: Path) -> None:
        pass


class ReinforcePP(GroupBaseline):
    """REINFORCE++: per-token returns of the reward and the KL penalty, whitened over the batch."""

    def advantages(self, scored: ScoredBatch) -> tuple[Tensor, dict[str, float]]:
        mask = token_mask(scored.trajectories)  # (B, L), as the batch is padded
        full_kl = None
        if scored.token_kl is not None:
            full_kl = torch.zeros_like(mask)
            full_kl[:, mask.shape[1] - scored.batch.span :] = scored.token_kl.to(mask.device)
        return reinforce_pp_advantages(scored.rewards, mask, full_kl, scored.kl_coef), {}


class Rejection(GroupBaseline):
    """RAFT / RAFT++: keep the solved samples of each group (the best `raft_keep` by reward, or all), A = 1.

    With `policy_loss: pg` the loss is their NLL (RAFT); with `clip` it is the clipped importance ratio on them
    (RAFT++). A group with no solved sample contributes nothing; a step without any trains nothing.
    """

    def __init__(self, algo: Any) -> None:
        super().__init__(algo)
        self.keep = algo.raft_keep

    def select(self, groups: list[Group]) -> list[Group]:
        kept = []
        for group in groups:
            solved = sorted((t for t in group.trajectories if t.solved), key=lambda t: -t.reward)  # stable
            if self.keep:
                solved = solved[: self.keep]
            if solved:
                kept.append(dataclasses.replace(group, trajectories=solved))
        return kept


class ActorCritic(GroupBaseline):
    """PPO / VAPO: GAE over policy tokens with a learned critic (critic.py, gae.py).

    Token rewards: the episode return on the last policy token, minus kl_coef * KL_t per token when the KL goes
    into the reward. Policy advantages use `lam` (VAPO: per sequence, 1 - 1 / (lam_alpha * |o|)) and are whitened
    over the batch's policy tokens; the critic regresses on the returns of `lam_critic` (VAPO: 1, Monte-Carlo).
    The values are the critic's before its update; it then takes its step on this batch, before the policy's.
    """

    def __init__(self, algo: Any, critic: Any, dist: Any, warmup_steps: int) -> None:
        super().__init__(algo)
        self.algo, self.critic, self.dist, self.warmup_steps = algo, critic, dist, warmup_steps

    def advantages(self, scored: ScoredBatch) -> tuple[Tensor, dict[str, float]]:
        from rlvr.trainer.gae import gae, last_token_rewards, length_adaptive_lam, whiten

        a, batch = self.algo, scored.batch
        mask = batch.tail(batch.loss_mask)  # (B, span)
        values = self.critic.values(batch)  # (B, span) V(s_t) before the critic's update
        rewards = last_token_rewards(scored.rewards, mask, scored.token_kl, scored.kl_coef)
        lam_policy: float | Tensor = a.lam
        if a.lam_alpha > 0:  # VAPO: lam = 1 - 1 / (alpha |o|), per sequence
            lam_policy = length_adaptive_lam(mask.sum(dim=1), a.lam_alpha)
        advantages, _ = gae(rewards, values, mask, a.gamma, lam_policy)
        lam_critic = a.lam if a.lam_critic == -1 else a.lam_critic
        _, returns = gae(rewards, values, mask, a.gamma, lam_critic)
        advantages = whiten(advantages, mask, all_reduce=self.dist.all_reduce_sum)  # over every rank's tokens
        metrics = self.critic.update(
            batch, returns, values, all_reduce=self.dist.all_reduce_sum, world_size=self.dist.world_size
        )
        width = batch.input_ids.shape[1]  # (B, span) -> (B, L), left-padded like the batch
        return F.pad(advantages, (width - advantages.shape[1], 0)), metrics

    def moves_policy(self, step: int) -> bool:
        return step > self.warmup_steps

    def save(self, folder: Path) -> None:
        self.critic.save(folder)  # critic.pt (or critic-sharded/ under FSDP) beside the policy's files

    def restore(self, folder: Path) -> None:
        self.critic.restore(folder)


class TreeBaseline(GroupBaseline):
    """TreePO (rollout.tree): per-token advantages from subtree baselines, each tree token trained once
    (trainer/tree_advantages.py): a leaf's A_i is the mean over the sub-groups above it of R_i - mean(group), a
    node's A(n) the mean of its leaves'; a shared node's tokens train in one row only (the loss mask of the others
    is 0 there)."""

    def __init__(self, algo: Any, dist: Any) -> None:
        super().__init__(algo)
        self.all_reduce = dist.all_reduce_sum if dist is not None else (lambda t: t)  # whitening over ranks

    def advantages(self, scored: ScoredBatch) -> tuple[Tensor, dict[str, float]]:
        from rlvr.trainer.tree_advantages import tree_token_advantages

        rewards = scored.rewards
        if scored.token_kl is not None:
            rewards = rewards - scored.kl_coef * scored.token_kl.sum(dim=1).to(rewards.device)
        batch = scored.batch
        leaves = [leaf for g in scored.groups for leaf in g.tree]
        skip = (batch.loss_mask.sum(dim=1) == 0).tolist()  # overlong filtering dropped these rows
        result = tree_token_advantages(
            scored.trajectories, leaves, rewards, skip=skip, all_reduce=self.all_reduce
        )
        batch.loss_mask = batch.loss_mask * result.mask.to(batch.loss_mask)  # each tree token trained once
        return result.advantages, {"tree/trained_tokens": float(result.mask.sum())}


FAMILIES: dict[str, type[GroupBaseline]] = {
    "reinforce_pp": ReinforcePP,
    "gae": ActorCritic,
    "raft": Rejection,
    "treepo": TreeBaseline,
}
"""The family of each advantage that is not a plain group baseline."""


def make_family(algo: Any, *, critic: Any = None, dist: Any = None, warmup_steps: int = 0) -> GroupBaseline:
    """The family of `algo.advantage` (a resolved AlgorithmConfig); `critic` for advantage=gae."""
    family = FAMILIES.get(algo.advantage, GroupBaseline)
    if family is ActorCritic:
        return ActorCritic(algo, critic, dist, warmup_steps)
    if family is TreeBaseline:
        return TreeBaseline(algo, dist)
    return family(algo)
