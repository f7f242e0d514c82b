"""Suites: a weighted mixture of environment ids for training, with per-environment metrics.

Each draw picks an environment with probability weight / sum(weights), then a task index uniformly from that
environment's tasks, from one seeded generator, so a suite's sequence of draws is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rlvr.envs.registry import check_overrides, make, resolve
from rlvr.envs.rollout import Trajectory
from rlvr.errors import ConfigError


@dataclass(frozen=True)
class SuiteEntry:
    """One environment of a suite: its id, sampling weight and `make` overrides."""

    id: str
    weight: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.weight > 0 and np.isfinite(self.weight)):
            raise ConfigError(f"suite weight of {self.id!r} must be a positive number, got {self.weight!r}")


@dataclass(frozen=True)
class Draw:
    """One sampled task: which environment and which task index."""

    env_id: str
    task_index: int


class Suite:
    """A weighted mixture of environments. `Suite.parse("rlvr/arithmetic-v0:3,rlvr/countdown-v0:1")`.

    Ids may be `module:id` (`mylab.envs:mylab/revword-v0:2`): the module is imported and the plain id kept.
    Unknown ids and overrides an environment does not take are ConfigErrors here, before any episode.
    """

    def __init__(self, entries: Sequence[SuiteEntry | str | tuple[str, float]], seed: int = 0) -> None:
        parsed = [_resolved(_entry(item)) for item in entries]
        if not parsed:
            raise ConfigError("a suite needs at least one environment id")
        ids = [entry.id for entry in parsed]
        if len(set(ids)) != len(ids):
            raise ConfigError(
                f"a suite lists each environment once; repeated: {sorted({i for i in ids if ids.count(i) > 1})}"
            )
        self.entries = parsed
        self.rng = np.random.default_rng(seed)
        weights = np.array([entry.weight for entry in parsed], dtype=float)
        self.probabilities = weights / weights.sum()
        self._pools: dict[str, list[gym.Env]] = {}
        self._sizes: dict[str, int] = {}

    @classmethod
    def parse(cls, text: str, seed: int = 0, overrides: dict[str, dict[str, Any]] | None = None) -> Suite:
        """ "id[:weight],id[:weight],..." (weight 1 when omitted); `overrides` per id, keyed by the id as
        written in `text` or by its plain id."""
        return cls(parse_entries(text, overrides), seed=seed)

    @property
    def ids(self) -> list[str]:
        return [entry.id for entry in self.entries]

    def num_tasks(self, env_id: str) -> int:
        """How many tasks an environment has (made once, then cached)."""
        if env_id not in self._sizes:
            self._sizes[env_id] = len(self.envs(env_id, 1)[0].unwrapped.tasks)
        return self._sizes[env_id]

    def sample(self, count: int) -> list[Draw]:
        """`count` draws: environment by weight, then a task index uniformly."""
        draws = []
        for _ in range(count):  # one draw at a time, so a longer sample starts with the shorter one
            env_id = self.entries[int(self.rng.choice(len(self.entries), p=self.probabilities))].id
            draws.append(Draw(env_id, int(self.rng.integers(self.num_tasks(env_id)))))
        return draws

    def set_overrides(self, env_id: str, overrides: dict[str, Any]) -> None:
        """Replace `env_id`'s `make` overrides (checked), e.g. a level curriculum's next level; its pooled
        environments are closed and remade on the next use, its task count measured again."""
        index = next((i for i, e in enumerate(self.entries) if e.id == env_id), None)
        if index is None:
            raise ConfigError(f"{env_id!r} is not in this suite ({', '.join(self.ids)})")
        check_overrides(env_id, overrides)
        self.entries[index] = SuiteEntry(env_id, self.entries[index].weight, dict(overrides))
        for env in self._pools.pop(env_id, []):
            env.close()
        self._sizes.pop(env_id, None)

    def envs(self, env_id: str, count: int) -> list[gym.Env]:
        """`count` distinct environment objects for `env_id`, reused across calls (a pool that only grows)."""
        entry = next((e for e in self.entries if e.id == env_id), None)
        if entry is None:
            raise ConfigError(f"{env_id!r} is not in this suite ({', '.join(self.ids)})")
        pool = self._pools.setdefault(env_id, [])
        while len(pool) < count:
            pool.append(make(env_id, **entry.overrides))
        return pool[:count]

    def episodes(self, draws: Sequence[Draw]) -> tuple[list[gym.Env], list[dict[str, Any]]]:
        """One environment object and reset options per draw, for `rollout(envs, policy, options=...)`."""
        needed: dict[str, int] = {}
        for draw in draws:
            needed[draw.env_id] = needed.get(draw.env_id, 0) + 1
        available = {env_id: list(self.envs(env_id, n)) for env_id, n in needed.items()}
        envs = [available[draw.env_id].pop() for draw in draws]
        return envs, [{"task_index": draw.task_index} for draw in draws]

    def close(self) -> None:
        for pool in self._pools.values():
            for env in pool:
                env.close()
        self._pools.clear()


def suite_metrics(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Per-environment and overall means: `{env}/reward`, `{env}/solved`, `{env}/turns`, `{env}/rewards/{name}`,
    `{env}/count`, and the same under `all/`."""
    metrics: dict[str, float] = {}
    by_env: dict[str, list[Trajectory]] = {}
    for trajectory in trajectories:
        by_env.setdefault(trajectory.env_id, []).append(trajectory)
    for name, group in [*by_env.items(), ("all", list(trajectories))]:
        if not group:
            continue
        metrics[f"{name}/count"] = float(len(group))
        metrics[f"{name}/reward"] = float(np.mean([t.reward for t in group]))
        metrics[f"{name}/solved"] = float(np.mean([t.solved for t in group]))
        metrics[f"{name}/turns"] = float(np.mean([len(t.turns) for t in group]))
        metrics[f"{name}/truncated"] = float(np.mean([t.truncated for t in group]))
        components = sorted({c for t in group for c in t.rewards})
        for component in components:
            metrics[f"{name}/rewards/{component}"] = float(
                np.mean([t.rewards.get(component, 0.0) for t in group])
            )
    return metrics


