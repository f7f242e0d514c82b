"""Checks for a registered environment: Gymnasium's `check_env`, and the reference-solution check.

The reference check plays the first tasks twice: with the environment's reference player (gold answer, canonical
program, optimal move), which must finish the task (`terminated`) with the full reward (`max_reward`, wrappers'
bonuses included), and with its wrong player, which must not earn the full reward.
"""

from __future__ import annotations

import math
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from rlvr.envs.registry import make

TOLERANCE = 1e-9


@dataclass
class EpisodeCheck:
    """One scripted episode: who played, what it earned, how it ended."""

    task_index: int
    player: str
    episode_return: float
    max_reward: float
    terminated: bool
    truncated: bool
    turns: int
    error: str = ""

    @property
    def full_reward(self) -> bool:
        return math.isclose(self.episode_return, self.max_reward, abs_tol=TOLERANCE)

    @property
    def ok(self) -> bool:
        if self.error:
            return False
        if self.player == "reference":
            return self.terminated and self.full_reward
        return not self.full_reward


@dataclass
class CheckReport:
    """Everything `rlvr envs check ID` reports; `ok` when check_env and every episode check pass."""

    env_id: str
    check_env_error: str = ""
    check_env_warnings: list[str] = field(default_factory=list)
    episodes: list[EpisodeCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.check_env_error and bool(self.episodes) and all(e.ok for e in self.episodes)


def run_gym_check(env: gym.Env) -> tuple[str, list[str]]:
    """Gymnasium's `check_env`; returns (error or "", the warnings it gave, less the wrapped-env notice)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_env(env, skip_render_check=True)
            error = ""
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
    notes = [
        str(w.message)
        for w in caught
        if issubclass(w.category, UserWarning)  # Gymnasium's own; not a library's ResourceWarning
        and "is different from the unwrapped version" not in str(w.message)
    ]
    return error, notes


def play(env: gym.Env, task_index: int, player: str, max_steps: int = 100) -> EpisodeCheck:
    """Play task `task_index` with the environment's reference or wrong player."""
    core = env.unwrapped
    env.reset(seed=0, options={"task_index": task_index})
    total, turns, terminated, truncated = 0.0, 0, False, False
    try:
        while not (terminated or truncated) and turns < max_steps:
            action = core.reference_action() if player == "reference" else core.wrong_action()
            _, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            turns += 1
        error = ""
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return EpisodeCheck(
        task_index=task_index,
        player=player,
        episode_return=total,
        max_reward=float(env.get_wrapper_attr("max_reward")),
        terminated=bool(terminated),
        truncated=bool(truncated),
        turns=turns,
        error=error,
    )


def check_reference(env: gym.Env, num_tasks: int = 3) -> list[EpisodeCheck]:
    """Reference and wrong players on the first `num_tasks` tasks."""
    count = min(num_tasks, len(env.unwrapped.tasks))
    return [play(env, index, player) for index in range(count) for player in ("reference", "wrong")]


def check_environment(env_id: str, num_tasks: int = 3, **overrides: Any) -> CheckReport:
    """`check_env` on `make(env_id, **overrides)`, then the reference check on a fresh instance."""
    report = CheckReport(env_id=env_id)
    try:
        env = make(env_id, **overrides)
    except Exception as exc:
        report.check_env_error = f"could not make {env_id}: {type(exc).__name__}: {exc}"
        return report
    try:
        report.check_env_error, report.check_env_warnings = run_gym_check(env)
        fresh = make(env_id, **overrides)
        report.episodes = check_reference(fresh, num_tasks)
        fresh.close()
    except Exception:
        report.check_env_error = report.check_env_error or traceback.format_exc(limit=3)
    finally:
        env.close()
    return report
