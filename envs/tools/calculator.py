"""A safe calculator: an expression is read with Python's `ast`, checked against a whitelist, and built into a
sympy expression node by node. Nothing is ever passed to `eval`, `sympify` or `parse_expr`.

Accepted: integer and decimal literals (decimals are read exactly: 0.1 is 1/10), `+ - * / % **` (`^` means `**`),
unary minus, parentheses, the constants `pi` and `e`, and the functions in `FUNCTIONS`. Everything else (names,
attributes, subscripts, strings, comparisons, keyword arguments, lambdas) is refused with a message.

Two layers keep an evaluation short:
1. Static bounds, checked as the tree is built, so that no step can create a huge number: input length and node
   count, literal size, every intermediate value's magnitude (`MAX_DIGITS`), exponents (`MAX_EXPONENT`, and the
   result's estimated size before `**` runs), `exp`'s argument, and `factorial`/`binomial` arguments. These
   refuse `10**10**10`, `factorial(10**6)` or `exp(exp(100))` in microseconds.
2. A hard deadline: the tool runs `evaluate` in a worker process of a `DeadlinePool` (`rlvr.verifiers.pool`) with
   a memory cap; a call still running at its deadline is killed and answered with a timeout message. This guards
   against sympy paths the bounds do not foresee; sympy is never imported in the caller's process.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

MAX_CHARS = 500
"""Longest expression read."""
MAX_NODES = 200
"""Most syntax-tree nodes in one expression."""
MAX_LITERAL_DIGITS = 100
"""Longest number literal."""
MAX_DIGITS = 500
"""Every intermediate value must be below 10**MAX_DIGITS in magnitude (and an exact fraction's numerator and
denominator below 10**MAX_DIGITS)."""
MAX_EXPONENT = 10_000
"""Largest |exponent| of `**`."""
MAX_FACTORIAL = 1_000
"""Largest argument of `factorial` and first argument of `binomial`."""
_MAX_BITS = math.ceil(MAX_DIGITS * math.log2(10))

FUNCTIONS: dict[str, tuple[str, tuple[int, ...]]] = {
    # name -> (sympy function, accepted argument counts)
    "sqrt": ("sqrt", (1,)),
    "exp": ("exp", (1,)),
    "log": ("log", (1, 2)),
    "ln": ("log", (1,)),
    "log2": ("log2", (1,)),
    "log10": ("log10", (1,)),
    "sin": ("sin", (1,)),
    "cos": ("cos", (1,)),
    "tan": ("tan", (1,)),
    "asin": ("asin", (1,)),
    "acos": ("acos", (1,)),
    "atan": ("atan", (1,)),
    "abs": ("Abs", (1,)),
    "factorial": ("factorial", (1,)),
    "binomial": ("binomial", (2,)),
    "gcd": ("gcd", (2,)),
    "lcm": ("lcm", (2,)),
    "floor": ("floor", (1,)),
    "ceil": ("ceiling", (1,)),
    "ceiling": ("ceiling", (1,)),
}
CONSTANTS = ("pi", "e")
_REWRITES = (("^", "**"), ("×", "*"), ("÷", "/"), ("−", "-"), ("π", "pi"))
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.Pow: "**"}


class CalculatorError(ValueError):
    """The expression is refused or cannot be evaluated; the message says why."""


def evaluate(expression: str) -> tuple[bool, str]:
    """(True, the result as text) or (False, why not). Never raises on any input."""
    try:
        return True, format_value(build(expression))
    except CalculatorError as exc:
        return False, str(exc)
    except RecursionError:
        return False, "the expression is nested too deeply"
    except ArithmeticError as exc:
        if type(exc).__name__ == "PrecisionExhausted":
            return False, "the value needs more digits of precision than the calculator uses"
        return False, f"cannot evaluate it ({type(exc).__name__}: {exc})"
    except (ValueError, TypeError) as exc:
        return False, f"cannot evaluate it ({type(exc).__name__}: {exc})"


def warm_up() -> None:
    """Import sympy and evaluate once (a deadline-pool worker runs this before it takes work)."""
    evaluate("sqrt(2) + 1/3")


def build(expression: str) -> Any:
    """The sympy value of `expression`, built under the bounds of this module."""
    if not isinstance(expression, str):
        raise CalculatorError(f"the expression must be a string, got {type(expression).__name__}")
    text = expression.strip()
    if not text:
        raise CalculatorError("the expression is empty")
    if len(text) > MAX_CHARS:
        raise CalculatorError(f"the expression is {len(text)} characters long; the limit is {MAX_CHARS}")
    for old, new in _REWRITES:
        text = text.replace(old, new)
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise CalculatorError(f"not a valid expression ({getattr(exc, 'msg', exc)})") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise CalculatorError(f"the expression has {nodes} parts; the limit is {MAX_NODES}")
    return _Builder().node(tree.body)


class _Builder:
    def __init__(self) -> None:
        import sympy

        self.sp = sympy

    def node(self, node: ast.AST) -> Any:
        value = self._node(node)
        self._check(value)
        return value

    def _node(self, node: ast.AST) -> Any:
        sp = self.sp
        if isinstance(node, ast.Constant):
            return self._literal(node.value)
        if isinstance(node, ast.Name):
            if node.id == "pi":
                return sp.pi
            if node.id in ("e", "E"):
                return sp.E
            raise CalculatorError(
                f"unknown name {node.id!r}; the calculator knows the constants {', '.join(CONSTANTS)} and the "
                f"functions {', '.join(FUNCTIONS)}"
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.node(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise CalculatorError(
            f"{_describe(node)} is not allowed; use numbers, + - * / % ** ^, parentheses, pi, e and "
            f"the functions {', '.join(FUNCTIONS)}"
        )

    def _literal(self, value: Any) -> Any:
        sp = self.sp
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CalculatorError(f"the literal {value!r} is not a number")
        if isinstance(value, int):
            if abs(value) >= 10**MAX_LITERAL_DIGITS:
                raise CalculatorError(f"a number literal is longer than {MAX_LITERAL_DIGITS} digits")
            return sp.Integer(value)
        if not math.isfinite(value):
            raise CalculatorError("a number literal is too large")
        return sp.Rational(repr(value))  # exact: 0.1 is 1/10

    def _binary(self, node: ast.BinOp) -> Any:
        sp = self.sp
        left, right = self.node(node.left), self.node(node.right)
        op = type(node.op)
        if op is ast.Add:
            return left + right
        if op is ast.Sub:
            return left - right
        if op is ast.Mult:
            return left * right
        if op in (ast.Div, ast.Mod) and right.is_zero:
            raise CalculatorError("division by zero")
        if op is ast.Div:
            return left / right
        if op is ast.Mod:
            if not (left.is_Rational and right.is_Rational):  # Mod of an irrational loses all precision
                raise CalculatorError("% needs whole numbers or fractions on both sides")
            return sp.Mod(left, right)
        return self._power(left, right)

    def _power(self, base: Any, exponent: Any) -> Any:
        if _log10_abs(exponent) > math.log10(MAX_EXPONENT):
            raise CalculatorError(f"the exponent is too large (the limit is {MAX_EXPONENT})")
        if base.is_zero:
            if exponent.is_extended_negative:
                raise CalculatorError("division by zero (0 to a negative power)")
            return base**exponent
        size = 10 ** _log10_abs(exponent)
        if base.is_Rational:
            digits = max(_digits(base.p), _digits(base.q)) * size
        else:
            digits = abs(_log10_abs(base)) * size
        if digits > MAX_DIGITS:
            raise CalculatorError(
                f"the result would have about {digits:.0f} digits; the limit is {MAX_DIGITS}"
            )
        return base**exponent

    def _call(self, node: ast.Call) -> Any:
        sp = self.sp
        if not isinstance(node.func, ast.Name):
            raise CalculatorError(f"calling the result of {_describe(node.func)} is not allowed")
        name = node.func.id
        if name not in FUNCTIONS:
            raise CalculatorError(f"unknown function {name!r}; the functions are {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise CalculatorError(f"{name}() takes no keyword arguments")
        function, counts = FUNCTIONS[name]
        if len(node.args) not in counts:
            raise CalculatorError(
                f"{name}() takes {' or '.join(map(str, counts))} argument(s), got {len(node.args)}"
            )
        args = [self.node(arg) for arg in node.args]
        if name == "exp" and _log10_abs(args[0]) > math.log10(MAX_DIGITS * math.log(10)):
            raise CalculatorError(f"exp() of a number this large has more than {MAX_DIGITS} digits")
        if name in ("log", "ln", "log2", "log10") and any(arg.is_zero for arg in args[:1]):
            raise CalculatorError("the logarithm of 0 is undefined")
        if name == "log" and len(args) == 2 and (args[1].is_zero or args[1] == 1):
            raise CalculatorError("a logarithm's base cannot be 0 or 1")
        if name in ("factorial", "binomial"):
            n = args[0]
            if not (n.is_Integer and 0 <= n <= MAX_FACTORIAL):
                raise CalculatorError(f"{name}() needs a whole number from 0 to {MAX_FACTORIAL} first")
            if name == "binomial" and not args[1].is_Integer:
                raise CalculatorError("binomial() needs whole numbers")
        if name in ("gcd", "lcm") and not all(arg.is_Integer for arg in args):
            raise CalculatorError(f"{name}() needs whole numbers")
        if name == "log2":
            return sp.log(args[0], 2)
        if name == "log10":
            return sp.log(args[0], 10)
        return getattr(sp, function)(*args)

    def _check(self, value: Any) -> None:
        """Refuse undefined values and values too large to keep computing with."""
        sp = self.sp
        if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise CalculatorError("the result is undefined (a division by zero or a pole)")
        if value.is_Rational:
            if max(value.p.bit_length(), value.q.bit_length()) > _MAX_BITS:
                raise CalculatorError(f"an intermediate value has more than {MAX_DIGITS} digits")
        elif _log10_abs(value) > MAX_DIGITS:
            raise CalculatorError(f"an intermediate value is larger than 10**{MAX_DIGITS}")


def _log10_abs(value: Any) -> float:
    """log10 of |value| for a sympy number (-inf for 0), without building a float that could overflow."""
    import mpmath
    import sympy

    if not value.is_number:
        raise CalculatorError("the expression is not a number")
    if value.is_Rational:
        return -math.inf if value.p == 0 else math.log10(abs(int(value.p))) - math.log10(int(value.q))
    approx = sympy.Abs(value).evalf(15)
    if not approx.is_Float:  # evalf could not reduce it to one number
        raise CalculatorError(f"the value {sympy.sstr(value)[:80]} cannot be evaluated numerically")
    return -math.inf if approx.is_zero else float(mpmath.log10(mpmath.mpf(approx._mpf_)))


def _digits(n: int) -> float:
    """log10 |n| (0 for 0): about how many decimal digits |n| has."""
    return math.log10(abs(int(n))) if n else 0.0


def format_value(value: Any) -> str:
    """`1024`, `1/2 = 0.5`, `1/3 ≈ 0.333333333333333`, `sqrt(2) ≈ 1.41421356237310`."""
    import sympy

    if value.is_Integer:
        return str(value)
    approx = _trim(str(value.evalf(15)))
    exact = sympy.sstr(value)
    if value.is_Rational:
        decimal = _exact_decimal(int(value.p), int(value.q))
        return f"{exact} = {decimal}" if decimal is not None else f"{exact} ≈ {approx}"
    if len(exact) > 200 or exact == approx:
        return approx
    return f"{exact} ≈ {approx}"


def _exact_decimal(p: int, q: int, max_places: int = 30) -> str | None:
    """The decimal expansion of p/q when it ends within `max_places` places (q has no factors but 2 and 5)."""
    twos = fives = 0
    rest = q
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    places = max(twos, fives)
    if rest != 1 or places > max_places:
        return None
    digits = str(abs(p) * 10**places // q).rjust(places + 1, "0")
    whole, fraction = digits[: len(digits) - places], digits[len(digits) - places :].rstrip("0")
    return ("-" if p < 0 else "") + whole + ("." + fraction if fraction else "")


def _trim(text: str) -> str:
    """`0.500000000000000` -> `0.5`, `2.00000000000000*I` -> `2*I`, `1.00000000000000e+100` -> `1e+100`."""
    return re.sub(r"\.(\d*?)0+(?!\d)", lambda m: "." + m.group(1) if m.group(1) else "", text)


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access (a.b)",
        ast.Subscript: "indexing (a[b])",
        ast.Compare: "a comparison",
        ast.BoolOp: "and/or",
        ast.Lambda: "lambda",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.JoinedStr: "an f-string",
        ast.IfExp: "if/else",
        ast.NamedExpr: ":=",
    }
    for kind, text in names.items():
        if isinstance(node, kind):
            return text
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    return type(node).__name__
