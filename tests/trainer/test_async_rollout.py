"""Asynchronous one-step-off-policy training (`rollout.async`): the synchronous schedule through the worker equals
the plain loop, one step of staleness trains on the behaviour log-probs, resume is exact, a dead worker is an
error."""

from __future__ import annotations

import pytest
from test_training import read_metrics, tiny_config, weights

from rlvr.errors import ConfigError
from rlvr.trainer.async_rollout import RolloutWorker, WorkerDied
from rlvr.trainer.loop import train

COMMON = ("env.eval_tasks=0", "run.steps=3")


def test_staleness_zero_equals_the_synchronous_loop(tiny_model_folder, tmp_path):
    train(tiny_config(tiny_model_folder, tmp_path / "sync", *COMMON))
    train(
        tiny_config(
            tiny_model_folder, tmp_path / "async", *COMMON, "rollout.async=true", "rollout.async_staleness=0"
        )
    )
    a = weights(tmp_path / "sync" / "checkpoints" / "step-000003")
    b = weights(tmp_path / "async" / "checkpoints" / "step-000003")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    sync, late = read_metrics(tmp_path / "sync"), read_metrics(tmp_path / "async")
    assert [m["reward/mean"] for m in sync] == [m["reward/mean"] for m in late]
    assert all("async/overlap_frac" in m for m in late)


def test_one_step_stale_samples_train_with_the_behaviour_ratio(tiny_model_folder, tmp_path):
    train(tiny_config(tiny_model_folder, tmp_path, *COMMON, "rollout.async=true"))
    metrics = read_metrics(tmp_path)
    # step 1 samples the starting weights and trains them: ratio 1; step 2's samples come from the same
    # weights (one step old by then), so the ratio against the behaviour policy has moved
    assert metrics[0]["ratio/mean"] == pytest.approx(1.0, abs=1e-5)
    assert abs(metrics[1]["ratio/mean"] - 1.0) > 1e-4
    assert all(0.0 <= m["async/overlap_frac"] <= 1.0 for m in metrics)


def test_async_resume_is_exact(tiny_model_folder, tmp_path, monkeypatch):
    # a run killed after its step-2 checkpoint resumes with step 3's rollouts, already generated (one step
    # stale) and saved in the checkpoint, so it continues as if nothing happened
    import rlvr.trainer.loop as loop

    common = ("rollout.async=true", "env.eval_tasks=0", "run.save_every=2", "run.steps=4")
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny_config(tiny_model_folder, straight, "run.keep_checkpoints=4", *common))
    real = loop._train_step

    def killed_at_step_3(step, run, settings):
        if step == 3:
            raise KeyboardInterrupt
        return real(step, run, settings)

    monkeypatch.setattr(loop, "_train_step", killed_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny_model_folder, split, *common))
    monkeypatch.setattr(loop, "_train_step", real)
    assert (split / "checkpoints" / "step-000002" / "pending_rollouts-rank0.pt").is_file()
    train(tiny_config(tiny_model_folder, split, *common), resume=True)
    a, b = weights(straight / "checkpoints" / "step-000004"), weights(split / "checkpoints" / "step-000004")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    assert [m["reward/mean"] for m in read_metrics(split)] == [
        m["reward/mean"] for m in read_metrics(straight)
    ]


def test_a_worker_that_dies_is_an_error_not_a_hang(tiny_model_folder, tmp_path, monkeypatch):
    import rlvr.trainer.loop as loop

    real = loop._generate_groups

    def failing(*args, **kwargs):
        if failing.calls == 1:
            raise OSError("disk full")
        failing.calls += 1
        return real(*args, **kwargs)

    failing.calls = 0
    monkeypatch.setattr(loop, "_generate_groups", failing)
    with pytest.raises(WorkerDied, match="failed at step 2: disk full"):
        train(tiny_config(tiny_model_folder, tmp_path, *COMMON, "rollout.async=true"))


def test_a_stuck_worker_times_out():
    import threading

    release = threading.Event()
    worker = RolloutWorker(lambda step: release.wait(), _NoEngine(), staleness=1)
    worker.submit(1, [])
    with pytest.raises(WorkerDied, match="did not finish step 1 within 0 s"):
        worker.result(1, timeout=0.2)
    release.set()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("rollout.async=true", "rollout.async_staleness=2"), "rollout.async_staleness"),
        (("rollout.async=true", "model.sharding=fsdp"), "rollout.async"),
    ],
)
def test_bad_async_settings_are_one_line_errors(overrides, message, tiny_model_folder, tmp_path):
    with pytest.raises(ConfigError, match=message):
        tiny_config(tiny_model_folder, tmp_path, *overrides)


class _NoEngine:
    def load_weights(self, named_tensors):
        list(named_tensors)
