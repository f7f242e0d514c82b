"""Held-out greedy accuracy: the same code measures the model before and after training."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rlvr.envs.registry import make
from rlvr.envs.rollout import rollout
from rlvr.envs.types import Sampling


@dataclass(frozen=True)
class HeldOutResult:
    """Greedy accuracy on tasks 0..tasks-1 of the held-out environment."""

    env_id: str
    tasks: int
    solved: int
    mean_reward: float
    mean_tokens: float
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.solved / self.tasks if self.tasks else 0.0


def held_out_accuracy(
    engine: Any,
    env_id: str,
    overrides: dict[str, Any],
    tasks: int,
    max_tokens: int,
    tokenizer: Any = None,
    batch_size: int = 64,
) -> HeldOutResult:
    """Greedy (temperature 0) single sample per task, through the rollout loop and the environment's reward."""
    start = time.perf_counter()
    envs = [make(env_id, **overrides) for _ in range(min(tasks, batch_size))]
    trajectories = []
    try:
        for first in range(0, tasks, batch_size):
            indices = list(range(first, min(first + batch_size, tasks)))
            trajectories += rollout(
                envs[: len(indices)],
                engine,
                options=[{"task_index": i} for i in indices],
                sampling=Sampling(max_tokens=max_tokens, temperature=0.0),
                tokenizer=tokenizer,
            )
    finally:
        for env in envs:
            env.close()
    solved = sum(t.solved for t in trajectories)
    tokens = [sum(turn.completion.num_tokens or 0 for turn in t.turns) for t in trajectories]
    return HeldOutResult(
        env_id=env_id,
        tasks=tasks,
        solved=solved,
        mean_reward=sum(t.reward for t in trajectories) / max(tasks, 1),
        mean_tokens=sum(tokens) / max(tasks, 1),
        seconds=time.perf_counter() - start,
    )
