"""The rollout loop: many episodes at once, one batched `generate` per turn, environments stepped in parallel.

    reset all -> while episodes live: generate(conversations of live episodes) -> step each (thread pool)

The heavy scoring runs in the verifier and sandbox pools, so threads are enough to overlap it. With a tokenizer,
each Trajectory carries token ids and a mask (1 = policy token, 0 = prompt or environment token) built
incrementally (`chat_tokens.ChatTokens`): earlier tokens are never re-tokenised.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym

from rlvr.envs.chat_tokens import ChatTokens
from rlvr.envs.types import Completion, Message, Sampling


class Policy(Protocol):
    """What the rollout needs from an engine: one Completion per conversation, in order.

    `tools` (per conversation) goes to the chat template; `prompt_token_ids` (per conversation, when the rollout
    tracks tokens) lets an engine continue from exactly the trajectory's tokens; `episode_ids` names each
    conversation's episode (replay uses it). Engines may ignore what they do not need.
    """

    def generate(
        self,
        conversations: Sequence[list[Message]],
        sampling: Sampling | None = None,
        *,
        tools: Sequence[list[dict[str, Any]] | None] | None = None,
        prompt_token_ids: Sequence[list[int]] | None = None,
        episode_ids: Sequence[int] | None = None,
    ) -> list[Completion]: ...


@dataclass
class Turn:
    """One model turn: what the policy produced and what the environment made of it."""

    completion: Completion
    reward: float
    rewards: dict[str, float]
    reply: list[Message]
    verdict: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    step_seconds: float = 0.0
    """Wall time of the environment's step (scoring: verifier, sandbox)."""


@dataclass
class Trajectory:
    """One episode. `token_ids`/`mask`/`logprobs` are aligned (empty without a tokenizer); `prompt_length` is the
    number of tokens before the first policy token."""

    env_id: str
    task_id: str
    task_index: int | None
    messages: list[Message]
    turns: list[Turn] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    group: Any = None
    token_ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    prompt_length: int = 0

    @property
    def reward(self) -> float:
        """The episode return: the sum of the turn rewards."""
        return sum(turn.reward for turn in self.turns)

    @property
    def rewards(self) -> dict[str, float]:
        """Each reward component summed over the turns."""
        totals: dict[str, float] = {}
        for turn in self.turns:
            for name, value in turn.rewards.items():
                totals[name] = totals.get(name, 0.0) + value
        return totals

    @property
    def solved(self) -> bool:
        return bool(self.turns and self.turns[-1].info.get("solved", False))

    @property
    def num_policy_tokens(self) -> int:
        return sum(self.mask)


@dataclass
class _Live:
    index: int
    env: gym.Env
    trajectory: Trajectory
    tools: list[dict[str, Any]] | None
    tokens: ChatTokens | None = None


def rollout(
    envs: Sequence[gym.Env],
    policy: Policy,
    *,
    options: Sequence[dict[str, Any] | None] | None = None,
    seeds: Sequence[int | None] | None = None,
    groups: Sequence[Any] | None = None,
    sampling: Sampling | None = None,
    tokenizer: Any = None,
    max_workers: int = 16,
) -> list[Trajectory]:
    """Run one episode in each environment (distinct objects) and return their trajectories, in order.

    `options[i]`/`seeds[i]` go to `envs[i].reset` (e.g. `{"task_index": 7}`); `groups[i]` tags the trajectory
    (GRPO groups the samples of one task).
    """
    if len({id(env) for env in envs}) != len(envs):
        raise ValueError("rollout needs one environment object per episode; the same object appears twice")
    count = len(envs)
    options = list(options) if options is not None else [None] * count
    seeds = list(seeds) if seeds is not None else [None] * count
    groups = list(groups) if groups is not None else [None] * count
    for name, values in (("options", options), ("seeds", seeds), ("groups", groups)):
        if len(values) != count:
            raise ValueError(f"{name} has {len(values)} entries for {count} environments")
    if count == 0:
        return []
    with ThreadPoolExecutor(
        max_workers=max(1, min(max_workers, count)), thread_name_prefix="rlvr-env"
    ) as pool:
        starts = list(
            pool.map(lambda i: _start(i, envs[i], seeds[i], options[i], groups[i], tokenizer), range(count))
        )
        live = list(starts)
        while live:
            completions = policy.generate(
                [list(item.trajectory.messages) for item in live],
                sampling,
                tools=[item.tools for item in live],
                prompt_token_ids=[list(item.trajectory.token_ids) for item in live]
                if tokenizer is not None
                else None,
                episode_ids=[item.index for item in live],
            )
            if len(completions) != len(live):
                raise RuntimeError(
                    f"the policy returned {len(completions)} completions for {len(live)} conversations"
                )
            finished = list(pool.map(_advance, live, completions))
            live = [item for item, done in zip(live, finished, strict=True) if not done]
    return [item.trajectory for item in starts]


