"""Test suites for code: the three forms, loaders for LiveCodeBench / HumanEval / MBPP rows, and the comparisons
made in the parent process.

- `stdin`: the program reads `input` on stdin; its stdout is compared with `output` the LiveCodeBench way: both
  are stripped, split into lines, each line stripped; line counts must match; lines are equal as text or, token
  by token, as decimal numbers (`Decimal`, so `1.0` equals `1`); `float_tolerance` additionally accepts numbers
  within `tol * max(1, |expected|)`.
- `functional`: LeetCode style. `input` holds one JSON value per line (the arguments), `output` the JSON result.
  The method `fn_name` of a fresh `Solution()` is called (a top-level function of that name when the code has no
  `class Solution`), as LiveCodeBench does. The result comes back to the parent, tuples become lists (as the
  judge's JSON serialisation makes them), and it is compared with `==` (or within `float_tolerance`).
- `assert`: each case's `input` is Python test code (an MBPP `assert ...` line, or HumanEval's `check(f)` call
  after `setup` defined `check`); a case passes when it runs without an exception.
"""

from __future__ import annotations

import ast
import builtins
import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

KINDS = ("stdin", "functional", "assert")

# LiveCodeBench's `import_string`: the imports it runs before every candidate (solutions rely on them).
_LCB_MODULES = "string re datetime collections heapq bisect copy math random statistics itertools functools operator io sys json"
LCB_PRELUDE = "".join(
    [f"from {name} import *\n" for name in (*_LCB_MODULES.split(), "builtins", "typing")]
    + [f"import {name}\n" for name in _LCB_MODULES.split()]
    + ["sys.setrecursionlimit(50000)\n"]
)


@dataclass(frozen=True)
class CodeTestCase:
    __test__ = False  # not a pytest test class

    input: str
    """stdin text, JSON argument lines, or Python test code (by the suite's kind)."""
    output: str = ""
    """Expected stdout, or the expected result as JSON; unused for `assert` cases."""


@dataclass(frozen=True)
class CodeTests:
    """One problem's tests and how to run a candidate against them."""

    __test__ = False

    kind: str
    cases: tuple[CodeTestCase, ...]
    fn_name: str = ""
    """functional: the method (of `Solution`) or function to call."""
    setup: str = ""
    """assert: code run once in the test namespace before the cases (HumanEval `test`, MBPP `test_imports`)."""
    entry_points: tuple[str, ...] = ()
    """assert: candidate functions whose return values must be plain data (the functions under test)."""
    prelude: str = ""
    """Trusted code run in the candidate's namespace before it (LiveCodeBench's imports)."""
    prefix: str = ""
    """Code the completion continues (the HumanEval prompt); the program is prefix + extracted code."""
    task_id: str = ""
    starter_code: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"CodeTests.kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "functional" and not self.fn_name:
            raise ValueError("functional tests need fn_name (the method to call)")
        object.__setattr__(self, "cases", tuple(self.cases))
        object.__setattr__(self, "entry_points", tuple(self.entry_points))

    def __len__(self) -> int:
        return len(self.cases)

    # -- loaders --------------------------------------------------------------------------------------------

    @classmethod
    def from_lcb(cls, row: Mapping[str, Any], field_name: str = "public_test_cases") -> CodeTests:
        """A LiveCodeBench `code_generation_lite` row (`public_test_cases` a JSON string of
        [{input, output, testtype}], `metadata` JSON with `func_name`), or a row whose test field holds the older
        `{"input_output": {"inputs", "outputs", "fn_name"}}` form (as a JSON or Python-literal string)."""
        raw = row[field_name]
        cases_raw = _load_text(raw)
        metadata = _load_text(row.get("metadata") or "{}") or {}
        fn_name = metadata.get("func_name") or ""
        if isinstance(cases_raw, dict) and "input_output" in cases_raw:
            io = _load_text(cases_raw["input_output"])
            fn_name = io.get("fn_name") or fn_name
            pairs = list(zip(io["inputs"], io["outputs"], strict=True))
            testtype = "functional" if fn_name else "stdin"
        else:
            pairs = [(case["input"], case["output"]) for case in cases_raw]
            types = {case.get("testtype", "stdin") for case in cases_raw}
            if len(types) > 1:
                raise ValueError(f"mixed test types {sorted(types)} in one row")
            testtype = types.pop() if types else ("functional" if fn_name else "stdin")
        return cls(
            kind="functional" if testtype == "functional" else "stdin",
            cases=tuple(CodeTestCase(str(i), str(o)) for i, o in pairs),
            fn_name=fn_name if testtype == "functional" else "",
            prelude=LCB_PRELUDE,
            task_id=str(row.get("question_id") or row.get("task_id") or ""),
            starter_code=row.get("starter_code") or "",
            metadata=metadata,
        )

    @classmethod
    def from_humaneval(cls, row: Mapping[str, Any], with_prompt: bool = True) -> CodeTests:
        """A HumanEval row: `test` defines `check(candidate)`, called with `entry_point`. With `with_prompt`
        the program is prompt + completion, as in the official harness (a completion that rewrites the whole
        function still works: the prompt's stub is a complete function with a docstring body)."""
        entry = row["entry_point"]
        return cls(
            kind="assert",
            cases=(CodeTestCase(f"check({entry})"),),
            setup=row["test"],
            entry_points=(entry,),
            prefix=row["prompt"] if with_prompt else "",
            task_id=str(row["task_id"]),
        )

    @classmethod
    def from_mbpp(cls, row: Mapping[str, Any]) -> CodeTests:
        """An MBPP row: each `test_list` assert is one case, `test_imports` run first."""
        tests = list(row["test_list"])
        return cls(
            kind="assert",
            cases=tuple(CodeTestCase(test) for test in tests),
            setup="\n".join(row.get("test_imports") or []),
            entry_points=tuple(called_entry_points(tests)),
            task_id=str(row["task_id"]),
        )


