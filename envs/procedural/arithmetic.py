"""Integer arithmetic questions ("What is 7 + 5 * 3?"), offline and deterministic by index.

Task `i` is built from `random.Random(seed + i)` (`ProceduralSource`). The test split uses the seeds
`seed + 10**9 + i`, so an evaluation on `split="test"` never replays a training item's random stream; at low
levels the space of questions is small (level 1 has 81), so the same *question* can still occur in both splits.

Difficulty: `digits` per operand (operands are uniform in [10**(digits-1), 10**digits - 1], so no zeros),
`operations` (any of "+-*/"; a division always has an exact integer result other than the trivial
`x / x`, and where no operand in range divides that exactly the step uses another operation), `terms` (operands in the chain,
evaluated with the usual precedence: `*` and `/` before `+` and `-`). A `level` preset fills those in; an
explicit keyword overrides the preset's value. `level` may also be a list of levels, a task set of mixed
difficulty: task `i` takes `level[i % len(level)]` (so any run of len(level) consecutive indices holds each
level once):

    level | digits | operations | terms | example
      1   |   1    | +          |   2   | 7 + 5
      2   |   1    | + - *      |   2   | 7 * 5        (the defaults when no level is given)
      3   |   2    | + - *      |   2   | 47 - 85
      4   |   2    | + - * /    |   3   | 36 / 12 + 58
      5   |   3    | + - * /    |   4   | 512 - 348 * 207 + 913

Answer formats (`answer_format`): "last_number" (default; lenient, for weak models such as SmolLM2-135M, which
never boxes its answers): the reply's last `\\boxed{}` if it has one, else the last number of its `<answer>`
block if it has one, else the last number of the reply, compared exactly with the gold integer. "boxed": the
strict math verifier (`rlvr.verifiers`), which reads only an explicit final answer (box, answer tag, "the
answer is", ####).
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from typing import Any

from rlvr.envs.base import SingleTurnEnv
from rlvr.envs.resources import verify_math_answer
from rlvr.envs.sources import ProceduralSource
from rlvr.envs.types import Completion, Task
from rlvr.errors import ConfigError
from rlvr.verifiers.extract import find_answer_tag, find_boxed
from rlvr.verifiers.fastpath import parse_number
from rlvr.verifiers.normalize import normalize_answer, strip_math_delimiters
from rlvr.verifiers.types import CORRECT, NO_ANSWER, UNPARSEABLE, WRONG, Verdict

TEST_SEED_OFFSET = 10**9
"""The test split's seeds are `seed + TEST_SEED_OFFSET + index`, disjoint from training's for sizes below it."""

LEVELS: dict[int, tuple[int, str, int]] = {
    1: (1, "+", 2),
    2: (1, "+-*", 2),
    3: (2, "+-*", 2),
    4: (2, "+-*/", 3),
    5: (3, "+-*/", 4),
}
"""level -> (digits, operations, terms)."""
DEFAULT_LEVEL = 2
ANSWER_FORMATS = ("last_number", "boxed")
SPLITS = ("train", "test")
INSTRUCTIONS = {
    "last_number": "Give your final answer as a single number at the end of your reply.",
    "boxed": "Put your final answer within \\boxed{}.",
}
_OP_CODES = {"+": "a", "-": "s", "*": "m", "/": "d"}
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_MAX_SCAN_CHARS = 10_000


@dataclass(frozen=True)
class ArithmeticConfig:
    """The shape of the generated questions."""

    digits: int = 1
    operations: str = "+-*"
    terms: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.digits, int) or not 1 <= self.digits <= 9:
            raise ConfigError(f"digits must be an integer in 1..9, got {self.digits!r}")
        if not isinstance(self.operations, str) or not self.operations or set(self.operations) - set("+-*/"):
            raise ConfigError(
                f"operations must be a non-empty string of '+-*/' characters, got {self.operations!r}"
            )
        if not isinstance(self.terms, int) or not 2 <= self.terms <= 10:
            raise ConfigError(f"terms must be an integer in 2..10, got {self.terms!r}")

    @classmethod
    def from_level(
        cls, level: int | None, digits: int | None, operations: str | None, terms: int | None
    ) -> ArithmeticConfig:
        """The preset of `level` (default 2) with any explicitly given value laid over it."""
        if level is not None and level not in LEVELS:
            raise ConfigError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
        preset_digits, preset_ops, preset_terms = LEVELS[DEFAULT_LEVEL if level is None else level]
        return cls(
            digits=preset_digits if digits is None else digits,
            operations=preset_ops if operations is None else "".join(dict.fromkeys(operations)),
            terms=preset_terms if terms is None else terms,
        )

    @property
    def signature(self) -> str:
        """A short name for task ids: `d2-t3-asmd`."""
        return f"d{self.digits}-t{self.terms}-{''.join(_OP_CODES[op] for op in self.operations)}"


def generate_arithmetic(rng: random.Random, index: int, *, config: ArithmeticConfig, tag: str) -> Task:
    """Task `index`: a chain of `config.terms` operands joined by operations drawn from `config.operations`."""
    low, high = 10 ** (config.digits - 1), 10**config.digits - 1
    operands = [rng.randint(low, high)]
    ops: list[str] = []
    groups: list[int] = [operands[0]]  # values of the multiplicative groups so far (their sum is the answer)
    signs: list[int] = [1]
    factors: list[int] = [operands[0]]  # the operands multiplied into the last group
    for _ in range(config.terms - 1):
        op = rng.choice(config.operations)
        operand = rng.randint(low, high)
        if op == "/":
            divisors = _divisors_in_range(groups[-1], max(2, low), high, factors, rng)
            if divisors:
                operand = rng.choice(divisors)
            else:  # nothing in range divides the group into a result other than 1: use another operation
                op = rng.choice(config.operations.replace("/", "") or "*")
        if op == "*":
            groups[-1] *= operand
            factors.append(operand)
        elif op == "/":
            groups[-1] //= operand
        else:
            groups.append(operand)
            signs.append(1 if op == "+" else -1)
            factors = [operand]
        ops.append(op)
        operands.append(operand)
    answer = sum(sign * value for sign, value in zip(signs, groups, strict=True))
    expression = " ".join([str(operands[0]), *(f"{op} {n}" for op, n in zip(ops, operands[1:], strict=True))])
    return Task(
        id=f"arithmetic-{tag}-{index}",
        prompt=f"What is {expression}?",
        answer=answer,
        metadata={"expression": expression, "digits": config.digits, "terms": config.terms},
    )


def _divisors_in_range(value: int, low: int, high: int, factors: list[int], rng: random.Random) -> list[int]:
    """Divisors d of `value` with low <= d <= high and d != value (so the quotient is not just 1).

    Ranges of up to 1000 numbers are searched whole; wider ones (operands of 4+ digits) through 200 random
    draws and the operands multiplied into the group (`factors`).
    """
    if high - low < 1000:
        candidates: list[int] | range = range(low, high + 1)
    else:
        candidates = sorted({rng.randint(low, high) for _ in range(200)} | {f for f in factors if f >= low})
    return [d for d in candidates if value % d == 0 and d != value]


def arithmetic_tasks(
    *,
    level: int | Sequence[int] | None = None,
    digits: int | None = None,
    operations: str | None = None,
    terms: int | None = None,
    seed: int = 0,
    size: int = 100_000,
    split: str = "train",
) -> ProceduralSource:
    """The arithmetic task source (also used by the tool-use environment)."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    base_seed = seed + (TEST_SEED_OFFSET if split == "test" else 0)
    if isinstance(level, Sequence) and not isinstance(level, str):
        return ProceduralSource(
            _mixed_levels(level, digits, operations, terms, f"s{seed}-{split}"), size=size, seed=base_seed
        )
    config = ArithmeticConfig.from_level(level, digits, operations, terms)
    tag = f"{config.signature}-s{seed}-{split}"
    return ProceduralSource(partial(generate_arithmetic, config=config, tag=tag), size=size, seed=base_seed)


