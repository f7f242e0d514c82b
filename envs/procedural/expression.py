"""Safe reading and checking of countdown / 24 answers: `+ - * /` and parentheses over integer literals.

Nothing is ever passed to `eval`. An expression is first limited in length, characters, parenthesis depth and
count of numbers; only then is it parsed with `ast.parse(mode="eval")`, and the tree is walked accepting only
`BinOp` with `+ - * /` and non-negative integer constants, computed exactly with Fractions. Everything else
(names, calls, attributes, `**`, `//`, unary minus, floats) is refused. Every check is linear in the input, so
a hostile reply of any size is decided in microseconds.

Where the expression is found in a reply, in priority order: the last `<answer>...</answer>` block (a
`\\boxed{}` inside it preferred), the last `\\boxed{...}`, else the last non-empty line. An `=` splits the
candidate into sides and the first side that holds an operation is read (`(3 + 5) * 3 = 24` and
`24 = (3 + 5) * 3` both give `(3 + 5) * 3`). LaTeX and Unicode operators (`\\times`, `\\cdot`, `\\div`,
`\\frac{a}{b}`, `×`, `÷`, `−`) are rewritten to ASCII first.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from rlvr.verifiers.extract import find_answer_tag, find_boxed
from rlvr.verifiers.types import CORRECT, NO_ANSWER, UNPARSEABLE, WRONG, Verdict

MAX_CHARS = 300
"""Longest expression read (after normalisation); a real countdown answer is a few dozen characters."""
MAX_DEPTH = 24
"""Deepest parenthesis nesting accepted."""
MAX_NUMBERS = 16
"""Most integer literals accepted in one expression."""
MAX_DIGITS = 9
"""Longest integer literal accepted."""
MAX_SCAN_CHARS = 4_000
"""Only this many characters of the chosen candidate (a box, a tag, the last line) are looked at."""

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_ALLOWED = re.compile(r"[0-9+\-*/() \t]*")
_RUN = re.compile(r"[0-9+\-*/() \t]+")
_HAS_OPERATION = re.compile(r"\d[\s)]*[+\-*/][\s(]*\d")
_DIGITS = re.compile(r"\d+")
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_REPLACEMENTS = (
    ("\\times", "*"),
    ("\\cdot", "*"),
    ("\\ast", "*"),
    ("\\div", "/"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\(", ""),
    ("\\)", ""),
    ("\\[", ""),
    ("\\]", ""),
    ("\\,", " "),
    ("\\;", " "),
    ("\\!", ""),
    ("\\ ", " "),
    ("$", ""),
    ("×", "*"),
    ("∗", "*"),
    ("⋅", "*"),
    ("·", "*"),
    ("÷", "/"),
    ("∕", "/"),
    ("−", "-"),
    ("–", "-"),
    ("—", "-"),
    ("[", "("),
    ("]", ")"),
)


class ExpressionError(ValueError):
    """An expression that cannot be read (`kind="unparseable"`) or has no value (`kind="division_by_zero"`)."""

    def __init__(self, message: str, kind: str = "unparseable") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, exact value, and the integer literals it uses (in order)."""

    text: str
    value: Fraction
    numbers: tuple[int, ...]


def normalize_expression(text: str) -> str:
    """ASCII arithmetic from LaTeX / Unicode spellings: `\\frac{a}{b}` -> `((a)/(b))`, `\\times` -> `*`, ..."""
    for _ in range(MAX_DEPTH):  # innermost \frac first; bounded, so nested fracs cannot loop long
        text, count = _FRAC.subn(r"((\1)/(\2))", text)
        if count == 0:
            break
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    return text.replace("{", "(").replace("}", ")")


def parse_expression(text: str) -> Expression:
    """Read an arithmetic expression exactly, or raise `ExpressionError` saying why not."""
    text = text.strip()
    if not text:
        raise ExpressionError("empty expression")
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"expression longer than {MAX_CHARS} characters")
    if not _ALLOWED.fullmatch(text):
        bad = next(c for c in text if not _ALLOWED.fullmatch(c))
        raise ExpressionError(f"character {bad!r} is not allowed; use digits, + - * / and parentheses")
    depth = deepest = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
        if depth < 0:
            raise ExpressionError("unbalanced parentheses")
    if deepest > MAX_DEPTH:
        raise ExpressionError(f"parentheses nested deeper than {MAX_DEPTH}")
    literals = _DIGITS.findall(text)
    if len(literals) > MAX_NUMBERS:
        raise ExpressionError(f"more than {MAX_NUMBERS} numbers")
    if any(len(literal) > MAX_DIGITS for literal in literals):
        raise ExpressionError(f"a number longer than {MAX_DIGITS} digits")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"not an expression: {type(exc).__name__}") from None
    numbers: list[int] = []
    value = _evaluate(tree.body, numbers)
    return Expression(text=text, value=value, numbers=tuple(numbers))


