"""One run per output folder: a second run refuses (the first run's files stay byte-identical), --overwrite
replaces the run and says so, an interrupted run says how to resume it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlvr.errors import ConfigError
from rlvr.trainer.loop import train

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from test_training import read_metrics, tiny_config  # noqa: E402

RLVR = shutil.which("rlvr", path=str(Path(sys.executable).parent)) or "rlvr"


def cli_args(model: str, out: Path, *extra: str) -> list[str]:
    """`rlvr train` on the tiny model and a built-in environment, a few seconds a step on CPU."""
    return [
        RLVR,
        "train",
        f"model.name={model}",
        "env.suite=rlvr/arithmetic-v0",
        "env.eval_tasks=0",
        "rollout.prompts_per_step=2",
        "rollout.group_size=2",
        "rollout.max_tokens=4",
        "run.steps=1",
        "run.progress=false",
        "run.plot=false",
        f"run.output_dir={out}",
        *extra,
    ]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_second_run_into_a_folder_refuses_and_leaves_the_first_untouched(tiny_model_folder, tmp_path):
    config = tiny_config(
        tiny_model_folder, tmp_path, "run.steps=1", "env.eval_tasks=0", "run.save_model=true"
    )
    train(config)
    before = snapshot(tmp_path)
    assert {"metrics.jsonl", "samples.jsonl", "final/model.safetensors"} <= set(before)

    result = subprocess.run(
        cli_args(tiny_model_folder, tmp_path), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlvr: error: "), result.stderr
    assert "already holds a run" in lines[0] and "--resume" in lines[0] and "--overwrite" in lines[0]
    with pytest.raises(ConfigError, match="already holds a run"):
        train(config)
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_the_run_and_says_so(tiny_model_folder, tmp_path, capsys):
    first = tiny_config(
        tiny_model_folder, tmp_path, "run.save_every=1", "run.keep_checkpoints=2", "env.eval_tasks=0"
    )
    train(first)
    (tmp_path / "notes.txt").write_text("mine")
    assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2]
    capsys.readouterr()

    train(tiny_config(tiny_model_folder, tmp_path, "run.steps=1", "env.eval_tasks=0"), overwrite=True)

    assert f"rlvr: replacing the run in {tmp_path} (--overwrite)" in capsys.readouterr().err
    assert [m["step"] for m in read_metrics(tmp_path)] == [1]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step-000001"]
    assert (tmp_path / "notes.txt").read_text() == "mine"  # not a file the trainer writes: left alone


def test_resume_and_overwrite_together_is_an_error(tmp_path):
    config = tiny_config("unused", tmp_path)
    with pytest.raises(ConfigError, match="pass one of them"):
        train(config, resume=True, overwrite=True)


def test_an_interrupted_run_says_how_to_resume(tiny_model_folder, tmp_path):
    args = cli_args(tiny_model_folder, tmp_path, "run.save_every=1")
    args[args.index("run.steps=1")] = "run.steps=1000"
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    latest = tmp_path / "checkpoints" / "latest"
    deadline = time.time() + 240
    while time.time() < deadline and not latest.is_file() and process.poll() is None:
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"rlvr: interrupted; the run in {tmp_path} continues from step-"), last
    assert last.endswith(f"with: rlvr {' '.join(args[1:])} --resume"), last