def _mixed_levels(
    levels: Sequence[int], digits: int | None, operations: str | None, terms: int | None, suffix: str
) -> Callable[[random.Random, int], Task]:
    """The generator of a mixed task set: task `i` is built at `levels[i % len(levels)]`."""
    if not levels:
        raise ConfigError("level is an empty list; give a level (1-5) or a list of levels, e.g. [1, 2, 3, 4]")
    configs = tuple(ArithmeticConfig.from_level(level, digits, operations, terms) for level in levels)
    return partial(generate_mixed, levels=tuple(levels), configs=configs, suffix=suffix)


def generate_mixed(
    rng: random.Random,
    index: int,
    *,
    levels: tuple[int, ...],
    configs: tuple[ArithmeticConfig, ...],
    suffix: str,
) -> Task:
    """Task `index` of a mixed set, at `levels[index % len(levels)]` (its metadata names the level)."""
    k = index % len(configs)
    task = generate_arithmetic(rng, index, config=configs[k], tag=f"{configs[k].signature}-{suffix}")
    return dataclasses.replace(task, metadata={**task.metadata, "level": levels[k]})


def check_integer(gold: int, completion: str) -> Verdict:
    """Lenient exact check: the content of the reply's last `\boxed{}` if it has one, else the last number of its
    last `<answer>` block if it has one, else the last number of the reply."""
    text = completion[-_MAX_SCAN_CHARS:]
    tag = find_answer_tag(text)
    scope = text if tag is None else tag
    boxes = find_boxed(scope)
    if boxes:
        answer, method = boxes[-1], "boxed"
    else:
        numbers = _NUMBER.findall(scope)
        method = "last_number" if tag is None else "answer_tag"
        answer, method = (numbers[-1], method) if numbers else (None, "none")
    details: dict[str, Any] = {"extracted": answer, "method": method}
    if answer is None or not answer.strip():
        return Verdict(0.0, False, NO_ANSWER, details)
    number = parse_number(normalize_answer(strip_math_delimiters(answer.replace(",", ""))))
    if number is None:
        return Verdict(0.0, False, UNPARSEABLE, details)
    correct = number.value == Fraction(gold)
    return Verdict(float(correct), correct, CORRECT if correct else WRONG, details)


