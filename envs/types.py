"""Typed records shared by environments, the rollout loop, the trainer and the evaluator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# One chat message in the OpenAI format: {"role": "user", "content": "..."}; assistant messages may carry
# "tool_calls", tool messages "tool_call_id" and "name".
Message = dict[str, Any]

FINISH_REASONS = ("stop", "length", "tool_calls", "abort")


@dataclass(frozen=True)
class Task:
    """One problem: a stable id, the prompt text, the gold answer (any shape its verifier reads), and metadata."""

    id: str
    prompt: str
    answer: Any
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """What an engine returns for one conversation.

    `token_ids` and `logprobs` are the generated tokens (the stop token included when generation ended on one);
    `finish_reason == "length"` marks a truncated generation.
    """

    text: str
    token_ids: tuple[int, ...] | None = None
    logprobs: tuple[float, ...] | None = None
    finish_reason: str = "stop"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Completion.text must be a str, got {type(self.text).__name__}")
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason must be one of {FINISH_REASONS}, got {self.finish_reason!r}")

    @property
    def truncated(self) -> bool:
        """True when generation stopped at the token limit rather than on a stop token."""
        return self.finish_reason == "length"

    @property
    def num_tokens(self) -> int | None:
        """Number of generated tokens, when the engine reported them."""
        return None if self.token_ids is None else len(self.token_ids)


def as_completion(action: str | Completion) -> Completion:
    """The step action as a Completion: a plain string becomes a Completion without token information."""
    if isinstance(action, Completion):
        return action
    if isinstance(action, str):
        return Completion(text=action)
    raise TypeError(f"an action is a str or a Completion, got {type(action).__name__}")


@dataclass(frozen=True)
class Feedback:
    """What an environment's scoring of one turn produced: its reply, reward components, verdict and whether
    the task is finished (`done`). The base environment turns this into Gymnasium's step tuple."""

    reply: list[Message]
    rewards: dict[str, float]
    done: bool
    verdict: Any = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sampling:
    """How an engine samples one completion per conversation."""

    max_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    """-1: no top-k cut."""
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
