"""Which split of which dataset an environment reads, and a warning when training reads a benchmark's split.

Dataset environments read the catalog's default split, the training one (`rlvr.envs.catalog`); the built-in
benchmark suites evaluate on each dataset's `test_split`. `benchmark_overlap` says when a training environment
(its registered kwargs with the run's overrides laid over them) reads the split a benchmark suite evaluates on;
the trainer prints it once per environment with `warn_benchmark_overlap`.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym

from rlvr.envs.catalog import get_spec


@dataclass(frozen=True)
class EnvSplit:
    """The catalog dataset and split an environment reads (`data_path`: a file given instead)."""

    env_id: str
    dataset: str
    split: str
    data_path: str | None = None


class _Entry(Protocol):
    id: str
    overrides: Mapping[str, Any]


def env_split(env_id: str, overrides: Mapping[str, Any] | None = None) -> EnvSplit | None:
    """The dataset and split `make(env_id, **overrides)` reads; None for environments without a catalog dataset
    (procedural ones, or tasks given with `tasks=`)."""
    kwargs = {**gym.spec(env_id).kwargs, **(overrides or {})}
    dataset = kwargs.get("dataset")
    if not isinstance(dataset, str) or kwargs.get("tasks") is not None:
        return None
    split = kwargs.get("split") or get_spec(dataset).split
    data_path = kwargs.get("data_path")
    return EnvSplit(env_id, dataset, split, None if data_path is None else str(data_path))


def benchmark_overlap(env_id: str, overrides: Mapping[str, Any] | None = None) -> str | None:
    """The warning for training on `env_id` with `overrides` when its data is the split a built-in benchmark suite
    evaluates on, else None. A `data_path` counts as that split when its file name is the split's usual local
    copy (`gsm8k_test.jsonl`); another file is the user's own and is not judged."""
    found = env_split(env_id, overrides)
    if found is None:
        return None
    spec = get_spec(found.dataset)
    if not spec.benchmark:
        return None
    if found.data_path is None:
        if found.split != spec.test_split:
            return None
        how = f"split={found.split}"
    else:
        local = spec.local_files.get(spec.test_split)
        if local is None or not _same_name(local, found):
            return None
        how = f"data_path={found.data_path}"
    advice = (
        f"train on split={spec.split} instead"
        if spec.split != spec.test_split
        else f"{spec.name} has no other split: train on another dataset"
    )
    return (
        f"rlvr: warning: training on {spec.name} {spec.test_split} ({env_id} {how}), which holds the problems "
        f"benchmark suite `{spec.benchmark}` evaluates on; {advice}"
    )


def warn_benchmark_overlap(entries: Iterable[_Entry], *, show: bool = True) -> list[str]:
    """Print (to stderr, when `show`) one warning per training environment whose data a benchmark suite
    evaluates on; return the warnings. `entries` have `.id` and `.overrides` (the trainer's `SuiteEntry`)."""
    warnings = []
    for entry in entries:
        message = benchmark_overlap(entry.id, entry.overrides)
        if message is not None and message not in warnings:
            warnings.append(message)
    if show:
        for message in warnings:
            print(message, file=sys.stderr, flush=True)
    return warnings


def describe_split(env: gym.Env, env_id: str, overrides: Mapping[str, Any] | None = None) -> str:
    """`rlvr envs show`'s split line: the split, how many rows the made environment holds, and where from."""
    tasks = getattr(env.unwrapped, "tasks", None)
    count = "" if tasks is None else f", {len(tasks)} rows"
    found = env_split(env_id, overrides)
    if found is None:
        split = {**gym.spec(env_id).kwargs, **(overrides or {})}.get("split") or _default_split(env)
        return f"{split or '-'}{count} (the environment's own tasks, no dataset)"
    origin = getattr(tasks, "name", None)
    where = f" from {origin}" if origin else ""
    if found.data_path is None:
        return f"{found.split}{count}{where}"
    named = [
        split for split, local in get_spec(found.dataset).local_files.items() if _same_name(local, found)
    ]
    if len(named) == 1:
        return f"{named[0]} (by the file's name){count}{where}"
    return f"the whole file (split= does not apply to a given file){count}{where}"


def _same_name(local: str, found: EnvSplit) -> bool:
    return found.data_path is not None and Path(local).name == Path(found.data_path).name


def describe_unloaded_split(env_id: str, overrides: Mapping[str, Any] | None, error: Exception) -> str:
    """`rlvr envs show`'s split line when the data could not be loaded: the split, and why the count is unknown."""
    found = env_split(env_id, overrides)
    split = found.split if found is not None else "-"
    return f"{split}, rows unknown: the data did not load ({error})"


def _default_split(env: gym.Env) -> str | None:
    """The default of the environment class's `split` argument (procedural environments), if it has one."""
    try:
        parameter = inspect.signature(type(env.unwrapped)).parameters.get("split")
    except (TypeError, ValueError):
        return None
    if parameter is None or not isinstance(parameter.default, str):
        return None
    return parameter.default