class ArithmeticEnv(SingleTurnEnv):
    """Integer arithmetic; reward component `correct` (1.0 / 0.0). See the module docstring for the levels."""

    description = "Integer arithmetic with difficulty levels (digits, operations, chain length)"
    reward_components = ("correct",)

    def __init__(
        self,
        *,
        level: int | Sequence[int] | None = None,
        digits: int | None = None,
        operations: str | None = None,
        terms: int | None = None,
        seed: int = 0,
        size: int = 100_000,
        split: str = "train",
        answer_format: str = "last_number",
        system_prompt: str | None = None,
    ) -> None:
        if answer_format not in ANSWER_FORMATS:
            raise ConfigError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
        tasks = arithmetic_tasks(
            level=level, digits=digits, operations=operations, terms=terms, seed=seed, size=size, split=split
        )
        super().__init__(tasks, system_prompt=system_prompt)
        self.answer_format = answer_format

    def format_prompt(self, task: Task) -> str:
        return f"{task.prompt}\n{INSTRUCTIONS[self.answer_format]}"

    def score(self, task: Task, completion: Completion) -> tuple[dict[str, float], Verdict]:
        if self.answer_format == "boxed":
            verdict = verify_math_answer(str(task.answer), completion.text)
        else:
            verdict = check_integer(task.answer, completion.text)
        return {"correct": verdict.score}, verdict

    def reference_action(self) -> str:
        return f"{self.task.metadata['expression']} = \\boxed{{{self.task.answer}}}"

    def wrong_action(self) -> str:
        return f"\\boxed{{{self.task.answer + 1}}}"
