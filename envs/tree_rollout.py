"""Tree rollouts of single-turn environments: one sampled tree per task, each leaf scored as its own episode.

    reset all -> sample_tree(prompt ids of each task) -> step leaf j of task p in episode j of block p

The environments come in blocks of `leaves` episodes of the same task (as the trainer builds a group); leaf j of a
task is played in the block's episode j, exactly as `rollout` plays one turn (the same `_start` / `_advance`), so
a Trajectory is the prompt's ids then the leaf's completion. Paths that stop before the last branch point leave
fewer leaves: the block's remaining episodes are reset but not played. Multi-turn environments are refused: a
leaf is one completion, not a conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym

from rlvr.envs.rollout import Trajectory, _advance, _Live, _start
from rlvr.envs.types import Completion, Sampling
from rlvr.errors import ConfigError


class TreeLeaf(Protocol):
    """What the rollout needs of a leaf (`rlvr.trainer.engines.tree.TreeSample` is one)."""

    prompt: int
    completion: Completion


TreeSampler = Callable[[list[list[int]], Sampling], Sequence[TreeLeaf]]
"""`sample_tree(prompt_token_ids, sampling)`: the leaves of one tree per prompt, prompt by prompt, e.g.
`functools.partial(generate_tree, engine, roots=..., segment_tokens=..., branching=..., depth=...)`."""


@dataclass
class TreeRollout:
    """The played leaves: `trajectories[k]` is the episode of `leaves[k]`."""

    trajectories: list[Trajectory]
    leaves: list[Any]


def tree_rollout(
    envs: Sequence[gym.Env],
    sample_tree: TreeSampler,
    *,
    leaves: int,
    tokenizer: Any,
    options: Sequence[dict[str, Any] | None] | None = None,
    seeds: Sequence[int | None] | None = None,
    groups: Sequence[Any] | None = None,
    sampling: Sampling | None = None,
    max_workers: int = 16,
) -> TreeRollout:
    """Reset every episode, sample one tree per block of `leaves` episodes (one task), and play each leaf.

    `options[i]`/`seeds[i]`/`groups[i]` as in `rollout`; the episodes of a block must reset to the same prompt.
    """
    count = len(envs)
    if len({id(env) for env in envs}) != count:
        raise ValueError(
            "tree_rollout needs one environment object per episode; the same object appears twice"
        )
    if leaves < 1 or count % leaves:
        raise ValueError(
            f"{count} environments do not split into blocks of {leaves} leaves (one block per task)"
        )
    if tokenizer is None:
        raise ConfigError("rollout.tree needs the policy's tokenizer: the tree is sampled from token ids")
    options, seeds, groups = (
        _per_episode(name, v, count)
        for name, v in (("options", options), ("seeds", seeds), ("groups", groups))
    )
    for env in envs:
        _check_single_turn(env)
    sampling = sampling or Sampling()
    with ThreadPoolExecutor(
        max_workers=max(1, min(max_workers, count)), thread_name_prefix="rlvr-env"
    ) as pool:
        starts = list(
            pool.map(lambda i: _start(i, envs[i], seeds[i], options[i], groups[i], tokenizer), range(count))
        )
        prompts = _block_prompts(starts, leaves)
        played = _assign(starts, sample_tree(prompts, sampling), leaves)
        ended = list(
            pool.map(_advance, [item for item, _ in played], [leaf.completion for _, leaf in played])
        )
    for (item, _), done in zip(played, ended, strict=True):
        if not done:
            raise ConfigError(
                f"rollout.tree needs single-turn environments; {item.trajectory.env_id} went on after turn 1 "
                "(multi-turn): drop rollout.tree or train on single-turn environments"
            )
    return TreeRollout([item.trajectory for item, _ in played], [leaf for _, leaf in played])


def _per_episode(name: str, values: Sequence[Any] | None, count: int) -> list[Any]:
    values = list(values) if values is not None else [None] * count
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} entries for {count} environments")
    return values


def _check_single_turn(env: gym.Env) -> None:
    """A turn limit above 1 anywhere in the wrapper chain (the smallest one counts) is a multi-turn env."""
    limits, layer = [], env
    while isinstance(layer, gym.Wrapper):  # a wrapper's own limit (MaxTurns), not one forwarded from inside
        limits.append(vars(layer).get("max_turns"))
        layer = layer.env
    limits = [n for n in [*limits, getattr(layer, "max_turns", None)] if isinstance(n, int)]
    if limits and min(limits) > 1:
        name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        raise ConfigError(
            f"rollout.tree needs single-turn environments; {name} allows {min(limits)} turns: drop rollout.tree "
            "or train on single-turn environments"
        )


def _block_prompts(starts: list[_Live], leaves: int) -> list[list[int]]:
    """The prompt ids of each block, checked to be the same in all its episodes."""
    prompts = []
    for first in range(0, len(starts), leaves):
        ids = list(starts[first].trajectory.token_ids)
        for item in starts[first : first + leaves]:
            if item.trajectory.token_ids != ids:
                raise ValueError(
                    f"episodes {first} and {item.index} of one tree block reset to different prompts; give each "
                    f"block of {leaves} episodes the same task (options)"
                )
        prompts.append(ids)
    return prompts


def _assign(starts: list[_Live], tree: Sequence[TreeLeaf], leaves: int) -> list[tuple[_Live, TreeLeaf]]:
    """Leaf j of prompt p goes to episode j of block p."""
    taken = [0] * (len(starts) // leaves)
    played = []
    for leaf in tree:
        if taken[leaf.prompt] >= leaves:
            raise ValueError(f"the tree of prompt {leaf.prompt} has more than {leaves} leaves")
        played.append((starts[leaf.prompt * leaves + taken[leaf.prompt]], leaf))
        taken[leaf.prompt] += 1
    return played
