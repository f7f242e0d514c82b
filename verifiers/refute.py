"""Numeric refutation: two answers whose values clearly differ are `wrong`, decided without sympy.

Most wrong answers differ from the gold by a sign or a digit (`-2\\sqrt{5}` for `2\\sqrt{5}`, `(16,-29)` for
`(15,-29)`, `13\\pi` for `12\\pi`), and Math-Verify spends 2-60 ms on each, mostly in its ANTLR parser. Here both
sides are evaluated at 60 significant digits (mpmath) and a pair whose values differ by more than a relative 1e-6
is `wrong`. Only a difference is decided: equal values still go to Math-Verify, since agreement at one point is no
proof of equality.

Why a difference is a proof. Every symbol gets one value: `\\pi` and `e` their constants, `i` the imaginary unit,
any other lowercase letter a fixed positive number. Math-Verify reads each letter either as that constant or as a
free symbol, and declares equality only when the difference is zero for every value of the free symbols (sympy's
`simplify`, structural equality), so a nonzero difference at one point refutes it. The subset read here is one
where its reading and ours are the same function: integers, `\\frac`, `\\sqrt` and `\\sqrt[n]` of positive reals,
`+ - * / ^ \\cdot \\times`, implicit products, braces and parentheses, and a base subscript after a number
(`2516_8`, which Math-Verify reads as 2516). Both sides must name the same letters (`2\\sqrt{2} cm` and
`5 thousand` are units and words, which Math-Verify may drop). Anything else makes `refutes` return False
(undecided): decimals (Math-Verify rounds them), uppercase letters, functions and `f(x)`, `\\pi(2)` (a call to
Math-Verify), other subscripts, percent, degrees, relations, text; and the spots where Math-Verify is not plain
arithmetic: juxtaposed numbers (`2(3)` and `(2)(3)` are 5 to it, `1\\frac{4}{5}` is a mixed number), a number
right after an atom (`x2`), `2{3}`, an unbraced multi-digit exponent (`2^10`), `1/2x`; and values we cannot be
sure of: a non-integer power or a root of a negative or complex number (principal or real branch), a sum that
cancels more than 30 of the 60 digits.

Lists, sets and intervals are compared by their sets of values, which every reading (tuple, set, interval) keeps:
comma-separated elements in the same brackets on both sides (`(a, b)`, `[a, b)`, `\\{a, b\\}`, or none; a value
against a bare list is the set of itself), constant elements, `\\infty` allowed, `a \\pm b` standing for both
values as Math-Verify expands it. A half-open `(a, b]` must have a < b (else it is the empty set to Math-Verify).
Unions of intervals are compared by their unique disjoint form; matrices of the same rectangular shape cell by
cell.

Checked against Math-Verify: every pair refuted on the regression table, Math-Verify's own 270 rows, six seeds of
the RL-shaped benchmark and 166,000 random pairs of this subset (and its neighbours) was judged wrong by
Math-Verify as well (`tests/verifiers/test_refute.py` keeps the cases that shaped these rules).
"""

from __future__ import annotations

import re
import threading
from typing import Any

_TOKEN = re.compile(r"\s*(\\[a-zA-Z]+|\\[{}]|\d+|[a-z]|[-+*/^(){}\[\],])")
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad(?![a-zA-Z])|~|\\(?:left|right)(?![a-zA-Z])")
_FRAC = re.compile(r"\\[dt]frac(?![a-zA-Z])")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
_OPEN = frozenset({"(", "[", "\\{"})
_CLOSERS = frozenset({")", "]", "\\}"})
_PRODUCT = frozenset({"*", "\\cdot", "\\times"})
_ATOM_START = frozenset({"(", "\\frac", "\\sqrt", "\\pi"})
MAX_CHARS = 300
MAX_ELEMENTS = 32
DIGITS = 60
_REL_DIFFERENCE = 1e-6
_MAX_EXPONENT = 10_000
_INF = float("inf")
_PLUS_MINUS = frozenset({"\\pm", "\\mp"})
_BARE = ("", "")
_SAME = 1e-40
_MATRIX = re.compile(r"\\begin\{([pbB]?matrix)\}(.*)\\end\{\1\}", re.DOTALL)
_BASE = re.compile(r"(?<![\w.\\}])(\d+)_(?:\{\d+\}|\d)")

