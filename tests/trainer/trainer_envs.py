"""A test environment whose reward varies even for a tiny random model: 1 when the reply's length is even.

Registered as `rlvr-test/parity-v0` (import this module first). Random tokens give reward variance within
every group, so each algorithm has a non-zero gradient from the first step.
"""

from __future__ import annotations

from typing import Any

from rlvr.envs.base import SingleTurnEnv
from rlvr.envs.registry import register
from rlvr.envs.types import Completion, Task

PARITY_ID = "rlvr-test/parity-v0"


class ParityEnv(SingleTurnEnv):
    def __init__(self, size: int = 64, split: str = "train") -> None:
        offset = 0 if split == "train" else 1000
        tasks = [Task(f"parity-{offset + i}", f"Say something ({offset + i}).", 0) for i in range(size)]
        super().__init__(tasks)

    def score(self, task: Task, completion: Completion) -> tuple[dict[str, float], Any]:
        correct = len(completion.text) % 2 == 0
        return {"correct": float(correct)}, _Verdict(correct)

    def reference_action(self) -> str:
        return "ok"

    def wrong_action(self) -> str:
        return "odd"


class _Verdict:
    def __init__(self, correct: bool) -> None:
        self.correct = correct
        self.reason = "correct" if correct else "wrong"


try:
    register(PARITY_ID, ParityEnv, description="test: reward 1 for an even-length reply")
except ValueError:  # already registered in this process
    pass
