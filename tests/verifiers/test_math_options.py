"""Options of the math verifier from issue 14: precision per call, set-relation comparison, extraction profiles
(`MathVerifyConfig(extraction=...)`, `rlvr verify math --extraction`, `--lenient` as an alias), the exact path's
size guard, and reading several boxes as one list only when the gold has several values."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rlvr.verifiers import MathVerifier, MathVerifyConfig
from rlvr.verifiers.exact import MAX_BITS, TooLarge, evaluate
from rlvr.verifiers.extract import ExtractionConfig, extract_answer
from rlvr.verifiers.types import CORRECT, HEDGED, MULTIPLE_ANSWERS, WRONG


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(MathVerifyConfig(workers=1)) as verifier:
        yield verifier


# -- precision per call ------------------------------------------------------------------------------------------


def test_precision_is_decimal_places_per_call(verifier) -> None:
    assert not verifier.verify("3.14159", r"\boxed{3.1416}").correct  # default: 1e-6
    assert verifier.verify("3.14159", r"\boxed{3.1416}", precision=3).correct
    assert not verifier.verify("3.14159", r"\boxed{3.1416}", precision=6).correct
    assert verifier.verify("3.14159", r"\boxed{\pi}", precision=4).correct  # Math-Verify's rounding path
    assert not verifier.verify("3.14159", r"\boxed{\pi}").correct  # and the cache keeps the precisions apart


def test_precision_never_loosens_exact_comparison(verifier) -> None:
    assert not verifier.verify(r"\frac{1}{3}", r"\boxed{\frac{1}{3} + \frac{1}{10^{9}}}", precision=2).correct


@pytest.mark.parametrize("precision", [0, 16, -1, 2.5, True])
def test_a_bad_precision_is_refused_with_the_fix(verifier, precision) -> None:
    with pytest.raises(ValueError, match="decimal places"):
        verifier.verify("1", r"\boxed{1}", precision=precision)


# -- set relations ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gold", [r"x \in [-2, 7]", "[-2, 7]"])
def test_set_relation_comparison_is_an_option(gold) -> None:
    completion = r"\boxed{-2 \le x \le 7}"
    with MathVerifier(MathVerifyConfig(workers=1)) as off:
        assert off.verify(gold, completion).reason == WRONG
    with MathVerifier(MathVerifyConfig(workers=1, allow_set_relation_comp=True)) as on:
        assert on.verify(gold, completion).reason == CORRECT
        assert on.verify(gold, r"\boxed{-2 < x \le 7}").reason == WRONG
        assert on.verify(gold, r"\boxed{-2 \le x \le 8}").reason == WRONG


# -- extraction profiles ---------------------------------------------------------------------------------------


def test_profiles_and_the_strict_alias() -> None:
    assert MathVerifyConfig().extraction == "strict"
    assert MathVerifyConfig(strict=False).extraction == "last_number"
    assert MathVerifyConfig(extraction="math_verify").strict is False
    with pytest.raises(ValueError, match="extraction must be one of"):
        MathVerifyConfig(extraction="loose")


@pytest.mark.parametrize(
    ("text", "strict", "last_number", "math_verify"),
    [
        ("So we get $x = 4$ in the end", None, "4", "x = 4"),
        (r"\frac{x+2}{7}", None, "7", r"\frac{x+2}{7}"),
        ("(1,4.5)", None, "4.5", "(1,4.5)"),
        ("We tried 3 things and the result was 5 apples in total", None, "5", "5"),
        (r"\boxed{6} and later $7$", "6", "6", "6"),  # an explicit answer wins in every profile
        ("$1$ and $2$ and $3$", None, "3", "1 and 2 and 3"),
        ("$3$ or $4$", None, "4", "3 or 4"),  # kept with its "or": the verifier sees the hedge
        ("Answer $ \n 9 \n $", None, "9", "9"),  # inline math never spans lines; the last number is read
        (r"$\boxed{255}$ so The final answer is $10,455$. I hope it is correct.", "255", "255", "10,455"),
    ],
)
def test_extraction_profiles(text, strict, last_number, math_verify) -> None:
    for profile, expected in (("strict", strict), ("last_number", last_number), ("math_verify", math_verify)):
        config = ExtractionConfig(strict=profile == "strict", profile=profile)
        assert extract_answer(text, config).answer == expected, profile


def test_math_verify_profile_keeps_hedges_and_lists_apart() -> None:
    with MathVerifier(MathVerifyConfig(workers=1, extraction="math_verify")) as verifier:
        assert verifier.verify("3", "$3$ or $4$").reason == HEDGED
        assert not verifier.verify("3", "so $3$ or $4$").correct  # prose before: the last span, 4
        assert verifier.verify("1, 2, 3", "$1$, $2$ and $3$").reason == CORRECT
        assert verifier.verify("1, 2, 3", "$1$ and $2$").reason == WRONG


def _cli(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "verify", "math", "--workers", "1", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_cli_extraction_option_and_lenient_alias() -> None:
    pair = ("--gold", "12", "--pred", "we found 12 in the end")
    assert _cli(*pair)["reason"] == "no_answer"
    assert _cli(*pair, "--lenient")["correct"] is True
    assert _cli(*pair, "--extraction", "last_number")["correct"] is True
    assert _cli("--gold", r"\frac{1}{12}", "--pred", "$0.0833333333$", "--extraction", "math_verify")[
        "correct"
    ]


# -- exact arithmetic and its guard -------------------------------------------------------------------------------


def test_exact_values_and_the_size_guard() -> None:
    assert evaluate(r"\frac{1}{2^{3}} + 3!").value == 6.125
    assert evaluate("2^{-2}").exact and not evaluate("0.5 + 1").exact
    assert evaluate(r"\sqrt{2}") is None and evaluate("x + 1") is None
    with pytest.raises(TooLarge):
        evaluate(f"2^{{{MAX_BITS + 1}}}")
    with pytest.raises(TooLarge):
        evaluate("6000!")


# -- several boxes as one list, both directions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "completion", "reason"),
    [
        ("1, 2", r"\boxed{1} and \boxed{2}", CORRECT),
        ("(2, 2), (6, 2)", r"\boxed{(2, 2)}, \boxed{(6, 2)}", CORRECT),
        ("1, 2", r"\boxed{1} \boxed{2} \boxed{3}", WRONG),
        ("2", r"\boxed{1} and \boxed{2}", MULTIPLE_ANSWERS),
        ("2", r"\boxed{2} and \boxed{2}", CORRECT),
        ("2", r"\boxed{1} \boxed{2} \boxed{3} \boxed{4} \boxed{5}", MULTIPLE_ANSWERS),
        ("2", r"\boxed{1 \text{ or } 2}", HEDGED),
    ],
)
def test_several_boxes_are_a_list_only_for_a_list_gold(verifier, gold, completion, reason) -> None:
    assert verifier.verify(gold, completion).reason == reason
