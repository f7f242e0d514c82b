"""Exact arithmetic on the answers that are made only of numbers: integers, decimals, `\\frac{a}{b}`, `a/b`,
factorials, integer powers, and sums, differences and products of them (`\\frac{1}{2004!}`, `1/2^{99}`,
`3 \\cdot 2^{10} - 1`).

Math-Verify compares such values in floating point (`(a - b).evalf(chop=True) == 0`), which calls
`\\frac{1}{2004!}` and `\\frac{1}{2006!}` equal. Here they are evaluated as `Fraction`s, so two exact answers are
equal only when they are the same number. A decimal anywhere makes the value inexact: it is then compared with the
verifier's tolerance.

Size guard: no value may need more than `MAX_BITS` bits (numerator or denominator; about 30,000 decimal digits),
factorials stop at `MAX_FACTORIAL`, and the text at `MAX_CHARS`. Past the guard `evaluate` raises `TooLarge`,
and the verifier then calls two answers equal only when their normalised spellings are equal (never by
tolerance): `2^{10^6}` against `2^{10^6}` is correct, against `4^{500000}` it is wrong.
"""

from __future__ import annotations

import re
from fractions import Fraction

from rlvr.verifiers.fastpath import PlainNumber

MAX_BITS = 100_000
MAX_FACTORIAL = 5_000
MAX_CHARS = 200
_TOKEN = re.compile(r"\s*(\\frac|\\cdot|\\times|\d+\.\d*|\.\d+|\d+|[-+*/^!(){}])")


class TooLarge(ValueError):
    """The value is past the size guard."""


class _NotExact(ValueError):
    """The text is not made only of numbers and the operations above."""


def evaluate(text: str) -> PlainNumber | None:
    """The exact value of `text`, or None when it is not plain arithmetic; raises `TooLarge` past the guard."""
    if len(text) > MAX_CHARS:
        return None
    tokens: list[str] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            return None
        tokens.append(match.group(1))
        position = match.end()
    if not tokens:
        return None
    parser = _Parser(tokens)
    try:
        value = parser.expression()
        if parser.position != len(tokens):
            return None
    except (_NotExact, ZeroDivisionError, IndexError):
        return None
    return PlainNumber(value, not parser.inexact)


def _checked(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        raise TooLarge(f"more than {MAX_BITS} bits")
    return value


class _Parser:
    """Recursive descent over the tokens: sums of products of signed powers of factorials of atoms."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0
        self.inexact = False

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.tokens[self.position]
        if expected is not None and token != expected:
            raise _NotExact(token)
        self.position += 1
        return token

    def expression(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = _checked(value + self.term() if self.take() == "+" else value - self.term())
        return value

    def term(self) -> Fraction:
        value = self.signed()
        while self.peek() in ("*", "/", "\\cdot", "\\times"):
            operator = self.take()
            right = self.signed()
            value = _checked(value / right if operator == "/" else value * right)
        return value

    def signed(self) -> Fraction:
        if self.peek() in ("+", "-"):
            return -self.signed() if self.take() == "-" else self.signed()
        return self.power()

    def power(self) -> Fraction:
        base = self.postfix()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.group() if self.peek() == "{" else self.digit()
        if exponent.denominator != 1:
            raise _NotExact("fractional exponent")
        if base == 0 and exponent < 0:
            raise ZeroDivisionError
        bits = max(base.numerator.bit_length(), base.denominator.bit_length())
        if abs(base) != 1 and abs(exponent) * bits > MAX_BITS:
            raise TooLarge(f"power with more than {MAX_BITS} bits")
        return _checked(base ** int(exponent))

    def postfix(self) -> Fraction:
        value = self.atom()
        while self.peek() == "!":
            self.take()
            if value.denominator != 1 or value < 0:
                raise _NotExact("factorial of a non-natural number")
            if value > MAX_FACTORIAL:
                raise TooLarge(f"factorial of more than {MAX_FACTORIAL}")
            result = 1
            for factor in range(2, int(value) + 1):
                result *= factor
            value = _checked(Fraction(result))
        return value

    def atom(self) -> Fraction:
        token = self.peek()
        if token == "{":
            return self.group()
        if token == "(":
            self.take()
            value = self.expression()
            self.take(")")
            return value
        if token == "\\frac":
            self.take()
            numerator = self.group() if self.peek() == "{" else self.digit()
            denominator = self.group() if self.peek() == "{" else self.digit()
            return _checked(numerator / denominator)
        return self.number()

    def group(self) -> Fraction:
        self.take("{")
        value = self.expression()
        self.take("}")
        return value

    def digit(self) -> Fraction:
        """An unbraced argument (`\\frac12`, `2^3`): one digit only, as in LaTeX."""
        token = self.take()
        if not token.isdigit():
            raise _NotExact(token)
        self.tokens[self.position - 1 : self.position] = [token[0]] + ([token[1:]] if len(token) > 1 else [])
        return Fraction(int(token[0]))

    def number(self) -> Fraction:
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            if "." in token:
                self.inexact = True
            return Fraction(token)
        raise _NotExact(token)
