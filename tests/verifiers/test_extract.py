"""Final-answer extraction (`rlvr.verifiers.extract`): the rules of its module docstring, and linear time.

Extraction runs in the caller's process, outside the deadline pool, so a hostile completion that makes it slow
stalls the trainer itself. The timing tests therefore run each extraction in a child process with a hard limit:
a regression to quadratic time fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from rlvr.verifiers import MathVerifier, extract_answer, extract_choice, find_boxed
from rlvr.verifiers.extract import ExtractionConfig

LENIENT = ExtractionConfig(strict=False)


# -- \boxed and \fbox ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"so the result is \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
        (r"\fbox{\frac{a}{b^{2}}}", r"\frac{a}{b^{2}}"),
        (r"$\boxed{\sqrt{x^{2}+\left(y_{1}\right)^{2}}}$", r"\sqrt{x^{2}+\left(y_{1}\right)^{2}}"),
        (r"\boxed  {5}", "5"),  # spaces between the command and its brace
        (r"\boxed{ 12 }", "12"),  # the answer is stripped
    ],
)
def test_boxed_with_nested_braces(text: str, answer: str) -> None:
    extraction = extract_answer(text)
    assert extraction.answer == answer
    assert extraction.method == "boxed"


def test_several_boxes_last_one_wins_and_all_are_kept() -> None:
    extraction = extract_answer(r"First \boxed{1}, then \fbox{2}, finally \boxed{3}.")
    assert extraction.answer == "3"
    assert extraction.boxed == ("1", "2", "3")
    assert not extraction.too_many_boxes
    assert extract_answer(r"\fbox{a}\boxed{b}").answer == "b"
    assert extract_answer(r"\boxed{a}\fbox{b}").answer == "b"


def test_repeated_identical_boxes_count_once() -> None:
    extraction = extract_answer(r"\boxed{7} so again \boxed{7} and \boxed{ 7 }")
    assert extraction.answer == "7"
    assert extraction.boxed == ("7",)


def test_more_distinct_boxes_than_max_boxed_are_flagged() -> None:
    extraction = extract_answer(r"\boxed{1}\boxed{2}\boxed{3}\boxed{4}\boxed{5}")
    assert extraction.too_many_boxes
    assert extraction.answer == "5"
    assert extraction.boxed == ("2", "3", "4", "5")  # the last max_boxed of them
    assert not extract_answer(r"\boxed{1}\boxed{2}\boxed{3}\boxed{4}").too_many_boxes
    assert extract_answer(r"\boxed{1}\boxed{2}", ExtractionConfig(max_boxed=1)).too_many_boxes


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"\boxed 5", "5"),
        (r"so $\boxed 5$ it is", "5"),  # the bare form ends at a dollar sign
        (r"\boxed 42 and then text", "42"),  # ... or at whitespace
        (r"\fbox 7", "7"),
    ],
)
def test_bare_boxed_form(text: str, answer: str) -> None:
    assert extract_answer(text).answer == answer


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),
        (r"\boxed{\{1,2\} \cup \{3\}}", r"\{1,2\} \cup \{3\}"),
        (r"\boxed{\}}", r"\}"),  # an escaped closing brace does not close the box
        (r"\boxed{a\{b}", r"a\{b"),  # an escaped opening brace needs no partner
    ],
)
def test_escaped_braces_inside_a_box(text: str, answer: str) -> None:
    assert extract_answer(text).answer == answer


def test_boxes_nested_in_boxes() -> None:
    # Only outermost boxes are answers; a box that only wraps another box is unwrapped.
    extraction = extract_answer(r"\boxed{\boxed{7}}")
    assert extraction.answer == "7"
    assert extraction.boxed == ("7",)
    assert extract_answer(r"\boxed{ \fbox{ \boxed{7} } }").answer == "7"
    # A box inside a longer answer stays part of that answer.
    assert extract_answer(r"\boxed{\boxed{3} \text{ or } 4}").answer == r"\boxed{3} \text{ or } 4"
    assert find_boxed(r"x \boxed{1} y \boxed{\boxed{1}+\boxed{2}}") == ["1", r"\boxed{1}+\boxed{2}"]
    extraction = extract_answer(r"\boxed{a \boxed{b}}")
    assert extraction.answer == r"a \boxed{b}"
    assert extraction.boxed == (r"a \boxed{b}",)
    assert find_boxed(r"\boxed{x \fbox{y} z} \boxed{w}") == [r"x \fbox{y} z", "w"]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"\boxed{3", None),
        (r"\boxed{\frac{1}{2}", None),
        (r"\boxed{1} and then \boxed{2", "1"),  # only closed boxes count
        (r"\boxed{2} and \boxed{\frac{1}{", "2"),
    ],
)
def test_unclosed_boxes_are_not_answers(text: str, answer: str | None) -> None:
    assert extract_answer(text).answer == answer


def test_find_boxed_lists_closed_boxes_in_order() -> None:
    assert find_boxed("no boxes here") == []
    assert find_boxed(r"\boxed{1} x \fbox{2} y \boxed 3") == ["1", "2", "3"]
    assert find_boxed(r"\boxed{}") == [""]


# -- \phantom ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "boxed"),
    [
        (r"\boxed{\phantom{0}} and \boxed{4}", "4", ("4",)),
        (r"\boxed{4}\boxed{\phantom{0}}", "4", ("4",)),  # a trailing phantom box does not replace the answer
        (r"\boxed{4} \boxed{ \phantom{0} \phantom{1} }", "4", ("4",)),
        (r"\boxed{\phantom{x}}", None, ()),
        (r"\boxed{}", None, ()),
        (r"\boxed{   }", None, ()),
    ],
)
def test_phantom_and_empty_boxes_are_ignored(text: str, answer: str | None, boxed: tuple[str, ...]) -> None:
    extraction = extract_answer(text)
    assert extraction.answer == answer
    assert extraction.boxed == boxed


# -- <answer> tags ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "method"),
    [
        ("<answer>42</answer>", "42", "answer_tag"),
        ("<answer>$x^2$</answer>", "x^2", "answer_tag"),  # math delimiters around the whole tag are removed
        ("<ANSWER>\n 42 \n</Answer>", "42", "answer_tag"),
        (r"<answer>\boxed{7} and 8</answer>", "7", "answer_tag_boxed"),  # a box inside the tag is preferred
        (r"<answer>The result is $\boxed{\frac{3}{4}}$.</answer>", r"\frac{3}{4}", "answer_tag_boxed"),
        ("<answer>1</answer> on second thought <answer>2</answer>", "2", "answer_tag"),  # the last tag
        (r"\boxed{9} but <answer>3</answer>", "3", "answer_tag"),  # a tag outranks boxes outside it
        (r"<answer>3</answer> \boxed{9}", "3", "answer_tag"),
        ("<answer></answer>", None, "none"),
        ("<answer>  </answer>", None, "none"),
    ],
)
def test_answer_tags(text: str, answer: str | None, method: str) -> None:
    extraction = extract_answer(text)
    assert extraction.answer == answer
    assert extraction.method == method


# -- "the answer is" ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"The final answer is $\frac{1}{2}$.", r"\frac{1}{2}"),
        (r"The final answer is $\frac{1}{2}$. I hope it is correct.", r"\frac{1}{2}"),
        ("Answer: 42", "42"),
        ("ANSWER: 42", "42"),
        ("The answer is: 12", "12"),
        ("the answer is 3.5.", "3.5"),  # the full stop ends the sentence, the decimal point does not
        ("the answer is 3.5", "3.5"),
        ("The answer is 3.5. Then we check it.", "3.5"),
        ("answer is 3.50.", "3.50"),
        ("The answer is **12**.", "12"),
        ("The answer is:\n$$x^2$$", "x^2"),
        (r"So the final answer is \(y = 2x\).", "y = 2x"),
        ("Final answer: x + 1\nmore text", "x + 1"),  # the line ends the answer
        ("The answer is 2. Later: the answer is 5.", "5"),  # the last occurrence
    ],
)
def test_answer_is(text: str, answer: str) -> None:
    extraction = extract_answer(text)
    assert extraction.answer == answer
    assert extraction.method == "answer_is"


def test_boxes_outrank_answer_is() -> None:
    assert extract_answer(r"\boxed{4}. The answer is 3.").answer == "4"
    assert extract_answer(r"The answer is 3. \boxed{4}").answer == "4"


def test_answer_is_without_an_answer_is_no_answer() -> None:
    assert extract_answer("We get 3. The answer is\n\n").answer is None


# -- GSM8K ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("She pays 1234 in total.\n#### 1,234", "1,234"),
        ("####1,234", "1,234"),
        ("#### 12\nwait\n#### 13", "13"),  # the last occurrence
        ("#### -7  ", "-7"),
    ],
)
def test_gsm8k_marker(text: str, answer: str) -> None:
    extraction = extract_answer(text)
    assert extraction.answer == answer
    assert extraction.method == "gsm8k"


def test_gsm8k_priority_and_empty_marker() -> None:
    assert extract_answer("Answer: 7\n#### 8").answer == "7"  # "answer is" outranks ####
    assert extract_answer(r"\boxed{5}" + "\n#### 8").answer == "5"
    assert extract_answer("#### ").answer is None


def test_gsm8k_thousands_separator_is_verified_as_the_number() -> None:
    with MathVerifier() as verifier:  # plain numbers are decided by the fast path: no worker starts
        verdict = verifier.verify("1234", "She pays 1234 in total.\n#### 1,234")
        assert verdict.correct, verdict
        assert verifier.stats.pool_calls == 0


# -- multiple choice --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "choice"),
    [
        ("(C)", "C"),
        (r"\text{(C)}", "C"),
        ("C", "C"),
        ("(C) 42", "C"),
        (r"\textbf{(B)}", "B"),
        (r"$\text{(E)}$", "E"),
        (r"\textbf{C}", "C"),
        (" ( D ) ", "D"),
        ("A.", "A"),
        ("C)", "C"),
    ],
)
def test_extract_choice(answer: str, choice: str) -> None:
    assert extract_choice(answer) == choice


@pytest.mark.parametrize("answer", ["42", "CD", "Cat", "A5", "E=mc^2", "", r"\frac{1}{2}", "x"])
def test_extract_choice_rejects_non_choices(answer: str) -> None:
    assert extract_choice(answer) is None


def test_choice_answers_are_verified_by_letter() -> None:
    with MathVerifier() as verifier:
        assert verifier.verify("C", r"\boxed{\text{(C)}}").correct
        assert verifier.verify("(C)", r"The answer is (C) 42.").correct
        assert verifier.verify("B", r"\boxed{\textbf{(B)}}").correct
        assert not verifier.verify("C", r"\boxed{D}").correct
        assert verifier.stats.pool_calls == 0


# -- the last-number fallback -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("So x is 17 and then 3.", "3"),
        ("The total is 1,234 apples", "1234"),
        ("x = -2.5", "-2.5"),
        ("so 3/4 of it", "3/4"),
        ("We get 1, 2, 3", "3"),
    ],
)
def test_last_number_only_when_not_strict(text: str, answer: str) -> None:
    assert extract_answer(text).answer is None  # strict is the default
    assert extract_answer(text, ExtractionConfig(strict=True)).answer is None
    extraction = extract_answer(text, LENIENT)
    assert extraction.answer == answer
    assert extraction.method == "last_number"


def test_last_number_is_the_last_resort() -> None:
    assert extract_answer(r"1 2 \boxed{9} 3", LENIENT).answer == "9"
    assert extract_answer("1 2 #### 9\n 3", LENIENT).answer == "9"
    assert extract_answer("no digits at all", LENIENT).answer is None


# -- linear time ------------------------------------------------------------------------------------------------

_TIMER = """
import json, sys, time
from rlvr.verifiers.extract import ExtractionConfig, extract_answer
text = sys.stdin.read()
config = ExtractionConfig(strict=sys.argv[1] == "strict")
start = time.perf_counter()
extraction = extract_answer(text, config)
seconds = time.perf_counter() - start
answer = extraction.answer
print(json.dumps({"seconds": seconds, "method": extraction.method,
                  "answer": None if answer is None else [len(answer), answer[:20], answer[-20:]]}))
