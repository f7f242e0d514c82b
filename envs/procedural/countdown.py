"""Countdown and the 24 game: reach a target from given numbers with `+ - * /` and parentheses.

- `mode="countdown"`: `num_numbers` numbers (3-6, default 4) uniform in 1..`max_number` (default 50); the
  target is the value of a random expression tree over all of them in which every intermediate result is a
  positive integer (subtraction larger minus smaller, exact division, products up to 1000), redrawn (a bounded
  number of times) while the target is one of the numbers. Each number may be used at most once; using all of
  them is not required.
- `mode="24"`: four numbers in 1..`max_number` (default 13), redrawn until an exact solver over Fractions finds
  a way to make 24 (fractional intermediates allowed, as in the classic game: 8 / (3 - 8 / 3)). All four must
  be used exactly once.

Task `i` comes from `random.Random(seed + i)`; `split="test"` uses the seeds `seed + 10**9 + i`. The task's
answer is `{"numbers": [...], "target": t}` and `metadata["solution"]` one known solution. Replies are checked by
`expression.check_countdown` (a safe parser: no eval); the reward component is `correct` (1.0 / 0.0).
"""

from __future__ import annotations

import random
from fractions import Fraction
from functools import partial

from rlvr.envs.base import SingleTurnEnv
from rlvr.envs.procedural.expression import check_countdown
from rlvr.envs.sources import ProceduralSource
from rlvr.envs.types import Completion, Task
from rlvr.errors import ConfigError
from rlvr.verifiers.types import Verdict

MODES = ("countdown", "24")
SPLITS = ("train", "test")
TEST_SEED_OFFSET = 10**9
"""The test split's seeds are `seed + TEST_SEED_OFFSET + index`, disjoint from training's for sizes below it."""
MAX_PRODUCT = 1000
"""Largest product allowed inside a generated countdown solution (keeps targets in a human range)."""
_TARGET_TRIES = 20
_INSTRUCTION = (
    "Write a single arithmetic expression using only the given numbers, +, -, *, / and parentheses, "
    "and put it within \\boxed{}, for example \\boxed{(a + b) * c} with the numbers in place of a, b, c."
)


def solve(numbers: list[int], target: int) -> str | None:
    """An expression that makes `target` from all of `numbers` (each exactly once), or None; exact over Fractions.

    Exhaustive search (pick two values, combine them, recurse), skipping multisets of values already found
    hopeless; fine for the four numbers of the 24 game (~1 ms when solvable, ~5 ms when not).
    """
    return _search([(Fraction(n), str(n)) for n in numbers], Fraction(target), set())


def _search(
    items: list[tuple[Fraction, str]], target: Fraction, hopeless: set[tuple[Fraction, ...]]
) -> str | None:
    """Depth-first search; a combined value's text is parenthesised whenever it is not the whole expression."""
    if len(items) == 1:
        return items[0][1] if items[0][0] == target else None
    key = tuple(sorted(value for value, _ in items))
    if key in hopeless:
        return None
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (a, a_text), (b, b_text) = items[i], items[j]
            rest = [item for k, item in enumerate(items) if k not in (i, j)]
            options = [(a + b, f"{a_text} + {b_text}"), (a * b, f"{a_text} * {b_text}")]
            options += [(a - b, f"{a_text} - {b_text}"), (b - a, f"{b_text} - {a_text}")]
            if b != 0:
                options.append((a / b, f"{a_text} / {b_text}"))
            if a != 0:
                options.append((b / a, f"{b_text} / {a_text}"))
            for value, text in options:
                found = _search([*rest, (value, f"({text})" if rest else text)], target, hopeless)
                if found is not None:
                    return found
    hopeless.add(key)
    return None


