"""The tool-use environment: the model solves a task by calling tools (python, calculator) and ends the episode by
calling `submit` with its final answer, which the task's checker (by default the math verifier) decides."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rlvr.envs.base import RlvrEnv
from rlvr.envs.tools.builtin import BUILTIN_TOOLS, Tool, check_arguments, submit_tool
from rlvr.envs.tools.calls import ParsedCalls, ParseError, ToolCall, parse_tool_calls
from rlvr.envs.types import Completion, Feedback, Message, Task
from rlvr.errors import ConfigError

DEFAULT_SYSTEM_PROMPT = (
    "You solve problems with the help of tools. Call a tool by writing "
    '<tool_call>{"name": "<tool name>", "arguments": {...}}</tool_call>; its result comes back in a tool '
    "message. When you know the final answer, call the submit tool with it, for example "
    '<tool_call>{"name": "submit", "arguments": {"answer": "42"}}</tool_call>. Submitting ends the episode.'
)
NO_CALL_MESSAGE = (
    "No tool call found. Call a tool with "
    '<tool_call>{"name": "<tool name>", "arguments": {...}}</tool_call>, or give your final answer with '
    '<tool_call>{"name": "submit", "arguments": {"answer": "..."}}</tool_call>.'
)
CALL_FORMAT_HINT = 'Write a call as <tool_call>{"name": "<tool name>", "arguments": {...}}</tool_call>.'

AnswerChecker = Callable[[Task, str], Any]
"""`(task, submitted answer) -> verdict`; the verdict's `correct` attribute decides the reward."""


def math_answer_checker(task: Task, answer: str) -> Any:
    """The default checker: the process-wide math verifier on the submitted answer put in `\\boxed{}`."""
    from rlvr.envs.resources import verify_math_answer

    return verify_math_answer(str(task.answer), "\\boxed{" + answer + "}")


