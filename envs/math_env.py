"""Math environments: one answer checked by the math verifier (`MathEnv`), or a few tries (`MathRetryEnv`).

Tasks come from the dataset catalog (`dataset="gsm8k"`, ..., read from `data_path` or the hub) or from any
task source (`tasks=`); a task's answer is the gold answer string. The reward component `correct` is the
verdict's score from the process-wide `MathVerifier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from rlvr.envs.base import RlvrEnv, SingleTurnEnv
from rlvr.envs.catalog import get_spec, load_tasks
from rlvr.envs.resources import verify_math_answer
from rlvr.envs.sources import Subset, check_limit
from rlvr.envs.types import Completion, Feedback, Message, Task
from rlvr.errors import ConfigError
from rlvr.verifiers.fastpath import parse_number
from rlvr.verifiers.types import NO_ANSWER, Verdict

DEFAULT_PROMPT_TEMPLATE = (
    "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{}."
)
"""The user message: `{problem}` is replaced by the problem text (other braces are kept as they are)."""

RETRY_MESSAGE = "Your answer is incorrect. Please think again and give a corrected final answer in \\boxed{}."
NO_ANSWER_MESSAGE = "I could not find a final answer. Please give your final answer in \\boxed{}."


def math_tasks(
    dataset: str,
    *,
    data_path: str | Path | None = None,
    split: str | None = None,
    revision: str | None = None,
    on_bad_row: str = "raise",
    limit: int | None = None,
    tasks: Sequence[Task] | None = None,
) -> Sequence[Task]:
    """The tasks of a math environment: `tasks` as given, or catalog dataset `dataset`."""
    if tasks is not None:
        if data_path is not None:
            raise ConfigError("pass either tasks= or data_path=, not both")
        return Subset.first(tasks, check_limit(limit))
    if get_spec(dataset).kind != "math":
        raise ConfigError(f"dataset {dataset!r} is a {get_spec(dataset).kind} dataset; pick a math dataset")
    return load_tasks(
        dataset, path=data_path, split=split, revision=revision, on_bad_row=on_bad_row, limit=limit
    )


def check_template(prompt_template: str) -> str:
    if not isinstance(prompt_template, str) or "{problem}" not in prompt_template:
        raise ConfigError(
            f"prompt_template must contain the placeholder {{problem}}, got {prompt_template!r}"
        )
    return prompt_template


def reference_solution(gold: str) -> str:
    """A short solution that ends in the gold answer."""
    return f"Working through the problem step by step gives the result.\n\nThe final answer is $\\boxed{{{gold}}}$."


def wrong_answer(gold: str) -> str:
    """A final answer that differs from `gold`: gold + 1 for a plain number, else a number no such gold equals."""
    number = parse_number(str(gold).replace(",", ""))
    if number is not None:
        value = number.value + 1
        if value.denominator == 1:
            wrong = str(value.numerator)
        elif not number.exact:
            wrong = repr(float(value))
        else:
            wrong = f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
    else:
        wrong = "-987654321"
    return f"The final answer is $\\boxed{{{wrong}}}$."


class _MathTasks:
    """What both math environments share: the prompt template and the verifier call."""

    prompt_template: str
    task: Task | None

    def format_prompt(self, task: Task) -> str:
        return self.prompt_template.replace("{problem}", task.prompt)

    def verdict(self, task: Task, completion: Completion) -> Verdict:
        return verify_math_answer(str(task.answer), completion.text)

    def reference_action(self) -> str:
        return reference_solution(str(self._current().answer))

    def wrong_action(self) -> str:
        return wrong_answer(str(self._current().answer))

    def _current(self) -> Task:
        if self.task is None:
            raise RuntimeError("call reset() first: there is no current task")
        return self.task


class MathEnv(_MathTasks, SingleTurnEnv):
    """One math problem, one answer, scored by the math verifier (`correct` = 1.0 or 0.0).

    `dataset` names a catalog dataset (gsm8k, math, math500, aime24, aime25, amc23, minerva, olympiadbench),
    read from `data_path` when given, else from the hub at the catalog's pinned revision (`split`/`revision`
    override it; the default split is the training one, e.g. GSM8K train); `tasks` bypasses the catalog.
    `limit` keeps the first N tasks.
    """

    description: ClassVar[str] = (
        "A math problem answered once; the last \\boxed{} answer is checked by the verifier."
    )
    reward_components: ClassVar[tuple[str, ...]] = ("correct",)

    def __init__(
        self,
        dataset: str = "gsm8k",
        *,
        data_path: str | Path | None = None,
        split: str | None = None,
        revision: str | None = None,
        on_bad_row: str = "raise",
        limit: int | None = None,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        system_prompt: str | None = None,
        tasks: Sequence[Task] | None = None,
    ) -> None:
        self.prompt_template = check_template(prompt_template)
        source = math_tasks(
            dataset,
            data_path=data_path,
            split=split,
            revision=revision,
            on_bad_row=on_bad_row,
            limit=limit,
            tasks=tasks,
        )
        super().__init__(source, system_prompt=system_prompt)

    def score(self, task: Task, completion: Completion) -> tuple[dict[str, float], Any]:
        verdict = self.verdict(task, completion)
        return {"correct": float(verdict.score)}, verdict


class MathRetryEnv(_MathTasks, RlvrEnv):
    """A math problem with up to `max_turns` tries (default 3).

    After a wrong answer the environment replies (a user message) that the answer is wrong and asks for
    another try. Reward per turn: `correct` = `retry_discount ** (t - 1)` on the turn `t` whose answer is right
    (the episode then terminates), 0.0 on a wrong turn; with the default discount 1.0 a right answer is worth
    1.0 whenever it comes, with 0.5 a right second try earns 0.5. A wrong answer on the last allowed turn
    ends the episode truncated. `max_reward` is 1.0 (right on the first turn).
    """

    description: ClassVar[str] = (
        "A math problem with several tries; the environment says when an answer is wrong."
    )
    reward_components: ClassVar[tuple[str, ...]] = ("correct",)

    def __init__(
        self,
        dataset: str = "gsm8k",
        *,
        data_path: str | Path | None = None,
        split: str | None = None,
        revision: str | None = None,
        on_bad_row: str = "raise",
        limit: int | None = None,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        system_prompt: str | None = None,
        tasks: Sequence[Task] | None = None,
        max_turns: int = 3,
        retry_discount: float = 1.0,
        retry_message: str = RETRY_MESSAGE,
    ) -> None:
        if isinstance(retry_discount, bool) or not isinstance(retry_discount, (int, float)):
            raise ConfigError(f"retry_discount must be a number in (0, 1], got {retry_discount!r}")
        if not 0.0 < retry_discount <= 1.0:
            raise ConfigError(f"retry_discount must be in (0, 1], got {retry_discount!r}")
        self.prompt_template = check_template(prompt_template)
        self.retry_discount = float(retry_discount)
        self.retry_message = retry_message
        source = math_tasks(
            dataset,
            data_path=data_path,
            split=split,
            revision=revision,
            on_bad_row=on_bad_row,
            limit=limit,
            tasks=tasks,
        )
        super().__init__(source, system_prompt=system_prompt, max_turns=max_turns)

    def evaluate(self, completion: Completion) -> Feedback:
        verdict = self.verdict(self._current(), completion)
        if verdict.correct:
            reward = float(verdict.score) * self.retry_discount ** (self.turn - 1)
            return Feedback(
                reply=[], rewards={"correct": reward}, done=True, verdict=verdict, info={"solved": True}
            )
        message = NO_ANSWER_MESSAGE if verdict.reason == NO_ANSWER else self.retry_message
        reply: list[Message] = [{"role": "user", "content": message}]
        return Feedback(
            reply=reply, rewards={"correct": 0.0}, done=False, verdict=verdict, info={"solved": False}
        )
