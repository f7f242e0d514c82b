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


class ChatPrompts:
    """Prompt token ids of chat conversations, for engines that tokenise themselves (hf, vllm): the chat template
    with the generation prompt, one incremental renderer (`ChatTokens`) per distinct tool list."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._chat: dict[str, Any] = {}

    def prompt_ids(self, conversation: list[Message], tools: list[dict[str, Any]] | None = None) -> list[int]:
        from rlvr.envs.chat_tokens import ChatTokens

        key = repr(tools) if tools else ""
        if key not in self._chat:
            self._chat[key] = ChatTokens(self.tokenizer, tools)
        return self._chat[key].prompt_ids(conversation)

    def batch(
        self,
        conversations: Sequence[list[Message]],
        tools: Sequence[list[dict[str, Any]] | None] | None,
        prompt_token_ids: Sequence[list[int]] | None,
    ) -> list[list[int]]:
        """`prompt_token_ids` when given (checked against the conversations), else the rendered conversations."""
        if prompt_token_ids is not None:
            if len(prompt_token_ids) != len(conversations):
                raise ValueError(
                    f"{len(prompt_token_ids)} prompt_token_ids for {len(conversations)} conversations"
                )
            return [list(ids) for ids in prompt_token_ids]
        tools = list(tools) if tools is not None else [None] * len(conversations)
        return [self.prompt_ids(c, t) for c, t in zip(conversations, tools, strict=True)]

    def clear(self) -> None:
        self._chat.clear()
