"""Checkpoints: a Hugging Face model folder per step, with everything needed to continue the run exactly.

    output_dir/checkpoints/step-000004/  config.json, generation_config.json, model.safetensors and the
                                         tokenizer files: a model folder that `rlvr eval --model`, vLLM and
                                         `AutoModelForCausalLM.from_pretrained` load as it is; beside them
                                         optimizer.pt and state.pt (scheduler, RNG states, data position,
                                         step, held-out results)
    output_dir/checkpoints/step-000004/sharded/  with model.sharding=fsdp, in place of optimizer.pt: the sharded
                                         model and optimiser (torch.distributed.checkpoint, a file per rank)
    output_dir/checkpoints/latest        the name of the newest complete checkpoint

With `model.lora_rank > 0` the model folder is the adapter instead (`adapter_model.safetensors`,
`adapter_config.json`, as peft writes it): the base is the model `model.name` names, never changed. With
`model.sharding=fsdp` too, the adapter and optimizer.pt are gathered to rank 0 and written as one process writes
them (no sharded/ folder): they are small.

The weights are stored once: `--resume` loads the model from the step folder itself. A checkpoint is written
into a staging folder (`.step-000004.tmp`) and renamed into place, then `latest` is replaced (`os.replace`): a
run killed at any moment leaves the previous checkpoint intact and `latest` naming a complete one.

Pruning keeps the newest `keep` checkpoints and, always, the one `latest` names (the one `--resume` continues
from). It deletes only what a run writes here: `step-NNNNNN` folders holding a state.pt, and the staging folders
a killed run left behind.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

LATEST = "latest"
TRAINING_STATE = ("optimizer.pt", "state.pt")
"""The files of a checkpoint that are not part of its model folder."""
_STEP = re.compile(r"step-\d{6,}")
_STAGING = re.compile(r"\.step-\d{6,}\.tmp")


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    folder: Path,
    step: int,
    model: Any,
    optimizer: Any,
    state: dict[str, Any],
    *,
    tokenizer: Any = None,
    keep: int = 2,
    state_dict: dict[str, Any] | None = None,
    optimizer_state: dict[str, Any] | None = None,
    staged: bool = False,
) -> Path:
    """Write checkpoint `step` under `folder` (a model folder plus optimiser and `state`), then prune old ones.

    Sharded training (`sharding.py`) passes the gathered `state_dict` of the model, no optimizer (its sharded
    state is already in the staging folder) and `staged=True`: the staging folder is kept, not emptied. Sharded
    LoRA passes the gathered adapter as `state_dict` and the gathered `optimizer_state` (optimizer.pt).
    """
    name = f"step-{step:06d}"
    staging = folder / f".{name}.tmp" if staged else staging_folder(folder, step)
    model.save_pretrained(staging, state_dict=state_dict)  # safetensors
    if tokenizer is not None:
        tokenizer.save_pretrained(staging)
    if optimizer is not None:
        optimizer_state = optimizer.state_dict()
    if optimizer_state is not None:
        torch.save(optimizer_state, staging / "optimizer.pt")
    torch.save({**state, "rng": rng_state(), "step": step}, staging / "state.pt")
    _publishable(staging)
    target = folder / name
    if target.exists():  # a newer checkpoint than `latest` from a killed run, redone after --resume
        shutil.rmtree(target)
    staging.rename(target)
    pointer = folder / f".{LATEST}.tmp"
    pointer.write_text(name, encoding="utf-8")
    os.replace(pointer, folder / LATEST)
    prune_checkpoints(folder, keep)
    return target


def staging_folder(folder: Path, step: int) -> Path:
    """The empty staging folder of checkpoint `step` (`.step-000004.tmp`), renamed into place when complete."""
    staging = folder / f".step-{step:06d}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def prune_checkpoints(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` checkpoints, never the one `latest` names; return what was deleted."""
    latest = latest_checkpoint(folder)
    complete = sorted(
        (p for p in folder.iterdir() if _STEP.fullmatch(p.name) and (p / "state.pt").is_file()),
        key=lambda p: int(p.name.removeprefix("step-")),
    )
    old = [p for p in complete[: max(0, len(complete) - keep)] if p != latest]
    old += [p for p in folder.iterdir() if _STAGING.fullmatch(p.name) and p.is_dir()]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return old


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    path = folder / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "state.pt").is_file() else None


def read_state(path: Path) -> dict[str, Any]:
    """The saved training state of checkpoint `path` (step, scheduler, RNG states, ...)."""
    return torch.load(path / "state.pt", weights_only=False)


def restore_optimizer(path: Path, optimizer: Any) -> None:
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))


def export_model(checkpoint: Path, target: Path) -> Path:
    """Publish the model folder of `checkpoint` as `target` (e.g. output_dir/final), replacing it atomically.

    The files are hard links where the file system allows (no second copy of the weights on disk; deleting
    either folder leaves the other whole), copies otherwise.
    """
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for path in checkpoint.iterdir():
        if path.is_file() and path.name not in TRAINING_STATE:
            try:
                os.link(path, staging / path.name)
            except OSError:
                shutil.copy2(path, staging / path.name)
    return publish_folder(staging, target)


def publish_folder(staging: Path, target: Path) -> Path:
    """Make `staging` readable (0644/0755 under the usual umask) and rename it to `target`, replacing an older
    `target`: a reader sees the old folder or the new one, never half of one."""
    _publishable(staging)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _publishable(folder: Path) -> None:
    """Make the files readable as the umask allows (safetensors writes 0600) and flush them to disk."""
    mask = _umask()
    folder.chmod(0o777 & ~mask)
    for path in folder.iterdir():
        if path.is_dir():
            _publishable(path)
            continue
        path.chmod(0o666 & ~mask)
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: set it back at once
    os.umask(mask)
    return mask
