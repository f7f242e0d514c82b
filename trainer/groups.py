"""The samples of one task in one training step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlvr.envs.rollout import Trajectory


@dataclass
class Group:
    """The samples of one task in one step."""

    key: int
    trajectories: list[Trajectory]
    baseline: float | None = None  # ReMax: reward of the greedy completion
    task: tuple[str, int] = ("", -1)  # (env_id, task_index): its record in the task history
    tree: list[Any] | None = None  # rollout.tree: the TreeSample of each trajectory (its leaf and path)

    @property
    def accuracies(self) -> list[float]:
        return [float(t.solved) for t in self.trajectories]
