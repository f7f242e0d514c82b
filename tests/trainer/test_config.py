"""Config loading: YAML, command-line overrides, presets, validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlvr.errors import ConfigError
from rlvr.trainer.algorithms import PRESETS
from rlvr.trainer.config import SECTIONS, TrainConfig, default_config_path, field_docs, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_resolve_the_grpo_preset():
    config = load_config()
    assert isinstance(config, TrainConfig)
    a = config.algorithm
    assert (a.advantage, a.clip_low, a.clip_high, a.loss_agg) == ("grpo", 0.2, 0.2, "seq_mean_token_mean")


def test_dapo_preset_values():
    a = load_config(None, ["algorithm.preset=dapo"]).algorithm
    assert (a.clip_low, a.clip_high, a.loss_agg, a.kl_coef, a.filter_groups) == (
        0.2,
        0.28,
        "token_mean",
        0.0,
        True,
    )


def test_explicit_value_wins_over_the_preset():
    a = load_config(None, ["algorithm.preset=dapo", "algorithm.clip_high=0.3"]).algorithm
    assert a.clip_high == 0.3 and a.loss_agg == "token_mean"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_resolves(preset):
    a = load_config(None, [f"algorithm.preset={preset}"]).algorithm
    assert all(
        getattr(a, name) is not None for name in ("advantage", "loss_agg", "ratio_level", "kl_estimator")
    )


def test_yaml_file_and_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("rollout:\n  group_size: 4\noptim:\n  lr: 1\n")
    config = load_config(path, ["rollout.group_size=6", "env.overrides={rlvr/arithmetic-v0: {level: 3}}"])
    assert config.rollout.group_size == 6
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.env.overrides == {"rlvr/arithmetic-v0": {"level": 3}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["rollout.group_sise=4"], "did you mean 'group_size'"),
        (["optimizer.lr=1"], "unknown key 'optimizer'"),
        (["rollout.group_size=0"], "rollout.group_size = 0 is invalid"),
        (["rollout.group_size=four"], "must be of type int"),
        (["algorithm.preset=trpo"], "unknown algorithm preset 'trpo'"),
        (["algorithm.loss_agg=mean"], "algorithm.loss_agg = 'mean' is invalid"),
        (["algorithm.clip_ratio_c=0.5"], "clip_ratio_c"),
        (["rollout.temperature=0"], "rollout.temperature"),
        (["runsteps=3"], "must look like section.key=value"),
        (["model.dtype=float8"], "model.dtype"),
        (["algorithm.preset=ppo", "algorithm.lam=1.5"], "algorithm.lam = 1.5 is invalid"),
        (["algorithm.gamma=0"], "algorithm.gamma = 0.0 is invalid"),
        (["algorithm.cov_mode=entropy"], "algorithm.cov_mode = 'entropy' is invalid"),
        (["algorithm.preset=reinforce", "algorithm.cov_mode=clip_cov"], "none unless policy_loss=clip"),
        (["algorithm.entropy_coef=-0.01"], "algorithm.entropy_coef"),
        (["critic.lr=0"], "critic.lr = 0.0 is invalid"),
        (["critic.value_clip=-1"], "critic.value_clip"),
        (["critic.warmup_steps=-2"], "critic.warmup_steps"),
        (["critic.model_name=x"], "did you mean 'model'"),
    ],
)
def test_bad_values_are_clear_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rollout: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_every_field_has_a_docstring():
    for name, cls in SECTIONS.items():
        docs = field_docs(cls)
        missing = [f for f in cls.__dataclass_fields__ if not docs.get(f)]
        assert not missing, f"{name}: fields without a docstring: {missing}"


@pytest.mark.parametrize(
    "path", [*sorted(CONFIGS.glob("*.yaml")), default_config_path()], ids=lambda p: p.name
)
def test_shipped_configs_load(path):
    load_config(path)


def test_rlvr_train_without_a_file_runs_the_packaged_quickstart(capsys):
    from rlvr.cli import main

    assert main(["train", "--print-config", "run.steps=3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    quickstart = json.loads(json.dumps(load_config(default_config_path()).to_dict()))
    assert printed == {**quickstart, "run": {**quickstart["run"], "steps": 3}}
    assert printed["model"]["name"] == "smollm2-135m-instruct"
    assert printed["env"]["suite"] == "rlvr/arithmetic-v0"


def test_critic_warmup_comes_from_the_preset_unless_set():
    assert load_config(None, ["algorithm.preset=vapo"]).critic.warmup_steps == 2
    assert load_config(None, ["algorithm.preset=ppo"]).critic.warmup_steps == 0
    assert load_config(None, ["algorithm.preset=vapo", "critic.warmup_steps=0"]).critic.warmup_steps == 0