def _start(
    index: int, env: gym.Env, seed: int | None, options: dict[str, Any] | None, group: Any, tokenizer: Any
) -> _Live:
    messages, info = env.reset(seed=seed, options=options)
    spec_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    trajectory = Trajectory(
        env_id=spec_id,
        task_id=str(info.get("task_id", "")),
        task_index=info.get("task_index"),
        messages=list(messages),
        group=group,
    )
    tools = info.get("tools") or None
    live = _Live(index=index, env=env, trajectory=trajectory, tools=tools)
    if tokenizer is not None:
        live.tokens = ChatTokens(tokenizer, tools)
        prompt = live.tokens.prompt_ids(messages)
        _extend(trajectory, prompt, 0)
        trajectory.prompt_length = len(prompt)
    return live


def _advance(item: _Live, completion: Completion) -> bool:
    """Step one episode with the policy's completion; True when it has ended."""
    trajectory = item.trajectory
    started = time.perf_counter()
    try:
        reply, reward, terminated, truncated, info = item.env.step(completion)
    except Exception as exc:
        raise RuntimeError(
            f"environment {trajectory.env_id} failed on task {trajectory.task_id!r} turn {len(trajectory.turns) + 1}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    trajectory.messages.append({"role": "assistant", "content": completion.text})
    trajectory.turns.append(
        Turn(
            completion=completion,
            reward=float(reward),
            rewards=dict(info.get("rewards", {})),
            reply=copy.deepcopy(reply),
            verdict=info.get("verdict"),
            info={k: v for k, v in info.items() if k not in ("rewards", "verdict")},
            step_seconds=time.perf_counter() - started,
        )
    )
    if item.tokens is not None:
        policy_ids = item.tokens.completion_ids(completion)
        _extend(trajectory, policy_ids, 1, completion.logprobs)
    done = bool(terminated or truncated)
    trajectory.terminated, trajectory.truncated = bool(terminated), bool(truncated)
    if not done:
        trajectory.messages.extend(reply)
        if item.tokens is not None:
            _extend(trajectory, item.tokens.end_of_turn_ids(completion) + item.tokens.reply_ids(reply), 0)
    return done


def _extend(
    trajectory: Trajectory, ids: list[int], mask: int, logprobs: Sequence[float] | None = None
) -> None:
    trajectory.token_ids.extend(ids)
    trajectory.mask.extend([mask] * len(ids))
    if logprobs is not None and len(logprobs) == len(ids):
        trajectory.logprobs.extend(float(x) for x in logprobs)
    else:
        trajectory.logprobs.extend([0.0] * len(ids))


class ReplayPolicy:
    """Plays back given completions (tests, offline scoring).

    `replies[e][t]` is episode `e`'s reply on turn `t` (a str or a Completion), or a function
    `replies(conversation, episode_id) -> str | Completion`. With a `tokenizer`, string replies get token ids
    (and the end-of-sequence token when `eos=True`), as an engine would report them.
    """

    def __init__(
        self,
        replies: Sequence[Sequence[str | Completion]] | Callable[[list[Message], int], str | Completion],
        tokenizer: Any = None,
        eos: bool = True,
    ) -> None:
        self.replies = replies
        self.tokenizer = tokenizer
        self.eos = eos
        self.calls = 0

    def generate(
        self,
        conversations: Sequence[list[Message]],
        sampling: Sampling | None = None,
        *,
        episode_ids: Sequence[int] | None = None,
        **_: Any,
    ) -> list[Completion]:
        self.calls += 1
        episode_ids = list(episode_ids) if episode_ids is not None else list(range(len(conversations)))
        return [self._reply(conv, episode) for conv, episode in zip(conversations, episode_ids, strict=True)]

    def _reply(self, conversation: list[Message], episode: int) -> Completion:
        if callable(self.replies):
            reply = self.replies(conversation, episode)
        else:
            turn = sum(1 for message in conversation if message["role"] == "assistant")
            try:
                reply = self.replies[episode][turn]
            except IndexError:
                raise IndexError(f"ReplayPolicy has no reply for episode {episode} turn {turn}") from None
        if isinstance(reply, Completion):
            return reply
        if self.tokenizer is None:
            return Completion(text=reply)
        ids = list(self.tokenizer.encode(reply, add_special_tokens=False))
        if self.eos and self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return Completion(text=reply, token_ids=tuple(ids), finish_reason="stop")


def group_by(
    trajectories: Sequence[Trajectory], key: Callable[[Trajectory], Any]
) -> Mapping[Any, list[Trajectory]]:
    """Trajectories grouped by `key`, in first-seen order."""
    groups: dict[Any, list[Trajectory]] = {}
    for trajectory in trajectories:
        groups.setdefault(key(trajectory), []).append(trajectory)
    return groups
