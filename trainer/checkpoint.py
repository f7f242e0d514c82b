"""Checkpoints: everything needed to continue a run exactly, written atomically.

    output_dir/checkpoints/step-000004/  model.safetensors, optimizer.pt, state.pt (scheduler, RNG states,
                                         data position, step, history), config.yaml
    output_dir/checkpoints/latest        the name of the newest complete checkpoint

A checkpoint is written into a temporary folder and renamed into place, then `latest` is replaced
(`os.replace`): a run killed at any moment leaves the previous checkpoint intact and `latest` pointing at a
complete one.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlvr.errors import ConfigError

LATEST = "latest"


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
    folder: Path, step: int, model: Any, optimizer: Any, state: dict[str, Any], keep: int = 2
) -> Path:
    """Write checkpoint `step` under `folder` (model weights, optimiser, `state`) and prune old ones."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder))
    try:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(_untie(weights), staging / "model.safetensors")
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        torch.save({**state, "rng": rng_state(), "step": step}, staging / "state.pt")
        _fsync_folder(staging)
        target = folder / name
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    pointer = folder / f".{LATEST}.tmp"
    pointer.write_text(name, encoding="utf-8")
    os.replace(pointer, folder / LATEST)
    for old in sorted(p for p in folder.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    path = folder / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "state.pt").is_file() else None


def load_checkpoint(path: Path, model: Any, optimizer: Any) -> dict[str, Any]:
    """Restore model and optimiser in place; return the saved state (RNG states are restored too)."""
    from safetensors.torch import load_file

    if not (path / "state.pt").is_file():
        raise ConfigError(f"{path} is not a complete rlvr checkpoint (no state.pt)")
    weights = load_file(path / "model.safetensors")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if k not in _tied_names(model)]
    if missing or unexpected:
        raise ConfigError(
            f"checkpoint {path} does not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]}); "
            "resume with the same model.name"
        )
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    state = torch.load(path / "state.pt", weights_only=False)
    set_rng_state(state["rng"])
    return state


def _untie(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage (tied embeddings): keep one name per storage."""
    seen: dict[int, str] = {}
    out = {}
    for name, tensor in weights.items():
        key = tensor.untyped_storage().data_ptr()
        if key in seen:
            continue
        seen[key] = name
        out[name] = tensor
    return out


def _tied_names(model: Any) -> set[str]:
    names = set()
    by_ptr: dict[int, str] = {}
    for name, tensor in model.state_dict().items():
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in by_ptr:
            names.add(name)
        by_ptr.setdefault(ptr, name)
    return names


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