_local = threading.local()


class _Undecided(Exception):
    """The text is outside the subset, or its value is not reliable."""


def refutes(gold: str, answer: str) -> bool:
    """True when `gold` and `answer` (extracted answers, math delimiters removed) certainly differ in value."""
    gold, answer = gold.strip(), answer.strip()
    if len(gold) > MAX_CHARS or len(answer) > MAX_CHARS:
        return False
    if _thousands(gold) or _thousands(answer):
        return False  # `1,000` and `10,\\!080` are one number to Math-Verify, not the set {1, 0}
    try:
        gold_matrix, answer_matrix = _matrix(gold), _matrix(answer)
        if gold_matrix is not None or answer_matrix is not None:
            return (
                gold_matrix is not None
                and answer_matrix is not None
                and _matrices_differ(gold_matrix, answer_matrix)
            )
        gold_tokens, answer_tokens = _tokens(gold), _tokens(answer)
        if "\\cup" in gold_tokens or "\\cup" in answer_tokens:
            return _unions_differ(gold_tokens, answer_tokens)
        gold_list, answer_list = _as_list(gold_tokens), _as_list(answer_tokens)
        plus_minus = any(token in _PLUS_MINUS for token in gold_tokens + answer_tokens)
        if gold_list is None and answer_list is None and not plus_minus:
            return _values_differ([gold_tokens], [answer_tokens])
        # a value is the set of itself to Math-Verify against a bare list, and `a \pm b` the set {a + b, a - b}
        gold_list = gold_list or (_BARE, [gold_tokens])
        answer_list = answer_list or (_BARE, [answer_tokens])
        if gold_list[0] != answer_list[0]:
            return False  # different brackets: Math-Verify has rules for these (`(1, 2)` equals `1, 2`)
        return _lists_differ(gold_list, answer_list)
    except (_Undecided, ValueError, ZeroDivisionError, OverflowError):
        return False


def _thousands(text: str) -> bool:
    """Whether `text` could be one number with thousands separators (spacing and `{,}` ignored)."""
    return _THOUSANDS.fullmatch(_SPACING.sub("", text).replace("{,}", ",").replace(" ", "")) is not None


def _values_differ(gold: list[list[str]], answer: list[list[str]]) -> bool:
    """Whether some expression of `gold` clearly differs from the one at the same place in `answer`."""
    if _variables(gold) != _variables(answer):
        return False  # `2\\sqrt{2} cm`, `5 thousand`: units and words, which Math-Verify may drop
    numbers = _numbers()
    return any(
        _differ(_Evaluator(numbers, g).value(), _Evaluator(numbers, a).value())
        for g, a in zip(gold, answer, strict=True)
    )


def _lists_differ(
    gold: tuple[tuple[str, str], list[list[str]]], answer: tuple[tuple[str, str], list]
) -> bool:
    """Lists in the same brackets differ when their sets of values do."""
    gold_values = [value for tokens in gold[1] for value in _element(tokens)]
    answer_values = [value for tokens in answer[1] for value in _element(tokens)]
    if gold[0] in (("(", "]"), ("[", ")")):  # a half-open interval, nothing else
        if not len(gold[1]) == len(answer[1]) == len(gold_values) == len(answer_values) == 2:
            return False
        if not (_before(*gold_values) and _before(*answer_values)):
            return False  # `(3, 3]` and `(4, 4]` are both the empty set to Math-Verify
    return _lone(gold_values, answer_values) or _lone(answer_values, gold_values)