def _load_text(value: Any) -> Any:
    """A field stored as JSON text, as Python-literal text, or already decoded."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return ast.literal_eval(value)


_BUILTIN_NAMES = frozenset(dir(builtins))


def called_entry_points(tests: Iterable[str]) -> list[str]:
    """The functions an MBPP-style test list calls that are not builtins; for a test calling only builtins,
    the outermost call of its assert (MBPP 126 tests a function named `sum`)."""
    names: list[str] = []
    for test in tests:
        try:
            tree = ast.parse(test)
        except SyntaxError:
            continue
        found = [
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id not in _BUILTIN_NAMES
        ]
        if not found:
            found = _outer_call(tree)
        names += [name for name in found if name not in names]
    return names


def _outer_call(tree: ast.AST) -> list[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            test = node.test
            if isinstance(test, ast.Compare):
                test = test.left
            if isinstance(test, ast.Call) and isinstance(test.func, ast.Name):
                return [test.func.id]
    return []


_NEVER_IMPORT = frozenset({"this", "antigravity", "__main__", "idlelib", "tkinter", "turtle", "turtledemo"})


def referenced_modules(tests: CodeTests) -> list[str]:
    """Standard-library modules the test code imports, or names without binding them: the harness imports them
    before the candidate runs, binds them in the test namespace and checks afterwards that nothing changed them."""
    stdlib = getattr(sys, "stdlib_module_names", frozenset()) - _NEVER_IMPORT
    imported: list[str] = []
    loaded: list[str] = []
    bound: set[str] = set()
    for source in (tests.setup, *(case.input for case in tests.cases)):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported += [alias.name for alias in node.names]
                bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.append(node.module)
                bound.update(alias.asname or alias.name for alias in node.names)
            elif isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    loaded.append(node.id)
                else:
                    bound.add(node.id)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
    names = imported + [name for name in loaded if name in stdlib and name not in bound]
    return [name for index, name in enumerate(names) if name not in names[:index]]


# -- comparisons in the parent ------------------------------------------------------------------------------


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def _close(got: Decimal, want: Decimal, tolerance: float) -> bool:
    if not (got.is_finite() and want.is_finite()):
        return got == want
    return abs(got - want) <= Decimal(repr(tolerance)) * max(Decimal(1), abs(want))


def compare_stdout(got: str, expected: str, float_tolerance: float | None = None) -> tuple[bool, str]:
    """LiveCodeBench's comparison of program output (see the module docstring); returns (equal, why not)."""
    got_lines, want_lines = _stripped_lines(got), _stripped_lines(expected)
    if len(got_lines) != len(want_lines):
        return False, f"{len(got_lines)} output lines, expected {len(want_lines)}"
    for number, (got_line, want_line) in enumerate(zip(got_lines, want_lines, strict=True), 1):
        if got_line == want_line:
            continue
        got_numbers, want_numbers = _decimals(got_line), _decimals(want_line)
        if got_numbers is not None and want_numbers is not None and len(got_numbers) == len(want_numbers):
            if got_numbers == want_numbers:
                continue
            if float_tolerance is not None and all(
                _close(g, w, float_tolerance) for g, w in zip(got_numbers, want_numbers, strict=True)
            ):
                continue
        return False, f"line {number} differs"
    return True, ""


