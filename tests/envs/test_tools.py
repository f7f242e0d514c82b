"""The tool-use environment: tool-call parsing on real-looking model outputs, the calculator's whitelist and bounds,
the python tool in the real sandbox (hostile code included), and ToolEnv's rewards, budget and turn limit."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import envdata
import pytest
from gymnasium.utils.env_checker import check_env

from rlvr.envs.resources import shared_sandbox
from rlvr.envs.tools.builtin import Tool, calculator_tool, check_arguments, function_schema, python_tool
from rlvr.envs.tools.calculator import evaluate
from rlvr.envs.tools.calls import MAX_ATTEMPTS, ParseError, ToolCall, parse_tool_calls
from rlvr.envs.tools.tool_env import ToolEnv, tool_call_text
from rlvr.envs.types import Task
from rlvr.errors import ConfigError
from rlvr.sandbox import Job, Limits

TASKS = [
    Task("mul", "What is 6 * 7?", "42", {"expression": "6 * 7"}),
    Task("frac", "Compute 1/3 + 1/6.", "\\frac{1}{2}"),
    Task("pow", "What is 2 to the power 10?", "1024"),
]
FAST = Limits(wall_s=1, cpu_s=1, memory_mb=256, output_bytes=64 * 1024)


def call(name: str, **arguments: Any) -> str:
    return tool_call_text(name, arguments)


def make_env(**kwargs: Any) -> ToolEnv:
    kwargs.setdefault("tasks", TASKS)
    kwargs.setdefault("python_limits", FAST)
    return ToolEnv(**kwargs)


def start(env: ToolEnv, index: int = 0) -> None:
    env.reset(seed=0, options={"task_index": index})


@pytest.fixture(scope="module")
def sandbox() -> Any:
    box = shared_sandbox()
    probe = box.run(Job("print('up')"))
    if probe.status == "sandbox_error":
        pytest.skip(f"no sandbox here: {probe.detail}")
    return box


# -- parsing ---------------------------------------------------------------------------------------------------

# (id, reply, expected attempts): ("call", name, arguments) or ("error", text the message contains).
PARSE_CASES = [
    (
        "qwen-single",
        'I will compute this.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "17 * 23"}}\n'
        "</tool_call>",
        [("call", "calculator", {"expression": "17 * 23"})],
    ),
    (
        "qwen-two-calls",
        '<tool_call>\n{"name": "python", "arguments": {"code": "print(2**100)"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2^100"}}\n</tool_call>',
        [("call", "python", {"code": "print(2**100)"}), ("call", "calculator", {"expression": "2^100"})],
    ),
    (
        "hermes-unclosed-last-tag (stop string </tool_call>)",
        'Submitting.\n<tool_call>\n{"name": "submit", "arguments": {"answer": "18"}}\n',
        [("call", "submit", {"answer": "18"})],
    ),
    (
        "hermes-parameters-key",
        '<tool_call>{"name": "submit", "parameters": {"answer": "7"}}</tool_call>',
        [("call", "submit", {"answer": "7"})],
    ),
    (
        "hermes-arguments-as-json-string (OpenAI wire form)",
        '<tool_call>{"name": "python", "arguments": "{\\"code\\": \\"print(1)\\"}"}</tool_call>',
        [("call", "python", {"code": "print(1)"})],
    ),
    (
        "hermes-fenced-json-inside-tag",
        '<tool_call>\n```json\n{"name": "submit", "arguments": {"answer": "3"}}\n```\n</tool_call>',
        [("call", "submit", {"answer": "3"})],
    ),
    (
        "hermes-openai-envelope",
        '<tool_call>{"type": "function", "function": {"name": "calculator", "arguments": {"expression": "1+1"}}}'
        "</tool_call>",
        [("call", "calculator", {"expression": "1+1"})],
    ),
    (
        "hermes-list-in-one-tag",
        '<tool_call>[{"name": "calculator", "arguments": {"expression": "2+2"}}, '
        '{"name": "submit", "arguments": {"answer": "4"}}]</tool_call>',
        [("call", "calculator", {"expression": "2+2"}), ("call", "submit", {"answer": "4"})],
    ),
    (
        "hermes-no-arguments-key",
        '<tool_call>{"name": "submit"}</tool_call>',
        [("call", "submit", {})],
    ),
    (
        "hermes-null-arguments",
        '<tool_call>{"name": "submit", "arguments": null}</tool_call>',
        [("call", "submit", {})],
    ),
    (
        "qwen3-reasoning-then-call",
        'Okay, the user wants 6*7. Maybe I call <tool_call>{"name": "python", "arguments": {}}</tool_call>'
        '? No, just submit.\n</think>\n\n<tool_call>\n{"name": "submit", "arguments": {"answer": "42"}}\n'
        "</tool_call>",
        [("call", "submit", {"answer": "42"})],
    ),
    (
        "json-whole-reply",
        '{"name": "calculator", "arguments": {"expression": "sqrt(144)"}}',
        [("call", "calculator", {"expression": "sqrt(144)"})],
    ),
    (
        "json-whole-reply-list",
        '[{"name": "python", "arguments": {"code": "print(3)"}}, {"name": "submit", "arguments": {"answer": "3"}}]',
        [("call", "python", {"code": "print(3)"}), ("call", "submit", {"answer": "3"})],
    ),
    (
        "json-fenced-block-with-prose",
        'Let me check with Python.\n```json\n{"name": "python", "arguments": {"code": "print(sum(range(10)))"}}'
        "\n```\nThen I will submit.",
        [("call", "python", {"code": "print(sum(range(10)))"})],
    ),
    (
        "json-two-fenced-blocks",
        '```json\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n```\nand\n'
        '```json\n{"name": "submit", "arguments": {"answer": "5"}}\n```',
        [("call", "calculator", {"expression": "2+3"}), ("call", "submit", {"answer": "5"})],
    ),
    (
        "json-bare-fence",
        '```\n{"name": "submit", "arguments": {"answer": "12"}}\n```',
        [("call", "submit", {"answer": "12"})],
    ),
    (
        "llama-python-tag",
        '<|python_tag|>{"name": "calculator", "parameters": {"expression": "3*4"}}',
        [("call", "calculator", {"expression": "3*4"})],
    ),
    (
        "mistral-tool-calls-prefix",
        '[TOOL_CALLS][{"name": "submit", "arguments": {"answer": "5"}}]',
        [("call", "submit", {"answer": "5"})],
    ),
    # -- attempts that cannot run: parse errors
    (
        "hermes-missing-closing-brace",
        '<tool_call>\n{"name": "submit", "arguments": {"answer": "4"}\n</tool_call>',
        [("error", "not valid JSON")],
    ),
    (
        "hermes-python-dict-quotes",
        "<tool_call>{'name': 'submit', 'arguments': {'answer': '4'}}</tool_call>",
        [("error", "not valid JSON")],
    ),
    (
        "hermes-missing-name",
        '<tool_call>{"arguments": {"answer": "4"}}</tool_call>',
        [("error", "no name")],
    ),
    (
        "hermes-name-not-a-string",
        '<tool_call>{"name": 7, "arguments": {}}</tool_call>',
        [("error", "name 7")],
    ),
    (
        "hermes-arguments-a-plain-string",
        '<tool_call>{"name": "submit", "arguments": "42"}</tool_call>',
        [("error", "must be a JSON object")],
    ),
    (
        "hermes-arguments-a-list",
        '<tool_call>{"name": "python", "arguments": ["print(1)"]}</tool_call>',
        [("error", "got a JSON array")],
    ),
    ("hermes-empty-tag", "<tool_call></tool_call>", [("error", "empty")]),
    ("hermes-not-an-object", "<tool_call>42</tool_call>", [("error", "got a JSON number")]),
    (
        "one-good-one-bad-in-order",
        '<tool_call>{"name": "submit", "arguments": {"answer": "1"</tool_call>\n'
        '<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}}</tool_call>',
        [("error", "not valid JSON"), ("call", "calculator", {"expression": "1+1"})],
    ),
    (
        "json-fenced-call-with-trailing-comma",
        '```json\n{"name": "submit", "arguments": {"answer": "9"},}\n```',
        [("error", "not valid JSON")],
    ),
    (
        "json-whole-reply-name-missing",
        '{"arguments": {"answer": "9"}}',
        [("error", "no name")],
    ),
    # -- near misses: no call attempted
    ("prose", "The answer is 42.", []),
    ("boxed-answer", "So the total is $\\boxed{18}$.", []),
    ("json-data-not-a-call", '{"name": "Alice", "age": 30}', []),
    ("fenced-json-data", 'The result:\n```json\n{"x": 1, "y": [1, 2]}\n```', []),
    ("python-code-block", "```python\nprint(6 * 7)\n```", []),
    (
        "inline-json-inside-prose (not the whole reply, not fenced)",
        'I will call {"name": "submit", "arguments": {"answer": "4"}} now.',
        [],
    ),
    (
        "call-only-in-closed-reasoning",
        '<think>I should write <tool_call>{"name": "submit", "arguments": {"answer": "4"}}</tool_call></think>'
        "The answer is 4.",
        [],
    ),
    (
        "call-only-in-unclosed-reasoning",
        '<think>Plan: <tool_call>{"name": "submit", "arguments": {"answer": "4"}}</tool_call> and then',
        [],
    ),
    ("stray-closing-tag", 'Done.</tool_call>{"answer": 4}', []),
    ("misspelt-tag", '<toolcall>{"name": "submit", "arguments": {"answer": "4"}}</toolcall>', []),
    ("broken-json-no-call-keys", '{"name": "submit", "answer": ', []),
    ("empty-reply", "", []),
    ("json-list-of-numbers", "[1, 2, 3]", []),
    ("json-empty-list", "[]", []),
]


@pytest.mark.parametrize(("reply", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES])
def test_parse_table(reply: str, expected: list[tuple]) -> None:
    parsed = parse_tool_calls(reply)
    got = []
    for item in parsed.items:
        if isinstance(item, ToolCall):
            got.append(("call", item.name, item.arguments))
        else:
            got.append(("error", item.message))
    assert len(got) == len(expected), got
    for (kind, *rest), (want_kind, *want) in zip(got, expected, strict=True):
        assert kind == want_kind, got
        if kind == "call":
            assert rest == want
        else:
            assert want[0] in rest[0], rest[0]
    assert parsed.found == bool(expected)
    assert (parsed.format is None) == (not expected)


def test_ids_number_every_attempt_in_order_and_content_drops_parsed_calls() -> None:
    reply = (
        "Two checks.\n"
        '<tool_call>{"name": "python", "arguments": {"code": "print(1)"}}</tool_call>\n'
        "<tool_call>{bad json}</tool_call>\n"
        '<tool_call>{"name": "submit", "arguments": {"answer": "1"}}</tool_call>'
    )
    parsed = parse_tool_calls(reply, id_prefix="call_3_")
    assert [item.id for item in parsed.items] == ["call_3_0", "call_3_1", "call_3_2"]
    assert [type(item) for item in parsed.items] == [ToolCall, ParseError, ToolCall]
    assert (
        parsed.content == "Two checks.\n\n<tool_call>{bad json}</tool_call>"
    )  # the failed call stays visible
    assert parsed.calls[0].to_message_format() == {
        "id": "call_3_0",
        "type": "function",
        "function": {"name": "python", "arguments": {"code": "print(1)"}},
    }


@pytest.mark.parametrize(
    "reply",
    [
        "<tool_call>" + "[" * 100_000 + "</tool_call>",
        "[" * 100_000,
        '```json\n{"arguments": ' + "[" * 100_000 + "\n```",
        "<tool_call>" * 5_000,
        "x" * 1_000_000 + "<tool_call>",
    ],
    ids=["deep-nesting-in-tag", "deep-nesting-whole", "deep-nesting-fenced", "many-open-tags", "huge-reply"],
)
def test_hostile_replies_parse_fast_without_raising(reply: str) -> None:
    started = time.perf_counter()
    parsed = parse_tool_calls(reply)
    assert time.perf_counter() - started < 0.5
    assert not parsed.calls and len(parsed.items) <= MAX_ATTEMPTS + 1


def test_attempts_per_reply_are_capped() -> None:
    parsed = parse_tool_calls(call("calculator", expression="1+1") * 100)
    assert len(parsed.calls) == MAX_ATTEMPTS
    assert [e.message for e in parsed.errors] == [
        f"more than {MAX_ATTEMPTS} tool calls in one reply; the rest were ignored"
    ]


# -- argument checking -----------------------------------------------------------------------------------------


def test_check_arguments_against_the_schema() -> None:
    parameters = python_tool().parameters
    assert check_arguments(parameters, {"code": "print(1)"}) is None
    assert "missing required argument(s) 'code'" in check_arguments(parameters, {})
    assert "unknown argument(s) 'timeout'" in check_arguments(parameters, {"code": "x", "timeout": 5})
    assert "must be of type string" in check_arguments(parameters, {"code": 42})


# -- calculator ------------------------------------------------------------------------------------------------

CALCULATOR_RESULTS = [
    ("2**10", "1024"),
    ("2^10", "1024"),
    ("sqrt(16)", "4"),
    ("1/3 + 1/6", "1/2 = 0.5"),
    ("0.1 + 0.2", "3/10 = 0.3"),
    ("1/3", "1/3 ≈ 0.333333333333333"),
    ("-(3 - 5) * 4", "8"),
    ("2^3 + 1", "9"),  # ^ is a power with the power's precedence, not XOR
    ("17 % 5", "2"),
    ("factorial(10)", "3628800"),
    ("binomial(10, 3)", "120"),
    ("gcd(12, 18) + lcm(4, 6)", "18"),
    ("log(8, 2)", "3"),
    ("sin(pi/6)", "1/2 = 0.5"),
    ("sqrt(2)", "sqrt(2) ≈ 1.4142135623731"),
    ("floor(7/2) + ceil(sqrt(2))", "5"),
    ("abs(-3)", "3"),
    ("exp(1)", "E ≈ 2.71828182845905"),
]


@pytest.mark.parametrize(("expression", "expected"), CALCULATOR_RESULTS)
def test_calculator_results(expression: str, expected: str) -> None:
    assert evaluate(expression) == (True, expected)


CALCULATOR_REFUSALS = [
    ("__import__('os')", "unknown function '__import__'"),
    ("__import__('os').system('echo hi')", "calling the result of attribute access"),
    ("__import__", "unknown name '__import__'"),
    ("10**10**10", "exponent is too large"),
    ("2**(2**(2**(2**2)))", "exponent is too large"),
    ("(10**100)**(10**2)", "digits"),
    ("9**9**9", "exponent is too large"),
    ("factorial(10**6)", "factorial() needs a whole number"),
    ("factorial(factorial(20))", "factorial() needs a whole number"),
    ("exp(exp(100))", "exp() of a number this large"),
    ("a.b", "attribute access"),
    ("().__class__", "attribute access"),
    ("x + 1", "unknown name 'x'"),
    ("[1, 2][0]", "indexing"),
    ("lambda: 1", "lambda"),
    ("'a' * 10", "not a number"),
    ("1 if 1 else 2", "if/else"),
    ("sqrt(x=4)", "keyword"),
    ("1/0", "division by zero"),
    ("0**-1", "division by zero"),
    ("tan(pi/2)", "undefined"),
    ("log(0)", "logarithm of 0"),
    ("1e999", "too large"),
    ("1" + "0" * 150, "longer than 100 digits"),
    ("+".join(["1"] * 300), "characters long"),
    ("-" * 150 + "1", "parts"),
    ("(" * 210 + "1" + ")" * 210, "not a valid expression"),
    ("(pi * 10**400) % 7", "% needs whole numbers"),
    ("floor(sqrt(2) * 10**300)", "precision"),
    ("2 * (3 + 4", "not a valid expression"),
    ("", "empty"),
]


@pytest.mark.parametrize(("expression", "reason"), CALCULATOR_REFUSALS)
def test_calculator_refusals_are_fast(expression: str, reason: str) -> None:
    started = time.perf_counter()
    ok, message = evaluate(expression)
    assert time.perf_counter() - started < 0.5
    assert not ok
    assert reason in message, message


def test_calculator_tool_runs_in_a_deadline_pool() -> None:
    tool = calculator_tool()
    assert tool.run({"expression": "1/3 + 1/6"}) == "1/2 = 0.5"
    assert tool.run({"expression": "10**10**10"}).startswith("Error: the exponent is too large")
    # Within every bound, about 0.2 s of work: a deadline of 0.02 s stops it and the worker is replaced.
    slow = " + ".join(f"sqrt(7**590 + {k})" for k in range(1, 6))
    assert evaluate(slow)[0]
    started = time.perf_counter()
    message = calculator_tool(timeout_s=0.02).run({"expression": slow})
    assert time.perf_counter() - started < 5.0
    assert message.startswith("Error: the evaluation took longer than 0.02 s"), message
    assert tool.run({"expression": "2**10"}) == "1024"  # the killed worker was replaced


# -- the python tool -------------------------------------------------------------------------------------------


def test_python_tool_output_status_and_truncation(sandbox: Any) -> None:
    tool = python_tool(FAST, max_output_chars=100)
    assert tool.run({"code": "print(sum(range(101)))"}) == "5050"
    assert tool.run({"code": "x = 1"}).startswith("(no output")
    error = tool.run({"code": "print('before')\n1/0"})
    assert (
        error.startswith("before\nstderr:\n")
        and "ZeroDivisionError" in error
        and error.endswith("[exit code 1]")
    )
    long = tool.run({"code": "print('a' * 500)"})
    assert long.startswith("a" * 100) and "[... 401 more characters cut]" in long


def test_hostile_python_calls_are_contained_and_the_env_keeps_working(sandbox: Any) -> None:
    marker = Path("/tmp") / f"rlvr-tools-host-{uuid.uuid4().hex}.txt"
    marker.write_text("host file\n", encoding="utf-8")
    try:
        env = make_env()
        start(env)
        hostile = {
            "network": 'import socket\nsocket.create_connection(("1.1.1.1", 80), timeout=2)\nprint("connected")',
            "loop": "while True:\n    pass",
            "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
            "rm -rf": f"import os\nos.system('rm -rf / 2>/dev/null')\nos.remove({str(marker)!r})",
            "memory": "hoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))",
        }
        outcomes = {}
        for name, code in hostile.items():
            started = time.perf_counter()
            reply, reward, terminated, _, _ = env.step(call("python", code=code))
            outcomes[name] = reply[0]["content"]
            assert time.perf_counter() - started < 8.0, name
            assert (reward, terminated) == (0.0, False), name
            if env.turn == env.max_turns - 1:
                start(env)
        assert "connected" not in outcomes["network"] and "[exit code" in outcomes["network"]
        assert "[timeout" in outcomes["loop"]
        assert "[timeout" in outcomes["fork bomb"]
        assert "FileNotFoundError" in outcomes["rm -rf"]  # the host's /tmp is not the job's /tmp
        assert "[memory" in outcomes["memory"] or "MemoryError" in outcomes["memory"]
        assert marker.read_text(encoding="utf-8") == "host file\n"
        start(env)
        reply, *_ = env.step(call("python", code="print(6 * 7)"))
        assert reply[0]["content"] == "42"
    finally:
        marker.unlink(missing_ok=True)


# -- the environment -------------------------------------------------------------------------------------------


def test_check_env_on_the_default_arithmetic_tasks_and_on_a_task_list() -> None:
    check_env(ToolEnv(), skip_render_check=True)
    check_env(make_env(), skip_render_check=True)


def test_reset_is_deterministic_and_offers_the_tools() -> None:
    first, info = ToolEnv().reset(seed=3)
    second, info2 = ToolEnv().reset(seed=3)
    assert first == second and info == info2
    assert [tool["function"]["name"] for tool in info["tools"]] == ["python", "calculator", "submit"]
    assert "<tools>" not in json.dumps(first)


def test_describe_tools_in_prompt_writes_the_schemas_into_the_system_prompt() -> None:
    env = make_env(describe_tools_in_prompt=True, system_prompt=None)
    messages, info = env.reset(seed=0)
    assert messages[0]["role"] == "system"
    assert "<tools>" in messages[0]["content"]
    for schema in info["tools"]:
        assert json.dumps(schema) in messages[0]["content"]


def test_submit_right_earns_one_and_terminates() -> None:
    for index in range(len(TASKS)):
        env = make_env()
        start(env, index)
        reply, reward, terminated, truncated, info = env.step(env.reference_action())
        assert (reply, reward, terminated, truncated) == ([], 1.0, True, False)
        assert info["solved"] is True and info["verdict"].correct
        assert info["rewards"] == {"correct": 1.0, "tool_format": 0.0, "tool_budget": 0.0}


def test_submit_equivalent_answer_and_number_answer() -> None:
    env = make_env()
    start(env, 1)
    assert env.step(call("submit", answer="0.5"))[1] == 1.0
    start(env, 0)
    assert env.step(call("submit", answer=42))[1] == 1.0


def test_submit_wrong_earns_zero_and_terminates() -> None:
    env = make_env()
    for index in range(len(TASKS)):
        start(env, index)
        _, reward, terminated, _, info = env.step(env.wrong_action())
        assert (reward, terminated, info["solved"]) == (0.0, True, False)


def test_reference_script_uses_a_tool_then_submits(sandbox: Any) -> None:
    for index, first_tool in [(0, "calculator"), (2, "python")]:
        env = make_env()
        start(env, index)
        script = env.reference_script()
        reply, reward, terminated, _, info = env.step(script[0])
        assert (reply[0]["role"], reply[0]["name"], reward, terminated) == ("tool", first_tool, 0.0, False)
        assert reply[0]["content"] == str(TASKS[index].answer)
        assert info["tool_calls"] == 1 and info["tool_calls_used"] == 1
        _, reward, terminated, _, _ = env.step(script[1])
        assert (reward, terminated) == (1.0, True)


def test_tool_messages_answer_the_assistant_tool_calls(sandbox: Any) -> None:
    env = make_env()
    start(env)
    reply, *_ = env.step(
        "Checking.\n" + call("python", code="print(6 * 7)") + "\n" + call("calculator", expression="6 * 7")
    )
    assistant = env.conversation[-3]
    assert assistant["role"] == "assistant" and assistant["content"].startswith("Checking.\n<tool_call>")
    ids = [c["id"] for c in assistant["tool_calls"]]
    assert ids == ["call_1_0", "call_1_1"]
    assert [(m["role"], m["tool_call_id"], m["name"], m["content"]) for m in reply] == [
        ("tool", "call_1_0", "python", "42"),
        ("tool", "call_1_1", "calculator", "42"),
    ]
    assert env.conversation[-2:] == reply


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ('<tool_call>{"name": "python", "arguments": {"code": "print(1)"</tool_call>', "not valid JSON"),
        (
            call("search", query="capital of France"),
            "unknown tool 'search'; the tools are python, calculator",
        ),
        (call("python"), "bad arguments for 'python': missing required argument(s) 'code'"),
        (call("python", code="print(1)", timeout=3), "unknown argument(s) 'timeout'"),
        (call("submit", answer=["4"]), "argument 'answer' must be of type string or number"),
        ('<tool_call>{"arguments": {"answer": "42"}}</tool_call>', "no name"),
    ],
    ids=["bad-json", "unknown-tool", "missing-argument", "extra-argument", "bad-answer-type", "no-name"],
)
def test_invalid_call_is_penalised_and_explained(action: str, message: str) -> None:
    env = make_env()
    start(env)
    reply, reward, terminated, truncated, info = env.step(action)
    assert (reward, terminated, truncated) == (-0.1, False, False)
    assert info["rewards"]["tool_format"] == -0.1 and info["invalid_calls"] == 1
    assert [m["role"] for m in reply] == ["tool"]
    assert reply[0]["content"].startswith("Error: ") and message in reply[0]["content"]
    assert reply[0]["content"].endswith(".") and not reply[0]["content"].endswith("..")


def test_penalty_is_once_per_turn_and_valid_calls_still_run(sandbox: Any) -> None:
    env = make_env(invalid_call_penalty=0.25)
    start(env)
    action = call("nope") + call("python", code="print(5)") + call("python")
    reply, reward, _, _, info = env.step(action)
    assert reward == -0.25 and info["invalid_calls"] == 2 and info["tool_calls"] == 1
    assert [m["content"][:6] for m in reply] == ["Error:", "5", "Error:"]


def test_no_tool_call_gets_a_reminder_and_the_penalty() -> None:
    env = make_env()
    start(env)
    reply, reward, terminated, truncated, _ = env.step("The answer is \\boxed{42}.")
    assert (reward, terminated, truncated) == (-0.1, False, False)
    assert reply[0]["role"] == "user" and "submit" in reply[0]["content"]


def test_calls_beyond_the_budget_are_refused_and_submit_still_works() -> None:
    env = make_env(max_tool_calls=2, max_turns=4)
    start(env)
    _, reward, *_ = env.step(call("calculator", expression="6*7") + call("calculator", expression="6*6"))
    assert reward == 0.0
    reply, reward, _, _, info = env.step(call("calculator", expression="1+1"))
    assert reward == -0.1 and info["rewards"]["tool_budget"] == -0.1 and info["tool_calls"] == 0
    assert reply[0]["content"] == (
        "Error: the tool-call budget of this episode (2 calls) is used up; call submit with your final answer."
    )
    assert info["tool_calls_used"] == 2
    _, reward, terminated, _, _ = env.step(env.reference_action())
    assert (reward, terminated) == (1.0, True)


def test_submit_ends_the_turn_without_running_the_other_calls() -> None:
    env = make_env(max_tool_calls=0)  # a run would be refused and penalised: it must not be attempted
    start(env)
    _, reward, terminated, _, info = env.step(call("python", code="print(1)") + env.reference_action())
    assert (reward, terminated, info["tool_calls_used"]) == (1.0, True, 0)


def test_truncated_at_max_turns() -> None:
    env = make_env(max_turns=3)
    start(env)
    for turn in range(1, 4):
        reply, reward, terminated, truncated, info = env.step("thinking...")
        assert reward == -0.1 and not terminated
        assert truncated == (turn == 3)
    assert reply == [] and info["solved"] is False


def test_calls_on_the_last_turn_are_checked_but_not_run() -> None:
    env = make_env(max_turns=2)
    start(env)
    assert env.step(call("calculator", expression="6*7"))[4]["tool_calls"] == 1
    reply, reward, terminated, truncated, info = env.step(call("calculator", expression="6*7") + call("nope"))
    assert (reply, reward, terminated, truncated) == ([], -0.1, False, True)
    assert (info["tool_calls"], info["invalid_calls"], info["tool_calls_used"]) == (0, 1, 1)


def test_custom_answer_checker_by_callable_and_by_import_path() -> None:
    def exact(task: Task, answer: str) -> Any:
        from rlvr.verifiers.types import Verdict

        correct = answer == task.answer
        return Verdict(float(correct), correct, "correct" if correct else "wrong")

    env = make_env(answer_checker=exact)
    start(env, 1)
    assert (
        env.step(call("submit", answer="0.5"))[1] == 0.0
    )  # the math verifier would accept it; this does not
    start(env, 1)
    assert env.step(env.reference_action())[1] == 1.0
    env = make_env(answer_checker="rlvr.envs.tools.tool_env:math_answer_checker")
    start(env, 1)
    assert env.step(call("submit", answer="0.5"))[1] == 1.0


def test_bad_configuration_is_refused_with_a_fix() -> None:
    with pytest.raises(ConfigError, match="built-in tools are python, calculator, submit"):
        ToolEnv(tasks=TASKS, tools=["python", "browser"])
    with pytest.raises(ConfigError, match="either tasks= or dataset="):
        ToolEnv(tasks=TASKS, dataset="gsm8k")
    with pytest.raises(ConfigError, match="module:function"):
        ToolEnv(tasks=TASKS, answer_checker="no.such.module:check")
    final = Tool(schema=function_schema("finish", "Finish.", {}, []), run=str, final=True)
    with pytest.raises(ConfigError, match="required 'answer' argument"):
        ToolEnv(tasks=TASKS, tools=[final])
    with pytest.raises(ConfigError, match="not valid sandbox Limits"):
        ToolEnv(tasks=TASKS, python_limits={"wall_s": -1})
    assert (
        "Limits: 2 s, 512 MiB"
        in ToolEnv(tasks=TASKS, python_limits={"wall_s": 2}).tools[0]["function"]["description"]
    )
    with pytest.raises(ConfigError, match="invalid_call_penalty"):
        ToolEnv(tasks=TASKS, invalid_call_penalty=-1)


def test_gsm8k_file_through_the_catalog() -> None:
    path = envdata.shared_file("math/gsm8k_test.jsonl")
    env = ToolEnv(dataset="gsm8k", data_path=path, limit=5)
    assert len(env.tasks) == 5
    for index in range(5):
        env.reset(seed=0, options={"task_index": index})
        assert env.step(env.reference_action())[1] == 1.0
        env.reset(seed=0, options={"task_index": index})
        assert env.step(env.wrong_action())[1] == 0.0


@pytest.mark.slow
def test_conversation_renders_with_the_smollm2_template(smollm2_tokenizer: Any) -> None:
    """SmolLM2's template ignores `tools=` and `tool_calls`: with the schemas in the system prompt and the call
    kept in the assistant's content, the model still sees the tools, its call and the result."""
    from rlvr.envs.chat_tokens import ChatTokens

    env = make_env(describe_tools_in_prompt=True)
    _, info = env.reset(seed=0, options={"task_index": 0})
    action = env.reference_script()[0]
    reply, *_ = env.step(action)
    text = smollm2_tokenizer.apply_chat_template(
        env.conversation, tools=info["tools"], tokenize=False, add_generation_prompt=True
    )
    assert '"name": "calculator"' in text and action in text and "<|im_start|>tool\n42<|im_end|>" in text
    tokens = ChatTokens(smollm2_tokenizer, info["tools"])
    assert smollm2_tokenizer.decode(tokens.reply_ids(reply)).startswith("<|im_start|>tool\n42")