def _matrix(text: str) -> list[list[list[str]]] | None:
    """The cells' tokens, row by row, of a `pmatrix` / `bmatrix` / `matrix`; None when `text` is not one."""
    match = _MATRIX.fullmatch(text)
    if match is None:
        return None
    rows = [row for row in re.split(r"\\\\", match.group(2)) if row.strip()]
    if not rows or len(rows) > MAX_ELEMENTS:
        raise _Undecided("matrix size")
    return [[_tokens(cell) for cell in row.split("&")] for row in rows]


def _matrices_differ(gold: list[list[list[str]]], answer: list[list[list[str]]]) -> bool:
    """Matrices of the same shape differ when a cell clearly does (Math-Verify compares them cell by cell)."""
    shape = [len(row) for row in gold]
    if shape != [len(row) for row in answer] or len(set(shape)) != 1:
        return False  # another shape (a row may be a tuple to Math-Verify), or rows of different lengths
    return _values_differ([c for row in gold for c in row], [c for row in answer for c in row])


def _unions_differ(gold: list[str], answer: list[str]) -> bool:
    """Unions of intervals differ when their disjoint forms do (the form of a set of reals is unique)."""
    gold_form, answer_form = _disjoint(_union(gold)), _disjoint(_union(answer))
    if len(gold_form) != len(answer_form):
        return True
    for gold_interval, answer_interval in zip(gold_form, answer_form, strict=True):
        for (g_value, g_open), (a_value, a_open) in zip(gold_interval, answer_interval, strict=True):
            if _differ(g_value, a_value):
                return True
            if not _same(g_value, a_value):
                raise _Undecided("nearly equal endpoints")
            if g_open != a_open:
                return True
    return False


def _union(tokens: list[str]) -> list[tuple[tuple[Any, bool], tuple[Any, bool]]]:
    """The intervals of `a \\cup b \\cup ...`, as ((low, open), (high, open)), each with low < high."""
    parts: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        depth += token in _OPEN or token == "{"
        depth -= token in _CLOSERS or token == "}"
        if token == "\\cup" and depth == 0:
            parts.append([])
        else:
            parts[-1].append(token)
    intervals = []
    for part in parts:
        found = _as_list(part) if part else None
        if (
            found is None
            or found[0][0] not in ("(", "[")
            or found[0][1] not in (")", "]")
            or len(found[1]) != 2
        ):
            raise _Undecided("not an interval")
        (low, *rest), (high, *more) = (_element(tokens) for tokens in found[1])
        if rest or more:
            raise _Undecided("a \\pm in an interval")
        if not _before(low, high):
            raise _Undecided("empty or reversed interval")
        # an infinite end is always open (sympy's `Interval(-oo, 2)`), whatever bracket it was written with
        low_open, high_open = found[0][0] == "(" or abs(low) == _INF, found[0][1] == ")" or abs(high) == _INF
        intervals.append(((low, low_open), (high, high_open)))
    return intervals


def _disjoint(intervals: list) -> list:
    """Sort and merge overlapping or touching intervals into the unique disjoint form of their union."""
    merged: list = []
    # by lower end, a closed one first where two start at the same point, so the merged start is the closed one
    for low, high in sorted(intervals, key=lambda interval: (interval[0][0].real, interval[0][1])):
        if merged:
            last_low, last_high = merged[-1]
            touching = _equal(low[0], last_high[0])
            if _before(low[0], last_high[0]) or (touching and not (low[1] and last_high[1])):
                if _equal(low[0], last_low[0]) and not low[1]:
                    last_low = low  # the same start, closed in this one
                if _before(last_high[0], high[0]):
                    last_high = high
                elif _equal(last_high[0], high[0]):
                    last_high = (high[0], high[1] and last_high[1])  # closed if either side is
                merged[-1] = (last_low, last_high)
                continue
        merged.append((low, high))
    return merged


