"""Completions that try to collect the reward without committing to one answer must not be scored correct.

Listing candidates in boxes, hedging in words ("either 3 or 4") or in logic (`\\lor`), and hiding a second answer
where a rule does not look are the usual ways a policy learns to game an answer checker during RL.
"""

from __future__ import annotations

import pytest

from rlvr.verifiers import MathVerifier, MathVerifyConfig
from rlvr.verifiers.types import CORRECT, HEDGED, MULTIPLE_ANSWERS, WRONG


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(MathVerifyConfig(timeout_s=5.0, workers=2)) as verifier:
        yield verifier


# -- many boxes -------------------------------------------------------------------------------------------------

_HUNDRED_BOXES = " ".join(rf"\boxed{{{i}}}" for i in range(1, 101))


def test_boxing_every_candidate_is_never_correct(verifier) -> None:
    golds = [str(i) for i in range(1, 101)]
    verdicts = verifier.verify_batch(golds, [_HUNDRED_BOXES] * len(golds))
    assert [v.reason for v in verdicts] == [MULTIPLE_ANSWERS] * 100
    assert not any(v.correct or v.score for v in verdicts)


@pytest.mark.parametrize(
    "completion",
    [
        r"Maybe \boxed{4}. No, wait: \boxed{5}.",
        r"\boxed{x = 4} or rather \boxed{5}",
        r"\boxed{1} \boxed{2} \boxed{3} \boxed{5}",  # within max_boxed: every box is checked
        r"\boxed{1} \boxed{2} \boxed{3} \boxed{4} \boxed{5}",  # beyond max_boxed: refused by rule
        r"\boxed{5} \boxed{6} \boxed{7} \boxed{8} \boxed{9} \boxed{5}",  # the right answer repeated last
        r"\boxed{\frac{9}{2}} then \fbox{5}",
        r"<answer>\boxed{4} or \boxed{5}</answer>",
    ],
)
def test_several_different_boxes_with_the_right_one_last_are_multiple_answers(verifier, completion) -> None:
    verdict = verifier.verify("5", completion)
    assert verdict.reason == MULTIPLE_ANSWERS, verdict
    assert not verdict.correct
    assert verdict.score == 0.0


def test_the_last_box_decides_when_it_is_wrong(verifier) -> None:
    verdict = verifier.verify("5", r"\boxed{5} hmm, actually \boxed{4}")
    assert verdict.reason == WRONG
    assert verdict.extracted == "4"


@pytest.mark.parametrize(
    "completion",
    [
        r"\boxed{5} so again \boxed{5} and once more \boxed{5}",
        r"\boxed{5} \boxed{ 5 } \fbox{5}",
        r"\boxed{5} \boxed{5.0} \boxed{\frac{10}{2}}",  # equivalent spellings, within max_boxed
        r"\boxed{x=5} and so \boxed{5}",
        r"\boxed{x = 5} \boxed{5} \boxed{x=5}",
        r"\boxed{5}\boxed{\phantom{5}}",
    ],
)
def test_repeated_or_equivalent_boxes_of_the_right_answer_are_correct(verifier, completion) -> None:
    verdict = verifier.verify("5", completion)
    assert verdict.reason == CORRECT, verdict
    assert verdict.score == 1.0


# -- hedging -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "completion",
    [
        "The answer is either 3 or 4.",
        r"\boxed{3 \text{ or } 4}",
        r"\boxed{3 \textrm{ or } 4}",
        r"\boxed{\text{3 or 4}}",
        r"\boxed{3 \text{ OR } 4}",
        r"\boxed{3 \quad\text{or}\quad 4}",
        r"\boxed{3 \text{ (or 4)}}",
        r"\boxed{3 \lor 4}",
        r"\boxed{3 \vee 4}",
        "Answer: 3 or 4",
        "<answer>3 or 4</answer>",
        "#### 3 or 4",
    ],
)
def test_hedged_answers_to_a_single_valued_gold_are_refused(verifier, completion) -> None:
    verdict = verifier.verify("3", completion)
    assert verdict.reason == HEDGED, verdict
    assert not verdict.correct


