"""The output folder of a run: one run per folder, and no run is deleted by accident.

A folder *holds a run* when any of the files the trainer writes there exists (`RUN_FILES`). `train()` into such a
folder refuses, before the model loads, unless asked to continue the run (`resume`, `rlvr train --resume`) or to
replace it (`overwrite`, `--overwrite`); replacing removes exactly the `RUN_FILES` entries, so other files in the
folder are never touched.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from rlvr.atomic import write_text_atomic
from rlvr.errors import ConfigError
from rlvr.trainer.checkpoint import latest_checkpoint

RUN_FILES = (
    "config.json",
    "metrics.jsonl",
    "samples.jsonl",
    "summary.json",
    "curves.png",
    "checkpoints",
    "final",
    "tensorboard",
    "wandb",
)
"""What `train()` writes into `run.output_dir`: any of them there means the folder holds a run."""


def run_files(out: Path) -> list[Path]:
    """The run files present in `out` (empty: no run there)."""
    return [out / name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]


def check_output_dir(out: Path, *, resume: bool = False, overwrite: bool = False) -> Path | None:
    """Raise ConfigError unless a run may start (or continue) in `out`; return the checkpoint to resume from.

    Reads only, so every process of a torchrun can call it before any of them writes.
    """
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(
            f"run.output_dir {out}: {blocker} is a file, not a folder; choose another run.output_dir"
        )
    if resume and overwrite:
        raise ConfigError(
            f"--resume continues the run in {out} and --overwrite replaces it: pass one of them"
        )
    found = run_files(out)
    if resume:
        checkpoint = latest_checkpoint(out / "checkpoints")
        if checkpoint is None:
            fix = "start again with --overwrite" if found else "start without --resume"
            raise ConfigError(f"--resume: no checkpoint in {out / 'checkpoints'}; {fix}")
        return checkpoint
    if found and not overwrite:
        raise ConfigError(
            f"{out} already holds a run ({', '.join(_names(found))}): continue it with --resume, replace it "
            "with --overwrite, or choose another run.output_dir"
        )
    return None


def start_run(out: Path, config: dict[str, Any], *, replace: bool = False) -> None:
    """Remove the old run's files when `replace` (saying so on stderr), then write the run's config.json."""
    found = run_files(out) if replace else []
    if found:
        print(
            f"rlvr: replacing the run in {out} (--overwrite): removing {', '.join(_names(found))}",
            file=sys.stderr,
            flush=True,
        )
        for path in found:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    write_text_atomic(out / "config.json", json.dumps(config, indent=2))


def make_output_dir(out: Path) -> None:
    """Create `out` (an empty folder is no run), so that an unwritable path fails before the model loads."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create run.output_dir {out}: {exc.strerror}; choose another run.output_dir"
        ) from exc


def _names(paths: list[Path]) -> list[str]:
    return [p.name + ("/" if p.is_dir() else "") for p in paths]
