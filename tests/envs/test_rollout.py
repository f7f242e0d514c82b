"""The rollout loop: batching per turn, multi-turn trajectories, and the incremental token mask."""

from __future__ import annotations

import threading
import time

import gymnasium as gym
import pytest

import rlvr
from rlvr.envs.base import RlvrEnv
from rlvr.envs.chat_tokens import ChatTokens
from rlvr.envs.rollout import ReplayPolicy, Trajectory, rollout
from rlvr.envs.types import Completion, Feedback, Task

TASKS = [Task(f"count-{n}", f"Say the number {n}, then {n + 1} on the next turn.", str(n)) for n in range(5)]


class CountingEnv(RlvrEnv):
    """Two turns: say n, then n + 1. Reward 0.5 per right turn; the env replies "next" after turn 1."""

    reward_components = ("correct",)

    def __init__(self, delay_s: float = 0.0):
        super().__init__(TASKS, system_prompt="Answer with a number.", max_turns=2)
        self.delay_s = delay_s

    def evaluate(self, completion: Completion) -> Feedback:
        time.sleep(self.delay_s)
        expected = str(int(self.task.answer) + self.turn - 1)
        right = completion.text.strip() == expected
        done = self.turn == 2
        return Feedback(
            reply=[{"role": "user", "content": "next"}],
            rewards={"correct": 0.5 if right else 0.0},
            done=done,
            info={"solved": done and right},
        )

    def reference_action(self) -> str:
        return str(int(self.task.answer) + self.turn)


