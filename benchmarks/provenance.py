"""How each number was made: the data (file sha256 or hub revision), the model (path and revision or weights
sha256), the engine and its version, rlvr's version and the date."""

from __future__ import annotations

import datetime
import hashlib
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rlvr.benchmarks.suites import BenchmarkSuite

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def local_data_file(suite: BenchmarkSuite, data_path: str | None) -> Path | None:
    """The local file the suite's environment reads (the catalog's order: `data_path` or the suite's own
    `env_kwargs["data_path"]`, else the `$RLVR_DATA_DIR` copy of its split), or None when it reads the hub."""
    data_path = data_path or suite.env_kwargs.get("data_path")
    if data_path is not None:
        return Path(data_path).expanduser().resolve()
    if suite.dataset is None:
        return None
    from rlvr.envs.catalog import DATA_DIR_ENV, get_spec

    spec = get_spec(suite.dataset)
    split = suite.env_kwargs.get("split") or spec.split
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir and split in spec.local_files:
        return (Path(data_dir).expanduser() / spec.local_files[split]).resolve()
    return None


def data_provenance(suite: BenchmarkSuite, data_path: str | None) -> dict[str, Any]:
    """Where the suite's tasks came from: a local file and its sha256, the hub id at its revision, or the
    environment's own (procedural) source."""
    local = local_data_file(suite, data_path)
    if local is not None:
        return {"dataset": suite.dataset, "path": str(local), "sha256": file_sha256(local)}
    if suite.dataset is None:
        from rlvr.envs.registry import card

        return {
            "dataset": None,
            "source": card(suite.env_id).data_source,
            "env_kwargs": dict(suite.env_kwargs),
        }
    from rlvr.envs.catalog import get_spec

    spec = get_spec(suite.dataset)
    return {
        "dataset": spec.name,
        "hub_id": spec.hub_id,
        "config": spec.config,
        "split": suite.env_kwargs.get("split") or spec.split,
        "revision": suite.env_kwargs.get("revision") or spec.revision_note,
    }


def model_provenance(model: str, engine: str) -> dict[str, Any]:
    """The model as asked for, the folder it resolved to, and its revision: the hub snapshot commit when it sits
    in the HF cache, else the sha256 of its weight files (served models: only the name the server reports)."""
    info: dict[str, Any] = {"model": model}
    if engine == "openai":
        return info
    from rlvr.trainer.engines.models import EMBEDDED, resolve_model

    folder = Path(resolve_model(model))
    info["path"] = str(folder.resolve()) if folder.exists() else str(folder)
    if model in EMBEDDED:
        package = EMBEDDED[model][0]
        info["embedded"] = f"{package} {_version(package)} ({EMBEDDED[model][1]})"
    if not folder.exists():
        info["revision"] = _hub_snapshot(model)
        return info
    parts = folder.resolve().parts
    if "snapshots" in parts:
        info["revision"] = parts[parts.index("snapshots") + 1]
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    info["weights_sha256"] = {path.name: file_sha256(path) for path in weights}
    return info


def _hub_snapshot(repo_id: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception:
        return None
    if isinstance(cached, str) and "snapshots" in Path(cached).parts:
        parts = Path(cached).parts
        return parts[parts.index("snapshots") + 1]
    return None


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def run_provenance() -> dict[str, Any]:
    """rlvr's version and the date (UTC)."""
    from rlvr.version import __version__

    return {
        "rlvr_version": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
