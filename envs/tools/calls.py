"""Reading tool calls out of a model's reply.

Two families of formats are read:

1. Hermes / Qwen tags: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, any number of them. A last
   tag left open (generation stopped on `</tool_call>` as a stop string) is read to the end of the text. Once a
   reply holds a tag, only tags are read.
2. Plain JSON: the whole reply, or a fenced block (```json or bare ```), holding one call object or a non-empty
   list of them. Llama's `<|python_tag|>` and Mistral's `[TOOL_CALLS]` prefixes are dropped first. Plain JSON is
   only taken as a call when it has the shape of one (an `arguments` or `parameters` key, or an OpenAI
   `{"function": {...}}` envelope), so a reply that shows ordinary JSON data is not a call.

A call object is `{"name": str, "arguments": {...}}`; `parameters` may stand for `arguments`, the arguments may
be a JSON string holding an object (the OpenAI wire form), null means `{}`, and in a tag a missing `arguments`
means `{}`. Reasoning is never read: text up to the last `</think>` (or from an unclosed `<think>`) is skipped.

Every attempt, good or bad, gets the next id (`{id_prefix}{k}`), so an environment can answer a malformed call
with a tool message too. Parsing never raises on any input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_TAG_OPEN = "<tool_call>"
_TAG = re.compile(r"<tool_call>(.*?)(?:</tool_call>|(?=<tool_call>)|\Z)", re.DOTALL)
_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_INNER_FENCE = re.compile(r"\A```(?:json|JSON)?[ \t]*\n?(.*?)\n?```\Z", re.DOTALL)
_PREFIXES = ("<|python_tag|>", "[TOOL_CALLS]")
_CALL_KEYS = ("arguments", "parameters")
_SNIPPET_CHARS = 200
MAX_ATTEMPTS = 32
"""Most call attempts read from one reply; one more error says the rest were ignored."""


@dataclass(frozen=True)
class ToolCall:
    """One parsed call: the tool's name, its arguments, and the id its tool message answers."""

    name: str
    arguments: dict[str, Any]
    id: str

    def to_message_format(self) -> dict[str, Any]:
        """The entry of an assistant message's `tool_calls`: the OpenAI envelope with `arguments` as a dict,
        which Hugging Face chat templates expect (an OpenAI-API client sends `json.dumps(arguments)`)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class ParseError:
    """A call the model attempted but that cannot be run: what is wrong, how to fix it, and where."""

    message: str
    snippet: str
    id: str
    name: str | None = None
    """The tool's name when it could be read (for example when only the arguments are malformed)."""


@dataclass(frozen=True)
class ParsedCalls:
    """What one reply holds: its call attempts in order (calls that can run and attempts that cannot), and the
    text outside the calls."""

    items: tuple[ToolCall | ParseError, ...] = ()
    format: str | None = None
    """"hermes", "json", or None when the reply attempts no call."""
    content: str = ""
    """The reply without the markup of the calls that parsed (what the assistant message's `content` holds)."""

    @property
    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(item for item in self.items if isinstance(item, ToolCall))

    @property
    def errors(self) -> tuple[ParseError, ...]:
        return tuple(item for item in self.items if isinstance(item, ParseError))

    @property
    def found(self) -> bool:
        """True when the reply attempts at least one call."""
        return bool(self.items)