@pytest.mark.parametrize(
    "completion",
    [
        r"\boxed{3, 4}",
        r"\boxed{\{3, 4\}}",
        r"\boxed{3 \pm 1}",
        r"\boxed{x \in \{3, 4\}}",
        r"\boxed{3 \mid 4}",
        r"\boxed{3} or \boxed{4}",
    ],
)
def test_several_values_in_one_answer_are_not_correct_for_a_single_gold(verifier, completion) -> None:
    verdict = verifier.verify("3", completion)
    assert not verdict.correct, verdict
    assert verdict.reason in (WRONG, MULTIPLE_ANSWERS, HEDGED), verdict


@pytest.mark.parametrize(
    ("gold", "completion"),
    [
        ("3, 4", r"\boxed{x = 3 \text{ or } x = 4}"),
        ("3, 4", "The answer is x = 3 or x = 4."),
        ("3, 4", r"\boxed{3 \text{ or } 4}"),
        ("3, 4", r"\boxed{x = 3, x = 4}"),
        (r"3 \text{ or } 4", r"\boxed{x = 3 \text{ or } x = 4}"),
        (r"x = 3 \text{ or } x = 4", r"\boxed{4, 3}"),
        (r"\pm 2", r"\boxed{x = 2 \text{ or } x = -2}"),
    ],
)
def test_several_values_are_not_hedging_when_the_gold_has_several(verifier, gold, completion) -> None:
    verdict = verifier.verify(gold, completion)
    assert verdict.reason == CORRECT, verdict


@pytest.mark.parametrize(
    ("gold", "completion"),
    [
        ("3, 4", r"\boxed{x = 3 \text{ or } x = 5}"),
        ("3, 4", r"\boxed{3 \text{ or } 5}"),
        ("3, 4", r"\boxed{3}"),
        ("(1, 2)", r"\boxed{(1, 2) \text{ or } (3, 4)}"),  # a comma in the gold does not license hedging
        ("[0, 1)", r"\boxed{[0, 1) \text{ or } [1, 2)}"),
        ("1,234", "The answer is either 1234 or 1235."),
    ],
)
def test_a_multi_valued_gold_still_needs_exactly_its_values(verifier, gold, completion) -> None:
    verdict = verifier.verify(gold, completion)
    assert verdict.reason == WRONG, verdict


# -- hacks across math spans, nested boxes and choice letters ------------------------------------------------


@pytest.mark.parametrize(
    "completion",
    [
        "The answer is $3$ or $4$.",
        r"The final answer is \(3\) or \(4\).",
        "Answer: $3$, or maybe $4$",
    ],
)
def test_hedging_across_math_spans_is_not_correct(verifier, completion) -> None:
    verdict = verifier.verify("3", completion)
    assert not verdict.correct, verdict


def test_a_two_valued_answer_across_math_spans_is_read_whole(verifier) -> None:
    verdict = verifier.verify("3, 4", "The answer is $x = 3$ or $x = 4$.")
    assert verdict.reason == CORRECT, verdict


def test_hedging_around_a_nested_box_is_not_correct(verifier) -> None:
    verdict = verifier.verify("3", r"\boxed{\boxed{3} \text{ or } 4}")
    assert not verdict.correct, verdict


@pytest.mark.parametrize(
    "completion",
    [
        r"\boxed{A \text{ and } B}",
        r"\boxed{(A) \text{ and } (B)}",
        r"\boxed{A B}",
        r"\boxed{A.B}",
        r"\boxed{A) no, B}",
    ],
)
def test_naming_two_choices_is_not_correct(verifier, completion) -> None:
    verdict = verifier.verify("A", completion)
    assert not verdict.correct, verdict


def test_naming_two_choices_with_a_comma_is_wrong(verifier) -> None:
    assert verifier.verify("A", r"\boxed{A, B}").reason == WRONG
    assert verifier.verify("A", r"\boxed{A \text{ or } B}").reason == HEDGED


# -- sentences after "Final Answer:" (issue 14 reads the value a sentence states) --------------------------------


@pytest.mark.parametrize(
    "completion",
    [
        "Final Answer: the value is not equal to 3",
        "Final Answer: we could not find 3 solutions",
        "Final Answer: the answer cannot be 3",
        "Final Answer: The largest $n$ is not 3.",
        "Final Answer: the value is at least 3",
        "Final Answer: the value is 4, not 3",
        "Final Answer: 3 is wrong, the value is 4",
        "Final Answer: the count is either 3 or 4.",
    ],
)
def test_a_sentence_that_negates_or_qualifies_a_value_does_not_state_it(verifier, completion) -> None:
    verdict = verifier.verify("3", completion)
    assert not verdict.correct, verdict