def as_json_shape(value: Any) -> Any:
    """Tuples become lists, recursively (what the judge's JSON serialisation of a result does)."""
    if type(value) in (list, tuple):
        return [as_json_shape(item) for item in value]
    if type(value) is dict:
        return {key: as_json_shape(item) for key, item in value.items()}
    return value


def values_equal(got: Any, expected: Any, float_tolerance: float | None = None) -> bool:
    """`got == expected` after `as_json_shape`; with a tolerance, numbers (not bools) match within it."""
    got = as_json_shape(got)
    if float_tolerance is None:
        try:
            return bool(got == expected)
        except RecursionError:
            return False
    return _tolerant_equal(got, expected, float_tolerance, 0)


def _tolerant_equal(got: Any, want: Any, tol: float, depth: int) -> bool:
    if depth > 500:
        return False
    number = (int, float)
    if type(got) in number and type(want) in number and (type(got) is float or type(want) is float):
        if math.isnan(got) or math.isnan(want):
            return math.isnan(got) and math.isnan(want)
        return abs(got - want) <= tol * max(1.0, abs(want))
    if type(got) is list and type(want) is list:
        return len(got) == len(want) and all(
            _tolerant_equal(g, w, tol, depth + 1) for g, w in zip(got, want, strict=True)
        )
    if type(got) is dict and type(want) is dict:
        return got.keys() == want.keys() and all(
            _tolerant_equal(got[k], want[k], tol, depth + 1) for k in got
        )
    return bool(got == want)


# -- reading the harness's records ----------------------------------------------------------------------------

_NAMED_FLOATS = {"nan": math.nan, "inf": math.inf}


def decode_literal(text: str) -> Any:
    """A value the harness wrote with `repr()` (plain data only: numbers, strings, bytes, None, bools, lists,
    tuples, dicts, sets, `nan`/`inf`, big integers as `("__int__", hex)`); ValueError for anything else.
    Nothing is evaluated."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise ValueError(f"unreadable record: {type(exc).__name__}") from exc
    try:
        return _literal(tree.body)
    except RecursionError as exc:
        raise ValueError("record nested too deeply") from exc


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        items = tuple(_literal(item) for item in node.elts)
        if len(items) == 2 and items[0] == "__int__" and type(items[1]) is str:
            return int(items[1], 16)
        return items
    if isinstance(node, ast.List):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Set):
        return {_literal(item) for item in node.elts}
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise ValueError("dict unpacking in a record")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Name) and node.id in _NAMED_FLOATS:
        return _NAMED_FLOATS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if type(value) in (int, float, complex):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = _literal(node.left), _literal(node.right)
        if type(left) in (int, float) and type(right) is complex:
            return left + right if isinstance(node.op, ast.Add) else left - right
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("set", "frozenset")
        and not node.keywords
        and len(node.args) <= 1
    ):
        items = _literal(node.args[0]) if node.args else ()
        return set(items) if node.func.id == "set" else frozenset(items)
    raise ValueError(f"not plain data in a record: {type(node).__name__}")
