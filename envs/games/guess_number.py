"""Guess the number: find a secret integer in [low, high] from "higher" / "lower" replies.

Each turn the model names one integer: the integer in its last `\\boxed{}` or `<answer>` if it has one, else
the last integer in the reply. The environment answers "Higher" or "Lower" (and the guesses left); guessing the
secret ends the episode (`terminated`) with reward component `correct` = 1.0. Every other turn earns 0.0: a
reply with no integer, or one outside [low, high], gets a message saying so and still counts as a turn (no
other shaping).

`max_turns` defaults to `(high - low + 1).bit_length() + 1`: binary search needs at most
`ceil(log2(n + 1)) = n.bit_length()` guesses for n numbers (7 for 1..100), and one spare turn forgives a single
malformed reply. The scripted optimal player (`reference_action`) is that binary search over the interval the
feedback so far leaves open, so it always wins within the limit.

The secret of task `i` is drawn from `random.Random(seed + i)`; `reset(seed=...)` picks the task index.
"""

from __future__ import annotations

import random
import re
from functools import partial
from typing import Any

from rlvr.envs.base import RlvrEnv
from rlvr.envs.sources import ProceduralSource
from rlvr.envs.types import Completion, Feedback, Task
from rlvr.errors import ConfigError
from rlvr.verifiers.extract import find_answer_tag, find_boxed
from rlvr.verifiers.types import CORRECT, NO_ANSWER, WRONG, Verdict

_INTEGER = re.compile(r"-?\d+")
_MAX_SCAN_CHARS = 10_000
_MAX_DIGITS = 30


def generate_secret(rng: random.Random, index: int, *, low: int, high: int, tag: str) -> Task:
    """Task `index`: a secret uniform in [low, high]."""
    return secret_task(rng.randint(low, high), low, high, task_id=f"guess-number-{tag}-{index}")


def secret_task(secret: int, low: int, high: int, task_id: str | None = None) -> Task:
    """The task of one given secret (for playing a chosen game: `reset(options={"task": ...})`)."""
    prompt = (
        f"I am thinking of an integer between {low} and {high} (inclusive). Try to guess it. "
        "Each turn, reply with one integer; I will tell you whether my number is higher or lower."
    )
    answer = {"secret": secret, "low": low, "high": high}
    return Task(task_id or f"guess-number-{low}-{high}-secret{secret}", prompt, answer)


def read_guess(text: str) -> int | None:
    """The integer a reply guesses: in its last `\\boxed{}` / `<answer>` if any, else its last integer."""
    text = text[-_MAX_SCAN_CHARS:]
    tag = find_answer_tag(text)
    boxes = find_boxed(tag if tag is not None else text)
    scope = boxes[-1] if boxes else (tag if tag is not None else text)
    numbers = [n for n in _INTEGER.findall(scope) if len(n.lstrip("-")) <= _MAX_DIGITS]
    return int(numbers[-1]) if numbers else None


class GuessNumberEnv(RlvrEnv):
    """Higher / lower number guessing; reward component `correct` = 1.0 on the winning turn."""

    description = "Guess the secret number with higher/lower feedback"
    reward_components = ("correct",)

    def __init__(
        self,
        *,
        low: int = 1,
        high: int = 100,
        max_turns: int | None = None,
        seed: int = 0,
        size: int = 10_000,
        system_prompt: str | None = None,
    ) -> None:
        if not isinstance(low, int) or not isinstance(high, int) or low > high:
            raise ConfigError(f"need integers low <= high, got low={low!r}, high={high!r}")
        optimal = (high - low + 1).bit_length()
        max_turns = optimal + 1 if max_turns is None else max_turns
        if not isinstance(max_turns, int) or max_turns < 2:
            raise ConfigError(f"max_turns must be an integer >= 2, got {max_turns!r}")
        if not isinstance(seed, int):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        generate = partial(generate_secret, low=low, high=high, tag=f"{low}-{high}-s{seed}")
        super().__init__(
            ProceduralSource(generate, size=size, seed=seed), system_prompt=system_prompt, max_turns=max_turns
        )
        self.low, self.high = low, high
        self.feasible = (low, high)

    def start_episode(self, task: Task) -> None:
        self.feasible = (task.answer["low"], task.answer["high"])

    def format_prompt(self, task: Task) -> str:
        return f"{task.prompt} You have {self.max_turns} guesses."

    def evaluate(self, completion: Completion) -> Feedback:
        secret, low, high = self.task.answer["secret"], self.task.answer["low"], self.task.answer["high"]
        guess = read_guess(completion.text)
        left = self.max_turns - self.turn
        if guess is None or not low <= guess <= high:
            reason = NO_ANSWER if guess is None else WRONG
            message = f"Please reply with one integer between {low} and {high}. ({_guesses(left)} left)"
            verdict = Verdict(0.0, False, reason, {"guess": guess, "error": "no valid guess"})
            return self._feedback(message, verdict, solved=False)
        if guess == secret:
            verdict = Verdict(1.0, True, CORRECT, {"guess": guess})
            return self._feedback(f"Correct! The number is {secret}.", verdict, solved=True)
        lo, hi = self.feasible
        if guess < secret:
            hint, self.feasible = "higher", (max(lo, guess + 1), hi)
        else:
            hint, self.feasible = "lower", (lo, min(hi, guess - 1))
        verdict = Verdict(0.0, False, WRONG, {"guess": guess, "hint": hint})
        return self._feedback(
            f"My number is {hint} than {guess}. ({_guesses(left)} left)", verdict, solved=False
        )

    def _feedback(self, message: str, verdict: Verdict, *, solved: bool) -> Feedback:
        info: dict[str, Any] = {"solved": solved}
        reply = [{"role": "user", "content": message}]
        return Feedback(reply, {"correct": verdict.score}, done=solved, verdict=verdict, info=info)

    def reference_action(self) -> str:
        """Binary search: the middle of the interval the feedback so far leaves open."""
        lo, hi = self.feasible
        return str((lo + hi) // 2)

    def wrong_action(self) -> str:
        """A guess the feedback already rules out, or one outside the range at the start."""
        lo, hi = self.feasible
        low, high = self.task.answer["low"], self.task.answer["high"]
        if lo > low:
            return str(lo - 1)
        if hi < high:
            return str(hi + 1)
        return str(high + 1)


def _guesses(count: int) -> str:
    return f"{count} guess{'es' if count != 1 else ''}"
