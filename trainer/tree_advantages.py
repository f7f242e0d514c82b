"""TreePO advantages over tree rollouts (trainer/engines/tree.py), per token, with each tree token trained once.

Leaf advantage: TreePO (Li et al. 2025, arXiv 2508.17445), tree-based advantage estimation (its Fig. 3: "the final
advantages can be calculated as the averagely aggregated sub-group advantages"; the authors' code:
`compute_tree_reinforce_plus_plus_baseline_outcome_advantage`, `adv_weight_strategy="average"`). Every node n of
the tree, and the prompt q, defines a sub-group L(n), the leaves under it, with its subtree baseline
V(n) = mean_{k in L(n)} R_k. The sub-groups S_i of leaf i are the distinct L(n) with at least 2 leaves over the
nodes n on its path and q:

    A_i = 1/|S_i| * sum_{G in S_i} (R_i - mean_{k in G} R_k)          (0 when S_i is empty: a lone leaf)

A node with one child has the child's leaves, the same sub-group: it counts once (the authors' code counts one
sub-group per depth, so a chain would weigh its group more).

Each token once: a node's tokens are shared by the leaves L(n). They are trained in one row only, that of the first
leaf of L(n) in batch order, and masked out (loss mask 0) in the others, with the node advantage

    A(n) = mean_{i in L(n)} A_i

On a leaf's own segments A(n) = A_i, the paper's value. On a shared node, the gradient of its tokens is the one the
paper's loss gives them (each leaf row trains them with its A_i) divided by |L(n)|: the same direction, counted
once. Equivalently A(n) = 1/D * sum_{a above n} (V(n) - V(a)) when all leaves of L(n) have D sub-groups: the
subtree's value against the subtrees above it. Then, as in the authors' code (REINFORCE++-baseline), the token
advantages are whitened over the batch's trained tokens (`whiten=False` keeps the raw values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from rlvr.envs.rollout import Trajectory
from rlvr.trainer.engines.tree import TreeSample
from rlvr.trainer.gae import whiten as whiten_tokens


@dataclass(frozen=True)
class TreeAdvantages:
    """Per-token advantages and the loss mask that trains each tree token once, both (B, L) left-padded."""

    advantages: Tensor  # (B, L) A(n) on the tokens a row trains, 0 elsewhere
    mask: Tensor  # (B, L) 1 on the tokens a row trains (prompt, pad and tokens trained in another row: 0)


def leaf_advantages(rewards: Tensor, samples: Sequence[TreeSample]) -> Tensor:
    """A_i (N,) of the leaves from their rewards (N,): mean over the leaf's sub-groups of R_i - mean(group)."""
    groups = _subgroups(samples)  # each leaf's distinct sub-groups (tuples of leaf indices)
    r = rewards.double()
    advantages = torch.zeros_like(r)
    for i, own in enumerate(groups):
        if own:  # A_i = 1/|S_i| sum_G (R_i - mean_G R)
            advantages[i] = sum(r[i] - r[list(g)].mean() for g in own) / len(own)
    return advantages.to(rewards.dtype if rewards.is_floating_point() else torch.float32)


def node_advantages(leaf: Tensor, samples: Sequence[TreeSample]) -> dict[int, float]:
    """A(n) = mean_{i in L(n)} A_i for every node id."""
    members = _leaves_of(samples)
    return {node: float(leaf[list(leaves)].double().mean()) for node, leaves in members.items()}


def owners(samples: Sequence[TreeSample], skip: Sequence[bool] | None = None) -> dict[int, int]:
    """The leaf (index) whose row trains each node: the first leaf through the node, passing over the rows with
    `skip[i]` (rows whose loss mask `build_batch` zeroes: overlong filtering); a node only they hold is not trained."""
    owner: dict[int, int] = {}
    for i, sample in enumerate(samples):
        if skip is None or not skip[i]:
            for node in sample.path:
                owner.setdefault(node, i)
    return owner


def distinct_tokens(samples: Sequence[TreeSample]) -> int:
    """The number of tokens of the trees: each node's tokens once."""
    sizes = {node: end - start for sample in samples for node, start, end in sample.spans()}
    return sum(sizes.values())


