"""The engine protocol: what the rollout, the trainer and the evaluator need from a model that generates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from rlvr.envs.types import Completion, Message, Sampling


@runtime_checkable
class Engine(Protocol):
    """Generates completions for chat conversations.

    `generate` returns `len(conversations) * n` completions, conversation-major (the `n` samples of conversation 0
    first). `tools[i]` is conversation i's tool schemas (for the chat template); `prompt_token_ids[i]`, when given,
    is conversation i's prompt exactly as token ids (the rollout passes them so multi-turn prompts are never
    re-tokenised). It satisfies `rlvr.envs.rollout.Policy`.
    """

    name: str

    def generate(
        self,
        conversations: Sequence[list[Message]],
        sampling: Sampling | None = None,
        *,
        tools: Sequence[list[dict[str, Any]] | None] | None = None,
        prompt_token_ids: Sequence[list[int]] | None = None,
        episode_ids: Sequence[int] | None = None,
        n: int = 1,
    ) -> list[Completion]: ...

    def describe(self) -> dict[str, Any]:
        """Provenance: engine name and version, model, device."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class TrainableEngine(Engine, Protocol):
    """An engine the trainer drives: it receives the new weights after each optimiser step."""

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None: ...


def check_n(n: int) -> int:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n (samples per conversation) must be an integer >= 1, got {n!r}")
    return n
