"""End-to-end training on CPU with a tiny random model: every preset, checkpoints, resume, a killed run."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rlvr.trainer.algorithms import PRESETS
from rlvr.trainer.config import load_config
from rlvr.trainer.loop import train

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from trainer_envs import PARITY_ID  # noqa: E402  (registers the test environment)


def tiny_config(model_folder: str, output_dir: Path, *extra: str):
    return load_config(
        None,
        [
            f"model.name={model_folder}",
            f"env.suite={PARITY_ID}",
            "env.eval_tasks=4",
            "rollout.prompts_per_step=2",
            "rollout.group_size=4",
            "rollout.max_tokens=8",
            "optim.lr=1e-3",
            "optim.micro_batch_size=4",
            "run.steps=2",
            f"run.output_dir={output_dir}",
            "run.progress=false",
            "run.sample_every=1",
            "run.save_model=false",
            *extra,
        ],
    )


def weights(folder_or_model) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(folder_or_model) / "model.safetensors"))


def read_metrics(output_dir: Path) -> list[dict]:
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains(preset, tiny_model_folder, tmp_path):
    # vapo's value pretraining would keep the policy still for both steps: tested on its own below
    config = tiny_config(tiny_model_folder, tmp_path, f"algorithm.preset={preset}", "critic.warmup_steps=0")
    result = train(config)
    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:
        assert math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]) and m["grad_norm"] > 0
        for key in (
            "reward/mean",
            "accuracy",
            "entropy",
            "kl",
            "clip/low_frac",
            "clip/high_frac",
            "lr",
            "length/mean",
            "length/truncated_frac",
            "groups/zero_variance_frac",
            "time/generation_s",
            "time/training_s",
            "tokens_per_s/generation",
            "verifier/latency_ms",
        ):
            assert key in m, key
    if config.algorithm.kl_coef > 0:
        assert any(m["kl"] > 0 for m in metrics)  # the reference model is loaded and the policy moved away
    before = weights(tiny_model_folder)
    after = weights(tmp_path / "checkpoints" / "step-000002")
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, f"{preset}: no weight changed"
    assert result.before is not None and result.after is not None
    assert (tmp_path / "samples.jsonl").is_file() and (tmp_path / "summary.json").is_file()


def test_vapo_trains_only_the_critic_during_value_pretraining(tiny_model_folder, tmp_path):
    config = tiny_config(
        tiny_model_folder,
        tmp_path,
        "algorithm.preset=vapo",
        "run.steps=3",
        "run.save_every=1",
        "run.keep_checkpoints=3",
    )
    assert config.critic.warmup_steps == 2
    train(config)
    metrics = read_metrics(tmp_path)
    assert ["loss" in m for m in metrics] == [False, False, True]  # the policy update runs from step 3
    assert all(m["critic/value_loss"] > 0 for m in metrics)
    start = weights(tiny_model_folder)
    checkpoints = tmp_path / "checkpoints"
    step2, step3 = weights(checkpoints / "step-000002"), weights(checkpoints / "step-000003")
    assert all(torch.equal(start[k], step2[k]) for k in start)
    assert not all(torch.equal(start[k], step3[k]) for k in start)
    critic1 = torch.load(checkpoints / "step-000001" / "critic.pt", weights_only=True)["model"]
    critic2 = torch.load(checkpoints / "step-000002" / "critic.pt", weights_only=True)["model"]
    assert not all(torch.equal(critic1[k], critic2[k]) for k in critic1)


@pytest.mark.parametrize("preset", ["ppo", "raft_pp"])
def test_resume_of_the_new_families_is_exact(preset, tiny_model_folder, tmp_path):
    # PPO: the critic's weights and optimiser are in the checkpoint; RAFT++: the selection is deterministic
    common = (f"algorithm.preset={preset}", "run.save_every=2", "env.eval_tasks=0", "run.keep_checkpoints=4")
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny_config(tiny_model_folder, straight, "run.steps=4", *common))
    train(tiny_config(tiny_model_folder, split, "run.steps=2", *common))
    train(tiny_config(tiny_model_folder, split, "run.steps=4", *common), resume=True)
    a, b = weights(straight / "checkpoints" / "step-000004"), weights(split / "checkpoints" / "step-000004")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    if preset == "ppo":
        critic_a = torch.load(straight / "checkpoints" / "step-000004" / "critic.pt", weights_only=True)[
            "model"
        ]
        critic_b = torch.load(split / "checkpoints" / "step-000004" / "critic.pt", weights_only=True)["model"]
        assert max(float((critic_a[k] - critic_b[k]).abs().max()) for k in critic_a) < 1e-5
    assert [m["loss"] for m in read_metrics(split)] == pytest.approx(
        [m["loss"] for m in read_metrics(straight)]
    )


@pytest.mark.parametrize(
    "extra",
    [
        ("algorithm.entropy_coef=0.01", "algorithm.cov_mode=clip_cov", "algorithm.clip_cov_lb=-100"),
        ("algorithm.cov_mode=kl_cov", "algorithm.minibatches=2", "algorithm.kl_cov_ratio=0.2"),
    ],
    ids=["bonus+clip_cov", "kl_cov"],
)
def test_entropy_control_trains_and_logs_the_covariance(extra, tiny_model_folder, tmp_path):
    train(tiny_config(tiny_model_folder, tmp_path, "run.steps=1", "env.eval_tasks=0", *extra))
    (m,) = read_metrics(tmp_path)
    assert m["cov/frac"] > 0  # tokens were detached (Clip-Cov) or penalised (KL-Cov)
    assert m["entropy/cov_max"] >= m["entropy/cov_top_0.2_mean"] >= m["entropy/cov_mean"]
    assert math.isfinite(m["loss"]) and m["grad_norm"] > 0


def test_no_reference_model_without_kl(tiny_model_folder, tmp_path, monkeypatch):
    import rlvr.trainer.loop as loop

    def refuse(model):
        raise AssertionError("a reference model was built although kl_coef = 0")

    monkeypatch.setattr(loop, "_reference_model", refuse)
    train(tiny_config(tiny_model_folder, tmp_path, "algorithm.preset=dapo", "run.steps=1"))


def test_resume_gives_the_same_weights_as_a_straight_run(tiny_model_folder, tmp_path):
    straight = tmp_path / "straight"
    train(
        tiny_config(tiny_model_folder, straight, "run.steps=4", "run.save_every=2", "run.keep_checkpoints=4")
    )
    split = tmp_path / "split"
    train(tiny_config(tiny_model_folder, split, "run.steps=2", "run.save_every=2"))
    train(tiny_config(tiny_model_folder, split, "run.steps=4", "run.save_every=2"), resume=True)
    a = weights(straight / "checkpoints" / "step-000004")
    b = weights(split / "checkpoints" / "step-000004")
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst
    assert not all(torch.equal(a[k], weights(straight / "checkpoints" / "step-000002")[k]) for k in a)
    assert [m["step"] for m in read_metrics(split)] == [1, 2, 3, 4]
    assert [m["reward/mean"] for m in read_metrics(split)] == pytest.approx(
        [m["reward/mean"] for m in read_metrics(straight)]
    )


def test_resume_without_checkpoint_is_a_clear_error(tiny_model_folder, tmp_path):
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match="no checkpoint"):
        train(tiny_config(tiny_model_folder, tmp_path), resume=True)


@pytest.mark.slow
def test_sigkill_loses_at_most_the_steps_since_the_last_checkpoint(tiny_model_folder, tmp_path):
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import trainer_envs\n"
        "from rlvr.trainer.config import load_config; from rlvr.trainer.loop import train\n"
        "overrides = [a for a in sys.argv[2:] if a != '--resume']\n"
        "train(load_config(None, overrides), resume='--resume' in sys.argv)\n"
    )
    args = [
        f"model.name={tiny_model_folder}",
        f"env.suite={PARITY_ID}",
        "env.eval_tasks=0",
        "rollout.prompts_per_step=2",
        "rollout.group_size=4",
        "rollout.max_tokens=8",
        "optim.lr=1e-3",
        "run.steps=200",
        "run.save_every=1",
        f"run.output_dir={tmp_path}",
        "run.progress=false",
        "run.save_model=false",
        "run.plot=false",
    ]
    process = subprocess.Popen([sys.executable, "-c", script, str(HERE), *args])
    latest = tmp_path / "checkpoints" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and not (latest.is_file() and latest.read_text().strip() >= "step-000003"):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = int(latest.read_text().strip().removeprefix("step-"))
    logged = read_metrics(tmp_path)[-1]["step"]
    assert saved >= 3 and logged - saved <= 1  # at most the step in progress is lost
    resumed = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(HERE),
            *[a.replace("run.steps=200", f"run.steps={saved + 2}") for a in args],
            "--resume",
        ],
        timeout=300,
    )
    assert resumed.returncode == 0
    assert [m["step"] for m in read_metrics(tmp_path)] == list(range(1, saved + 3))


DOCS = (HERE.parents[1] / "docs" / "TRAINING.md").read_text(encoding="utf-8")


def test_every_logged_metric_is_documented(tiny_model_folder, tmp_path):
    train(tiny_config(tiny_model_folder, tmp_path, "algorithm.preset=grpo", "run.steps=1"))
    keys = set(read_metrics(tmp_path)[0]) - {"step"}
    documented = {key if not key.startswith("env/") else "env/<id>/" + key.rsplit("/", 1)[-1] for key in keys}
    missing = sorted(
        key
        for key in documented
        if f"`{key}`" not in DOCS and not (key.startswith("env/<id>/") and "`env/<id>/" in DOCS)
    )
    assert not missing, f"metrics missing from docs/TRAINING.md: {missing}"


def test_every_config_field_is_documented():
    from rlvr.trainer.config import SECTIONS, public_name

    missing = [
        f"{section}.{public_name(section, name)}"
        for section, cls in SECTIONS.items()
        for name in cls.__dataclass_fields__
        if f"| `{public_name(section, name)}` |" not in DOCS
    ]
    assert not missing, f"config fields missing from docs/TRAINING.md: {missing}"


def test_tensorboard_wandb_gradient_checkpointing_and_bf16(tiny_model_folder, tmp_path, monkeypatch):
    """The optional paths: TensorBoard and wandb (offline) logging, gradient checkpointing, bfloat16 weights."""
    pytest.importorskip("tensorboard", reason="tensorboard is in the tracking extra (part of dev)")
    pytest.importorskip("wandb", reason="wandb is in the tracking extra (part of dev)")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = tiny_config(
        tiny_model_folder,
        tmp_path,
        "run.steps=1",
        "run.tensorboard=true",
        "run.wandb=true",
        "model.gradient_checkpointing=true",
        "model.dtype=bfloat16",
    )
    train(config)
    assert math.isfinite(read_metrics(tmp_path)[0]["loss"])
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    after = weights(tmp_path / "checkpoints" / "step-000001")
    assert all(t.dtype == torch.bfloat16 for t in after.values())
