"""String normalisation of math answers, used before the exact fast path and to tell boxed answers apart.

The rules only remove presentation that never changes a value: math delimiters, `\\left`/`\\right`, `\\dfrac`,
spacing commands, text units (`\\text{ dollars}`, `\\mbox{cm}`, but not constants such as `\\mathrm{e}` or
value words such as `\\text{ thousand}`), degree and dollar signs, thousands separators
(`1,000`, `1{,}000`, `1,\\!000`), `\\textbf{}` emphasis, parentheses around a lone number (`(073)`), plain-word
units after a lone number (`18 dollars`, but never value words such as `5 thousand` or `3 pi`) and a trailing full
stop. Anything subtler is left to Math-Verify, which receives the unnormalised answer.
"""

from __future__ import annotations

import re

_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad\b|~")
_FRAC_VARIANTS = re.compile(r"\\[dt]frac")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")
# A unit in \text{...} / \mbox{...} / \mathrm{...} made only of letters and spaces, optionally squared/cubed.
_TEXT_UNIT = re.compile(r"\\(?:text|mbox|textrm|mathrm)\{\s*([a-zA-Z][a-zA-Z .]*)\}(?:\^\{?[23]\}?)?")
_CONSTANTS = frozenset({"e", "i"})  # \mathrm{e}, \text{i}: Euler's number and the imaginary unit, not units
_DEGREE = re.compile(r"\^\{?\\circ\}?|°")
_DOLLAR_SIGN = re.compile(r"\\\$")
# Thousands groups: a head of 1-3 digits not starting with 0 (`0,111` is a decimal comma, never a group), then
# groups of exactly three digits after a comma, or after a space, `\\,`, `\\!`, a thin or no-break space.
_THOUSANDS = re.compile(r"(?<![\d.])([1-9]\d{0,2}(?:,\d{3})+)(?![\d])")
_SPACED_THOUSANDS = re.compile(r"(?<![\d.,])([1-9]\d{0,2}(?:[ \u2009\u202f\u00a0]\d{3})+)(?![\d,])")
# `{,}` and `,\!` are LaTeX spellings of a comma between digits (`10{,}000`, `10,\!080`); they render as `,`.
_LATEX_COMMA = re.compile(r"(?<=\d)(?:\{,\}|,\\!\s*)(?=\d)")
_BANG_BETWEEN_DIGITS = re.compile(r"(?<=\d)\\!\s*(?=\d{3}(?!\d))")
_TEXTBF = re.compile(r"\\textbf\{([^{}]*)\}")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_PAREN_NUMBER = re.compile(rf"\(\s*({_NUMBER})\s*\)")
_WORD_UNITS = re.compile(rf"({_NUMBER})((?:\s+[a-zA-Z]{{2,}}){{1,3}})")
# Words that change or qualify the value of the number before them; an answer ending in one is left alone.
_VALUE_WORDS = frozenset(
    """and or not to of by over per plus minus times divided mod modulo squared cubed root roots power pi ln lg
    log sin cos tan cot sec csc exp sqrt percent percentage am pm hundred thousand million billion trillion
    dozen dozens score half halves third thirds quarter quarters fourth fourths fifth fifths sixth sixths
    seventh sevenths eighth eighths ninth ninths tenth tenths hundredth hundredths thousandth thousandths
    factorial""".split()  # noqa: SIM905
)
_WHITESPACE = re.compile(r"\s+")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def strip_math_delimiters(text: str) -> str:
    """Remove one pair of enclosing `$...$`, `$$...$$`, `\\(...\\)` or `\\[...\\]`."""
    text = text.strip()
    for left, right in _DELIMITERS:
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left) : len(text) - len(right)].strip()
    return text


def normalize_answer(answer: str) -> str:
    """A canonical spelling of `answer` for exact comparison; equal outputs mean equal values."""
    text = strip_math_delimiters(answer)
    if _PLAIN_NUMBER.fullmatch(text):  # most answers: no rule below changes them
        return text
    if "{,}" in text or ",\\!" in text:
        text = _LATEX_COMMA.sub(",", text)
    if "\\textbf" in text:
        text = _TEXTBF.sub(r"\1", text)
    if "\\!" in text:
        text = _BANG_BETWEEN_DIGITS.sub("", text)  # `1\\!000`: a negative thin space inside a number
    text = _SPACING.sub(" ", text)
    text = _SPACED_THOUSANDS.sub(lambda m: re.sub(r"\D", "", m.group(1)), text)
    text = _FRAC_VARIANTS.sub(r"\\frac", text)
    text = _LEFT_RIGHT.sub("", text)
    text = _TEXT_UNIT.sub(_drop_unit, text)
    text = _DEGREE.sub("", text)
    text = _DOLLAR_SIGN.sub("", text)
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _WHITESPACE.sub(" ", text).strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    return _lone_number(text)


def _drop_unit(match: re.Match) -> str:
    """Remove a text unit, unless it is a constant (`\\mathrm{e}`) or changes the value (`\\text{ thousand}`,
    `\\text{ or }`)."""
    words = match.group(1).split()
    if match.group(1).strip() in _CONSTANTS or any(word.lower().strip(".") in _VALUE_WORDS for word in words):
        return match.group(0)
    return ""


def _lone_number(text: str) -> str:
    """`(073)` -> `073`; `18 dollars` -> `18` unless a word is a value word; anything else unchanged."""
    if text.startswith("("):
        paren = _PAREN_NUMBER.fullmatch(text)
        return paren.group(1) if paren else text
    if " " in text:
        units = _WORD_UNITS.fullmatch(text)
        if units and not any(word.lower() in _VALUE_WORDS for word in units.group(2).split()):
            return units.group(1)
    return text
