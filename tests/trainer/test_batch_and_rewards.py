"""Trajectories to tensors (multi-turn masks) and the trainer's reward shaping, on hand-checked values."""

from __future__ import annotations

import pytest
import torch

from rlvr.envs.registry import make
from rlvr.envs.rollout import ReplayPolicy, Trajectory, Turn, rollout
from rlvr.envs.types import Completion
from rlvr.trainer.batch import build_batch, token_mask
from rlvr.trainer.config import load_config
from rlvr.trainer.loop import _rewards


def test_multi_turn_environment_tokens_are_masked_out(tiny_model_folder):
    from rlvr.trainer.engines.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_folder)
    env = make("rlvr/guess-number-v0")
    guesses = [str(11 + 7 * turn) for turn in range(20)]  # the environment answers "higher"/"lower" between

    def reply(conversation, episode):
        return guesses[sum(m["role"] == "assistant" for m in conversation)]

    [trajectory] = rollout(
        [env], ReplayPolicy(reply, tokenizer=tokenizer), options=[{"task_index": 3}], tokenizer=tokenizer
    )
    assert len(trajectory.turns) >= 2
    batch = build_batch([trajectory], torch.zeros(1), pad_id=tokenizer.pad_token_id)
    mask = batch.loss_mask[0].tolist()
    ids = batch.input_ids[0].tolist()
    policy_text = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    env_text = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if not m])
    for guess in guesses[: len(trajectory.turns)]:
        assert guess in policy_text
    reply = trajectory.turns[0].reply[0]["content"]
    assert reply in env_text and reply not in policy_text  # the environment's feedback never trains
    assert sum(mask) == trajectory.num_policy_tokens
    # the policy tokens come in separate runs (one per turn), and all lie in the last `span` columns
    runs = sum(1 for a, b in zip([0, *mask], mask, strict=False) if b and not a)
    assert runs == len(trajectory.turns)
    assert sum(batch.tail(batch.loss_mask)[0].tolist()) == sum(mask)


def test_left_padding_aligns_rows_at_the_end_and_drop_zeroes_the_mask():
    def trajectory(prompt: int, completion: int) -> Trajectory:
        ids = list(range(1, prompt + completion + 1))
        return Trajectory(
            "e",
            "t",
            0,
            [],
            token_ids=ids,
            mask=[0] * prompt + [1] * completion,
            logprobs=[0.0] * prompt + [-0.5] * completion,
            prompt_length=prompt,
        )

    rows = [trajectory(3, 2), trajectory(2, 4)]
    batch = build_batch(rows, torch.tensor([1.0, -1.0]), pad_id=0, drop=[False, True])
    assert batch.input_ids.tolist() == [[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]
    assert batch.attention_mask.tolist() == [[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]
    assert batch.loss_mask.tolist() == [[0, 0, 0, 0, 1, 1], [0] * 6]  # row 2 dropped (overlong filtering)
    assert batch.span == 4  # the first policy token of any row is 4 columns from the end
    assert batch.old_logprobs[0].tolist() == [0, 0, 0, 0, -0.5, -0.5]
    assert token_mask(rows).tolist() == [[0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1]]


def _single_turn(num_tokens: int, reward: float) -> Trajectory:
    completion = Completion("x", token_ids=tuple(range(num_tokens)), finish_reason="stop")
    turn = Turn(completion=completion, reward=reward, rewards={"correct": reward}, reply=[])
    return Trajectory("e", "t", 0, [], turns=[turn])


@pytest.mark.parametrize(
    ("num_tokens", "expected"),
    [(5, 1.0), (6, 1.0), (7, 0.5), (8, 0.0), (9, -0.0)],
)
def test_overlong_shaping_in_the_trainer_reward(num_tokens, expected):
    # L_max = 8, L_cache = 2: no penalty up to 6 tokens, (6 - |o|) / 2 in (6, 8], -1 beyond (DAPO)
    config = load_config(None, ["rollout.max_tokens=8", "algorithm.overlong_buffer=2"])
    assert float(_rewards([_single_turn(num_tokens, 1.0)], config)[0]) == pytest.approx(expected)


def test_dapo_overlong_buffer_defaults_to_a_quarter_of_max_tokens():
    config = load_config(None, ["algorithm.preset=dapo", "rollout.max_tokens=16"])
    # buffer 4: 13 tokens -> (12 - 13) / 4 = -0.25
    assert float(_rewards([_single_turn(13, 0.0)], config)[0]) == pytest.approx(-0.25)
    no_shaping = load_config(None, ["algorithm.preset=grpo", "rollout.max_tokens=16"])
    assert float(_rewards([_single_turn(13, 0.0)], no_shaping)[0]) == 0.0
