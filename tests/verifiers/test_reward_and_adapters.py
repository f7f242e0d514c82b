"""Reward composition and the TRL / verl adapters, on the real verifier."""

import pytest

from rlvr.verifiers import MathVerifier
from rlvr.verifiers.adapters import completion_text, compute_score, trl_math_reward
from rlvr.verifiers.format_reward import FormatConfig
from rlvr.verifiers.length import OverlongConfig
from rlvr.verifiers.reward import (
    CompositeReward,
    FormatComponent,
    FunctionComponent,
    MathCorrectness,
    OverlongComponent,
    RewardSample,
)


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier() as v:
        yield v


def test_composite_reward_total_and_breakdown(verifier):
    reward = CompositeReward(
        [
            (MathCorrectness(verifier), 1.0),
            (FormatComponent(FormatConfig(think=True, single_boxed=True)), 0.2),
            (OverlongComponent(OverlongConfig(max_length=100, buffer=20)), 1.0),
        ]
    )
    samples = [
        RewardSample("<think>3 * 4</think> \\boxed{12}", gold="12", num_tokens=50),
        RewardSample("\\boxed{13}", gold="12", num_tokens=90),
    ]
    good, bad = reward.score_batch(samples)
    assert good.raw == {"correct": 1.0, "format": 1.0, "overlong": 0.0}
    assert good.total == pytest.approx(1.2)
    # (80 - 90) / 20 = -0.5 overlong; format: one of two checks passes -> 0.5 * 0.2
    assert bad.raw == {"correct": 0.0, "format": 0.5, "overlong": -0.5}
    assert bad.components == pytest.approx({"correct": 0.0, "format": 0.1, "overlong": -0.5})
    assert bad.total == pytest.approx(sum(bad.components.values()))


def test_composite_reward_validation():
    with pytest.raises(ValueError, match="unique"):
        CompositeReward([(FormatComponent(), 1.0), (FormatComponent(), 0.5)])
    with pytest.raises(ValueError, match="finite"):
        CompositeReward([(FormatComponent(), float("nan"))])
    with pytest.raises(ValueError, match="num_tokens"):
        CompositeReward([(OverlongComponent(OverlongConfig(10, 2)), 1.0)]).score(RewardSample("x"))
    custom = CompositeReward([(FunctionComponent("length", lambda s: len(s.completion)), 0.5)])
    assert custom.score(RewardSample("abcd")).total == 2.0


def test_trl_reward_with_chat_and_plain_completions(verifier):
    reward = trl_math_reward(answer_field="solution", verifier=verifier)
    chat = [
        [{"role": "assistant", "content": "So the total is \\boxed{\\frac{3}{4}}."}],
        [{"role": "assistant", "content": [{"type": "text", "text": "The answer is 0.75"}]}],
        [{"role": "assistant", "content": "I think \\boxed{1}"}],
    ]
    prompts = [[{"role": "user", "content": "q"}]] * 3
    assert reward(prompts=prompts, completions=chat, solution=["3/4", "3/4", "3/4"]) == [1.0, 1.0, 0.0]
    assert reward(prompts=["q"], completions=["\\boxed{7}"], solution=[7]) == [1.0]
    with pytest.raises(KeyError, match="answer_field"):
        reward(prompts=["q"], completions=["\\boxed{7}"], answer=["7"])


def test_completion_text_shapes():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert completion_text({"role": "assistant", "content": None}) == ""
    with pytest.raises(TypeError):
        completion_text(42)


def test_verl_compute_score():
    result = compute_score("math500", "Thus the answer is $\\boxed{\\dfrac{1}{2}}$.", "\\frac12")
    assert result == {"score": 1.0, "acc": True, "pred": "\\dfrac{1}{2}"}
    assert compute_score("gsm8k", "#### 72", "73")["score"] == 0.0
    assert compute_score("x", "\\boxed{4}", ["2", "4"], extra_info={"index": 0})["acc"] is True
