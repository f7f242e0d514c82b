"""Pass-rate estimates from a pre-pass: the samples of an `rlvr eval` run on the training tasks (issue 16 item 2).

    rlvr eval --model M --suite rlvr/countdown-v0 --n 8 --limit 500 --out prepass
    rlvr train ... env.pass_rates=[prepass/rlvr__countdown-v0]

Each folder (or its samples.jsonl) holds one suite's samples and its settings.json, which names the environment.
Every task's samples become one observed group of the task history before the first step, so the curriculum,
the knapsack allocation and history resampling start from measured pass rates instead of the prior.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError, DataError

Key = tuple[str, int]


def read_prepass(paths: Sequence[str], training_splits: dict[str, Any]) -> dict[Key, list[float]]:
    """(env_id, task_index) -> the accuracies of its pre-pass samples, from every path.

    `training_splits`: the split each training environment draws from (None: its default), keyed by env id; a
    pre-pass of an environment outside the suite, or of another split, is a ConfigError.
    """
    from rlvr.benchmarks.evaluator import SAMPLES_FILE, SETTINGS_FILE
    from rlvr.benchmarks.records import read_records

    groups: dict[Key, list[float]] = {}
    for path in map(Path, paths):
        folder = path.parent if path.name == SAMPLES_FILE else path
        samples, settings_file = folder / SAMPLES_FILE, folder / SETTINGS_FILE
        if not samples.is_file() or not settings_file.is_file():
            raise DataError(
                f"env.pass_rates: {path} is not an `rlvr eval` suite folder (it needs {SAMPLES_FILE} and "
                f"{SETTINGS_FILE}); pass OUT/<suite> of an `rlvr eval --out OUT` run"
            )
        env_id = _environment(settings_file, training_splits)
        for record in read_records(samples):
            groups.setdefault((env_id, record.task_index), []).append(float(record.correct))
    return groups


def _environment(settings_file: Path, training_splits: dict[str, Any]) -> str:
    """The environment a pre-pass evaluated, checked against the training suite."""
    try:
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
        env_id, kwargs = settings["env_id"], settings.get("env_kwargs", {})
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(
            f"env.pass_rates: {settings_file} is not an `rlvr eval` settings file ({exc})"
        ) from exc
    if env_id not in training_splits:
        raise ConfigError(
            f"env.pass_rates: {settings_file.parent} evaluated {env_id}, which is not in the training suite "
            f"({', '.join(training_splits)}); evaluate a training environment"
        )
    split = kwargs.get("split")
    if split is not None and split != (training_splits[env_id] or "train"):
        raise ConfigError(
            f"env.pass_rates: {settings_file.parent} evaluated the {split!r} split of {env_id}, but training draws "
            f"from {training_splits[env_id] or 'train'!r}: its task indices name other tasks"
        )
    return env_id