def parse_entries(text: str, overrides: dict[str, dict[str, Any]] | None = None) -> list[SuiteEntry]:
    """The entries of "id[:weight],..." with their `make` overrides (keyed by the id as written or plain),
    each checked against its environment (an unknown id or keyword is a ConfigError here)."""
    overrides = overrides or {}
    entries = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.rpartition(":") if _has_weight(part) else (part, "", "1")
        plain = resolve(name)
        try:
            entry = SuiteEntry(plain, float(weight), dict(overrides.get(name, overrides.get(plain, {}))))
        except ValueError as exc:
            raise ConfigError(f"bad suite entry {part!r}: expected id or id:weight ({exc})") from exc
        check_overrides(plain, entry.overrides)
        entries.append(entry)
    return entries


def _resolved(entry: SuiteEntry) -> SuiteEntry:
    """The entry with its plain id (a `module:id` imported), its overrides checked against the environment."""
    plain = resolve(entry.id)
    check_overrides(plain, entry.overrides)
    return entry if plain == entry.id else SuiteEntry(plain, entry.weight, entry.overrides)


def _entry(item: SuiteEntry | str | tuple[str, float]) -> SuiteEntry:
    if isinstance(item, SuiteEntry):
        return item
    if isinstance(item, str):
        return SuiteEntry(item)
    env_id, weight = item
    return SuiteEntry(env_id, float(weight))


def _has_weight(part: str) -> bool:
    head, sep, tail = part.rpartition(":")
    if not sep:
        return False
    try:
        float(tail)
    except ValueError:
        return False
    return bool(head)