def _evaluate(node: ast.AST, numbers: list[int]) -> Fraction:
    """The exact value of an already size-limited tree; refuses every node but BinOp(+ - * /) and int literals."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        numbers.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left = _evaluate(node.left, numbers)
        right = _evaluate(node.right, numbers)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise ExpressionError("division by zero", kind="division_by_zero")
        return left / right
    if isinstance(node, ast.BinOp):
        raise ExpressionError(
            f"operator {type(node.op).__name__} is not allowed; use + - * / and parentheses"
        )
    if isinstance(node, ast.UnaryOp):
        raise ExpressionError("unary signs are not allowed; combine the given numbers with + - * /")
    raise ExpressionError(f"{type(node).__name__} is not allowed; use digits, + - * / and parentheses")


def extract_expression(completion: str) -> tuple[str | None, str]:
    """The expression a reply answers with, and where it was found: "answer_tag", "boxed", "last_line", "none"."""
    inner = find_answer_tag(completion)
    if inner is not None:
        boxes = find_boxed(inner)
        return _choose_side(boxes[-1] if boxes else inner, strict=True), "answer_tag"
    boxes = find_boxed(completion)
    if boxes:
        return _choose_side(boxes[-1], strict=True), "boxed"
    lines = [line for line in completion[-MAX_SCAN_CHARS:].splitlines() if line.strip()]
    if not lines:
        return None, "none"
    return _choose_side(lines[-1], strict=False), "last_line"


def _choose_side(candidate: str, *, strict: bool) -> str | None:
    """The side of an `=` that holds an operation. `strict` (an explicit answer) reads a side whole; otherwise
    the longest arithmetic run of the side is read (a line of prose around the expression)."""
    sides = [normalize_expression(side) for side in candidate[:MAX_SCAN_CHARS].split("=")]
    if strict:
        sides = [side.strip() for side in sides if side.strip()]
        chosen = next((side for side in sides if _HAS_OPERATION.search(side)), sides[0] if sides else None)
        return chosen
    runs = [[_trim(run) for run in _RUN.findall(side)] for side in sides]
    for side_runs in runs:
        operational = [run for run in side_runs if _HAS_OPERATION.search(run)]
        if operational:
            return max(operational, key=len)
    numeric = [run for side_runs in runs for run in side_runs if run]
    return max(numeric, key=len) if numeric else None


def _trim(run: str) -> str:
    """A run without leading/trailing characters that cannot start/end an expression (`** (3+5)*3 ` -> `(3+5)*3`)."""
    start, end = 0, len(run)
    while start < end and not (run[start].isdigit() or run[start] == "("):
        start += 1
    while end > start and not (run[end - 1].isdigit() or run[end - 1] == ")"):
        end -= 1
    return run[start:end]


def check_countdown(
    completion: str, numbers: Sequence[int], target: int, *, use_all: bool = False
) -> Verdict:
    """Verdict on a countdown / 24 reply: an expression over `numbers` (each at most once; exactly once each
    when `use_all`) whose value is `target`. `details["error"]` says why a wrong answer is wrong."""
    expression_text, method = extract_expression(completion)
    details: dict[str, object] = {"extracted": expression_text, "method": method}
    if not expression_text:
        return Verdict(0.0, False, NO_ANSWER, details)
    try:
        expression = parse_expression(expression_text)
    except ExpressionError as exc:
        details["error"] = str(exc)
        reason = WRONG if exc.kind == "division_by_zero" else UNPARSEABLE
        return Verdict(0.0, False, reason, details)
    details["numbers_used"] = list(expression.numbers)
    details["value"] = str(expression.value)
    used, given = Counter(expression.numbers), Counter(numbers)
    if used - given or (use_all and used != given):
        rule = "each number exactly once" if use_all else "each number at most once"
        details["error"] = (
            f"wrong numbers: uses {sorted(expression.numbers)}, given {sorted(numbers)} ({rule})"
        )
        return Verdict(0.0, False, WRONG, details)
    if expression.value != target:
        details["error"] = f"value {expression.value} is not the target {target}"
        return Verdict(0.0, False, WRONG, details)
    return Verdict(1.0, True, CORRECT, details)
