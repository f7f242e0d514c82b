"""Format reward checks and DAPO overlong shaping against hand-computed values."""

import pytest

from rlvr.verifiers.format_reward import FormatConfig, format_reward
from rlvr.verifiers.length import OverlongConfig, is_truncated, overlong_penalty

GOOD = "<think>2 + 2 is 4.</think> The answer is \\boxed{4}."


@pytest.mark.parametrize(
    ("completion", "checks"),
    [
        (GOOD, {"think": True, "single_boxed": True}),
        (
            "<think>2 + 2 is 4.</think>",
            {"think": False, "single_boxed": False},
        ),  # nothing after the reasoning
        ("2 + 2 is 4. \\boxed{4}", {"think": False, "single_boxed": True}),
        ("<think>a</think><think>b</think> \\boxed{4}", {"think": False, "single_boxed": True}),
        ("<think>x</think> \\boxed{3} or \\boxed{4}", {"think": True, "single_boxed": False}),
        ("<think>x</think> \\boxed{4", {"think": True, "single_boxed": False}),  # unclosed box
        (
            "<think>guess \\boxed{3}</think> so \\boxed{4}",
            {"think": True, "single_boxed": True},
        ),  # box in reasoning
    ],
)
def test_format_checks(completion, checks):
    result = format_reward(completion)
    assert result.checks == checks
    assert result.score == pytest.approx(sum(checks.values()) / len(checks))


def test_all_or_nothing_and_think_opened_in_prompt():
    half = "2 + 2 is 4. \\boxed{4}"
    assert format_reward(half, FormatConfig(all_or_nothing=True)).score == 0.0
    assert format_reward(GOOD, FormatConfig(all_or_nothing=True)).score == 1.0
    opened = FormatConfig(think_opened_in_prompt=True)
    assert format_reward("reasoning here</think> \\boxed{4}", opened).checks["think"] is True
    assert format_reward(GOOD, opened).checks["think"] is False  # opened twice


def test_required_tags_in_order():
    config = FormatConfig(think=False, single_boxed=False, required_tags=("think", "answer"))
    assert format_reward("<think>a</think><answer>4</answer>", config).score == 1.0
    assert format_reward("<answer>4</answer><think>a</think>", config).score == 0.0
    assert format_reward("<think>a</think><answer>4</answer><answer>5</answer>", config).score == 0.0
    assert format_reward("<think>a</think>", config).score == 0.0


@pytest.mark.parametrize(
    ("tokens", "expected"),
    # L_max = 20, L_cache = 4: free up to 16 tokens, then (16 - |o|) / 4 down to -1 at 20, and -1 beyond.
    [(0, 0.0), (16, 0.0), (17, -0.25), (18, -0.5), (19, -0.75), (20, -1.0), (21, -1.0), (10_000, -1.0)],
)
def test_overlong_penalty_matches_dapo(tokens, expected):
    assert overlong_penalty(tokens, OverlongConfig(max_length=20, buffer=4)) == pytest.approx(expected)


def test_overlong_penalty_factor_and_validation():
    assert overlong_penalty(18, OverlongConfig(20, 4, penalty_factor=0.5)) == pytest.approx(-0.25)
    with pytest.raises(ValueError, match="buffer"):
        OverlongConfig(max_length=20, buffer=0)
    with pytest.raises(ValueError, match="buffer"):
        OverlongConfig(max_length=20, buffer=21)
    with pytest.raises(ValueError, match="num_tokens"):
        overlong_penalty(-1, OverlongConfig(20, 4))


def test_truncation_flag():
    assert is_truncated("length")
    assert not is_truncated("stop")
    assert not is_truncated(None)
