"""Token ids of a growing conversation, built incrementally so earlier tokens never shift.

A chat template renders a whole conversation, and re-rendering it after each turn can change earlier tokens
(templates that drop old reasoning, merges at token boundaries). Instead the rollout keeps the ids it has and
appends only new pieces: the first prompt, the policy's own generated ids, the end-of-turn text the template puts
after an assistant message, and the environment's reply rendered as a delta after a fixed base conversation:

    delta(replies) = render(base + replies, add_generation_prompt=True) - render(base)

where `base` ends with an assistant message, so the delta is exactly how the replies and the next generation
prompt follow an assistant turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlvr.envs.types import Completion, Message
from rlvr.errors import ConfigError

_BASE_CONTENT = "rlvr-base-reply"
_BASE: list[Message] = [
    {"role": "system", "content": "rlvr-base-system"},
    {"role": "user", "content": "rlvr-base-user"},
    {"role": "assistant", "content": _BASE_CONTENT},
]


class ChatTokens:
    """Incremental chat tokenisation with a Hugging Face-style tokenizer (`apply_chat_template`, `encode`)."""

    def __init__(self, tokenizer: Any, tools: Sequence[dict[str, Any]] | None = None) -> None:
        self.tokenizer = tokenizer
        self.tools = list(tools) if tools else None
        base_text = self.render(_BASE)
        prompt_text = self.render(_BASE[:-1], add_generation_prompt=True)
        head = prompt_text + _BASE_CONTENT
        if not base_text.startswith(head):
            raise ConfigError(
                "the chat template does not render an assistant message as generation prompt + content; "
                "incremental tokenisation needs that (use a standard chat template)"
            )
        self.base_text = base_text
        self.end_of_turn = base_text[len(head) :]
        """What the template writes after an assistant message's content (e.g. "<|im_end|>\\n")."""

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages), tools=self.tools, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """The first prompt, with the generation prompt."""
        return self.encode(self.render(messages, add_generation_prompt=True))

    def completion_ids(self, completion: Completion) -> list[int]:
        """The policy's tokens: the engine's ids when it gave them, else the text encoded."""
        if completion.token_ids is not None:
            return list(completion.token_ids)
        return self.encode(completion.text)

    def end_of_turn_ids(self, completion: Completion) -> list[int]:
        """The template's end-of-turn text not already generated (the stop token itself is the policy's)."""
        policy_text = self.tokenizer.decode(list(completion.token_ids[-1:])) if completion.token_ids else ""
        rest = self.end_of_turn
        if policy_text and rest.startswith(policy_text):
            rest = rest[len(policy_text) :]
        return self.encode(rest)

    def reply_ids(self, replies: Sequence[Message]) -> list[int]:
        """The environment's reply after an assistant turn, with the next generation prompt."""
        text = self.render([*_BASE, *replies], add_generation_prompt=True)
        if not text.startswith(self.base_text):
            raise ConfigError("the chat template re-renders earlier messages when replies are added")
        return self.encode(text[len(self.base_text) :])
