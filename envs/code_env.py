"""Code environments: write a Python program that passes a problem's tests.

- `CodeEnv`: one turn; the reward is the program's score on the tests.
- `CodeRepairEnv`: several turns; after a failing program the environment shows the first failing test (input,
  expected, got, or the error) and asks for a corrected program.

A task's `answer` is a `CodeTests` (`CodeTests.from_humaneval`, `.from_mbpp`, `.from_lcb`, or the loaders of
`rlvr.envs.catalog`); `metadata["canonical_solution"]` is its reference program when the data has one. Programs run
in the process-wide sandbox (`shared_sandbox()`) through `CodeVerifier`; options of `CodeConfig` are keyword
arguments of both environments (`test_timeout_s=2.0`, `extract={"block": "first"}`, ...).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlvr.envs.base import RlvrEnv, SingleTurnEnv
from rlvr.envs.types import Completion, Feedback, Task
from rlvr.errors import ConfigError, DataError
from rlvr.verifiers.code import (
    NO_CODE,
    STDLIB_RESULT_TYPES,
    SYNTAX_ERROR,
    CodeConfig,
    CodeVerdict,
    CodeVerifier,
)
from rlvr.verifiers.code_extract import CodeExtractConfig
from rlvr.verifiers.code_tests import CodeTests

FENCE_REQUEST = "in a single ```python code block"
FUNCTION_TEMPLATE = (
    "Complete the following Python function.\n\n```python\n{code}```\n\n"
    "Reply with the complete function (signature and imports included) " + FENCE_REQUEST + "."
)
STDIN_TEMPLATE = (
    "{problem}\n\nWrite a Python program that reads the input from standard input and prints the answer to "
    "standard output. Reply with the complete program " + FENCE_REQUEST + "."
)
STARTER_TEMPLATE = (
    "{problem}\n\nStart from this code:\n\n```python\n{code}```\n\n"
    "Reply with the complete solution (the whole class or function) " + FENCE_REQUEST + "."
)
ASSERT_TEMPLATE = (
    "{problem}\n\nYour code should pass these tests:\n\n```python\n{code}```\n\n"
    "Reply with the complete Python code " + FENCE_REQUEST + "."
)
REPAIR_TEMPLATE = (
    "Your program did not pass the tests.\n\n{feedback}\n\n"
    "Fix it and reply with the complete corrected program " + FENCE_REQUEST + "."
)
WRONG_STDIN_PROGRAM = "import sys\n\nsys.stdin.read()\nprint('rlvr: not an answer')\n"

_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(CodeConfig))


# -- building blocks shared by both environments -----------------------------------------------------------------


def code_config(score: str = "all", **options: Any) -> CodeConfig:
    """A `CodeConfig` from keyword arguments (YAML-friendly: `extract` may be a dict, `result_types` a list).

    `result_types` defaults to `STDLIB_RESULT_TYPES`, so the four MBPP references that return a `Counter` or a
    `re.Match` earn their reward.
    """
    unknown = sorted(set(options) - set(_CONFIG_FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown code option(s) {unknown}; the options are the fields of CodeConfig: {_CONFIG_FIELDS}"
        )
    options.setdefault("result_types", STDLIB_RESULT_TYPES)
    options["result_types"] = tuple(options["result_types"])
    if isinstance(options.get("extract"), Mapping):
        try:
            options["extract"] = CodeExtractConfig(**options["extract"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad extract options {options['extract']!r}: {exc}") from exc
    try:
        return CodeConfig(score=score, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad code options: {exc}") from exc


def resolve_tasks(
    tasks: Sequence[Task] | None,
    dataset: str | None,
    data_path: str | None,
    split: str | None,
    revision: str | None,
    limit: int | None,
) -> Sequence[Task]:
    """The given tasks, or those `rlvr.envs.catalog.load_tasks` reads for `dataset`."""
    if tasks is not None and dataset is not None:
        raise ConfigError("give either tasks= or dataset= (with data_path=...), not both")
    if tasks is not None:
        return tasks
    if dataset is None:
        raise ConfigError("a code environment needs tasks=[Task, ...] or dataset='humaneval'|'mbpp'|'lcb'")
    from rlvr.envs.catalog import load_tasks

    options = {"path": data_path, "split": split, "revision": revision, "limit": limit}
    return load_tasks(dataset, **{key: value for key, value in options.items() if value is not None})


def load_references(source: Mapping[str, str] | str | Path | None) -> dict[str, str]:
    """Reference programs by task id: a mapping, or a JSONL file of `{"task_id", "solution"}` rows (the MavenCoder
    LiveCodeBench files); rows whose `passing_public_tests` is false are skipped."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return {str(key): str(value) for key, value in source.items()}
    path = Path(source)
    if not path.is_file():
        raise DataError(
            f"references file {path} does not exist; give a JSONL file of {{task_id, solution}} rows"
        )
    references: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                task_id, solution = str(row["task_id"]), row["solution"]
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{path}:{number}: a reference row needs task_id and solution ({exc!r})"
                ) from exc
            if row.get("passing_public_tests", True) and isinstance(solution, str) and solution.strip():
                references[task_id] = solution
    return references