def parse_tool_calls(text: str, id_prefix: str = "call_") -> ParsedCalls:
    """The tool calls in `text` (see the module docstring for the formats)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_tool_calls reads a str, got {type(text).__name__}")
    start, end = _answer_span(text)
    if _TAG_OPEN in text[start:end]:
        return _parse_tags(text, start, end, id_prefix)
    return _parse_plain_json(text, start, end, id_prefix)


def _answer_span(text: str) -> tuple[int, int]:
    """The part of the reply after its reasoning: after the last `</think>`, or before an unclosed `<think>`."""
    close = text.rfind("</think>")
    if close >= 0:
        return close + len("</think>"), len(text)
    open_ = text.find("<think>")
    return 0, (open_ if open_ >= 0 else len(text))


# -- Hermes / Qwen tags ----------------------------------------------------------------------------------------


def _parse_tags(text: str, start: int, end: int, id_prefix: str) -> ParsedCalls:
    builder = _Builder(id_prefix)
    parsed_spans = []
    for match in _TAG.finditer(text, start, end):
        if builder.full:
            break
        body = match.group(1).strip()
        fenced = _INNER_FENCE.match(body)
        if fenced:
            body = fenced.group(1).strip()
        value, error = _load_json(body)
        count_before, errors_before = builder.count, builder.errors
        if error is not None:
            if not builder.too_many(body):
                builder.fail(f"the text inside <tool_call> is not valid JSON ({error})", body)
        elif isinstance(value, list) and value:
            for item in value:
                builder.add(item, json.dumps(item))
        else:
            builder.add(value, body)
        if builder.errors == errors_before and builder.count > count_before:
            parsed_spans.append(match.span())  # only calls that parsed leave the content
    return builder.result("hermes", _remove_spans(text, parsed_spans))


# -- plain JSON ------------------------------------------------------------------------------------------------


def _parse_plain_json(text: str, start: int, end: int, id_prefix: str) -> ParsedCalls:
    """The whole reply when it is a call (or a list of calls); else every fenced block that is one."""
    whole = text[start:end].strip()
    for prefix in _PREFIXES:
        if whole.startswith(prefix):
            whole = whole[len(prefix) :].strip()
    if whole[:1] in ("{", "["):
        builder = _Builder(id_prefix)
        if _read_json_calls(builder, whole):
            return builder.result("json", "" if not builder.errors else text)
    builder = _Builder(id_prefix)
    parsed_spans = []
    for match in _FENCE.finditer(text, start, end):
        errors_before = builder.errors
        if _read_json_calls(builder, match.group(1).strip()) and builder.errors == errors_before:
            parsed_spans.append(match.span())
    return builder.result("json", _remove_spans(text, parsed_spans) if builder.count else text)


def _read_json_calls(builder: _Builder, body: str) -> bool:
    """Add the calls in `body` if it is a call or a list of calls; False when it is not trying to be one."""
    value, error = _load_json(body)
    if error is not None:
        if not any(f'"{key}"' in body for key in _CALL_KEYS):
            return False  # not JSON, and not trying to be a call
        builder.fail(f"the tool call is not valid JSON ({error})", body)
        return True
    items = value if isinstance(value, list) else [value]
    if not items or not all(_looks_like_call(item) for item in items):
        return False
    for item in items:
        builder.add(item, json.dumps(item))
    return True


def _looks_like_call(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    return any(key in item for key in _CALL_KEYS) or isinstance(item.get("function"), dict)


# -- shared ----------------------------------------------------------------------------------------------------


class _Builder:
    """Collects calls and errors, numbering every attempt."""

    def __init__(self, id_prefix: str) -> None:
        self.id_prefix = id_prefix
        self.items: list[ToolCall | ParseError] = []
        self.errors = 0

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def full(self) -> bool:
        """True once MAX_ATTEMPTS attempts and the note that the rest were ignored are in."""
        return self.count > MAX_ATTEMPTS

    def _next_id(self) -> str:
        return f"{self.id_prefix}{self.count}"

    def fail(self, message: str, snippet: str, name: str | None = None) -> None:
        if self.full:
            return
        self.items.append(ParseError(message, _snippet(snippet), self._next_id(), name))
        self.errors += 1

    def too_many(self, snippet: str) -> bool:
        if self.count < MAX_ATTEMPTS:
            return False
        self.fail(f"more than {MAX_ATTEMPTS} tool calls in one reply; the rest were ignored", snippet)
        return True

    def add(self, value: Any, snippet: str) -> None:
        if self.too_many(snippet):
            return
        if not isinstance(value, dict):
            kind = "an empty list" if value == [] else f"a JSON {_json_kind(value)}"
            self.fail(
                f'a tool call is a JSON object {{"name": ..., "arguments": {{...}}}}, got {kind}', snippet
            )
            return
        if isinstance(value.get("function"), dict):
            value = value["function"]  # the OpenAI envelope {"type": "function", "function": {...}}
        name = value.get("name")
        if not isinstance(name, str) or not name.strip():
            got = "no name" if name is None else f"name {name!r}"
            self.fail(
                f'the tool call has {got}; give the tool\'s name as a string: {{"name": "..."}}', snippet
            )
            return
        name = name.strip()
        key = next((k for k in _CALL_KEYS if k in value), None)
        arguments = value[key] if key else {}
        if arguments is None:
            arguments = {}
        if isinstance(arguments, str):
            decoded, error = _load_json(arguments)
            arguments = decoded if error is None and isinstance(decoded, dict) else arguments
        if not isinstance(arguments, dict):
            self.fail(
                f'the arguments of {name!r} must be a JSON object like {{"answer": "42"}}, got a JSON '
                f"{_json_kind(arguments)}",
                snippet,
                name,
            )
            return
        self.items.append(ToolCall(name=name, arguments=arguments, id=self._next_id()))

    def result(self, kind: str, content: str) -> ParsedCalls:
        return ParsedCalls(tuple(self.items), format=kind if self.items else None, content=content)


def _load_json(text: str) -> tuple[Any, str | None]:
    """(value, None), or (None, why it is not JSON)."""
    if not text:
        return None, "it is empty"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "it is nested too deeply"


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    pieces, last = [], 0
    for begin, end in spans:
        pieces.append(text[last:begin])
        last = end
    pieces.append(text[last:])
    return "".join(pieces).strip()


def _snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."
