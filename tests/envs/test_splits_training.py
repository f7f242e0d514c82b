"""`rlvr train` on GSM8K with a tiny random model: one warning when the run trains on the test split that benchmark
suite `gsm8k` evaluates on, none when it trains on the train split (the default)."""

from __future__ import annotations

import envdata

from rlvr.envs import catalog
from rlvr.envs.catalog import DATA_DIR_ENV
from rlvr.trainer.config import load_config
from rlvr.trainer.loop import train


def _train_gsm8k(model_folder: str, output_dir, split: str | None) -> None:
    overrides = "{limit: 8}" if split is None else f"{{limit: 8, split: {split}}}"
    config = load_config(
        None,
        [
            f"model.name={model_folder}",
            "env.suite=rlvr/math-gsm8k-v0",
            f"env.overrides={{rlvr/math-gsm8k-v0: {overrides}}}",
            "env.eval_tasks=0",
            "rollout.prompts_per_step=1",
            "rollout.group_size=2",
            "rollout.max_tokens=4",
            "optim.micro_batch_size=2",
            "run.steps=1",
            f"run.output_dir={output_dir}",
            "run.progress=false",
            "run.save_model=false",
            "run.plot=false",
        ],
    )
    train(config)


def test_training_on_gsm8k_test_warns_once(tiny_model_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(DATA_DIR_ENV, str(envdata.shared_file("MANIFEST.md").parent))
    catalog.clear_cache()
    try:
        warnings = {}
        for split in ("test", None):  # None: the environment's default, the train split
            _train_gsm8k(tiny_model_folder, tmp_path / str(split), split)
            err = capsys.readouterr().err
            warnings[split] = [line for line in err.splitlines() if "warning: training on" in line]
    finally:
        catalog.clear_cache()
    assert len(warnings["test"]) == 1 and warnings[None] == []
    assert "gsm8k test (rlvr/math-gsm8k-v0 split=test)" in warnings["test"][0]
    assert "benchmark suite `gsm8k`" in warnings["test"][0]
