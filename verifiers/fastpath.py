"""Exact decisions for plain numbers without sympy: integers, decimals and fractions.

`parse_number` accepts only short, fully numeric spellings (after `normalize_answer`), so it is cheap and can
never be driven into a slow path (`1e999999999` is refused, not expanded). When both the gold and the answer are
plain numbers the fast path decides; otherwise the pair goes to Math-Verify in the worker pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_MAX_LEN = 64
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_SLASH = re.compile(r"([+-]?\d+)\s*/\s*(\d+)")
_REPEATING = re.compile(r"([+-]?)(\d*)\.(\d*)\\overline\s*\{(\d+)\}")
_FRAC = re.compile(r"([+-]?)\\frac\s*(?:\{\s*([+-]?\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))")


@dataclass(frozen=True)
class PlainNumber:
    """A number read exactly; `exact` is False for decimals, which are compared with a tolerance."""

    value: Fraction
    exact: bool


def parse_number(text: str) -> PlainNumber | None:
    """Read `text` as an integer, decimal, `a/b`, `\\frac{a}{b}` or a repeating decimal (`0.1\\overline{6}`,
    read exactly); None for anything else."""
    text = text.strip()
    if not text or len(text) > _MAX_LEN:
        return None
    if _INTEGER.fullmatch(text):
        return PlainNumber(Fraction(int(text)), True)
    if _DECIMAL.fullmatch(text):
        return PlainNumber(Fraction(text), False)
    repeating = _REPEATING.fullmatch(text)
    if repeating:
        sign, whole, fixed, period = repeating.groups()
        value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed))
        value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
        return PlainNumber(-value if sign == "-" else value, True)
    slash = _SLASH.fullmatch(text)
    if slash:
        return _fraction(slash.group(1), slash.group(2))
    frac = _FRAC.fullmatch(text)
    if frac:
        sign, numerator, denominator = (
            frac.group(1),
            frac.group(2) or frac.group(3),
            frac.group(4) or frac.group(5),
        )
        number = _fraction(numerator, denominator)
        if number is not None and sign == "-":
            return PlainNumber(-number.value, True)
        return number
    return None


_DECIMAL_COMMA = re.compile(r"([+-]?\d+),(\d+)")
_THOUSANDS_GROUPS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+")


def parse_decimal_comma(text: str) -> PlainNumber | None:
    """Read a lone `a,b` as the decimal `a.b` when `,b` cannot be a thousands separator (`0,111`, `1000,99`,
    `3,5`); `1,000` and `12,345,678` are thousands groups and stay unread here. Only an answer is read this way,
    and only against a gold that is one number without a comma (so a list gold `2,3` is never `2.3`)."""
    match = _DECIMAL_COMMA.fullmatch(text.strip())
    if match is None or _THOUSANDS_GROUPS.fullmatch(text.strip()):
        return None
    return PlainNumber(Fraction(f"{match.group(1)}.{match.group(2)}"), False)


def _fraction(numerator: str, denominator: str) -> PlainNumber | None:
    if int(denominator) == 0:
        return None
    return PlainNumber(Fraction(int(numerator), int(denominator)), True)


def numbers_equal(gold: PlainNumber, pred: PlainNumber, rel_tol: float) -> bool:
    """Exact equality for two exact numbers; with a decimal on either side,
    `|gold - pred| <= rel_tol * max(1, |gold|, |pred|)` (so 1/3 == 0.333333 at the default 1e-6)."""
    if gold.exact and pred.exact:
        return gold.value == pred.value
    scale = max(Fraction(1), abs(gold.value), abs(pred.value))
    return abs(gold.value - pred.value) <= Fraction(rel_tol) * scale