def python_block(code: str) -> str:
    """`code` in a ```python fence (a longer fence when the code holds a run of backticks)."""
    longest = max((len(run) for run in re.findall(r"`{3,}", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}python\n{code.rstrip()}\n{fence}"


def code_tests(task: Task) -> CodeTests:
    """The task's tests; a DataError says how to build them when the answer is something else."""
    if not isinstance(task.answer, CodeTests):
        raise DataError(
            f"task {task.id!r} has an answer of type {type(task.answer).__name__}; code environments need a "
            "CodeTests (CodeTests.from_humaneval/from_mbpp/from_lcb, or rlvr.envs.catalog.load_tasks)"
        )
    return task.answer


def code_prompt(task: Task) -> str:
    """The user message: complete a function (HumanEval), a stdin program (LCB), a class from starter code (LCB
    LeetCode), or code that passes the shown asserts (MBPP)."""
    tests = code_tests(task)
    problem = task.prompt.strip()
    if tests.prefix:
        text = FUNCTION_TEMPLATE.format(code=tests.prefix.rstrip("\n") + "\n")
        return text if problem in ("", tests.prefix.strip()) else f"{problem}\n\n{text}"
    if tests.kind == "stdin":
        return STDIN_TEMPLATE.format(problem=problem)
    if tests.kind == "functional":
        starter = tests.starter_code.rstrip() or f"class Solution:\n    def {tests.fn_name}(self, ...):"
        return STARTER_TEMPLATE.format(problem=problem, code=starter + "\n")
    shown = [case.input for case in tests.cases]
    if shown and shown[0].strip() in problem:
        return f"{problem}\n\nReply with the complete Python code {FENCE_REQUEST}."
    return ASSERT_TEMPLATE.format(problem=problem, code="\n".join(shown) + "\n")


def wrong_program(tests: CodeTests) -> str:
    """A program that runs but answers None (or prints a non-answer): it must not pass."""
    if tests.kind == "stdin":
        return WRONG_STDIN_PROGRAM
    if tests.kind == "functional":
        return f"class Solution:\n    def {tests.fn_name}(self, *args, **kwargs):\n        return None\n"
    names = tests.entry_points or ("solution",)
    return "\n\n".join(f"def {name}(*args, **kwargs):\n    return None\n" for name in names)


def without_timings(verdict: CodeVerdict) -> CodeVerdict:
    """The verdict without wall times, so two identical steps give equal `info`."""
    details = {key: value for key, value in verdict.details.items() if key != "wall_s"}
    tests = tuple(dataclasses.replace(result, time_s=None) for result in verdict.tests)
    first = verdict.first_failure
    first = None if first is None else dataclasses.replace(first, time_s=None)
    return dataclasses.replace(verdict, details=details, tests=tests, first_failure=first)


def code_verdict_info(verdict: CodeVerdict) -> dict[str, Any]:
    """`solved`, `tests_passed` and `tests_total` for a step's info."""
    return {"solved": bool(verdict.correct), "tests_passed": verdict.passed, "tests_total": verdict.total}


def current_task(env: RlvrEnv) -> Task:
    if env.task is None:
        raise RuntimeError(f"call {type(env).__name__}.reset() before asking for an action")
    return env.task


class CodeGrader:
    """What both environments share: the scoring config, a verifier made on first use, the references."""

    def __init__(
        self, config: CodeConfig, references: Mapping[str, str] | str | Path | None, sandbox: Any
    ) -> None:
        self.config = config
        self.references = load_references(references)
        self._sandbox = sandbox
        self._verifier: CodeVerifier | None = None

    def verify(self, text: str, tests: CodeTests) -> CodeVerdict:
        if self._verifier is None:
            if self._sandbox is None:
                from rlvr.envs.resources import shared_sandbox

                self._sandbox = shared_sandbox()
            self._verifier = CodeVerifier(self._sandbox, self.config)
        return without_timings(self._verifier.verify(text, tests))

    def reference(self, task: Task) -> str:
        """The task's reference program in a ```python block: a supplied one (by task id or the tests' task id),
        else `metadata["canonical_solution"]` (HumanEval's body gets its prompt in front)."""
        tests = code_tests(task)
        for key in (task.id, tests.task_id):
            if key and key in self.references:
                return python_block(self.references[key])
        canonical = task.metadata.get("canonical_solution")
        if not canonical:
            raise NotImplementedError(
                f"task {task.id!r} has no reference program (LiveCodeBench rows carry none); pass "
                "references={task_id: program} or references='path/to/solutions.jsonl' to the environment"
            )
        prefix = tests.prefix
        if prefix and not canonical.startswith(prefix):
            canonical = (prefix if prefix.endswith("\n") else prefix + "\n") + canonical
        return python_block(canonical)


# -- the environments ------------------------------------------------------------------------------------------


class CodeEnv(SingleTurnEnv):
    """Write a program in one turn. Reward component `correct`: the verdict's score, 1.0 when every test passes
    (`score="all"`) or the fraction of tests passed (`score="fraction"`). `info` adds `solved`, `tests_passed`
    and `tests_total`.

    Tasks: `tasks=[Task, ...]`, or `dataset="humaneval"|"mbpp"|"lcb"` with `data_path=`, `split=`, `revision=`,
    `limit=` (read by `rlvr.envs.catalog.load_tasks`; the default split is the training one, e.g. MBPP train).
    `references` gives reference programs by task id (a mapping or a JSONL file) for rows without a canonical
    solution. Other keyword arguments are `CodeConfig` fields.
    """

    description = "Write a Python program that passes the task's tests (HumanEval, MBPP, LiveCodeBench)"
    reward_components = ("correct",)

    def __init__(
        self,
        tasks: Sequence[Task] | None = None,
        *,
        score: str = "all",
        system_prompt: str | None = None,
        references: Mapping[str, str] | str | Path | None = None,
        sandbox: Any = None,
        dataset: str | None = None,
        data_path: str | None = None,
        split: str | None = None,
        revision: str | None = None,
        limit: int | None = None,
        **code_options: Any,
    ) -> None:
        config = code_config(score, **code_options)
        super().__init__(
            resolve_tasks(tasks, dataset, data_path, split, revision, limit), system_prompt=system_prompt
        )
        self.grader = CodeGrader(config, references, sandbox)

    def format_prompt(self, task: Task) -> str:
        return code_prompt(task)

    def score(self, task: Task, completion: Completion) -> tuple[dict[str, float], CodeVerdict]:
        verdict = self.grader.verify(completion.text, code_tests(task))
        return {"correct": verdict.score}, verdict

    @staticmethod
    def verdict_info(verdict: CodeVerdict) -> dict[str, Any]:
        return code_verdict_info(verdict)

    def reference_action(self) -> str:
        return self.grader.reference(current_task(self))

    def wrong_action(self) -> str:
        return python_block(wrong_program(code_tests(current_task(self))))


class CodeRepairEnv(RlvrEnv):
    """Write a program, then repair it from test feedback, for up to `max_turns` turns (default 3).

    Per-turn reward: component `correct` is the score of that turn's program (as in `CodeEnv`: 1.0 when every
    test passes with `score="all"`, the fraction passed with `score="fraction"`). A turn whose program passes
    every test terminates the episode; otherwise the environment replies with the first failing test (input,
    expected, got, or the error: `CodeVerdict.feedback()`) and asks for a corrected full program, and the
    episode is truncated at `max_turns`. An episode's return is the sum of its turns' rewards (with
    `score="fraction"` a slow repair can exceed 1.0); `max_reward` is 1.0, what a first-turn solution earns.

    With `score="all"` the tests after the first failure are not run (`stop_at_first_failure` defaults to True):
    the score and the feedback need only the first failure, so `tests_passed` then counts the tests passed
    before it. Other arguments are those of `CodeEnv`.
    """

    description = "Write a Python program and repair it from the first failing test's feedback (multi-turn)"
    reward_components = ("correct",)

    def __init__(
        self,
        tasks: Sequence[Task] | None = None,
        *,
        max_turns: int = 3,
        score: str = "all",
        stop_at_first_failure: bool | None = None,
        system_prompt: str | None = None,
        references: Mapping[str, str] | str | Path | None = None,
        sandbox: Any = None,
        dataset: str | None = None,
        data_path: str | None = None,
        split: str | None = None,
        revision: str | None = None,
        limit: int | None = None,
        **code_options: Any,
    ) -> None:
        if stop_at_first_failure is None:
            stop_at_first_failure = score == "all"
        config = code_config(score, stop_at_first_failure=stop_at_first_failure, **code_options)
        super().__init__(
            resolve_tasks(tasks, dataset, data_path, split, revision, limit),
            system_prompt=system_prompt,
            max_turns=max_turns,
        )
        self.grader = CodeGrader(config, references, sandbox)

    def format_prompt(self, task: Task) -> str:
        return code_prompt(task)

    def evaluate(self, completion: Completion) -> Feedback:
        verdict = self.grader.verify(completion.text, code_tests(current_task(self)))
        reply = [] if verdict.correct else [{"role": "user", "content": repair_message(verdict)}]
        return Feedback(
            reply=reply,
            rewards={"correct": verdict.score},
            done=verdict.correct,
            verdict=verdict,
            info=code_verdict_info(verdict),
        )

    def reference_action(self) -> str:
        return self.grader.reference(current_task(self))

    def wrong_action(self) -> str:
        return python_block(wrong_program(code_tests(current_task(self))))


def repair_message(verdict: CodeVerdict) -> str:
    """The environment's reply to a failing program: what went wrong, and a request for a corrected one."""
    if verdict.reason in (NO_CODE, SYNTAX_ERROR):
        feedback = str(verdict.details.get("error") or verdict.reason.replace("_", " "))
        feedback = f"Your reply could not be run: {feedback}."
    else:
        feedback = verdict.feedback()
    return REPAIR_TEMPLATE.format(feedback=feedback)