def _equal(a: Any, b: Any) -> bool:
    """`_same`, and undecided for values that neither differ clearly nor are the same."""
    if _same(a, b):
        return True
    if not _differ(a, b):
        raise _Undecided("nearly equal values")
    return False


class _Numbers:
    """A private mpmath context at `DIGITS` digits (mpmath's global one is shared and mutable) and the constants
    the evaluator needs, computed once per thread."""

    def __init__(self) -> None:
        import mpmath  # imported on first use: most pairs never get here

        ctx = mpmath.MPContext()
        ctx.dps = DIGITS
        self.ctx = ctx
        self.epsilon = ctx.mpf(10) ** (-DIGITS // 2)
        self.pi = ctx.mpc(ctx.pi)
        # any fixed positive values will do for letters (see the module docstring); these are unlikely roots
        self.letters = {chr(code): ctx.mpc(ctx.sqrt(code - 95) + ctx.mpf(1) / 7) for code in range(97, 123)}
        self.letters.update(e=ctx.mpc(ctx.e), i=ctx.mpc(0, 1))


def _numbers() -> _Numbers:
    numbers = getattr(_local, "numbers", None)
    if numbers is None:
        numbers = _local.numbers = _Numbers()
    return numbers


def _tokens(text: str) -> list[str]:
    # `2516_8`: Math-Verify drops a base subscript and reads 2516
    text = _BASE.sub(r"\1", _FRAC.sub(r"\\frac", _SPACING.sub(" ", text))).strip()
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _Undecided(text[position:])
        tokens.append(match.group(1))
        position = match.end()
    if not tokens:
        raise _Undecided("empty")
    return tokens


def _variables(expressions: list[list[str]]) -> set[str]:
    return {t for tokens in expressions for t in tokens if len(t) == 1 and t.isalpha() and t not in "ei"}


def _as_list(tokens: list[str]) -> tuple[tuple[str, str], list[list[str]]] | None:
    """((opening, closing), elements) when `tokens` is a comma-separated list, bracketed or bare; else None."""
    brackets = ("", "")
    if tokens[0] in _OPEN and tokens[-1] in _CLOSERS and _closing(tokens, 0) == len(tokens) - 1:
        brackets, tokens = (tokens[0], tokens[-1]), tokens[1:-1]
    elements: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        depth += token in _OPEN or token == "{"
        depth -= token in _CLOSERS or token == "}"
        if token == "," and depth == 0:
            elements.append([])
        else:
            elements[-1].append(token)
    if len(elements) < 2:
        return None
    if len(elements) > MAX_ELEMENTS or not all(elements):
        raise _Undecided("too many or empty elements")
    return brackets, elements


def _depths(tokens: list[str]) -> list[int]:
    """The bracket depth at each token (an opening bracket is at the outer depth)."""
    depths, depth = [], 0
    for token in tokens:
        depth -= token in _CLOSERS or token == "}"
        depths.append(depth)
        depth += token in _OPEN or token == "{"
    return depths


def _closing(tokens: list[str], start: int) -> int:
    """The index of the bracket that closes the one at `start` (any of ( [ \\{ against any of ) ] \\})."""
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index] in _OPEN or tokens[index] == "{"
        depth -= tokens[index] in _CLOSERS or tokens[index] == "}"
        if depth == 0:
            return index
    return -1


