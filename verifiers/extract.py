"""Final-answer extraction from a model's completion, kept apart from comparison.

Rules, in priority order (the first that finds something wins):
1. `<answer>...</answer>`: the last such block; a `\\boxed{}` inside it is preferred to its raw text.
2. `\\boxed{...}` / `\\fbox{...}` (nested braces allowed): the **last** outermost box is the answer; a box that
   only wraps another box is unwrapped. All distinct non-empty boxes are kept in `Extraction.boxed` so the
   verifier can refuse completions that box several different answers.
3. "the (final) answer is X" / "Answer: X": the last occurrence; X is the math span after it, or the text up to
   the end of the sentence or line; the whole sentence when the rest of it hedges or names another math span.
4. GSM8K style `#### X`: the last occurrence.
5. Only with the `last_number` profile (`strict=False`): the last number in the text (integer, decimal or `a/b`).
   With the `math_verify` profile ("The final answer is $X$. I hope it is correct." first, above boxes, as
   Math-Verify ranks it): the last LaTeX span (`$...$`, `\\(...\\)`, `\\[...\\]`), else a short bare
   answer whole (no sentence in it), else the last number, as Math-Verify reads completions that do not box.

Every scan is linear in the length of the text, so hostile inputs (a million characters, braces or boxes nested
10,000 deep, unclosed tags) cannot stall the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rlvr.verifiers.normalize import normalize_answer, strip_math_delimiters

_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_TOKEN = re.compile(r"\\(?:boxed|fbox)\s*\{|\\(?:boxed|fbox)[ \t]+([^\s$]+)|\\.|[{}]", re.DOTALL)
_ANSWER_IS = re.compile(r"(?:final\s+answer|the\s+answer|\banswer)\s*(?:is\s*:?|:)\s*", re.IGNORECASE)
_GSM8K = re.compile(r"####[ \t]*([^\n]*)")
_LAST_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?")
_PHANTOM = re.compile(r"^\s*(?:\\phantom\{[^{}]*\}\s*)*$")
# A sentence that states its value: "The largest $n$ is 34" -> 34 (the text after the last copula).
_STATED_VALUE = re.compile(
    r"[A-Za-z][^=]*?\s(?:is|are|equals|was|be)\s+(?!.*\s(?:is|are|equals|was|be)\s)(.+)"
)
_PROSE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}\s+[A-Za-z]{2,}")
# Display math may span lines; inline `$...$` and `\\(...\\)` may not (Math-Verify reads neither across lines).
_LAST_MATH_SPAN = re.compile(
    r"\$\$(.+?)\$\$|(?<!\\)\$((?:\\.|[^$\n\\])+?)\$|\\\(([^\n]+?)\\\)|\\\[(.+?)\\\]", re.DOTALL
)
_CONNECTORS_ONLY = re.compile(r"(?:[\s,;.]|\band\b|\bor\b)*", re.IGNORECASE)
_MINERVA = re.compile(
    r"final answer is:?\s*(?:\$\$(.+?)\$\$|(?<!\\)\$((?:\\.|[^$\\])+?)\$|\\\((.+?)\\\))\.?\s?I hope",
    re.IGNORECASE | re.DOTALL,
)
_QUALIFIED = re.compile(
    r"\b(?:not|no|never|cannot|neither|nor|without|least|most|less|more|greater|fewer|than|except|unless|wrong|"
    r"incorrect|impossible|approximately|about|around|nearly|almost)\b|n't\b",
    re.IGNORECASE,
)
_ONE_VALUE = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_MAX_BARE = 200  # a bare answer (the math_verify profile) longer than this is prose, not an answer
EXTRACTION_PROFILES = ("strict", "last_number", "math_verify")
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")
_MATH_SPANS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_CHOICE = re.compile(r"^\s*(?:\\text(?:bf)?\{\s*)?\(?\s*([A-E])\s*\)?(?:\s*\})?(?:[.:)]|\s|$)")
# A gold that *is* a choice: `B`, `(B)`, `B)`, `B.`, `\text{(B)}`, `\textbf{(B)}`, and nothing else.
_CHOICE_GOLD = re.compile(r"\s*(?:\\text(?:bf)?\{\s*)?(?:\(\s*[A-E]\s*\)|[A-E]\s*[).]?)\s*\}?\s*")
# After a choice letter, these make the answer an expression or a relation (`A = 7`, `B + 1`), not a choice.
_NOT_A_CHOICE_AFTER = re.compile(r"\s*(?:[=<>+*/^_-]|\\(?:cdot|times|le|ge|leq|geq|ne|neq)(?![a-zA-Z]))")

_HEDGE = re.compile(r"\b(?:either|or|maybe|perhaps|possibly)\b|\\(?:lor|vee)(?![a-zA-Z])", re.IGNORECASE)
_UNESCAPED_MATH_OPEN = re.compile(r"(?<!\\)\$|\\\(|\\\[")
_MATH_DELIMITER = re.compile(r"(?<!\\)\$|\\[()\[\]]")
_OTHER_CHOICE = re.compile(r"(?<![A-Za-z\\])[A-E](?![A-Za-z])")
_MAX_NORMALIZED = 10_000  # longer boxes are told apart by their raw text; normalising them buys nothing
_MAX_SPAN = 512  # longest "answer is" span kept; a real final answer is short


@dataclass(frozen=True)
class ExtractionConfig:
    """How final answers are found."""

    strict: bool = True
    """Strict mode: no last-number fallback; only an explicit answer (box, tag, "answer is", ####) counts."""
    max_boxed: int = 4
    """At most this many distinct boxed answers are kept; more marks the completion as listing answers."""
    profile: str = "strict"
    """"strict", "last_number" (as `strict=False`) or "math_verify": which fallback runs when no explicit
    answer is found (rule 5 of the module docstring)."""


@dataclass(frozen=True)
class Extraction:
    """What was found: the final answer (or None), the rule that found it, and every distinct boxed answer."""

    answer: str | None
    method: str
    boxed: tuple[str, ...] = ()
    too_many_boxes: bool = False


def find_boxed(text: str) -> list[str]:
    """Contents of the outermost closed `\\boxed{}` / `\\fbox{}` boxes, in order (one linear pass).

    A box inside another box is part of the outer box's answer (`\\boxed{\\boxed{3} \\text{ or } 4}` answers
    "3 or 4", not 3); a box that only wraps another box is unwrapped (`\\boxed{\\boxed{7}}` answers 7). Boxes
    are tracked by position and each outermost answer is sliced once, so even boxes nested 10,000 deep cost
    linear time.
    """
    start = min((i for i in (text.find("\\boxed"), text.find("\\fbox")) if i >= 0), default=-1)
    if start < 0:
        return []
    outermost: list[tuple[int, int] | str] = []  # (content start, content end), or the token of a bare box
    closed: dict[int, int] = {}  # content start -> content end, for every closed box
    stack: list[int] = []  # content start for a box, -1 for an ordinary brace
    open_boxes = 0
    for m in _BOX_TOKEN.finditer(text, start):
        token = m.group(0)
        if m.group(1) is not None:  # bare form: \boxed 5
            if open_boxes == 0:
                outermost.append(m.group(1))
        elif token.endswith("{") and token.startswith("\\") and len(token) > 2:
            stack.append(m.end())
            open_boxes += 1
        elif token == "{":
            stack.append(-1)
        elif token == "}" and stack:
            content_start = stack.pop()
            if content_start >= 0:
                open_boxes -= 1
                closed[content_start] = m.start()
                if open_boxes == 0:
                    outermost.append((content_start, m.start()))
    return [span if isinstance(span, str) else _unwrapped(text, *span, closed) for span in outermost]


def _unwrapped(text: str, begin: int, end: int, closed: dict[int, int]) -> str:
    """The content of a box, with boxes that wrap the whole content removed, one level at a time."""
    while True:
        first = begin
        while first < end and text[first].isspace():
            first += 1
        last = end
        while last > first and text[last - 1].isspace():
            last -= 1
        inner = _BOX_OPEN.match(text, first, last)
        if inner is None or closed.get(inner.end()) != last - 1:
            return text[begin:end]
        begin, end = inner.end(), last - 1


def find_answer_tag(text: str) -> str | None:
    """Content of the last `<answer>...</answer>` block, or None (linear: found from the end)."""
    lowered = text.lower()
    end = lowered.rfind("</answer>")
    if end < 0:
        return None
    start = lowered.rfind("<answer>", 0, end)
    return None if start < 0 else text[start + len("<answer>") : end]


def is_hedged(answer: str) -> bool:
    """True when an answer hedges between values: "either 3 or 4", "3, or maybe 4", `3 \\lor 4`."""
    return bool(_HEDGE.search(answer))


def _math_span(text: str) -> str:
    """The answer at the start of `text`: a leading math span, else the text up to the sentence's end.

    When the rest of the sentence after a leading math span hedges or names another math span
    ("$3$ or $4$", "$3$, $4$"), the whole sentence is the answer, so the verifier sees the hedge or the list.
    """
    text = text.lstrip(" *\t")[:_MAX_SPAN]
    for left, right in _MATH_SPANS:
        if text.startswith(left):
            end = _find_closing(text, right, len(left))
            if end > 0:
                rest = _sentence(text[end + len(right) :])
                if is_hedged(rest) or _UNESCAPED_MATH_OPEN.search(rest):
                    return _MATH_DELIMITER.sub("", text[: end + len(right)] + rest).strip().rstrip(",;")
                return text[len(left) : end].strip()
    return _stated_value(_sentence(text).strip("*").strip())


def _stated_value(sentence: str) -> str:
    """The value a sentence states ("The largest $n$ is 34." -> `34`); the sentence itself when it hedges or
    states nothing."""
    if is_hedged(sentence) or _QUALIFIED.search(sentence):
        return sentence  # "is not equal to 3", "at least 3": the value is not simply stated; read it whole
    match = _STATED_VALUE.fullmatch(sentence)
    if match is not None:
        return _math_span(match.group(1)) or sentence
    values = _ONE_VALUE.findall(sentence)
    if _PROSE.search(sentence) and len(values) == 1 and not _UNESCAPED_MATH_OPEN.search(sentence):
        return values[0]  # "Jane started growing Sphere 3 hours ago": the one value the sentence names
    return sentence


def _sentence(text: str) -> str:
    """`text` up to the end of its sentence or line."""
    end = _SENTENCE_END.search(text)
    return text[: end.start()] if end else text


def _find_closing(text: str, delimiter: str, start: int) -> int:
    """Index of the first `delimiter` at or after `start` that is not escaped (`\\$` is a dollar sign, not the
    end of a `$...$` span); -1 when there is none."""
    end = text.find(delimiter, start)
    while end > 0:
        before = end
        while before > start and text[before - 1] == "\\":
            before -= 1
        if (end - before) % 2 == 0:
            return end
        end = text.find(delimiter, end + 1)
    return end


def _distinct(answers: list[str]) -> list[str]:
    """Distinct non-empty answers by normalised spelling, keeping the last spelling of each, in order."""
    seen: dict[str, str] = {}
    keys: dict[
        str, str
    ] = {}  # raw spelling -> normalised key: a completion repeating one box normalises it once
    for answer in answers:
        key = keys.get(answer)
        if key is None:
            if _PHANTOM.match(answer):
                continue
            key = keys[answer] = normalize_answer(answer) if len(answer) <= _MAX_NORMALIZED else answer
        seen.pop(key, None)
        seen[key] = answer
    return list(seen.values())


def extract_answer(text: str, config: ExtractionConfig = ExtractionConfig()) -> Extraction:
    """Find the final answer in a completion by the rules in the module docstring."""
    inner = find_answer_tag(text)
    if inner is not None:
        boxes = _distinct(find_boxed(inner))
        if boxes:
            return _boxed_extraction(boxes, config, "answer_tag_boxed")
        answer = strip_math_delimiters(inner.strip())
        return Extraction(answer or None, "answer_tag" if answer else "none")

    if config.profile == "math_verify":
        minerva = None
        for minerva in _MINERVA.finditer(text[-_MAX_SPAN * 4 :]):  # noqa: B007 (the last match is wanted)
            pass
        if minerva:  # Math-Verify ranks "The final answer is $X$. I hope it is correct." above any box
            return Extraction(next(g for g in minerva.groups() if g is not None).strip(), "final_answer_is")

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

    if config.profile == "math_verify":
        return _math_verify_fallback(text)
    if not config.strict or config.profile == "last_number":
        return _last_number(text)
    return Extraction(None, "none")


def _last_number(text: str) -> Extraction:
    numbers = _LAST_NUMBER.findall(text)
    if numbers:
        return Extraction(numbers[-1].replace(",", "").replace(" ", ""), "last_number")
    return Extraction(None, "none")


def _math_verify_fallback(text: str) -> Extraction:
    """A short bare answer whole (no math delimiters, no prose); else the last LaTeX span or the last number,
    whichever ends later in the text."""
    text = text[-100_000:]
    bare = text.strip().rstrip(".")
    if bare and len(bare) <= _MAX_BARE and not _PROSE.search(bare) and not _MATH_DELIMITER.search(bare):
        return Extraction(bare, "bare")
    spans = list(_LAST_MATH_SPAN.finditer(text[-_MAX_SPAN * 8 :]))
    if len(spans) > 1 and _CONNECTORS_ONLY.fullmatch(_LAST_MATH_SPAN.sub("", bare)):
        # "$1$ and $2$ and $3$": one list; delimiters dropped, connectors kept (so "$3$ or $4$" stays a hedge)
        return Extraction(_MATH_DELIMITER.sub("", bare).strip(), "latex_list")
    span = spans[-1] if spans else None
    number = None
    for number in _LAST_NUMBER.finditer(text):  # noqa: B007 (the last match is wanted)
        pass
    if span is not None and (number is None or span.end() >= number.end()):
        last = next(group for group in span.groups() if group is not None).strip()
        if last:
            return Extraction(last, "last_latex")
    return _last_number(text)


def _boxed_extraction(boxes: list[str], config: ExtractionConfig, method: str) -> Extraction:
    too_many = len(boxes) > config.max_boxed
    return Extraction(
        boxes[-1].strip(), method, tuple(b.strip() for b in boxes[-config.max_boxed :]), too_many
    )


def is_choice_gold(gold: str) -> bool:
    """True when the gold answer is a multiple-choice letter and nothing more (`B`, `(B)`, `B)`, `\\text{(B)}`);
    an assignment or expression that starts with a capital (`A = 5`, `C = 2\\pi`) is not a choice."""
    return len(gold) <= 24 and _CHOICE_GOLD.fullmatch(strip_math_delimiters(gold)) is not None


def extract_choice(answer: str) -> str | None:
    """The multiple-choice letter an answer names (`C`, `(C)`, `\\text{(C)}`, `(C) 42`), or None.

    An answer that names a second letter (`A \\text{ and } B`, `A.B`) names no single choice: None.
    """
    text = strip_math_delimiters(answer)
    match = _CHOICE.match(text)
    if match is None:
        return None
    letter = match.group(1)
    if match.group(0).rstrip()[-1:] == letter and _NOT_A_CHOICE_AFTER.match(text, match.end()):
        return None  # `A = 7`, `B + 1`: a bare letter followed by an operator is a variable, not a choice
    if set(_OTHER_CHOICE.findall(text[match.end() :])) - {letter}:
        return None
    return letter
