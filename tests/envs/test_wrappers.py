"""Wrappers: each adds one named component (or one behaviour), and the breakdown sums to the reward."""

from __future__ import annotations

import pytest

import rlvr
from rlvr.envs.base import SingleTurnEnv
from rlvr.envs.check import run_gym_check
from rlvr.envs.registry import reward_components
from rlvr.envs.types import Completion, Task
from rlvr.envs.wrappers import (
    EpisodeStatistics,
    FormatReward,
    MaxTurns,
    OverlongShaping,
    PlainTextObservation,
)
from rlvr.errors import ConfigError


class ExactAnswer(SingleTurnEnv):
    """Correct when the reply contains \\boxed{answer}."""

    def __init__(self):
        super().__init__(
            [Task("t0", "What is 2 + 2?", "4"), Task("t1", "What is 3 + 3?", "6")], system_prompt="Be brief."
        )

    def score(self, task, completion):
        right = f"\\boxed{{{task.answer}}}" in completion.text
        return {"correct": float(right)}, None

    def reference_action(self):
        return f"\\boxed{{{self.task.answer}}}"


def step_once(env, action, index=0):
    env.reset(seed=0, options={"task_index": index})
    return env.step(action)


def test_format_reward_adds_its_component_and_max_reward():
    env = FormatReward(ExactAnswer(), weight=0.2)
    _, reward, terminated, _, info = step_once(env, "so \\boxed{4}")
    assert info["rewards"] == {"correct": 1.0, "format": pytest.approx(0.2)}
    assert reward == pytest.approx(sum(info["rewards"].values())) and terminated
    _, reward, _, _, info = step_once(env, "4, I think \\boxed{4} or \\boxed{5}")
    assert info["rewards"]["format"] == 0.0 and reward == 1.0
    assert env.max_reward == pytest.approx(1.2)
    assert reward_components(env) == ["correct", "format"]


def test_a_component_cannot_be_added_twice():
    env = FormatReward(FormatReward(ExactAnswer()))
    with pytest.raises(ConfigError, match="already set"):
        step_once(env, "\\boxed{4}")


def test_overlong_shaping_reads_the_completion_token_count():
    env = OverlongShaping(ExactAnswer(), max_length=10, buffer=4)
    # L_max - L_cache = 6 tokens are free; 8 tokens: (6 - 8) / 4 = -0.5; beyond 10: -1.
    for count, expected in [(6, 0.0), (8, -0.5), (10, -1.0), (12, -1.0)]:
        completion = Completion("\\boxed{4}", token_ids=tuple(range(count)), finish_reason="stop")
        _, reward, _, _, info = step_once(env, completion)
        assert info["rewards"]["overlong"] == pytest.approx(expected)
        assert reward == pytest.approx(1.0 + expected)


def test_overlong_shaping_counts_a_string_with_a_tokenizer_or_refuses(smollm2_tokenizer):
    env = OverlongShaping(ExactAnswer(), max_length=6, buffer=2, tokenizer=smollm2_tokenizer)
    _, _, _, _, info = step_once(env, "\\boxed{4} " + "word " * 20)
    assert info["rewards"]["overlong"] == -1.0
    bare = OverlongShaping(ExactAnswer(), max_length=6, buffer=2)
    with pytest.raises(ConfigError, match="tokenizer"):
        step_once(bare, "\\boxed{4}")


def test_max_turns_truncates_a_multi_turn_env():
    env = MaxTurns(rlvr.make("rlvr/guess-number-v0"), max_turns=2)
    env.reset(seed=0, options={"task_index": 0})
    core = env.unwrapped
    _, _, terminated, truncated, _ = env.step(core.wrong_action())
    assert not terminated and not truncated
    _, _, terminated, truncated, _ = env.step(core.wrong_action())
    assert truncated and not terminated
    with pytest.raises(ConfigError):
        MaxTurns(ExactAnswer(), max_turns=0)


def test_plain_text_observation_for_base_models():
    env = PlainTextObservation(ExactAnswer())
    observation, _ = env.reset(seed=0, options={"task_index": 1})
    assert observation == "Be brief.\n\nUser: What is 3 + 3?\nAssistant:"
    reply, *_ = env.step("\\boxed{6}")
    assert reply == ""
    error, warnings = run_gym_check(PlainTextObservation(ExactAnswer()))
    assert error == "" and warnings == []


def test_episode_statistics_sum_components_over_turns():
    env = EpisodeStatistics(FormatReward(rlvr.make("rlvr/guess-number-v0").unwrapped, weight=0.0))
    env.reset(seed=0, options={"task_index": 3})
    core = env.unwrapped
    info, turns = {}, 0
    while "episode" not in info:
        *_, info = env.step(core.reference_action())
        turns += 1
    episode = info["episode"]
    assert episode["turns"] == turns and episode["solved"] and not episode["truncated"]
    assert episode["return"] == pytest.approx(1.0) and episode["rewards"]["correct"] == pytest.approx(1.0)
