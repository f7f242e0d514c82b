"""Gymnasium spaces for language: a chat space (lists of messages) and a text space (one reply)."""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

from rlvr.envs.types import Completion, Message

ROLES = ("system", "user", "assistant", "tool")
_SAMPLE_CHARS = np.array(list(string.ascii_letters + string.digits + string.punctuation + " \n"))


class TextSpace(spaces.Space[str]):
    """One model reply: any string of at most `max_length` characters (a Completion is accepted too)."""

    def __init__(self, max_length: int = 1_000_000, seed: int | np.random.Generator | None = None) -> None:
        self.max_length = max_length
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random printable string of 1-64 characters (enough for `check_env`'s step probes)."""
        length = int(self.np_random.integers(1, 65))
        return "".join(self.np_random.choice(_SAMPLE_CHARS, size=length))

    def contains(self, x: Any) -> bool:
        text = x.text if isinstance(x, Completion) else x
        return isinstance(text, str) and len(text) <= self.max_length

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextSpace) and other.max_length == self.max_length


class ChatSpace(spaces.Space[list[Message]]):
    """A list of chat messages (`{"role", "content"}` in the OpenAI format); an empty list is allowed."""

    def __init__(self, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> list[Message]:
        length = int(self.np_random.integers(1, 33))
        return [{"role": "user", "content": "".join(self.np_random.choice(_SAMPLE_CHARS, size=length))}]

    def contains(self, x: Any) -> bool:
        return isinstance(x, list) and all(is_message(message) for message in x)

    def __repr__(self) -> str:
        return "ChatSpace()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatSpace)


def is_message(message: Any) -> bool:
    """A dict with a known role and string content (content may be None on an assistant tool-call message)."""
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        return False
    content = message.get("content")
    if content is None:
        return message["role"] == "assistant" and bool(message.get("tool_calls"))
    return isinstance(content, str)