class ToolEnv(RlvrEnv):
    """A task solved with tool calls; the episode ends when the model calls `submit`.

    Each turn the model's reply is parsed for tool calls (`rlvr.envs.tools.calls`: Hermes `<tool_call>` tags or
    plain JSON). The assistant message in the conversation carries them as `tool_calls`; the environment answers
    with one `{"role": "tool", "tool_call_id", "name", "content"}` message per call attempt, in order.

    Reward components of a step (they sum to the step's reward):
      - `correct`: 1.0 when the turn's `submit` answer is right (checked by `answer_checker`), else 0.0. The
        episode terminates on the first well-formed `submit` of a turn; the other calls of that turn are checked
        for format but not run.
      - `tool_format`: -`invalid_call_penalty` (default 0.1) once per turn that has an invalid call (not valid
        JSON, no name, arguments not an object, an unknown tool, arguments that do not fit the tool's schema)
        or no tool call at all; an invalid call is answered with a tool message saying what is wrong, a reply
        without calls with a user message asking for a call or a submit.
      - `tool_budget`: -`invalid_call_penalty` once per turn in which a call was refused because the episode's
        `max_tool_calls` (default 8) calls of python/calculator had already run. `submit` is never refused.
    Reaching `max_turns` (default 6) without a submit truncates the episode (the calls of that last turn are
    checked for format but not run: their results would never be read). The return of a perfect episode
    (`max_reward`) is 1.0; the worst is -2 * `invalid_call_penalty` * `max_turns`.

    Tasks: `tasks=` (any sequence of Task), or catalog dataset `dataset` (read from `data_path` when given;
    `split`, `limit`), or by default procedural arithmetic (`rlvr.envs.procedural.arithmetic`, `level`, `split`,
    `limit` as its size). `tools` names built-in tools ("python", "calculator") or gives `Tool`s; `submit` is
    always added. `describe_tools_in_prompt` also writes the tool schemas into the system prompt, for chat
    templates that ignore `tools=`.
    """

    description: ClassVar[str] = (
        "Solve a task with tool calls (python, calculator) and submit the final answer."
    )
    reward_components: ClassVar[tuple[str, ...]] = ("correct", "tool_format", "tool_budget")

    def __init__(
        self,
        tasks: Sequence[Task] | None = None,
        *,
        dataset: str | None = None,
        data_path: str | Path | None = None,
        split: str | None = None,
        limit: int | None = None,
        level: int | None = None,
        tools: Sequence[str | Tool] = ("python", "calculator"),
        answer_checker: AnswerChecker | str | None = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        describe_tools_in_prompt: bool = False,
        max_turns: int = 6,
        max_tool_calls: int = 8,
        invalid_call_penalty: float = 0.1,
        python_limits: Any = None,
    ) -> None:
        if isinstance(invalid_call_penalty, bool) or not isinstance(invalid_call_penalty, (int, float)):
            raise ConfigError(f"invalid_call_penalty must be a number >= 0, got {invalid_call_penalty!r}")
        if invalid_call_penalty < 0:
            raise ConfigError(
                f"invalid_call_penalty must be >= 0 (it is subtracted), got {invalid_call_penalty}"
            )
        if isinstance(max_tool_calls, bool) or not isinstance(max_tool_calls, int) or max_tool_calls < 0:
            raise ConfigError(f"max_tool_calls must be an integer >= 0, got {max_tool_calls!r}")
        source = _task_source(tasks, dataset, data_path, split, limit, level)
        self.toolset = _make_tools(tools, python_limits)
        self.answer_checker = _resolve_checker(answer_checker)
        self.describe_tools_in_prompt = bool(describe_tools_in_prompt)
        self.max_tool_calls = max_tool_calls
        self.invalid_call_penalty = float(invalid_call_penalty)
        super().__init__(source, system_prompt=system_prompt, max_turns=max_turns)
        self.tool_calls_used = 0
        self._parsed = ParsedCalls()

    # -- the conversation --------------------------------------------------------------------------------------

    @property
    def tools(self) -> list[dict[str, Any]]:
        return [tool.schema for tool in self.toolset.values()]

    def initial_messages(self, task: Task) -> list[Message]:
        system = self.system_prompt or ""
        if self.describe_tools_in_prompt:
            system = (system + "\n\n" if system else "") + describe_tools(self.tools)
        messages: list[Message] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": self.format_prompt(task)})
        return messages

    def start_episode(self, task: Task) -> None:
        self.tool_calls_used = 0
        self._parsed = ParsedCalls()

    def assistant_message(self, completion: Completion) -> Message:
        """The reply as the model wrote it, plus its parsed calls as `tool_calls`. The content keeps the call
        markup: templates that ignore `tool_calls` (those `describe_tools_in_prompt` is for) then still show
        the call, and the conversation stays a faithful transcript of the generated text."""
        self._parsed = parse_tool_calls(completion.text, id_prefix=f"call_{self.turn}_")
        message: Message = {"role": "assistant", "content": completion.text}
        if self._parsed.calls:
            message["tool_calls"] = [call.to_message_format() for call in self._parsed.calls]
        return message

    # -- one turn ----------------------------------------------------------------------------------------------

    def evaluate(self, completion: Completion) -> Feedback:
        parsed = self._parsed
        rewards = {"correct": 0.0, "tool_format": 0.0, "tool_budget": 0.0}
        if not parsed.found:
            rewards["tool_format"] = -self.invalid_call_penalty
            reply = [{"role": "user", "content": NO_CALL_MESSAGE}]
            return Feedback(reply, rewards, done=False, info=self._info(0, 1))

        problems = {item.id: self._problem(item) for item in parsed.items}
        invalid = sum(problem is not None for problem in problems.values())
        if invalid:
            rewards["tool_format"] = -self.invalid_call_penalty
        submit = next(
            (c for c in parsed.calls if problems[c.id] is None and self.toolset[c.name].final), None
        )
        if submit is not None:
            answer = submit.arguments["answer"]
            verdict = self.answer_checker(self.task, str(answer))
            solved = bool(getattr(verdict, "correct", False))
            rewards["correct"] = 1.0 if solved else 0.0
            return Feedback([], rewards, done=True, verdict=verdict, info=self._info(0, invalid, solved))

        if self.turn >= self.max_turns:  # the episode is truncated now: nobody would read the results
            return Feedback([], rewards, done=False, info=self._info(0, invalid))
        reply: list[Message] = []
        ran = refused = 0
        for item in parsed.items:
            problem = problems[item.id]
            if problem is None and self.tool_calls_used >= self.max_tool_calls:
                problem = (
                    f"the tool-call budget of this episode ({self.max_tool_calls} calls) is used up; "
                    "call submit with your final answer"
                )
                refused += 1
            if problem is not None:
                content = f"Error: {problem.rstrip('.')}."
            else:
                content = self.toolset[item.name].run(item.arguments)
                self.tool_calls_used += 1
                ran += 1
            name = item.name if isinstance(item, ToolCall) else (item.name or "unknown")
            reply.append({"role": "tool", "tool_call_id": item.id, "name": name, "content": content})
        if refused:
            rewards["tool_budget"] = -self.invalid_call_penalty
        return Feedback(reply, rewards, done=False, info=self._info(ran, invalid))

    def _problem(self, item: ToolCall | ParseError) -> str | None:
        """Why a call attempt cannot run, or None."""
        if isinstance(item, ParseError):
            return f"{item.message}. {CALL_FORMAT_HINT}"
        tool = self.toolset.get(item.name)
        if tool is None:
            return f"unknown tool {item.name!r}; the tools are {', '.join(self.toolset)}"
        why = check_arguments(tool.parameters, item.arguments)
        return None if why is None else f"bad arguments for {item.name!r}: {why}"

    def _info(self, ran: int, invalid: int, solved: bool = False) -> dict[str, Any]:
        return {
            "solved": solved,
            "tool_calls": ran,
            "invalid_calls": invalid,
            "tool_calls_used": self.tool_calls_used,
        }

    # -- reference players -------------------------------------------------------------------------------------

    def reference_action(self) -> str:
        """Submit the gold answer."""
        return tool_call_text("submit", {"answer": self._gold()})

    def reference_script(self) -> list[str]:
        """A two-turn episode that earns the full reward: one calculator call (on the task's `expression`
        metadata) or python call (printing the gold answer), then `submit` with the gold answer."""
        expression = self._current().metadata.get("expression")
        if expression and "calculator" in self.toolset:
            first = tool_call_text("calculator", {"expression": str(expression)})
        else:
            first = tool_call_text("python", {"code": f"print({self._gold()!r})"})
        return [first, self.reference_action()]

    def wrong_action(self) -> str:
        """Submit an answer the checker rejects (the gold plus one for a number, else a far-off number)."""
        gold = self._gold()
        candidates = [_plus_one(gold), "-987654321", "0", "no answer"]
        for candidate in (c for c in candidates if c is not None):
            if not getattr(self.answer_checker(self._current(), candidate), "correct", False):
                return tool_call_text("submit", {"answer": candidate})
        return tool_call_text("submit", {"answer": "-987654321"})

    @property
    def max_reward(self) -> float:
        return 1.0

    def _gold(self) -> str:
        return str(self._current().answer)

    def _current(self) -> Task:
        if self.task is None:
            raise RuntimeError("call reset() first: there is no current task")
        return self.task


