"""Numeric refutation (`refute.py`): clearly different values are `wrong` without Math-Verify, and nothing that
Math-Verify (or rlvr) calls equal is ever refuted.

Each undecided case below is one of Math-Verify's readings that differs from plain arithmetic, found by running
Math-Verify on it (`2(3)` is 5 to it, `\\pi(2)` a function call, `(3, 3]` the empty set, `1,000` one number), or
a value our evaluator cannot be sure of (cancellation, roots of negative numbers).
"""

from __future__ import annotations

import pytest

from rlvr.verifiers import MathVerifier, MathVerifyConfig
from rlvr.verifiers.refute import refutes

REFUTED = [
    ("2 \\sqrt{5}", "-2 \\sqrt{5}"),
    ("11\\sqrt2", "12\\sqrt2"),
    ("\\frac{\\sqrt{3}}{3}", "-\\frac{\\sqrt{3}}{3}"),
    ("12\\pi", "13\\pi"),
    ("6+9i", "-6+9i"),
    ("1+2\\sqrt{3}", "2+2\\sqrt{3}"),
    ("x^5 - x^4 + x^3 - x^2 + x - 1", "-x^5 - x^4 + x^3 - x^2 + x - 1"),
    ("x+1", "x+2"),
    ("3", "3e"),
    ("\\sqrt[3]{8}", "3"),
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"),
    ("(15,-29)", "(16,-29)"),
    ("(5,3)", "(6,2)"),  # tuples, not intervals, to Math-Verify
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 4, \\frac{\\pi}{2} \\right)"),
    ("(5,\\infty)", "(6,\\infty)"),
    ("(-\\infty, 5]", "(-\\infty, 6]"),
    ("-2,1", "-3,1"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty, 3) \\cup (3, \\infty)"),
    ("(0,9) \\cup (9,36)", "(0,36)"),  # 9 is left out
    ("(0,9) \\cup (9,36)", "(0,9) \\cup (9,36]"),
    (
        "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}",
        "\\begin{pmatrix} -2 & 0 \\\\ 0 & -1 \\end{pmatrix}",
    ),
    (
        "\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}",
        "\\begin{pmatrix} -19 \\\\ -49 \\\\ 96 \\end{pmatrix}",
    ),
    ("2516_8", "2517_8"),
    ("2516_8", "-2516_8"),
    ("\\{1\\pm\\sqrt{5},-2\\}", "\\{2\\pm\\sqrt{5},-2\\}"),  # `a \pm b` is {a + b, a - b}
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}"),
    ("\\pm 2", "2"),
    ("(1 \\pm 2, 3)", "(3, 3)"),
    ("5", "5, 6"),  # a value is the set of itself against a bare list
]

UNDECIDED = [
    # equal values: Math-Verify decides
    ("2\\sqrt{5}", "\\sqrt{20}"),
    ("\\sqrt{2}/2", "\\frac{1}{\\sqrt2}"),
    ("x^2", "xx"),
    ("ab", "ba"),
    ("3+4i", "4i+3"),
    ("x^{1/2}", "\\sqrt{x}"),
    ("1,2", "2,1"),
    ("\\{1,2\\}", "\\{1,2,2\\}"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(3, \\infty) \\cup (-\\infty, 2)"),
    ("(0,9) \\cup [9,36)", "(0,36)"),
    ("(-3, 5) \\cup (2, 4) \\cup [-4, 5)", "(-4, 5) \\cup (2, 4) \\cup [-4, 5)"),  # both [-4, 5)
    ("[-3, -2) \\cup (2, 5] \\cup [2, 7)", "[-3, -2) \\cup (4, 5] \\cup [2, 7)"),
    ("\\begin{pmatrix} 1 & 0 \\end{pmatrix}", "\\begin{bmatrix} 1 & 0 \\end{bmatrix}"),
    ("52_8", "52"),  # Math-Verify drops the base
    # readings where Math-Verify is not plain arithmetic
    ("\\frac{\\pi}{6}", "30^\\circ"),
    ("1\\frac{4}{5}", "\\frac{9}{5}"),  # a mixed number
    ("(1)(1)", "1"),  # 2 to Math-Verify
    ("2(3)", "6"),  # 5 to Math-Verify
    ("2 \\cdot 3(4)", "24"),  # 14 to Math-Verify
    ("\\pi(2)", "2\\pi"),  # a function call
    ("f(x)", "f(y)"),
    ("2^10", "20"),
    ("1/2x", "x/2"),
    ("2{3}", "23"),
    ("1,000", "2,000"),  # thousands
    ("10,\\!080", "10080"),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
    ("(3,3]", "(4,4]"),  # both empty
    ("(12, e^2, 12]", "(11, e^2, 12]"),  # not an interval
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 3)"),
    ("(1,2)", "1,2"),
    ("(-\\infty, 2]", "(-\\infty, 2)"),
    # units and words, which Math-Verify may drop; a different variable
    ("5000", "5 thousand"),
    ("2\\sqrt{2}", "2\\sqrt{2} cm"),
    ("x+1", "y+1"),
    # values the evaluator cannot be sure of, and what it does not read
    ("\\sqrt[3]{-8}", "-2"),
    ("e^{i\\pi}+1", "0"),
    ("0", "x-x"),
    ("\\frac{1}{3}", "0.3333333"),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}"),
    ("\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt5, 1-\\sqrt{5}\\}"),
    ("2\\pm\\sqrt{3}", "2\\mp\\sqrt{3}"),
    ("\\frac{1}{2} \\pm \\frac{\\sqrt{3}}{2}", "\\frac{1 \\pm \\sqrt{3}}{2}"),
    ("5", "5, 5"),
    ("1 \\pm 2 + 3", "6, -4"),  # where the second term ends: readers differ
    ("x \\pm 1", "x+1"),
    ("x_1", "x_2"),
    ("X", "Y"),
]


@pytest.mark.parametrize(("gold", "answer"), REFUTED)
def test_refuted(gold: str, answer: str) -> None:
    assert refutes(gold, answer)
    assert refutes(answer, gold)


@pytest.mark.parametrize(("gold", "answer"), UNDECIDED)
def test_undecided(gold: str, answer: str) -> None:
    assert not refutes(gold, answer)


def test_math_verify_agrees_with_every_refutation() -> None:
    """Math-Verify, run on each refuted pair in this process, calls it wrong as well."""
    from rlvr.verifiers.math_equiv import judge
    from rlvr.verifiers.types import WRONG

    assert [pair for pair in REFUTED if judge(*pair, 6) != WRONG] == []


def test_refuted_pairs_never_reach_the_pool() -> None:
    with MathVerifier(MathVerifyConfig(workers=1)) as verifier:
        verdicts = verifier.verify_batch([g for g, _ in REFUTED], [f"\\boxed{{{a}}}" for _, a in REFUTED])
        assert [v.reason for v in verdicts] == ["wrong"] * len(REFUTED)
        assert {v.details["path"] for v in verdicts} == {"fast"}
        assert verifier.stats.pool_calls == 0
