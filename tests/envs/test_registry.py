"""The registry over every registered environment: Gymnasium's check_env and the reference-solution check."""

from __future__ import annotations

import subprocess
import sys

import envdata
import gymnasium as gym
import pytest

import rlvr
from rlvr.envs.check import check_reference, play, run_gym_check
from rlvr.envs.registrations import REASONING_GYM_EXCLUDED, REASONING_GYM_TASKS, rg_id
from rlvr.envs.registry import card, list_ids, make, register, reward_components

ALL_IDS = list_ids()


def test_builtin_ids_cover_every_family():
    expected = {
        "rlvr/math-gsm8k-v0",
        "rlvr/math-math-v0",
        "rlvr/math-math500-v0",
        "rlvr/math-aime24-v0",
        "rlvr/math-aime25-v0",
        "rlvr/math-amc23-v0",
        "rlvr/math-minerva-v0",
        "rlvr/math-olympiadbench-v0",
        "rlvr/math-gsm8k-retry-v0",
        "rlvr/code-humaneval-v0",
        "rlvr/code-mbpp-v0",
        "rlvr/code-lcb-v0",
        "rlvr/code-humaneval-repair-v0",
        "rlvr/arithmetic-v0",
        "rlvr/countdown-v0",
        "rlvr/game24-v0",
        "rlvr/guess-number-v0",
        "rlvr/wordle-v0",
        "rlvr/tools-arithmetic-v0",
        "rlvr/rg-basic-arithmetic-v0",
    }
    assert expected <= set(ALL_IDS)
    assert all(env_id.startswith("rlvr/") for env_id in ALL_IDS)


def test_reasoning_gym_list_matches_the_installed_package():
    from reasoning_gym.factory import DATASETS

    assert set(REASONING_GYM_TASKS) | set(REASONING_GYM_EXCLUDED) == set(DATASETS)
    assert not set(REASONING_GYM_TASKS) & set(REASONING_GYM_EXCLUDED)
    assert {rg_id(name) for name in REASONING_GYM_TASKS} <= set(ALL_IDS)


def test_import_rlvr_is_light_and_registers_with_gymnasium():
    code = (
        "import sys, gymnasium, rlvr\n"
        "assert 'rlvr/arithmetic-v0' in gymnasium.registry\n"
        "heavy = [m for m in ('reasoning_gym', 'datasets', 'torch', 'transformers', 'sympy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_gymnasium_make_and_rlvr_make_lay_overrides_over_the_spec():
    env = gym.make("rlvr/rg-basic-arithmetic-v0", size=7)
    assert len(env.unwrapped.tasks) == 7
    assert rlvr.make("rlvr/rg-basic-arithmetic-v0", size=5).unwrapped.tasks.size == 5


def test_unknown_id_names_close_matches():
    with pytest.raises(gym.error.NameNotFound, match="rlvr/rg-basic-arithmetic-v0"):
        make("rlvr/rg-basic-arithmetic-v9")


def test_registering_an_id_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register("rlvr/arithmetic-v0", "rlvr.envs.procedural.arithmetic:ArithmeticEnv")


def test_cards_and_components():
    info = card("rlvr/math-gsm8k-v0")
    assert "GSM8K" in info.description and info.wrappers == ("FormatReward",)
    env = make("rlvr/rg-gcd-v0")
    assert reward_components(env) == ["correct"]


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_passes(env_id):
    env = make(env_id, **envdata.local_overrides(env_id))
    error, warnings = run_gym_check(env)
    assert error == "", error
    assert warnings == []
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_reference_solution_earns_full_reward_and_wrong_does_not(env_id):
    env = make(env_id, **envdata.local_overrides(env_id), **envdata.reference_overrides(env_id))
    episodes = check_reference(env, num_tasks=3)
    assert len(episodes) == 6
    for episode in episodes:
        assert episode.ok, episode
    env.close()


def test_play_reports_a_wrong_reference():
    class BrokenReference(rlvr.envs.SingleTurnEnv):
        def __init__(self):
            super().__init__([rlvr.Task("t0", "1+1?", "2")])

        def score(self, task, completion):
            return {"correct": float(completion.text == task.answer)}, None

        def reference_action(self):
            return "3"

    episode = play(BrokenReference(), 0, "reference")
    assert not episode.ok and episode.terminated and episode.episode_return == 0.0
