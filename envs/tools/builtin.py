"""The built-in tools: `python` (runs code in the sandbox), `calculator` (safe exact arithmetic) and `submit`
(the final answer). A `Tool` is an OpenAI-style schema plus a function from the call's arguments to the text of
the tool message; `check_arguments` validates arguments against the schema before a tool runs.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rlvr.errors import ConfigError
from rlvr.sandbox.types import ERROR, MEMORY, OUTPUT_LIMIT, SANDBOX_ERROR, TIMEOUT, ExecResult, Job, Limits

DEFAULT_PYTHON_LIMITS = Limits(wall_s=10.0, cpu_s=10.0, memory_mb=512, output_bytes=64 * 1024)
"""Limits of one `python` call: 10 s, 512 MiB, 64 KiB of output (the program is killed past it)."""
MAX_OUTPUT_CHARS = 2000
"""Characters of stdout and of stderr shown to the model; the rest is cut with a note."""
MAX_CODE_CHARS = 50_000
"""Longest program the `python` tool accepts."""
CALCULATOR_TIMEOUT_S = 3.0
"""Hard deadline of one calculator evaluation (the worker is killed past it)."""


@dataclass(frozen=True)
class Tool:
    """A tool the model may call: its OpenAI-style schema and `run(arguments) -> tool message content`.

    `final` marks the tool that ends the episode (`submit`): the environment checks its required `answer`
    argument itself and does not call `run`.
    """

    schema: dict[str, Any]
    run: Callable[[dict[str, Any]], str]
    final: bool = False

    @property
    def name(self) -> str:
        return self.schema["function"]["name"]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.schema["function"].get("parameters", {"type": "object", "properties": {}})


def function_schema(name: str, description: str, properties: dict[str, Any], required: Sequence[str]) -> dict:
    """`{"type": "function", "function": {"name", "description", "parameters"}}` with a closed object schema."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(required),
                "additionalProperties": False,
            },
        },
    }


# -- argument checking ----------------------------------------------------------------------------------------

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def check_arguments(parameters: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """Why `arguments` do not fit an object schema (required keys, unknown keys, top-level types), or None."""
    properties = parameters.get("properties", {})
    missing = [key for key in parameters.get("required", ()) if key not in arguments]
    if missing:
        return f"missing required argument(s) {', '.join(map(repr, missing))}"
    if parameters.get("additionalProperties", True) is False:
        unknown = [key for key in arguments if key not in properties]
        if unknown:
            return (
                f"unknown argument(s) {', '.join(map(repr, unknown))}; the arguments are "
                f"{', '.join(map(repr, properties)) or 'none'}"
            )
    for key, value in arguments.items():
        expected = properties.get(key, {}).get("type")
        if expected is None:
            continue
        kinds = [expected] if isinstance(expected, str) else list(expected)
        if not any(_JSON_TYPES.get(kind, lambda v: True)(value) for kind in kinds):
            return f"argument {key!r} must be of type {' or '.join(kinds)}, got {value!r:.60}"
    return None


# -- python -----------------------------------------------------------------------------------------------------


def python_tool(
    limits: Limits | dict[str, Any] | None = None,
    max_output_chars: int = MAX_OUTPUT_CHARS,
    sandbox: Any = None,
) -> Tool:
    """Runs `{"code": str}` as a fresh Python 3 program in the sandbox (the process-wide `shared_sandbox()`
    unless one is given) and returns its output, cut to `max_output_chars`, with its status when not ok."""
    limits = _limits(limits)
    description = (
        "Run a Python 3 program in a sandbox and return what it prints (stdout and stderr). Each call is a "
        "fresh process: no variables or files carry over, there is no network, only the standard library is "
        f"available. Limits: {limits.wall_s:g} s, {limits.memory_mb} MiB. Print the values you need."
    )
    schema = function_schema(
        "python",
        description,
        {"code": {"type": "string", "description": "The Python source to run."}},
        ["code"],
    )

    def run(arguments: dict[str, Any]) -> str:
        code = arguments["code"]
        if len(code) > MAX_CODE_CHARS:
            return f"Error: the program is {len(code)} characters long; the limit is {MAX_CODE_CHARS}."
        box = sandbox
        if box is None:
            from rlvr.envs.resources import shared_sandbox

            box = shared_sandbox()
        return format_exec_result(box.run(Job(code, limits=limits)), limits, max_output_chars)

    return Tool(schema=schema, run=run)


def _limits(limits: Limits | dict[str, Any] | None) -> Limits:
    if limits is None:
        return DEFAULT_PYTHON_LIMITS
    if isinstance(limits, Limits):
        return limits
    if isinstance(limits, dict):
        try:
            return Limits(**limits)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"python_limits {limits!r} are not valid sandbox Limits: {exc}") from None
    raise ConfigError(f"python_limits must be a rlvr.sandbox.Limits or a dict of its fields, got {limits!r}")