def _random_expression(rng: random.Random, numbers: list[int]) -> tuple[int, str]:
    """Combine all `numbers` in a random order and tree shape; every intermediate is a positive integer.
    A combined value's text is parenthesised whenever it is not the whole expression."""
    items = [(n, str(n)) for n in numbers]
    rng.shuffle(items)
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (a, a_text), (b, b_text) = items[i], items[j]
        if a < b:
            (a, a_text), (b, b_text) = (b, b_text), (a, a_text)
        options = [(a + b, f"{a_text} + {b_text}")]
        if a != b:
            options.append((a - b, f"{a_text} - {b_text}"))
        if a * b <= MAX_PRODUCT:
            options.append((a * b, f"{a_text} * {b_text}"))
        if b > 1 and a % b == 0:
            options.append((a // b, f"{a_text} / {b_text}"))
        value, text = rng.choice(options)
        items = [item for k, item in enumerate(items) if k not in (i, j)]
        items.append((value, f"({text})" if items else text))
    return items[0]


def generate_countdown(
    rng: random.Random, index: int, *, num_numbers: int, max_number: int, tag: str
) -> Task:
    """A countdown instance whose target is reachable (a solution is built first)."""
    for _ in range(_TARGET_TRIES):
        numbers = [rng.randint(1, max_number) for _ in range(num_numbers)]
        target, solution = _random_expression(rng, numbers)
        if target not in numbers:
            break
    prompt = (
        f"Using the numbers {numbers}, make {target}. You may use +, -, *, / and parentheses; "
        "each number can be used at most once, and you do not have to use all of them."
    )
    answer = {"numbers": numbers, "target": target}
    return Task(f"countdown-{tag}-{index}", prompt, answer, {"solution": solution, "mode": "countdown"})


def generate_24(rng: random.Random, index: int, *, max_number: int, tag: str) -> Task:
    """A solvable 24-game instance: four numbers redrawn until the solver makes 24 from them."""
    while True:
        numbers = sorted(rng.randint(1, max_number) for _ in range(4))
        solution = solve(numbers, 24)
        if solution is not None:
            break
    prompt = (
        f"Use the numbers {numbers} to make 24. Use each number exactly once, "
        "with +, -, *, / and parentheses."
    )
    answer = {"numbers": numbers, "target": 24}
    return Task(f"game24-{tag}-{index}", prompt, answer, {"solution": solution, "mode": "24"})


def countdown_tasks(
    *,
    mode: str = "countdown",
    num_numbers: int | None = None,
    max_number: int | None = None,
    seed: int = 0,
    size: int = 100_000,
    split: str = "train",
) -> ProceduralSource:
    """The countdown / 24 task source."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    base_seed = seed + (TEST_SEED_OFFSET if split == "test" else 0)
    if mode == "24":
        if num_numbers not in (None, 4):
            raise ConfigError(f"the 24 game uses 4 numbers; got num_numbers={num_numbers!r} (leave it unset)")
        max_number = 13 if max_number is None else max_number
        if not isinstance(max_number, int) or not 6 <= max_number <= 100:
            raise ConfigError(f"max_number for the 24 game must be an integer in 6..100, got {max_number!r}")
        generate = partial(generate_24, max_number=max_number, tag=f"m{max_number}-s{seed}-{split}")
        return ProceduralSource(generate, size=size, seed=base_seed)
    num_numbers = 4 if num_numbers is None else num_numbers
    max_number = 50 if max_number is None else max_number
    if not isinstance(num_numbers, int) or not 3 <= num_numbers <= 6:
        raise ConfigError(f"num_numbers must be an integer in 3..6, got {num_numbers!r}")
    if not isinstance(max_number, int) or not 2 <= max_number <= 1000:
        raise ConfigError(f"max_number must be an integer in 2..1000, got {max_number!r}")
    tag = f"n{num_numbers}-m{max_number}-s{seed}-{split}"
    generate = partial(generate_countdown, num_numbers=num_numbers, max_number=max_number, tag=tag)
    return ProceduralSource(generate, size=size, seed=base_seed)


class CountdownEnv(SingleTurnEnv):
    """Countdown / 24: one expression per task; reward component `correct` (1.0 / 0.0)."""

    description = "Countdown / 24: reach the target with the given numbers and + - * /"
    reward_components = ("correct",)

    def __init__(
        self,
        *,
        mode: str = "countdown",
        num_numbers: int | None = None,
        max_number: int | None = None,
        seed: int = 0,
        size: int = 100_000,
        split: str = "train",
        system_prompt: str | None = None,
    ) -> None:
        tasks = countdown_tasks(
            mode=mode, num_numbers=num_numbers, max_number=max_number, seed=seed, size=size, split=split
        )
        super().__init__(tasks, system_prompt=system_prompt)
        self.mode = mode

    def format_prompt(self, task: Task) -> str:
        return f"{task.prompt}\n{_INSTRUCTION}"

    def score(self, task: Task, completion: Completion) -> tuple[dict[str, float], Verdict]:
        numbers, target = task.answer["numbers"], task.answer["target"]
        verdict = check_countdown(completion.text, numbers, target, use_all=task.metadata["mode"] == "24")
        return {"correct": verdict.score}, verdict

    def reference_action(self) -> str:
        return f"\\boxed{{{self.task.metadata['solution']}}}"

    def wrong_action(self) -> str:
        numbers, target = self.task.answer["numbers"], self.task.answer["target"]
        total = sum(numbers)
        if total != target:
            return f"\\boxed{{{' + '.join(map(str, numbers))}}}"
        return (
            f"\\boxed{{{' - '.join(map(str, numbers))}}}"  # a sum equal to the target: a difference is less
        )
