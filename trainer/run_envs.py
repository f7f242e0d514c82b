"""The environments of a run, resolved and checked before the model loads: the training suite's entries and the
held-out environment with its overrides.

The held-out environment is `env.eval_env` (default: the suite's first id). It is made with `split="test"` when it
takes a `split` (else with a held-out `seed`, see `held_out_tasks`), then with its own entry of
`env.eval_overrides`; overrides written for one environment never reach another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rlvr.envs.plugins import split_module
from rlvr.envs.registry import accepted_kwargs, check_overrides, resolve
from rlvr.envs.suite import SuiteEntry, parse_entries
from rlvr.errors import ConfigError
from rlvr.trainer.config import EnvConfig

HELD_OUT_SPLIT = "test"
HELD_OUT_SEED_OFFSET = 10**9
"""Held-out seed of an environment without a split: its training seed plus this (as the procedural test splits)."""


@dataclass(frozen=True)
class RunEnvironments:
    """What `train()` makes its environments from."""

    entries: list[SuiteEntry]
    held_out_id: str
    held_out_overrides: dict[str, Any] = field(default_factory=dict)


def run_environments(env: EnvConfig) -> RunEnvironments:
    """Resolve `module:id` ids, check every override against its environment, pick the held-out split."""
    entries = parse_entries(env.suite, env.overrides)
    for stage in env.stages:  # each stage's suite is checked now too, before the model loads
        parse_entries(stage["suite"], env.overrides)
    if not entries:
        raise ConfigError("env.suite lists no environment; e.g. env.suite=rlvr/arithmetic-v0")
    held_out = resolve(env.eval_env) if env.eval_env else entries[0].id
    if env.eval_tasks == 0:
        return RunEnvironments(entries, held_out)
    overrides = held_out_overrides(env, held_out)
    check_overrides(held_out, overrides)
    return RunEnvironments(entries, held_out, overrides)


def held_out_overrides(env: EnvConfig, held_out: str) -> dict[str, Any]:
    """The held-out tasks (`held_out_tasks`), then the environment's own entry of `env.eval_overrides`.

    `eval_overrides` is keyed by environment id (as written in the suite, or plain). A flat mapping of `make`
    keywords is accepted only when `env.eval_env` names the environment it was written for.
    """
    keyed = {key: value for key, value in env.eval_overrides.items() if isinstance(value, dict)}
    flat = {key: value for key, value in env.eval_overrides.items() if not isinstance(value, dict)}
    if flat and not env.eval_env:
        raise ConfigError(
            f"env.eval_overrides {flat} do not say which environment they are for: key them by id, e.g. "
            f"env.eval_overrides={{{held_out}: {flat}}}, or set env.eval_env"
        )
    own = dict(flat)
    for key, value in keyed.items():
        if key == env.eval_env or split_module(key)[1] == held_out:
            own.update(value)
    return {**held_out_tasks(held_out, _training_overrides(env, held_out)), **own}


def held_out_tasks(env_id: str, training: dict[str, Any]) -> dict[str, Any]:
    """The `make` keywords that select held-out tasks: `split="test"`; for an environment without a split but
    with a `seed` (the games, reasoning-gym), another random stream: `seed = training seed + 10**9`, as the
    procedural test splits do (in a small task space the same question can still occur in both)."""
    accepted = accepted_kwargs(env_id)
    if accepted is None or "split" in accepted:
        return {"split": HELD_OUT_SPLIT}
    if "seed" in accepted:
        seed = {**gym.spec(env_id).kwargs, **training}.get("seed", 0)
        if isinstance(seed, int):
            return {"seed": seed + HELD_OUT_SEED_OFFSET}
    raise ConfigError(
        f"the held-out environment {env_id} has neither a `split` nor a `seed`, so its tasks would be training "
        "tasks; set env.eval_env to an environment with a test split, or env.eval_tasks=0"
    )


def _training_overrides(env: EnvConfig, env_id: str) -> dict[str, Any]:
    """The `env.overrides` entry of `env_id` (keyed by the plain id or `module:id`)."""
    for key, value in env.overrides.items():
        if split_module(key)[1] == env_id:
            return dict(value)
    return {}