def tree_token_advantages(
    trajectories: Sequence[Trajectory],
    samples: Sequence[TreeSample],
    rewards: Tensor,
    *,
    whiten: bool = True,
    skip: Sequence[bool] | None = None,
    all_reduce: Callable[[Tensor], Tensor] = lambda t: t,
) -> TreeAdvantages:
    """Token advantages (B, L) and the train-once mask (B, L) of single-turn tree trajectories.

    `samples[b]` is the leaf of `trajectories[b]` (its completion ends the row); `rewards` (B,) the returns. Rows
    are left-padded like `batch.token_mask`. `skip` as in `owners` (pass build_batch's `drop`). `all_reduce` sums
    over ranks, for the whitening (gae.whiten).
    """
    if len(trajectories) != len(samples) or rewards.shape != (len(samples),):
        raise ValueError(
            f"{len(trajectories)} trajectories, {len(samples)} tree samples and rewards {tuple(rewards.shape)} "
            "must align: one leaf and one reward per trajectory"
        )
    width = max(len(t.token_ids) for t in trajectories)
    node_value = node_advantages(leaf_advantages(rewards, samples), samples)
    owner = owners(samples, skip)
    advantages = torch.zeros((len(samples), width))
    mask = torch.zeros((len(samples), width))
    for row, (trajectory, sample) in enumerate(zip(trajectories, samples, strict=True)):
        ids = tuple(sample.completion.token_ids or ())
        if tuple(trajectory.token_ids[len(trajectory.token_ids) - len(ids) :]) != ids or not ids:
            raise ValueError(
                f"trajectory {row} does not end with its leaf's completion tokens; tree advantages need the "
                "single-turn trajectories of the tree rollout (envs/tree_rollout.py) with the policy's tokenizer"
            )
        first = width - len(ids)  # column of the completion's first token
        for node, start, end in sample.spans():
            if owner.get(node) == row:
                mask[row, first + start : first + end] = 1.0
                advantages[row, first + start : first + end] = node_value[node]
    if whiten:
        advantages = whiten_tokens(advantages, mask, all_reduce=all_reduce)
    return TreeAdvantages(advantages * mask, mask)


def train_once(
    trajectories: Sequence[Trajectory], samples: Sequence[TreeSample], skip: Sequence[bool] | None = None
) -> list[Trajectory]:
    """Copies of the trajectories whose `mask` is 0 on the tokens another row trains (each tree token once):
    `build_batch` then gives the train-once loss mask, and `token_mask` the same mask as `tree_token_advantages`
    (with the same `skip`)."""
    owner = owners(samples, skip)
    out = []
    for row, (trajectory, sample) in enumerate(zip(trajectories, samples, strict=True)):
        mask = list(trajectory.mask)
        first = len(mask) - len(sample.completion.token_ids or ())
        for node, start, end in sample.spans():
            if owner.get(node) != row:
                mask[first + start : first + end] = [0] * (end - start)
        out.append(replace(trajectory, mask=mask))
    return out


def _leaves_of(samples: Sequence[TreeSample]) -> dict[int, tuple[int, ...]]:
    """L(n): the leaf indices under each node id."""
    members: dict[int, list[int]] = {}
    for i, sample in enumerate(samples):
        for node in sample.path:
            members.setdefault(node, []).append(i)
    return {node: tuple(leaves) for node, leaves in members.items()}


def _subgroups(samples: Sequence[TreeSample]) -> list[list[tuple[int, ...]]]:
    """S_i: the distinct leaf sets of at least 2 leaves over leaf i's prompt and path nodes."""
    trees: dict[int, list[int]] = {}
    for i, sample in enumerate(samples):
        trees.setdefault(sample.tree, []).append(i)
    members = _leaves_of(samples)
    groups = []
    for sample in samples:
        candidates = [tuple(trees[sample.tree]), *(members[node] for node in sample.path)]
        groups.append([g for g in dict.fromkeys(candidates) if len(g) >= 2])
    return groups