"""
_LIMIT_S = 1.0
_HARD_LIMIT_S = (
    3.0  # wall time of the child, start-up included: past it the extraction is far too slow anyway
)


def _timed_extraction(text: str, strict: bool = True) -> dict:
    """Extract in a fresh interpreter; returns the child's own timing (seconds) and a summary of the answer.

    `seconds` is infinite when the child had to be killed at the hard limit."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _TIMER, "strict" if strict else "lenient"],
            input=text,
            capture_output=True,
            text=True,
            timeout=_HARD_LIMIT_S,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": float("inf"), "method": None, "answer": None}
    return json.loads(done.stdout)


_MILLION = 1_000_000
_ANY = "any"  # a degenerate input whose answer is not the point: only the time is checked


def _prose(length: int) -> str:
    """At least `length` characters of whole sentences with math, braces and numbers; the last number is 15."""
    sentence = "We add $x_{1} + x_{2}$ to both sides {so} that 12 + 3 = 15, hence (a). "
    return sentence * -(-length // len(sentence))


@pytest.mark.parametrize(
    ("text", "strict", "answer"),
    [
        pytest.param(_prose(_MILLION) + r" \boxed{42}", True, [2, "42", "42"], id="prose-then-box"),
        pytest.param(_prose(_MILLION) + " The answer is 42.", True, [2, "42", "42"], id="prose-answer-is"),
        pytest.param(_prose(_MILLION), False, [2, "15", "15"], id="prose-last-number"),
        pytest.param(_prose(_MILLION), True, None, id="prose-no-answer"),
        pytest.param(r"\boxed{1}" * (_MILLION // 9), True, [1, "1", "1"], id="many-equal-boxes"),
        pytest.param(
            "".join(rf"\boxed{{{i}}}" for i in range(_MILLION // 12)),
            True,
            [5, "83332", "83332"],
            id="many-distinct-boxes",
        ),
        pytest.param(r"\boxed{" + "x" * _MILLION + "}", True, [_MILLION, "x" * 20, "x" * 20], id="huge-box"),
        pytest.param(r"\boxed{" + "{" * _MILLION, True, None, id="million-unclosed-braces"),
        pytest.param("{" * (_MILLION // 2) + "}" * (_MILLION // 2), True, None, id="million-braces-no-box"),
        pytest.param(r"\boxed " * (_MILLION // 7), True, _ANY, id="bare-boxes"),
        pytest.param("the answer is " * (_MILLION // 14), True, None, id="answer-is-repeated"),
        pytest.param("#### " * (_MILLION // 5), True, _ANY, id="gsm8k-markers"),
        pytest.param("1 " * (_MILLION // 2), False, [1, "1", "1"], id="million-numbers"),
        pytest.param("</answer>" * (_MILLION // 9), True, None, id="closing-tags"),
    ],
)
def test_million_character_text_is_extracted_in_linear_time(
    text: str, strict: bool, answer: list | str | None
) -> None:
    result = _timed_extraction(text, strict)
    assert result["seconds"] < _LIMIT_S, result
    if answer != _ANY:
        assert result["answer"] == answer, result


_DEEP = "{" * 10_000 + "1" + "}" * 10_000
_ESCAPED = r"\{" * 10_000 + "1" + r"\}" * 10_000


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        pytest.param(r"\boxed{" + _DEEP + "}", _DEEP, id="closed"),
        pytest.param(r"\boxed{" + "{" * 10_000 + "1", None, id="unclosed"),
        pytest.param(r"\boxed{" + _DEEP, None, id="box-unclosed"),
        pytest.param(r"\boxed{" + _DEEP + "}" * 10_000, _DEEP, id="extra-closing"),
        pytest.param(r"\boxed{" + _ESCAPED + "}", _ESCAPED, id="escaped"),
    ],
)
def test_braces_nested_ten_thousand_deep_are_extracted_in_linear_time(text: str, answer: str | None) -> None:
    start = time.perf_counter()
    extraction = extract_answer(text)
    elapsed = time.perf_counter() - start
    assert elapsed < _LIMIT_S
    assert extraction.answer == answer


def test_braces_nested_ten_thousand_deep_in_a_child_process() -> None:
    # The same through the bounded timer, so the two measurements agree.
    text = r"\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}"
    result = _timed_extraction(text)
    assert result["seconds"] < _LIMIT_S, result
    assert result["answer"] == [20_001, "{" * 20, "}" * 20], result


def test_boxes_nested_ten_thousand_deep_are_extracted_in_linear_time() -> None:
    result = _timed_extraction(r"\boxed{" * 10_000 + "1" + "}" * 10_000)
    assert result["seconds"] < _LIMIT_S, result
    assert result["answer"] == [1, "1", "1"], result


def test_unclosed_answer_tags_are_extracted_in_linear_time() -> None:
    result = _timed_extraction("<answer>" * (_MILLION // 8))
    assert result["seconds"] < _LIMIT_S, result
    assert result["answer"] is None, result
