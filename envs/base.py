"""The base environment: a Gymnasium `Env` over a task source with chat observations and text actions.

A subclass says how a task becomes the first messages (`initial_messages`), how one model turn is scored
(`evaluate`, returning a `Feedback`), and what a reference player would answer (`reference_action`). The base
class owns the Gymnasium contract: seeding, task choice, turn counting, `terminated` vs `truncated`, and fresh
copies of everything it returns.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym

from rlvr.envs.spaces import ChatSpace, TextSpace
from rlvr.envs.types import Completion, Feedback, Message, Task, as_completion
from rlvr.errors import ConfigError


class TaskSource(Sequence[Task]):
    """Anything indexable that yields Tasks: `len(source)` and `source[i]`."""


class RlvrEnv(gym.Env[list[Message], "str | Completion"]):
    """A multi-turn chat environment over a task source.

    `reset(seed=..., options={"task_index": i})` picks task `i` (or a seeded random one; `options={"task": Task}`
    plays a given task); `step(text_or_completion)` returns the environment's reply messages, the reward (the sum
    of `info["rewards"]`), `terminated` when the task is finished, `truncated` when `max_turns` is reached first.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    description: ClassVar[str] = ""
    """One line for `rlvr envs show`."""
    reward_components: ClassVar[tuple[str, ...]] = ("correct",)
    """The names this environment puts in `info["rewards"]` (wrappers add their own)."""

    def __init__(
        self, tasks: Sequence[Task], *, system_prompt: str | None = None, max_turns: int = 1
    ) -> None:
        if len(tasks) == 0:
            raise ConfigError(f"{type(self).__name__} got an empty task source; give it at least one task")
        if not isinstance(max_turns, int) or max_turns < 1:
            raise ConfigError(f"max_turns must be an integer >= 1, got {max_turns!r}")
        self.tasks = tasks
        self.system_prompt = system_prompt
        self.max_turns = max_turns
        self.observation_space = ChatSpace()
        self.action_space = TextSpace()
        self.task: Task | None = None
        self.task_index: int | None = None
        self.turn = 0
        self.conversation: list[Message] = []
        self.finished = False

    # -- what a subclass provides ------------------------------------------------------------------------------

    def initial_messages(self, task: Task) -> list[Message]:
        """The messages the model sees first: the system prompt (if any) and the task's prompt."""
        messages: list[Message] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": self.format_prompt(task)})
        return messages

    def format_prompt(self, task: Task) -> str:
        """The user message for a task (subclasses apply their prompt template here)."""
        return task.prompt

    def evaluate(self, completion: Completion) -> Feedback:
        """Score the model's turn `self.turn` on `self.task`; `self.conversation` already ends with it."""
        raise NotImplementedError

    def reference_action(self) -> str:
        """A reply that earns the full reward from the current state (gold answer, canonical program, optimal move)."""
        raise NotImplementedError(f"{type(self).__name__} has no reference solution")

    def wrong_action(self) -> str:
        """A reply that must not earn the full reward from the current state."""
        return "I do not know."

    @property
    def max_reward(self) -> float:
        """The return of a perfect episode (what the reference player earns)."""
        return 1.0

    @property
    def tools(self) -> list[dict[str, Any]]:
        """OpenAI-style tool schemas the model may call (passed to the chat template as `tools=`)."""
        return []

    # -- the Gymnasium contract --------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if options.get("task") is not None:
            task, index = options["task"], None
            if not isinstance(task, Task):
                raise TypeError(f"options['task'] must be a Task, got {type(task).__name__}")
        else:
            index = options.get("task_index")
            if index is None:
                index = int(self.np_random.integers(len(self.tasks)))
            if not isinstance(index, int) or not 0 <= index < len(self.tasks):
                raise IndexError(f"task_index must be an int in [0, {len(self.tasks)}), got {index!r}")
            task = self.tasks[index]
        self.task, self.task_index = task, index
        self.turn = 0
        self.finished = False
        self.start_episode(task)
        self.conversation = self.initial_messages(task)
        info: dict[str, Any] = {"task_id": task.id, "task_index": index}
        if self.tools:
            info["tools"] = copy.deepcopy(self.tools)
        return fresh_messages(self.conversation), info

    def start_episode(self, task: Task) -> None:
        """Hook for per-episode state (a game's secret, a tool budget); runs before `initial_messages`."""

    def step(self, action: str | Completion) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self.finished:
            raise gym.error.ResetNeeded("the episode has ended (terminated or truncated); call reset() first")
        completion = as_completion(action)
        self.turn += 1
        self.conversation.append(self.assistant_message(completion))
        feedback = self.evaluate(completion)
        terminated = feedback.done
        truncated = not terminated and self.turn >= self.max_turns
        self.finished = terminated or truncated
        reply = [] if self.finished else feedback.reply
        self.conversation.extend(reply)
        info: dict[str, Any] = {
            "rewards": dict(feedback.rewards),
            "verdict": feedback.verdict,
            "turn": self.turn,
            "task_id": self.task.id,
            **fresh_values(feedback.info),
        }
        reward = float(sum(feedback.rewards.values()))
        return fresh_messages(reply), reward, terminated, truncated, info

    def assistant_message(self, completion: Completion) -> Message:
        """How the model's turn enters the conversation (tool environments add parsed tool calls)."""
        return {"role": "assistant", "content": completion.text}


_IMMUTABLE = (str, int, float, bool, type(None))


def fresh_values(mapping: dict[str, Any]) -> dict[str, Any]:
    """A new dict whose mutable values are deep copies (callers keep what environments return)."""
    return {k: v if isinstance(v, _IMMUTABLE) else copy.deepcopy(v) for k, v in mapping.items()}


def fresh_messages(messages: list[Message]) -> list[Message]:
    """New message dicts (deep-copying only nested values such as tool calls): cheaper than `deepcopy`."""
    return [fresh_values(message) for message in messages]


class SingleTurnEnv(RlvrEnv):
    """One question, one answer: every step terminates the episode."""

    def __init__(self, tasks: Sequence[Task], *, system_prompt: str | None = None) -> None:
        super().__init__(tasks, system_prompt=system_prompt, max_turns=1)

    def evaluate(self, completion: Completion) -> Feedback:
        rewards, verdict = self.score(self.task, completion)
        return Feedback(
            reply=[], rewards=rewards, done=True, verdict=verdict, info=self.verdict_info(verdict)
        )

    def score(self, task: Task, completion: Completion) -> tuple[dict[str, float], Any]:
        """Reward components and the verdict for one answer."""
        raise NotImplementedError

    @staticmethod
    def verdict_info(verdict: Any) -> dict[str, Any]:
        """`solved` for metrics, from a verdict's `correct` flag."""
        return {"solved": bool(getattr(verdict, "correct", False))}
