"""The math environments on real GSM8K / MATH-500 tasks with the real verifier."""

from __future__ import annotations

import random

import envdata
import pytest
from gymnasium.utils.env_checker import check_env

from rlvr.envs.catalog import DATA_DIR_ENV
from rlvr.envs.math_env import (
    DEFAULT_PROMPT_TEMPLATE,
    MathEnv,
    MathRetryEnv,
    reference_solution,
    wrong_answer,
)
from rlvr.envs.sources import ListSource
from rlvr.envs.types import Completion, Task
from rlvr.errors import ConfigError
from rlvr.verifiers.math_verifier import default_verifier


@pytest.fixture
def gsm8k():
    return envdata.shared_file("math/gsm8k_test.jsonl")


@pytest.fixture(autouse=True)
def _no_data_dir(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


@pytest.mark.filterwarnings("ignore:.*render modes")
@pytest.mark.parametrize("env_class", [MathEnv, MathRetryEnv])
def test_check_env(gsm8k, env_class):
    check_env(env_class(data_path=gsm8k))


def test_reset_is_deterministic_and_uses_the_template(gsm8k):
    env = MathEnv(data_path=gsm8k, system_prompt="Be brief.", prompt_template="Q: {problem}\nA in \\boxed{}:")
    obs, info = env.reset(seed=5)
    again, info_again = MathEnv(data_path=gsm8k).reset(seed=5)
    assert info["task_id"] == info_again["task_id"]
    assert obs[0] == {"role": "system", "content": "Be brief."}
    task = env.tasks[info["task_index"]]
    assert obs[1]["content"] == f"Q: {task.prompt}\nA in \\boxed{{}}:"
    assert again[0]["content"] == DEFAULT_PROMPT_TEMPLATE.replace("{problem}", task.prompt)
    obs, _ = env.reset(options={"task_index": 0})
    assert "Janet" in obs[1]["content"]


def test_reference_earns_full_reward_and_wrong_does_not(gsm8k):
    env = MathEnv(data_path=gsm8k)
    for index in random.Random(0).sample(range(len(env.tasks)), 25):
        env.reset(options={"task_index": index})
        _, reward, terminated, truncated, info = env.step(env.reference_action())
        assert (reward, terminated, truncated) == (env.max_reward, True, False)
        assert info["rewards"] == {"correct": 1.0} and info["solved"] is True
        assert info["verdict"].reason == "correct"
        env.reset(options={"task_index": index})
        _, reward, terminated, _, info = env.step(Completion(text=env.wrong_action()))
        assert (reward, terminated, info["solved"]) == (0.0, True, False)
        assert info["verdict"].reason == "wrong"


def test_reference_and_wrong_answers_on_every_math500_gold():
    golds = [
        task.answer for task in MathEnv("math500", data_path=envdata.shared_file("math/math500.jsonl")).tasks
    ]
    verifier = default_verifier()
    assert all(v.correct for v in verifier.verify_batch(golds, [reference_solution(g) for g in golds]))
    wrong = verifier.verify_batch(golds, [wrong_answer(g) for g in golds])
    assert [g for g, v in zip(golds, wrong, strict=True) if v.correct] == []


def test_construction_options(gsm8k):
    assert len(MathEnv(data_path=gsm8k, limit=7).tasks) == 7
    tasks = ListSource([Task(id="t", prompt="What is 6 * 7?", answer="42")])
    env = MathEnv(tasks=tasks)
    env.reset()
    assert env.step("6 * 7 = \\boxed{42}")[1] == 1.0
    with pytest.raises(ConfigError, match="placeholder"):
        MathEnv(tasks=tasks, prompt_template="no placeholder")
    with pytest.raises(ConfigError, match="code dataset"):
        MathEnv("humaneval", data_path=envdata.shared_file("code/humaneval.jsonl"))
    with pytest.raises(ConfigError, match="not both"):
        MathEnv(tasks=tasks, data_path=gsm8k)
    with pytest.raises(ConfigError, match="retry_discount"):
        MathRetryEnv(tasks=tasks, retry_discount=0.0)


def play(env: MathRetryEnv, actions: list[str]) -> list[tuple]:
    env.reset(seed=11)
    steps = []
    for action in actions:
        reply, reward, terminated, truncated, info = env.step(action)
        steps.append((reply, reward, terminated, truncated, info))
    return steps


def test_retry_wrong_wrong_right(gsm8k):
    env = MathRetryEnv(data_path=gsm8k)
    env.reset(seed=11)
    actions = [env.wrong_action(), "I am not sure yet.", env.reference_action()]
    steps = play(env, actions)
    assert [s[1] for s in steps] == [0.0, 0.0, 1.0]
    assert [(s[2], s[3]) for s in steps] == [(False, False), (False, False), (True, False)]
    assert [s[4]["solved"] for s in steps] == [False, False, True]
    assert "incorrect" in steps[0][0][0]["content"] and steps[0][0][0]["role"] == "user"
    assert "could not find a final answer" in steps[1][0][0]["content"]  # no \boxed{} at all
    assert steps[2][0] == [] and steps[2][4]["turn"] == 3
    assert [m["role"] for m in env.conversation] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_retry_all_wrong_is_truncated(gsm8k):
    env = MathRetryEnv(data_path=gsm8k, max_turns=2)
    env.reset(seed=11)
    steps = play(env, [env.wrong_action()] * 2)
    assert [(s[1], s[2], s[3]) for s in steps] == [(0.0, False, False), (0.0, False, True)]
    assert steps[-1][0] == [] and steps[-1][4]["solved"] is False


def test_retry_discount(gsm8k):
    env = MathRetryEnv(data_path=gsm8k, retry_discount=0.5, max_turns=4)
    env.reset(seed=11)
    steps = play(env, [env.wrong_action()] * 2 + [env.reference_action()])
    assert [s[1] for s in steps] == [0.0, 0.0, 0.25]  # 0.5 ** (3 - 1)
    assert steps[-1][4]["rewards"] == {"correct": 0.25}
    first_try = play(env, [env.reference_action()])
    assert first_try[0][1] == env.max_reward == 1.0