class RecordingPolicy(ReplayPolicy):
    """Replay that also records what each generate call received."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[dict] = []

    def generate(self, conversations, sampling=None, **context):
        self.batches.append({"size": len(conversations), **context})
        return super().generate(conversations, sampling, **context)


def correct_script(n: int) -> list[str]:
    return [str(n), str(n + 1)]


def test_one_generate_call_per_turn_for_all_live_episodes():
    envs = [CountingEnv() for _ in range(4)]
    policy = RecordingPolicy([correct_script(n) for n in range(4)])
    trajectories = rollout(envs, policy, options=[{"task_index": n} for n in range(4)])
    assert [batch["size"] for batch in policy.batches] == [4, 4]
    assert [t.reward for t in trajectories] == [1.0, 1.0, 1.0, 1.0]
    assert all(t.terminated and not t.truncated and t.solved for t in trajectories)
    first = trajectories[0]
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert first.turns[0].rewards == {"correct": 0.5}
    assert first.turns[0].reply == [{"role": "user", "content": "next"}]


def test_finished_episodes_leave_the_batch():
    envs = [rlvr.make("rlvr/rg-basic-arithmetic-v0"), CountingEnv()]
    policy = RecordingPolicy([["<answer>0</answer>"], ["0", "1"]])
    trajectories = rollout(envs, policy, options=[{"task_index": 0}, {"task_index": 0}])
    assert [batch["size"] for batch in policy.batches] == [2, 1]
    assert len(trajectories[0].turns) == 1 and len(trajectories[1].turns) == 2
    assert trajectories[0].env_id == "rlvr/rg-basic-arithmetic-v0"


def test_environments_step_in_parallel():
    envs = [CountingEnv(delay_s=0.2) for _ in range(8)]
    started = time.perf_counter()
    rollout(
        envs,
        ReplayPolicy([correct_script(n % 5) for n in range(8)]),
        options=[{"task_index": n % 5} for n in range(8)],
    )
    elapsed = time.perf_counter() - started
    assert elapsed < 8 * 2 * 0.2 / 2, f"8 episodes x 2 turns x 0.2 s took {elapsed:.2f} s: steps ran serially"


def test_rollout_refuses_the_same_env_twice_and_checks_lengths():
    env = CountingEnv()
    with pytest.raises(ValueError, match="one environment object per episode"):
        rollout([env, env], ReplayPolicy([["0"], ["0"]]))
    with pytest.raises(ValueError, match="options has 1 entries for 2"):
        rollout([CountingEnv(), CountingEnv()], ReplayPolicy([["0"], ["0"]]), options=[{}])


def test_an_environment_error_names_the_episode():
    class Broken(CountingEnv):
        def evaluate(self, completion):
            raise KeyError("boom")

    with pytest.raises(RuntimeError, match=r"task 'count-0' turn 1: KeyError"):
        rollout([Broken()], ReplayPolicy([["0"]]), options=[{"task_index": 0}])


def test_replay_policy_can_be_a_function_and_reports_missing_turns():
    policy = ReplayPolicy(lambda conversation, episode: str(episode))
    (trajectory,) = rollout([CountingEnv()], policy, options=[{"task_index": 0}])
    assert [turn.completion.text for turn in trajectory.turns] == ["0", "0"]
    with pytest.raises(IndexError, match="no reply for episode 0 turn 1"):
        rollout([CountingEnv()], ReplayPolicy([["0"]]), options=[{"task_index": 0}])


def test_groups_and_seeds_reach_the_trajectories():
    envs = [rlvr.make("rlvr/rg-gcd-v0") for _ in range(3)]
    trajectories = rollout(envs, ReplayPolicy([["x"]] * 3), seeds=[5, 5, 6], groups=["a", "a", "b"])
    assert [t.group for t in trajectories] == ["a", "a", "b"]
    assert trajectories[0].task_id == trajectories[1].task_id


# -- tokens ---------------------------------------------------------------------------------------------------


def test_token_mask_marks_policy_tokens_and_never_retokenises(smollm2_tokenizer):
    tokenizer = smollm2_tokenizer
    policy = RecordingPolicy([correct_script(3)], tokenizer=tokenizer)
    (trajectory,) = rollout([CountingEnv()], policy, options=[{"task_index": 3}], tokenizer=tokenizer)
    chat = ChatTokens(tokenizer)

    first_prompt = policy.batches[0]["prompt_token_ids"][0]
    second_prompt = policy.batches[1]["prompt_token_ids"][0]
    assert trajectory.token_ids[: len(first_prompt)] == first_prompt
    assert trajectory.prompt_length == len(first_prompt) == len(chat.prompt_ids(trajectory.messages[:2]))
    assert second_prompt[: len(first_prompt)] == first_prompt, "turn 2's prompt must extend turn 1's tokens"

    policy_ids = [tid for tid, m in zip(trajectory.token_ids, trajectory.mask, strict=True) if m == 1]
    expected = [tid for turn in trajectory.turns for tid in turn.completion.token_ids]
    assert policy_ids == expected
    assert len(trajectory.token_ids) == len(trajectory.mask) == len(trajectory.logprobs)
    # The environment's reply ("next") and the template around it are masked out.
    masked_text = tokenizer.decode(
        [t for t, m in zip(trajectory.token_ids, trajectory.mask, strict=True) if m == 0]
    )
    assert "next" in masked_text and "<|im_start|>assistant" in masked_text

    # The incremental ids render the same text as the chat template does for the whole conversation.
    full = chat.render(trajectory.messages)
    assert tokenizer.decode(trajectory.token_ids) + chat.end_of_turn.removeprefix("<|im_end|>") == full


def test_truncated_completions_get_the_whole_end_of_turn(smollm2_tokenizer):
    tokenizer = smollm2_tokenizer
    cut = Completion(
        "4", token_ids=tuple(tokenizer.encode("4", add_special_tokens=False)), finish_reason="length"
    )
    chat = ChatTokens(tokenizer)
    assert tokenizer.decode(chat.end_of_turn_ids(cut)) == chat.end_of_turn
    stopped = Completion("4", token_ids=(*cut.token_ids, tokenizer.eos_token_id))
    assert tokenizer.decode(chat.end_of_turn_ids(stopped)) == chat.end_of_turn.removeprefix("<|im_end|>")


def test_engine_logprobs_are_aligned_with_policy_tokens(smollm2_tokenizer):
    tokenizer = smollm2_tokenizer
    ids = (*tuple(tokenizer.encode("3", add_special_tokens=False)), tokenizer.eos_token_id)
    replies = [
        Completion("3", ids, tuple(-0.5 for _ in ids)),
        Completion("4", ids, tuple(-0.25 for _ in ids)),
    ]
    (trajectory,) = rollout(
        [CountingEnv()], ReplayPolicy([replies]), options=[{"task_index": 3}], tokenizer=tokenizer
    )
    policy_logprobs = [lp for lp, m in zip(trajectory.logprobs, trajectory.mask, strict=True) if m == 1]
    assert policy_logprobs == [-0.5] * len(ids) + [-0.25] * len(ids)


def test_trajectory_totals():
    trajectory = Trajectory(env_id="e", task_id="t", task_index=0, messages=[])
    assert trajectory.reward == 0 and trajectory.rewards == {} and not trajectory.solved


def test_rollout_with_gymnasium_made_envs_from_many_threads():
    envs = [gym.make("rlvr/rg-basic-arithmetic-v0") for _ in range(6)]
    answers = []
    for index in range(6):
        envs[index].reset(options={"task_index": index})
        answers.append([envs[index].unwrapped.reference_action()])
    trajectories = rollout(envs, ReplayPolicy(answers), options=[{"task_index": i} for i in range(6)])
    assert all(t.reward == 1.0 for t in trajectories)
    assert threading.active_count() < 50
