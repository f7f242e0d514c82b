"""Test suites and the comparisons made in the parent (`rlvr.verifiers.code_tests`): no sandbox needed.

The LiveCodeBench rows of `../shared/data/code/lcb_style.jsonl` must all parse: 400 rows, 219 stdin problems
with 604 cases and 181 LeetCode problems with 439 functional cases, as MANIFEST.md states.
"""

from __future__ import annotations

import json
import math

import pytest
from realdata import read_code_rows

from rlvr.verifiers.code_tests import (
    LCB_PRELUDE,
    CodeTestCase,
    CodeTests,
    called_entry_points,
    compare_stdout,
    decode_literal,
    referenced_modules,
    values_equal,
)

# -- stdout comparison (LiveCodeBench rules) --------------------------------------------------------------


@pytest.mark.parametrize(
    "got, expected",
    [
        ("YES\nNO\n", "YES\nNO"),
        ("YES  \r\nNO\t\n\n\n", "YES\nNO\n"),
        ("  3 4\n", "3 4\n"),  # LCB strips both ends of every line
        ("1.0\n", "1\n"),  # equal as decimals
        ("2.50 3\n", "2.5 3.0\n"),
    ],
)
def test_stdout_equal(got: str, expected: str) -> None:
    assert compare_stdout(got, expected)[0]


@pytest.mark.parametrize(
    "got, expected, why",
    [
        ("YES\n", "YES\nNO\n", "1 output lines, expected 2"),
        ("yes\n", "YES\n", "line 1 differs"),
        ("3 4\n", "3  5\n", "line 1 differs"),
        ("0.3333333\n", "0.33333333\n", "line 1 differs"),
        ("1 2\n", "1 2 3\n", "line 1 differs"),
        ("", "0\n", "line 1 differs"),
    ],
)
def test_stdout_different(got: str, expected: str, why: str) -> None:
    assert compare_stdout(got, expected) == (False, why)


def test_stdout_float_tolerance() -> None:
    assert compare_stdout("0.3333333\n", "0.33333333\n", float_tolerance=1e-6)[0]
    assert not compare_stdout("0.33\n", "0.33333333\n", float_tolerance=1e-6)[0]
    assert compare_stdout("1000000.5\n", "1000000.4\n", float_tolerance=1e-6)[0]  # relative to |expected|
    assert not compare_stdout("nan\n", "1\n", float_tolerance=1.0)[0]


# -- functional results --------------------------------------------------------------------------------------


def test_values_compare_as_json_would() -> None:
    assert values_equal((1, 2), [1, 2])  # tuples are lists, as in the judge's JSON
    assert values_equal([(1, 2), (3, 4)], [[1, 2], [3, 4]])
    assert values_equal({"a": (1,)}, {"a": [1]})
    assert values_equal(True, True) and not values_equal(False, True)
    assert values_equal(1, True)  # Python's == (LiveCodeBench compares with == too)
    assert not values_equal({1, 2}, [1, 2])
    assert not values_equal(0.30000000000000004, 0.3)
    assert values_equal(0.30000000000000004, 0.3, float_tolerance=1e-9)
    assert values_equal([1.0, [2.0000001]], [1, [2]], float_tolerance=1e-6)
    assert not values_equal([1, 2], [1, 2, 3], float_tolerance=1e-6)


def test_decode_literal_reads_plain_data_only() -> None:
    value = decode_literal(
        "(1, -2.5, 'a', None, True, [1, (2,)], {'k': {3}}, set(), frozenset({1}), b'x', (1+2j))"
    )
    assert value == (1, -2.5, "a", None, True, [1, (2,)], {"k": {3}}, set(), frozenset({1}), b"x", 1 + 2j)
    assert math.isnan(decode_literal("nan")) and decode_literal("-inf") == -math.inf
    assert decode_literal("('__int__', 'ff')") == 255
    for hostile in ("__import__('os').system('true')", "f(1)", "[x for x in y]", "{**a}", "a.b", "1 +"):
        with pytest.raises(ValueError):
            decode_literal(hostile)


# -- suites -------------------------------------------------------------------------------------------------


def test_lcb_rows_all_parse() -> None:
    rows = read_code_rows("lcb_style.jsonl")
    suites = [CodeTests.from_lcb(row) for row in rows]
    stdin = [s for s in suites if s.kind == "stdin"]
    functional = [s for s in suites if s.kind == "functional"]
    assert (len(rows), len(stdin), len(functional)) == (400, 219, 181)
    assert sum(len(s) for s in stdin) == 604
    assert sum(len(s) for s in functional) == 439
    for row, suite in zip(rows, suites, strict=True):
        assert suite.task_id == row["question_id"]
        assert suite.prelude == LCB_PRELUDE
        assert (suite.kind == "functional") == bool(row["starter_code"])
        if suite.kind == "functional":
            assert suite.fn_name == json.loads(row["metadata"])["func_name"]
            assert f"def {suite.fn_name}(" in row["starter_code"]
            for case in suite.cases:  # one JSON argument per line, a JSON result
                [json.loads(line) for line in case.input.split("\n")]
                json.loads(case.output)


def test_lcb_solution_files_carry_the_same_tests() -> None:
    """The MavenCoder solution files join lcb_style.jsonl on task_id == question_id, and their older
    `{'input_output': ...}` test field parses to the same suite."""
    suites = {s.task_id: s for s in map(CodeTests.from_lcb, read_code_rows("lcb_style.jsonl"))}
    for name in (
        "lcb_solutions_gpt-4o-mini_mavencoder.jsonl",
        "lcb_solutions_qwen3-coder-plus_mavencoder.jsonl",
    ):
        rows = read_code_rows(name)
        assert sorted(row["task_id"] for row in rows) == sorted(suites)
        for row in rows:
            theirs = CodeTests.from_lcb(row)
            ours = suites[row["task_id"]]
            assert (theirs.kind, theirs.cases, theirs.fn_name) == (ours.kind, ours.cases, ours.fn_name)


def test_humaneval_and_mbpp_suites() -> None:
    humaneval = read_code_rows("humaneval.jsonl")
    suite = CodeTests.from_humaneval(humaneval[0])
    assert (suite.kind, suite.entry_points, suite.cases) == (
        "assert",
        ("has_close_elements",),
        (CodeTestCase("check(has_close_elements)"),),
    )
    assert suite.prefix == humaneval[0]["prompt"]
    mbpp = {row["task_id"]: row for row in read_code_rows("mbpp.jsonl")}
    assert CodeTests.from_mbpp(mbpp[2]).entry_points == ("similar_elements",)  # inside set(...)
    assert CodeTests.from_mbpp(mbpp[126]).entry_points == ("sum",)  # MBPP 126 tests a function named sum
    assert "math" in referenced_modules(
        CodeTests.from_mbpp(next(r for r in mbpp.values() if r["test_imports"]))
    )


def test_entry_points_and_modules() -> None:
    assert called_entry_points(["assert f(g(1)) == sorted(h(2))", "assert max(k(3)) == 1"]) == [
        "f",
        "g",
        "h",
        "k",
    ]
    suite = CodeTests(
        kind="assert",
        cases=(
            CodeTestCase("assert math.isclose(f(1), 2.0)"),
            CodeTestCase("string = 'x'\nassert f(string)"),
        ),
        setup="import collections\nfrom itertools import chain",
    )
    assert referenced_modules(suite) == ["collections", "itertools", "math"]


def test_suite_validation() -> None:
    with pytest.raises(ValueError):
        CodeTests(kind="interactive", cases=())
    with pytest.raises(ValueError):
        CodeTests(kind="functional", cases=(CodeTestCase("1", "1"),))
