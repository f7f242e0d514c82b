"""String normalisation of math answers, used before the exact fast path and for hedge detection.

The rules only remove presentation that never changes a value: math delimiters, `\\left`/`\\right`, `\\dfrac`,
spacing commands, text units (`\\text{ dollars}`, `\\mbox{cm}`), degree and dollar signs, thousands separators
and a trailing full stop. Anything subtler is left to Math-Verify, which receives the unnormalised answer.
"""

from __future__ import annotations

import re

_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad\b|~")
_FRAC_VARIANTS = re.compile(r"\\[dt]frac")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")
# A unit in \text{...} / \mbox{...} / \mathrm{...} made only of letters and spaces, optionally squared/cubed.
_TEXT_UNIT = re.compile(r"\\(?:text|mbox|textrm|mathrm)\{\s*[a-zA-Z][a-zA-Z .]*\}(?:\^\{?[23]\}?)?")
_DEGREE = re.compile(r"\^\{?\\circ\}?|°")
_DOLLAR_SIGN = re.compile(r"\\\$")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d])")
_WHITESPACE = re.compile(r"\s+")


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
    text = _SPACING.sub(" ", text)
    text = _FRAC_VARIANTS.sub(r"\\frac", text)
    text = _LEFT_RIGHT.sub("", text)
    text = _TEXT_UNIT.sub("", text)
    text = _DEGREE.sub("", text)
    text = _DOLLAR_SIGN.sub("", text)
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _WHITESPACE.sub(" ", text).strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    return text