def _element(tokens: list[str]) -> list[Any]:
    """The values of a list element: a constant, +-infinity, or the two of `a \\pm b` (Math-Verify's reading)."""
    numbers = _numbers()
    if tokens[-1] == "\\infty" and len(tokens) <= 2 and tokens[0] in ("\\infty", "-", "+"):
        return [numbers.ctx.mpf("-inf") if tokens[0] == "-" else numbers.ctx.mpf("inf")]
    if any(len(token) == 1 and token.isalpha() and token not in "ei" for token in tokens):
        raise _Undecided("a variable in a list")
    signs = [k for k, token in enumerate(tokens) if token in _PLUS_MINUS]
    if not signs:
        return [_Evaluator(numbers, tokens).value()]
    sign, depths = signs[0], _depths(tokens)
    left, right = tokens[:sign], tokens[sign + 1 :]
    after = [token for token, depth in zip(right, depths[sign + 1 :], strict=True) if depth == 0]
    if len(signs) > 1 or not right or depths[sign] or any(token in ("+", "-") for token in after):
        raise _Undecided("not `a \\pm b` with b one term")  # `1 \pm 2 + 3`: readers differ
    term = _Evaluator(numbers, right).value()
    base = _Evaluator(numbers, left).value() if left else 0
    return [base + term, base - term]


def _before(low: Any, high: Any) -> bool:
    """Whether real `low` is clearly below real `high`; raises `_Undecided` for complex or nearly equal values."""
    if low.imag != 0 or high.imag != 0:
        raise _Undecided("a complex endpoint")
    return low.real < high.real and _differ(low, high)


def _same(a: Any, b: Any) -> bool:
    """Equal to the evaluator's accuracy (a relative 1e-40, far below `_differ`'s 1e-6)."""
    if abs(a) == _INF or abs(b) == _INF:
        return a == b
    return abs(a - b) <= _SAME * max(abs(a), abs(b))


def _differ(a: Any, b: Any) -> bool:
    if abs(a) == _INF or abs(b) == _INF:
        return a != b
    return abs(a - b) > _REL_DIFFERENCE * max(abs(a), abs(b))


def _plain_number(tokens: list[str]) -> bool:
    """A number, bare or in parentheses or braces, with an optional sign inside them: `2`, `(3)`, `{-4}`."""
    inner = tokens[1:-1] if len(tokens) > 2 and tokens[0] in ("(", "{") else tokens
    return bool(inner) and inner[-1].isdigit() and (len(inner) == 1 or (len(inner) == 2 and inner[0] in "+-"))


def _lone(values: list, others: list) -> bool:
    """Whether some value of `values` clearly differs from every value of `others`."""
    return any(all(_differ(value, other) for other in others) for value in values)


