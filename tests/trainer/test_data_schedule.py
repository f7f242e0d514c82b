"""Data scheduling in the training loop (trainer/task_draws.py): each option trains a tiny step, logs what it
does, and resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from test_training import read_metrics, tiny_config, weights
from trainer_envs import PARITY_ID

from rlvr.errors import ConfigError, DataError
from rlvr.trainer.loop import train

OPTIONS = {
    "history": ("env.history_resampling=true",),
    "curriculum": ("env.curriculum=pass_rate",),
    "knapsack": ("rollout.allocation=knapsack", "rollout.min_group=2", "rollout.max_group=6"),
    "stages": (f"env.stages=[{{suite: {PARITY_ID}, steps: 1}}, {{suite: rlvr/arithmetic-v0, steps: 0}}]",),
    "level": (
        "env.suite=rlvr/arithmetic-v0",
        "env.level_curriculum=rlvr/arithmetic-v0",
        "env.level_window=4",
    ),
    "tree": ("algorithm.advantage=treepo", "rollout.tree={segment_tokens: 2, branching: 2, depth: 1}"),
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_every_scheduling_option_trains(option, tiny_model_folder, tmp_path):
    train(tiny_config(tiny_model_folder, tmp_path, "env.eval_tasks=0", *OPTIONS[option]))
    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:  # (a tiny random model solves no arithmetic task: no gradient there)
        assert m["grad_norm"] >= 0 and "history/mixed" in m and "curriculum/pass_rate_hist/0.5" in m
        assert m["batch/trajectories"] == 8 or option == "tree"  # the budget: prompts_per_step x group_size
    if option == "knapsack":
        assert all(2 <= m["groups/size_mean"] <= m["groups/size_max"] <= 6 for m in metrics)
    if option == "stages":
        assert [m["scheduling/stage"] for m in metrics] == [1.0, 2.0]
        assert f"env/{PARITY_ID}/solved" in metrics[0] and "env/rlvr/arithmetic-v0/solved" in metrics[1]
    if option == "level":
        assert metrics[0]["curriculum/level"] == 1.0
    leaf_tokens = [m["length/mean"] * m["batch/trajectories"] for m in metrics]  # every sample's tokens
    if option == "tree":  # a tree of 2 roots x 2 branches per task; shared tokens are trained once
        assert all(m["batch/trajectories"] <= 8 and m["tree/trained_tokens"] > 0 for m in metrics)
        assert sum(m["tokens/generated"] for m in metrics) < sum(leaf_tokens)  # a shared prefix decoded once
    else:
        assert [m["tokens/generated"] for m in metrics] == pytest.approx(leaf_tokens)


def test_history_and_knapsack_resume_exactly(tiny_model_folder, tmp_path):
    # the task history (retired tasks, pass rates for the knapsack) is in the checkpoint
    common = (
        "env.history_resampling=true",
        "rollout.allocation=knapsack",
        "rollout.max_group=6",
        f"env.overrides={{{PARITY_ID}: {{size: 4}}}}",  # tasks come back: their pass rates differ
        "run.save_every=2",
        "env.eval_tasks=0",
    )
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny_config(tiny_model_folder, straight, "run.steps=4", "run.keep_checkpoints=4", *common))
    train(tiny_config(tiny_model_folder, split, "run.steps=2", *common))
    train(tiny_config(tiny_model_folder, split, "run.steps=4", *common), resume=True)
    a, b = weights(straight / "checkpoints" / "step-000004"), weights(split / "checkpoints" / "step-000004")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    keys = ("groups/size_mean", "groups/size_max", "history/all_correct", "scheduling/retired", "reward/mean")
    for m_split, m_straight in zip(read_metrics(split), read_metrics(straight), strict=True):
        assert [m_split[k] for k in keys] == pytest.approx([m_straight[k] for k in keys])
    assert all(m["batch/trajectories"] == 8 for m in read_metrics(straight))  # the budget, however split


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rollout.allocation=greedy", "rollout.allocation"),
        ("env.curriculum=hardest", "env.curriculum"),
        ("env.stages=[{suite: rlvr/arithmetic-v0}]", "env.stages"),
        ("env.stages=[{suite: rlvr/nope-v0, steps: 1}]", "nope"),
        ("env.level_curriculum=rlvr/countdown-v0", "not in the training suite"),
        ("rollout.tree={segment_tokens: 2, branching: 2, depth: 1}", "algorithm.advantage=treepo"),
        ("rollout.tree={segment_tokens: 2, branching: 3, depth: 1}", "multiple of branching"),
    ],
)
def test_bad_scheduling_settings_are_one_line_errors(override, message, tiny_model_folder, tmp_path):
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(tiny_model_folder, tmp_path, override))


def test_retired_tasks_leave_the_pool(tiny_model_folder, tmp_path):
    # a 4-task parity suite: every task solved by all its samples leaves; draws then come from the others
    train(
        tiny_config(
            tiny_model_folder,
            tmp_path,
            "env.history_resampling=true",
            f"env.overrides={{{PARITY_ID}: {{size: 4}}}}",
            "run.steps=4",
            "env.eval_tasks=0",
        )
    )
    metrics = read_metrics(tmp_path)
    assert metrics[-1]["history/all_correct"] >= 0 and metrics[-1]["scheduling/retired"] >= 0
    assert torch.tensor([m["scheduling/retired"] for m in metrics]).diff().ge(0).all()  # retired for good


def test_sample_budget_stops_the_run_counting_every_generation_batch(tiny_model_folder, tmp_path):
    # DAPO's dynamic sampling draws 1-2 generation batches of 2 tasks x 4 samples a step; its discards count
    budget = ("run.steps=6", "run.sample_budget=12", "algorithm.preset=dapo", "algorithm.max_gen_batches=2")
    config = tiny_config(
        tiny_model_folder, tmp_path, "env.eval_tasks=0", "run.save_every=0", "run.save_model=true", *budget
    )
    result = train(config)
    metrics = read_metrics(tmp_path)
    totals = [m["samples/total"] for m in metrics]
    drawn = [4 * m["groups/drawn"] for m in metrics]
    assert totals == [sum(drawn[: i + 1]) for i in range(len(drawn))]
    assert 12 <= totals[-1] < 12 + 8 and all(total < 12 for total in totals[:-1])  # no batch past the budget
    assert result.steps == len(metrics) < 6
    assert (tmp_path / "checkpoints" / f"step-{result.steps:06d}").is_dir()  # the last step is saved
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["steps"], summary["samples"]) == (result.steps, totals[-1])
    assert (tmp_path / "final" / "config.json").is_file()
    again = train(config, resume=True)  # resumed after the budget's last step: nothing more to do
    assert again.steps == result.steps and read_metrics(tmp_path) == metrics


def test_a_prepass_of_rlvr_eval_seeds_the_pass_rates(tiny_model_folder, tiny_engine, tmp_path):
    from rlvr.benchmarks.evaluator import evaluate_suite, settings_for
    from rlvr.benchmarks.suites import BenchmarkSuite

    suite = BenchmarkSuite("parity", env_id=PARITY_ID, n=4, k=(1,), max_tokens=8, temperature=1.0)
    settings = settings_for(suite, limit=6)
    out = tmp_path / "prepass"
    evaluate_suite(tiny_engine, suite, settings, out, model={"model": "tiny"}, batch_size=8, progress=False)
    prepass = f"env.pass_rates=[{out / 'parity'}]"
    common = (
        "env.eval_tasks=0",
        "run.steps=1",
        "env.curriculum=pass_rate",
        f"env.overrides={{{PARITY_ID}: {{size: 8}}}}",
    )
    train(tiny_config(tiny_model_folder, tmp_path / "run", *common, prepass))
    (first,) = read_metrics(tmp_path / "run")
    seen = sum(first[f"history/{outcome}"] for outcome in ("all_correct", "all_wrong", "mixed"))
    assert seen >= 6  # the 6 pre-pass tasks (step 1 alone draws 2)
    with pytest.raises(ConfigError, match="not in the training suite"):
        train(
            tiny_config(
                tiny_model_folder, tmp_path / "other", *common, "env.suite=rlvr/arithmetic-v0", prepass
            )
        )
    with pytest.raises(DataError, match="rlvr eval"):
        train(tiny_config(tiny_model_folder, tmp_path / "none", *common, f"env.pass_rates=[{tmp_path}]"))
    with pytest.raises(ConfigError, match=r"env\.pass_rates"):
        tiny_config(tiny_model_folder, tmp_path / "str", *common, f"env.pass_rates={out / 'parity'}")


def test_a_prepass_of_another_split_is_refused(tmp_path):
    from rlvr.trainer.pass_rate_prepass import read_prepass

    (tmp_path / "samples.jsonl").write_text("")
    settings = {"env_id": "rlvr/gsm8k-v0", "env_kwargs": {"split": "test"}}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match="'test' split"):
        read_prepass([str(tmp_path / "samples.jsonl")], {"rlvr/gsm8k-v0": None})
    assert read_prepass([str(tmp_path)], {"rlvr/gsm8k-v0": "test"}) == {}