def format_exec_result(result: ExecResult, limits: Limits, max_chars: int = MAX_OUTPUT_CHARS) -> str:
    """The tool message for one run: stdout, then stderr (its end: where a traceback says what went wrong),
    then a line naming the status when it is not ok. Nothing that varies between identical runs (timings)."""
    parts = []
    if result.stdout:
        parts.append(_head(result.stdout, max_chars))
    if result.stderr:
        parts.append("stderr:\n" + _tail(result.stderr, max_chars))
    status = _status_line(result, limits)
    if status:
        parts.append(status)
    if not parts:
        return "(no output; print() the values you need)"
    return "\n".join(part.rstrip("\n") for part in parts)


def _status_line(result: ExecResult, limits: Limits) -> str:
    if result.status == ERROR:
        return f"[exit code {result.exit_code}]"
    if result.status == TIMEOUT:
        return f"[timeout: the program ran past its {limits.wall_s:g} s limit and was stopped]"
    if result.status == MEMORY:
        return f"[memory: the program ran out of its {limits.memory_mb} MiB memory limit]"
    if result.status == OUTPUT_LIMIT:
        return f"[output limit: the program printed more than {limits.output_bytes} bytes and was stopped]"
    if result.status == SANDBOX_ERROR:
        return "[sandbox error: the program could not be run; this is not the program's fault, try again]"
    if not result.ok:
        return f"[{result.status}" + (f": signal {result.signal}]" if result.signal else "]")
    return ""


def _head(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut]"


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters cut ...]\n" + text[-limit:]


# -- calculator -------------------------------------------------------------------------------------------------

_pool_lock = threading.Lock()
_pool: Any = None


def calculator_pool() -> Any:
    """The process-wide deadline pool that evaluates calculator expressions (started on first use;
    `RLVR_CALCULATOR_WORKERS` sets its size, default 1). sympy is imported in its workers only."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from rlvr.verifiers.pool import DeadlinePool

            size = int(os.environ.get("RLVR_CALCULATOR_WORKERS", "1"))
            _pool = DeadlinePool(
                "rlvr.envs.tools.calculator:evaluate",
                size=size,
                memory_limit_mb=1024,
                warmup_path="rlvr.envs.tools.calculator:warm_up",
            )
            atexit.register(_pool.close)
        return _pool


def calculator_tool(timeout_s: float = CALCULATOR_TIMEOUT_S) -> Tool:
    """Evaluates `{"expression": str}` exactly (see `rlvr.envs.tools.calculator`), under a hard deadline."""
    from rlvr.envs.tools.calculator import CONSTANTS, FUNCTIONS

    description = (
        "Evaluate an arithmetic expression exactly and give its value (and a decimal approximation). "
        "Allowed: numbers, + - * / % ** (or ^), parentheses, the constants "
        f"{', '.join(CONSTANTS)}, and the functions {', '.join(FUNCTIONS)}. No variables."
    )
    schema = function_schema(
        "calculator",
        description,
        {"expression": {"type": "string", "description": "The expression, e.g. (3 + 4) * 2**10 / 7"}},
        ["expression"],
    )

    def run(arguments: dict[str, Any]) -> str:
        from rlvr.verifiers.pool import OK, TIMEOUT

        outcome = calculator_pool().submit(arguments["expression"], timeout_s).result()
        if outcome.status == OK:
            ok, text = outcome.value
            return text if ok else f"Error: {text}."
        if outcome.status == TIMEOUT:
            return f"Error: the evaluation took longer than {timeout_s:g} s and was stopped; simplify it."
        return f"Error: the calculator failed ({outcome.status}: {outcome.value}); try again or use python."

    return Tool(schema=schema, run=run)


# -- submit -----------------------------------------------------------------------------------------------------


def submit_tool() -> Tool:
    """`{"answer": str}`: the final answer. It ends the episode; the environment checks the answer."""
    schema = function_schema(
        "submit",
        "Submit your final answer. This ends the episode, so call it once, when you are done. Give only the "
        'answer itself, e.g. "42", "3/4" or "x^2 + 1".',
        {"answer": {"type": ["string", "number"], "description": "The final answer."}},
        ["answer"],
    )
    return Tool(schema=schema, run=lambda arguments: f"Submitted: {arguments['answer']}", final=True)


BUILTIN_TOOLS: dict[str, Callable[..., Tool]] = {
    "python": python_tool,
    "calculator": calculator_tool,
    "submit": submit_tool,
}
