"""The reasoning-gym bridge: each reasoning-gym generator as an environment `rlvr/rg-<name>-v0`.

reasoning-gym builds item `i` of a generator from `Random(seed + i)` and keeps its scorer next to it; this
environment asks for the answer inside `<answer>...</answer>` (reasoning-gym's own system prompt) and scores the
last such tag with the generator's `score_answer`, which may give partial credit in [0, 1]. `reasoning_gym` is
imported when an environment is made, never when rlvr is imported (it takes ~2 s).
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import numpy as np

from rlvr.envs.base import SingleTurnEnv, TaskSource
from rlvr.envs.types import Completion, Task
from rlvr.errors import ConfigError
from rlvr.verifiers.types import CORRECT, NO_ANSWER, WRONG, Verdict

INSTALL_HINT = "pip install 'rlvr[reasoning-gym]'"
REFERENCE_KEYS = ("possible_answer", "example_answer", "example_correct_answer")
"""Metadata fields where generators without a single answer keep one valid answer."""


class ReasoningGymTasks(TaskSource):
    """A reasoning-gym dataset as a task source; `Task.metadata["entry"]` keeps the entry its scorer reads."""

    def __init__(self, name: str, size: int, seed: int, config: dict[str, Any]) -> None:
        try:
            import reasoning_gym
        except ImportError as exc:
            raise ConfigError(f"the rg-* environments need reasoning-gym: {INSTALL_HINT} ({exc})") from exc
        try:
            self.dataset = reasoning_gym.create_dataset(name, size=size, seed=seed, **config)
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"reasoning-gym could not create dataset {name!r} with {config}: {exc}"
            ) from exc
        self.name = name
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Task:  # type: ignore[override]
        if not 0 <= index < self.size:
            raise IndexError(f"task index {index} out of range [0, {self.size})")
        entry = _deterministic_item(self.dataset, index, self.seed + index)
        return Task(
            id=f"{self.name}-{index}",
            prompt=str(entry["question"]),
            answer=entry["answer"],
            metadata={"entry": entry},
        )


class ReasoningGymEnv(SingleTurnEnv):
    """One reasoning-gym generator. Reward `correct` = the generator's score of the last `<answer>` tag."""

    description = "a reasoning-gym procedural task, scored by its own scorer"

    def __init__(
        self,
        name: str,
        *,
        size: int = 10_000,
        seed: int = 0,
        config: dict[str, Any] | None = None,
        system_prompt: str | None = None,
    ) -> None:
        tasks = ReasoningGymTasks(name, size=size, seed=seed, config=dict(config or {}))
        if system_prompt is None:
            from reasoning_gym.utils import SYSTEM_PROMPTS

            system_prompt = SYSTEM_PROMPTS["default"]
        super().__init__(tasks, system_prompt=system_prompt)
        self.name = name

    def score(self, task: Task, completion: Completion) -> tuple[dict[str, float], Verdict]:
        from reasoning_gym.utils import extract_answer

        answer = extract_answer(completion.text)
        if answer is None:
            return {"correct": 0.0}, Verdict(0.0, False, NO_ANSWER, {"extracted": None})
        try:
            score = float(self.tasks.dataset.score_answer(answer, task.metadata["entry"]))
        except Exception as exc:  # a scorer bug on odd input is a wrong answer, not a crash
            return {"correct": 0.0}, Verdict(
                0.0, False, WRONG, {"extracted": answer, "scorer_error": repr(exc)}
            )
        correct = score >= 1.0
        return {"correct": score}, Verdict(
            score, correct, CORRECT if correct else WRONG, {"extracted": answer}
        )

    def reference_action(self) -> str:
        answer = self.task.answer
        if answer is None:  # generators whose tasks have many answers keep one valid answer in their metadata
            metadata = self.task.metadata["entry"].get("metadata", {})
            answer = next((metadata[key] for key in REFERENCE_KEYS if metadata.get(key) is not None), None)
        if answer is None:
            raise NotImplementedError(f"reasoning-gym {self.name!r} gives no reference answer for its tasks")
        if isinstance(answer, dict | list):
            answer = json.dumps(answer)
        return f"<answer>{answer}</answer>"

    def wrong_action(self) -> str:
        return "<answer>rlvr: not an answer</answer>"


_global_rng_lock = threading.Lock()


def _deterministic_item(dataset: Any, index: int, item_seed: int) -> dict[str, Any]:
    """`dataset[index]` with Python's and NumPy's global generators seeded by `seed + index`, then restored.

    A few generators (e.g. list_functions) draw from the global `random` module, so without this the same index
    gives different tasks on different calls.
    """
    with _global_rng_lock:
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:
            random.seed(item_seed)
            np.random.seed(item_seed % 2**32)
            return dataset[index]
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