class _Evaluator:
    """Recursive descent: sums of products of signed powers of atoms, as complex numbers."""

    def __init__(self, numbers: _Numbers, tokens: list[str]) -> None:
        self.numbers = numbers
        self.ctx = numbers.ctx
        self.tokens = tokens
        self.position = 0

    def value(self) -> Any:
        result = self.sum()
        if self.position != len(self.tokens):
            raise _Undecided(self.tokens[self.position])
        return result

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        if self.position >= len(self.tokens):
            raise _Undecided("unexpected end")
        token = self.tokens[self.position]
        if expected is not None and token != expected:
            raise _Undecided(token)
        self.position += 1
        return token

    def sum(self) -> Any:
        value = self.signed_product()
        while self.peek() in ("+", "-"):
            operator = self.take()
            right = self.signed_product()
            result = value + right if operator == "+" else value - right
            if abs(result) <= max(abs(value), abs(right)) * self.numbers.epsilon:
                raise _Undecided("cancellation")  # the digits left are rounding noise
            value = result
        return value

    def signed_product(self) -> Any:
        if self.peek() in ("+", "-"):
            return -self.signed_product() if self.take() == "-" else self.signed_product()
        return self.product()

    def product(self) -> Any:
        start = self.position
        value = self.power()
        while True:
            token = self.peek()
            if token in _PRODUCT or token == "/":
                self.take()
                start = self.position
                right = self.signed_power()
                if token == "/" and self._starts_atom(self.peek()):
                    raise _Undecided("1/2x")  # (1/2)x or 1/(2x): readers differ
                value = value / right if token == "/" else value * right
            elif self._starts_atom(token):
                if token.isdigit():
                    raise _Undecided("a number after an atom")  # `x2`, `2 3`, `\sqrt{2}3`
                left, start = self.tokens[start : self.position], self.position
                value = value * self.power()
                if _plain_number(left) and (
                    token == "\\frac" or _plain_number(self.tokens[start : self.position])
                ):
                    # `1\frac{4}{5}` is 1 + 4/5 to Math-Verify, and `2(3)`, `(2)(3)` are 5
                    raise _Undecided("juxtaposed numbers")
            else:
                return value

    def signed_power(self) -> Any:
        if self.peek() in ("+", "-"):
            return -self.signed_power() if self.take() == "-" else self.signed_power()
        return self.power()

    @staticmethod
    def _starts_atom(token: str | None) -> bool:
        # not `{`: `2{3}` shows "23" (Math-Verify reads it as 5)
        return token is not None and (token in _ATOM_START or token.isdigit() or token.isalpha())

    def power(self) -> Any:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        if self.peek() == "{":
            exponent = self.group()
        else:
            token = self.take()
            if len(token) != 1 or not token.isalnum():
                raise _Undecided("unbraced exponent")  # `2^10` is 2^1 0 in LaTeX, 2^{10} to some readers
            exponent = self._letter_or_number(token)
        if self.peek() == "^":
            raise _Undecided("a^b^c")
        return self._raise(base, exponent)

    def _raise(self, base: Any, exponent: Any) -> Any:
        ctx = self.ctx
        if exponent.imag == 0 and exponent.real == int(exponent.real):
            if abs(exponent.real) > _MAX_EXPONENT:
                raise _Undecided("huge exponent")
            if base == 0 and exponent.real <= 0:
                raise ZeroDivisionError
            return base ** int(exponent.real)
        if base == self.numbers.letters["e"]:
            return ctx.exp(exponent)
        if base.imag != 0 or base.real <= 0:
            raise _Undecided("a non-integer power of a non-positive or complex number")  # branch choices
        return ctx.power(base, exponent)

    def atom(self) -> Any:
        token = self.take()
        ctx = self.ctx
        if token in ("(", "{"):
            value = self.sum()
            self.take(")" if token == "(" else "}")
            return value
        if token == "\\frac":
            numerator, denominator = self.argument(), self.argument()
            return numerator / denominator
        if token == "\\sqrt":
            index = 2
            if self.peek() == "[":
                self.take()
                index = int(self.take()) if (self.peek() or "").isdigit() else 0
                self.take("]")
                if index < 2:
                    raise _Undecided("root index")
            radicand = self.argument()
            if radicand.imag != 0 or radicand.real < 0:  # the principal or the real root: readers differ
                raise _Undecided("root of a negative or complex number")
            return ctx.root(radicand.real, index) if index != 2 else ctx.sqrt(radicand.real)
        if (token == "\\pi" or token.isalpha()) and self.peek() == "(":
            raise _Undecided("f(x)")  # a function call to Math-Verify: `\pi(2)`, `i(2)`
        if token == "\\pi":
            return self.numbers.pi
        if token.isdigit() or (len(token) == 1 and token.isalpha()):
            return self._letter_or_number(token)
        raise _Undecided(token)

    def _letter_or_number(self, token: str) -> Any:
        return self.ctx.mpc(int(token)) if token.isdigit() else self.numbers.letters[token]

    def argument(self) -> Any:
        """A `\\frac` or `\\sqrt` argument: a braced group or a single digit or letter."""
        if self.peek() == "{":
            return self.group()
        token = self.take()
        if token.isdigit():
            if len(token) > 1:  # `\frac12`: one digit per argument, as in LaTeX
                self.tokens[self.position - 1 : self.position] = [token[0], token[1:]]
            return self.ctx.mpc(int(token[0]))
        if len(token) == 1 and token.isalpha():
            return self._letter_or_number(token)
        raise _Undecided(token)

    def group(self) -> Any:
        self.take("{")
        value = self.sum()
        self.take("}")
        return value
