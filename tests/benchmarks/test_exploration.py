"""benchmarks/exploration.py's configs and table (the runs themselves are a benchmark, not a test; each option's
tiny training step is tests/trainer/test_data_schedule.py's)."""

from __future__ import annotations

import json

import pytest

from rlvr.benchmarks import ablation, exploration
from rlvr.benchmarks.exploration import OPTIONS, Budget, run_config
from rlvr.trainer.config import from_dict

BUDGET = Budget(steps=2, prompts_per_step=2, group_size=4, pool=8, eval_tasks=10)


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_every_option_is_a_valid_run_at_the_same_sample_budget(option, tmp_path):
    config = from_dict(run_config(option, 1, BUDGET, tmp_path))
    assert config.run.sample_budget == 2 * 2 * 4 and config.run.steps == 4  # the budget ends the run
    assert config.env.overrides["rlvr/arithmetic-v0"]["level"] == [1, 2, 3, 4]
    assert config.env.overrides["rlvr/arithmetic-v0"]["size"] == 8
    assert config.env.eval_overrides["rlvr/arithmetic-v0"]["level"] == [1, 2, 3, 4]
    assert (config.algorithm.kl_coef, config.algorithm.loss_agg, config.algorithm.clip_high) == (
        0.0,
        "token_mean",
        0.28,
    )
    changed = {
        "uniform": config.rollout.allocation == "uniform" and not config.algorithm.filter_groups,
        "dapo": config.algorithm.filter_groups and config.algorithm.max_gen_batches == 3,
        "history": config.env.history_resampling,
        "curriculum": config.env.curriculum == "pass_rate",
        "knapsack": config.rollout.allocation == "knapsack",
        "treepo": config.algorithm.advantage == "treepo" and config.rollout.tree == exploration.TREE,
    }
    assert changed[option]


def fake_record(option: str, seed: int) -> dict:
    return {
        "preset": option,
        "seed": seed,
        "after": {"tasks": 10, "solved": 5 + seed, "accuracy": (5 + seed) / 10},
        "seconds": 10.0,
        "steps": 2,
        "samples": [8, 16],
        "groups_drawn": [2, 2],
        "zero_variance": [0.5, 0.0],
        "tokens": [100, 120],
        "reward_curve": [0.2, 0.4],
        "load": {"machine_cores": 2.0},
    }


def test_the_table_reads_signal_accuracy_and_tokens_over_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(
        ablation, "source_state", lambda: {"commit": "abc1234", "dirty": "no", "sources": "x"}
    )
    ablation.run_all(
        ["uniform", "dapo"], [0, 1], BUDGET, tmp_path, run_fn=lambda o, s, b, r: fake_record(o, s)
    )
    (tmp_path / "before.json").write_text(json.dumps({"tasks": 10, "solved": 4, "accuracy": 0.4}))
    table = exploration.report(tmp_path, ["uniform", "dapo", "treepo"], [0, 1], BUDGET, tmp_path / "plot.png")
    row = next(line for line in table.splitlines() if line.startswith("| `uniform`"))
    # signal: (2 x 0.5 + 2 x 1) / 4 groups; after 50% and 60%; 220 generated tokens
    assert "| 0.75 ± 0.00 | 40% | 55.0 ± 7.1% | +15.0 | 2.0 ± 0.0 | 16 ± 0 | 220 ± 0 |" in row
    assert "missing: treepo-seed0, treepo-seed1" in table
    assert (tmp_path / "plot.png").stat().st_size > 0