# -- helpers ---------------------------------------------------------------------------------------------------


def tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`: one call in the Hermes format."""
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def describe_tools(schemas: Sequence[dict[str, Any]]) -> str:
    """The tool schemas and the call format as text, for chat templates that do not render `tools=`."""
    lines = [
        "# Tools",
        "",
        "You may call one or more functions. Their signatures are inside <tools></tools>:",
        "<tools>",
        *(json.dumps(schema) for schema in schemas),
        "</tools>",
        "",
        "For each call, write a JSON object with the function name and arguments inside <tool_call></tool_call>:",
        "<tool_call>",
        '{"name": <function-name>, "arguments": <args-json-object>}',
        "</tool_call>",
    ]
    return "\n".join(lines)


def _task_source(
    tasks: Sequence[Task] | None,
    dataset: str | None,
    data_path: str | Path | None,
    split: str | None,
    limit: int | None,
    level: int | None,
) -> Sequence[Task]:
    if tasks is not None:
        if dataset is not None or data_path is not None:
            raise ConfigError("pass either tasks= or dataset=/data_path=, not both")
        return tasks
    if dataset is not None or data_path is not None:
        if level is not None:
            raise ConfigError(
                "level= picks the difficulty of the arithmetic tasks; it does not apply to a dataset"
            )
        if dataset is None:
            raise ConfigError(
                f"data_path={data_path!r} needs dataset= naming its catalog dataset (e.g. 'gsm8k')"
            )
        from rlvr.envs.catalog import load_tasks

        return load_tasks(dataset, path=data_path, split=split, limit=limit)
    from rlvr.envs.procedural.arithmetic import arithmetic_tasks

    options: dict[str, Any] = {"level": level, "split": split or "train"}
    if limit is not None:
        options["size"] = limit
    return arithmetic_tasks(**options)


def _make_tools(tools: Sequence[str | Tool], python_limits: Any) -> dict[str, Tool]:
    if isinstance(tools, str):
        tools = [tools]
    made: dict[str, Tool] = {}
    for tool in tools:
        if isinstance(tool, str):
            if tool not in BUILTIN_TOOLS:
                raise ConfigError(f"unknown tool {tool!r}; the built-in tools are {', '.join(BUILTIN_TOOLS)}")
            tool = BUILTIN_TOOLS[tool](python_limits) if tool == "python" else BUILTIN_TOOLS[tool]()
        if not isinstance(tool, Tool):
            raise ConfigError(
                f"a tool is a built-in tool's name or a rlvr.envs.tools.builtin.Tool, got {tool!r}"
            )
        if tool.name in made:
            raise ConfigError(f"tool {tool.name!r} is given twice")
        if tool.final and "answer" not in tool.parameters.get("required", ()):
            raise ConfigError(
                f"final tool {tool.name!r} must have a required 'answer' argument (it is checked)"
            )
        made[tool.name] = tool
    if not any(tool.final for tool in made.values()):
        made["submit"] = submit_tool()
    return made


def _resolve_checker(checker: AnswerChecker | str | None) -> AnswerChecker:
    if checker is None:
        return math_answer_checker
    if isinstance(checker, str):
        module, _, name = checker.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"answer_checker {checker!r} cannot be imported ({exc}); give 'module:function'"
            ) from None
    if not callable(checker):
        raise ConfigError(f"answer_checker must be a callable (task, answer) -> verdict, got {checker!r}")
    return checker


def _plus_one(gold: str) -> str | None:
    from rlvr.verifiers.fastpath import parse_number

    number = parse_number(gold.replace(",", ""))
    if number is None:
        return None
    value = number.value + 1
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
