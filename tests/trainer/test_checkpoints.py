"""Every checkpoint is a model folder (evaluable, servable), readable by others, pruned to `run.keep_checkpoints`
without ever deleting the one `--resume` needs; `final/` shares the last checkpoint's files."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import torch

from rlvr.trainer.checkpoint import latest_checkpoint, prune_checkpoints
from rlvr.trainer.config import load_config
from rlvr.trainer.loop import train

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from test_training import tiny_config, weights  # noqa: E402


@pytest.fixture(scope="module")
def two_steps(tiny_model_folder, tmp_path_factory) -> Path:
    """A 2-step run with the default `sample_every` (5), a checkpoint each step, one kept, and final/."""
    out = tmp_path_factory.mktemp("two-steps")
    mask = os.umask(0o022)
    try:
        train(
            tiny_config(
                tiny_model_folder,
                out,
                "run.sample_every=5",
                "run.save_every=1",
                "run.keep_checkpoints=1",
                "run.save_model=true",
                "run.plot=false",
                "env.eval_tasks=0",
            )
        )
    finally:
        os.umask(mask)
    return out


def test_a_checkpoint_is_a_model_folder(two_steps):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    step = two_steps / "checkpoints" / "step-000002"
    names = {p.name for p in step.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "optimizer.pt", "state.pt"} <= names
    model = AutoModelForCausalLM.from_pretrained(step, dtype=torch.float32)
    AutoTokenizer.from_pretrained(step)
    saved = weights(step)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in saved.items())


def test_rlvr_eval_takes_a_checkpoint(two_steps, tmp_path, capsys):
    from rlvr.cli import main

    step = two_steps / "checkpoints" / "step-000002"
    args = ["--suite", "rlvr/arithmetic-v0", "--limit", "2", "--n", "1", "--max-tokens", "4", "--quiet"]
    assert main(["eval", "--model", str(step), *args, "--out", str(tmp_path / "eval")]) == 0, (
        capsys.readouterr().err
    )
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["suites"]


def test_weight_files_are_readable_by_everyone(two_steps):
    files = [p for p in two_steps.rglob("*") if p.is_file()]
    assert any(p.name == "model.safetensors" for p in files)
    modes = {str(p.relative_to(two_steps)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes
    folders = [two_steps / "checkpoints" / "step-000002", two_steps / "final"]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {"0o755"}


def test_keep_checkpoints_and_final(two_steps):
    checkpoints = two_steps / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest", "step-000002"]
    assert latest_checkpoint(checkpoints) == checkpoints / "step-000002"
    final = two_steps / "final"
    assert not (final / "optimizer.pt").exists() and (final / "config.json").is_file()
    last = checkpoints / "step-000002" / "model.safetensors"
    assert (final / "model.safetensors").read_bytes() == last.read_bytes()
    assert (final / "model.safetensors").stat().st_ino == last.stat().st_ino  # a hard link: stored once


def test_a_short_run_writes_samples_of_its_first_and_last_step(two_steps):
    rows = [json.loads(line) for line in (two_steps / "samples.jsonl").read_text().splitlines()]
    assert {row["step"] for row in rows} == {1, 2}


def _checkpoint(folder: Path, step: int) -> Path:
    path = folder / f"step-{step:06d}"
    path.mkdir(parents=True)
    (path / "state.pt").write_bytes(b"state")
    return path


def test_pruning_keeps_the_resume_checkpoint_and_deletes_only_what_a_run_wrote(tmp_path):
    folder = tmp_path / "checkpoints"
    one, two, three = (_checkpoint(folder, step) for step in (1, 2, 3))
    (folder / "latest").write_text(one.name)  # e.g. a kill between writing step 3 and naming it latest
    mine = [folder / "step-000002-best", folder / "step-9"]
    for path in mine:
        path.mkdir()
        (path / "state.pt").write_bytes(b"user")
    (folder / "notes.txt").write_text("mine")
    leftover = folder / ".step-000004.tmp"  # the staging folder of a killed run
    leftover.mkdir()

    deleted = prune_checkpoints(folder, keep=1)

    assert sorted(deleted) == sorted([two, leftover])
    assert one.is_dir() and three.is_dir() and (folder / "notes.txt").is_file()
    assert all(path.is_dir() for path in mine)


def test_keep_checkpoints_must_keep_one():
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"run.keep_checkpoints = 0 .* --resume"):
        load_config(None, ["run.keep_checkpoints=0"])
