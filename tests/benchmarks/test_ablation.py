"""benchmarks/ablation.py's bookkeeping, with a fake run function: finished runs are kept and skipped, a failed or
killed run is redone on the next call, a result of another budget is refused, and the table reads the results."""

from __future__ import annotations

import dataclasses
import json
import math
import sys

import pytest

from rlvr.benchmarks import ablation
from rlvr.benchmarks.ablation import Budget, result_path, run_all, run_in_processes

BUDGET = Budget(steps=2, lr=1e-4, critic_lr=1e-4, eval_tasks=10)


class FakeRun:
    """Records its calls; `fail` names runs that raise (a crashed preset)."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def __call__(self, preset, seed, budget, root):
        name = ablation.run_name(preset, seed)
        self.calls.append(name)
        if name in self.fail:
            raise RuntimeError("boom")
        (root / name).mkdir(parents=True, exist_ok=True)
        return {
            "preset": preset,
            "seed": seed,
            "after": {"tasks": 10, "solved": 5 + seed, "accuracy": (5 + seed) / 10},
            "seconds": 1.0,
            "reward_curve": [0.2, 0.4 + seed / 10],
            "accuracy_curve": [0.2, 0.4],
            "entropy_curve": [1.0, 0.5],
            "zero_variance_curve": [0.5, 0.25],
            "trajectories_curve": [36, 36],
            "step_seconds": [0.5, 0.5],
            "load": {"machine_cores": 2.0, "own_cores": 1.5, "loadavg_end": 2.0, "cpu_seconds": 1.5},
        }


@pytest.fixture(autouse=True)
def _fixed_source(monkeypatch):
    monkeypatch.setattr(
        ablation, "source_state", lambda: {"commit": "abc1234", "dirty": "no", "sources": "x"}
    )


def test_finished_runs_are_skipped_and_the_rest_redone(tmp_path):
    presets, seeds = ["grpo", "ppo"], [0, 1]
    first = FakeRun(fail=("ppo-seed0",))
    done = run_all(presets, seeds, BUDGET, tmp_path, run_fn=first)
    # seed by seed: every preset's seed 0 before any seed 1
    assert first.calls == ["grpo-seed0", "ppo-seed0", "grpo-seed1", "ppo-seed1"]
    assert done == {"ran": ["grpo-seed0", "grpo-seed1", "ppo-seed1"], "skipped": [], "failed": ["ppo-seed0"]}
    assert not result_path(tmp_path, "ppo", 0).exists()
    record = json.loads(result_path(tmp_path, "grpo", 1).read_text())
    assert record["budget"]["steps"] == 2 and record["source"]["commit"] == "abc1234"

    # a run killed midway left its folder but no result: it is redone, like the failed one
    result_path(tmp_path, "grpo", 1).unlink()
    second = FakeRun()
    done = run_all(presets, seeds, BUDGET, tmp_path, run_fn=second)
    assert second.calls == ["ppo-seed0", "grpo-seed1"]
    assert done["skipped"] == ["grpo-seed0", "ppo-seed1"]

    third = FakeRun()
    assert run_all(presets, seeds, BUDGET, tmp_path, run_fn=third)["ran"] == []
    assert third.calls == []


def test_a_result_of_another_budget_is_refused_not_overwritten(tmp_path):
    run_all(["grpo"], [0], BUDGET, tmp_path, run_fn=FakeRun())
    before = result_path(tmp_path, "grpo", 0).read_text()
    other = Budget(steps=3, lr=1e-4, critic_lr=1e-4, eval_tasks=10)
    with pytest.raises(SystemExit, match="another --root"):
        run_all(["grpo"], [0], other, tmp_path, run_fn=FakeRun())
    assert result_path(tmp_path, "grpo", 0).read_text() == before


def test_the_table_is_the_mean_and_std_over_the_finished_seeds(tmp_path):
    run_all(["grpo", "ppo"], [0, 1], BUDGET, tmp_path, run_fn=FakeRun(fail=("ppo-seed1",)))
    (tmp_path / "before.json").write_text(json.dumps({"tasks": 10, "solved": 4, "accuracy": 0.4}))
    table = ablation.report(tmp_path, ["grpo", "ppo"], [0, 1], BUDGET, tmp_path / "plot.png")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| `")}
    # grpo: after 50% and 60% -> 55.0 ± 7.1, gain +15.0 over 40%; final entropy 0.5, zero-variance 0.375
    assert "| 40% | 55.0 ± 7.1% | +15.0 | 0.50 ± 0.00 | 0.38 ± 0.00 |" in rows["`grpo`"]
    assert "| 50.0% | +10.0 |" in rows["`ppo`"]  # one seed: no std
    assert "Partial: 3 of 4 runs; missing: ppo-seed1" in table
    assert (tmp_path / "table.md").read_text() == table
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_each_preset_gets_its_own_defaults(tmp_path):
    grpo = ablation.run_config("grpo", 1, BUDGET, tmp_path)
    assert grpo["algorithm"] == {"preset": "grpo"}  # not the quickstart's kl 0, token-mean, clip-higher
    assert grpo["run"]["seed"] == 1 and grpo["run"]["eval_before"] is False
    assert grpo["run"]["output_dir"] == str(tmp_path / "grpo-seed1")
    assert grpo["optim"]["lr"] == 1e-4 and grpo["rollout"]["group_size"] == 6
    assert grpo["env"]["overrides"] == {
        "rlvr/arithmetic-v0": {"level": 2, "system_prompt": "Answer briefly."}
    }
    assert "critic" not in grpo
    assert ablation.run_config("dapo", 0, BUDGET, tmp_path)["algorithm"] == {
        "preset": "dapo",
        "max_gen_batches": 1,
    }
    assert ablation.run_config("vapo", 0, BUDGET, tmp_path)["critic"] == {"lr": 1e-4}


def test_jobs_run_in_processes_with_the_same_skipping(tmp_path):
    """--jobs: each run is a process that writes its own result; finished ones are skipped, a crash is failed."""
    record = FakeRun()("grpo", 0, BUDGET, tmp_path)
    record = {**record, "budget": dataclasses.asdict(BUDGET)}
    write = (
        "import json, sys, pathlib; root, preset, seed, text = sys.argv[1:]; "
        "sys.exit(3) if preset == 'raft' else None; "
        "path = pathlib.Path(root) / f'{preset}-seed{seed}' / 'ablation.json'; "
        "path.write_text(text.replace('PRESET', preset))"
    )
    text = json.dumps({**record, "preset": "PRESET"})

    def command(preset, seed):
        return [sys.executable, "-c", write, str(tmp_path), preset, str(seed), text]

    run_all(["grpo"], [0], BUDGET, tmp_path, run_fn=FakeRun())  # finished before
    refreshed = []
    done = run_in_processes(
        ["grpo", "ppo", "raft", "gpg"],
        [0],
        BUDGET,
        tmp_path,
        command,
        jobs=2,
        after_each=lambda: refreshed.append(1),
        poll_s=0.01,
    )
    assert done["skipped"] == ["grpo-seed0"]
    assert sorted(done["ran"]) == ["gpg-seed0", "ppo-seed0"] and done["failed"] == ["raft-seed0"]
    assert len(refreshed) == 3
    assert json.loads(result_path(tmp_path, "gpg", 0).read_text())["preset"] == "gpg"
    assert (tmp_path / "raft-seed0" / "ablation.log").is_file()


def test_final_entropy_is_the_last_step_that_logged_one():
    assert ablation._last_finite([1.0, 0.5, math.nan]) == 0.5  # RAFT: the last step had no solved sample
    assert math.isnan(ablation._last_finite([math.nan]))
