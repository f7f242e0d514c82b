"""Final-answer extraction from a model's completion, kept apart from comparison.

Rules, in priority order (the first that finds something wins):
1. `<answer>...</answer>`: the last such block; a `\\boxed{}` inside it is preferred to its raw text.
2. `\\boxed{...}` / `\\fbox{...}` (nested braces allowed): the **last** box is the answer. All distinct non-empty
   boxes are kept in `Extraction.boxed` so the verifier can refuse completions that box several different answers.
3. "the (final) answer is X" / "Answer: X": the last occurrence; X is the math span after it, or the text up to
   the end of the sentence or line.
4. GSM8K style `#### X`: the last occurrence.
5. Only when `strict=False`: the last number in the text (integer, decimal or `a/b`).

Every scan is linear in the length of the text, so hostile inputs (a million characters, braces nested
10,000 deep) cannot stall the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rlvr.verifiers.normalize import normalize_answer, strip_math_delimiters

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_BOX_TOKEN = re.compile(r"\\(?:boxed|fbox)\s*\{|\\(?:boxed|fbox)[ \t]+([^\s$]+)|\\.|[{}]", re.DOTALL)
_ANSWER_IS = re.compile(r"(?:final\s+answer|the\s+answer|\banswer)\s*(?:is\s*:?|:)\s*", re.IGNORECASE)
_GSM8K = re.compile(r"####[ \t]*([^\n]*)")
_LAST_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?")
_PHANTOM = re.compile(r"^\s*(?:\\phantom\{[^{}]*\}\s*)*$")
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")
_MATH_SPANS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_CHOICE = re.compile(r"^\s*(?:\\text(?:bf)?\{\s*)?\(?\s*([A-E])\s*\)?(?:\s*\})?(?:[.:)]|\s|$)")

_MAX_SPAN = 512  # longest "answer is" span kept; a real final answer is short


@dataclass(frozen=True)
class ExtractionConfig:
    """How final answers are found."""

    strict: bool = True
    """Strict mode: no last-number fallback; only an explicit answer (box, tag, "answer is", ####) counts."""
    max_boxed: int = 4
    """At most this many distinct boxed answers are kept; more marks the completion as listing answers."""


@dataclass(frozen=True)
class Extraction:
    """What was found: the final answer (or None), the rule that found it, and every distinct boxed answer."""

    answer: str | None
    method: str
    boxed: tuple[str, ...] = ()
    too_many_boxes: bool = False


def find_boxed(text: str) -> list[str]:
    """Contents of every closed `\\boxed{}` / `\\fbox{}` in order of their closing brace (one linear pass)."""
    start = min((i for i in (text.find("\\boxed"), text.find("\\fbox")) if i >= 0), default=-1)
    if start < 0:
        return []
    found: list[tuple[int, str]] = []
    stack: list[int] = []  # content start for a box, -1 for an ordinary brace
    for m in _BOX_TOKEN.finditer(text, start):
        token = m.group(0)
        if m.group(1) is not None:  # bare form: \boxed 5
            found.append((m.start(), m.group(1)))
        elif token.endswith("{") and token.startswith("\\") and len(token) > 2:
            stack.append(m.end())
        elif token == "{":
            stack.append(-1)
        elif token == "}" and stack:
            content_start = stack.pop()
            if content_start >= 0:
                found.append((content_start, text[content_start : m.start()]))
    # Order by where each box starts, so the last box written is last even when boxes are nested.
    return [content for _, content in sorted(found, key=lambda item: item[0])]


def _math_span(text: str) -> str:
    """The answer at the start of `text`: a leading math span, else the text up to the sentence's end."""
    text = text.lstrip(" *\t")[:_MAX_SPAN]
    for left, right in _MATH_SPANS:
        if text.startswith(left):
            end = text.find(right, len(left))
            if end > 0:
                return text[len(left) : end].strip()
    end = _SENTENCE_END.search(text)
    span = text[: end.start()] if end else text
    return span.strip().strip("*").strip()


def _distinct(answers: list[str]) -> list[str]:
    """Distinct non-empty answers by normalised spelling, keeping the last spelling of each, in order."""
    seen: dict[str, str] = {}
    for answer in answers:
        if _PHANTOM.match(answer):
            continue
        key = normalize_answer(answer)
        seen.pop(key, None)
        seen[key] = answer
    return list(seen.values())


def extract_answer(text: str, config: ExtractionConfig = ExtractionConfig()) -> Extraction:
    """Find the final answer in a completion by the rules in the module docstring."""
    tags = _ANSWER_TAG.findall(text)
    if tags:
        inner = tags[-1]
        boxes = _distinct(find_boxed(inner))
        if boxes:
            return _boxed_extraction(boxes, config, "answer_tag_boxed")
        answer = strip_math_delimiters(inner.strip())
        return Extraction(answer or None, "answer_tag" if answer else "none")

    boxes = _distinct(find_boxed(text))
    if boxes:
        return _boxed_extraction(boxes, config, "boxed")

    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        answer = _math_span(text[matches[-1].end() :])
        if answer:
            return Extraction(answer, "answer_is")

    gsm8k = _GSM8K.findall(text)
    if gsm8k and gsm8k[-1].strip():
        return Extraction(gsm8k[-1].strip(), "gsm8k")

    if not config.strict:
        numbers = _LAST_NUMBER.findall(text)
        if numbers:
            return Extraction(numbers[-1].replace(",", "").replace(" ", ""), "last_number")
    return Extraction(None, "none")


def _boxed_extraction(boxes: list[str], config: ExtractionConfig, method: str) -> Extraction:
    too_many = len(boxes) > config.max_boxed
    return Extraction(
        boxes[-1].strip(), method, tuple(b.strip() for b in boxes[-config.max_boxed :]), too_many
    )


def extract_choice(answer: str) -> str | None:
    """The multiple-choice letter an answer names (`C`, `(C)`, `\\text{(C)}`, `(C) 42`), or None."""
    match = _CHOICE.match(strip_math_delimiters(answer))
    return match.group(1) if match else None
