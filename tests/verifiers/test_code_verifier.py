"""`CodeVerifier` on small tasks in a real sandbox: verdicts, feedback, budgets, and programs that try to pass
without solving the task (none of them may be rewarded).

Every test runs on both backends (Docker and the local bubblewrap jail); a backend that cannot start here is
skipped with the reason. Each task below has a correct solution, so a hostile program fails only because of the
defences, not because the task is unsolvable.
"""

from __future__ import annotations

import json
import textwrap
import types
from collections.abc import Iterator

import pytest

from rlvr.sandbox import SandboxUnavailable, make_sandbox
from rlvr.verifiers import code_harness
from rlvr.verifiers.code import CODE_REASONS, CodeConfig, CodeVerifier
from rlvr.verifiers.code_extract import CodeExtractConfig
from rlvr.verifiers.code_tests import LCB_PRELUDE, CodeTestCase, CodeTests

# HumanEval style: `check(candidate)` with several asserts, the function under test is `add`.
HUMANEVAL_ADD = CodeTests(
    kind="assert",
    cases=(CodeTestCase("check(add)"),),
    setup=textwrap.dedent(
        """
        def check(candidate):
            assert candidate(1, 2) == 3
            assert candidate(2, 2) == 4
            assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9
        """
    ),
    entry_points=("add",),
)
# MBPP style: one assert per test, test imports first.
MBPP_ADD = CodeTests.from_mbpp(
    {
        "task_id": "add",
        "test_imports": ["import math"],
        "test_list": [
            "assert add(1, 2) == 3",
            "assert add(2, 2) == 4",
            "assert math.isclose(add(0.1, 0.2), 0.3)",
        ],
    }
)
# Tests that lean on builtins and a module: a wrong `add` passes them only if it can change abs, all or math.
PATCHABLE_ADD = CodeTests.from_mbpp(
    {
        "task_id": "patchable",
        "test_imports": ["import math"],
        "test_list": [
            "assert math.isclose(add(0.1, 0.2), 0.3)",
            "assert abs(add(0.1, 0.2) - 0.3) < 1e-9",
            "assert all([add(1, 1) == 2])",
        ],
    }
)
# LeetCode style: Solution().add(a, b), arguments one JSON value per line.
LEETCODE_ADD = CodeTests(
    kind="functional",
    cases=(CodeTestCase("1\n2", "3"), CodeTestCase("2\n2", "4"), CodeTestCase("[1]\n[2]", "[1, 2]")),
    fn_name="add",
    prelude=LCB_PRELUDE,
)
# stdin style.
STDIN_ADD = CodeTests(
    kind="stdin",
    cases=(CodeTestCase("1 2\n", "3\n"), CodeTestCase("2 2\n", "4\n"), CodeTestCase("40 2\n", "42\n")),
    prelude=LCB_PRELUDE,
)
ASSERT_SUITES = {"humaneval": HUMANEVAL_ADD, "mbpp": MBPP_ADD, "patchable": PATCHABLE_ADD}

GOOD_ADD = "def add(a, b):\n    return a + b\n"
GOOD_SOLUTION = "class Solution:\n    def add(self, a, b):\n        return a + b\n"
GOOD_STDIN = "a, b = map(int, input().split())\nprint(a + b)\n"


def fenced(code: str) -> str:
    return "Here is my solution:\n```python\n" + textwrap.dedent(code).strip("\n") + "\n```\n"


@pytest.fixture(
    scope="module", params=[pytest.param("docker", marks=pytest.mark.docker), pytest.param("local")]
)
def sandbox(request: pytest.FixtureRequest) -> Iterator[object]:
    try:
        box = make_sandbox(request.param, size=2)
    except SandboxUnavailable as exc:
        pytest.skip(f"the {request.param} sandbox cannot start here: {exc}")
    with box:
        yield box


@pytest.fixture(scope="module")
def verifier(sandbox: object) -> CodeVerifier:
    return CodeVerifier(sandbox, CodeConfig(test_timeout_s=2.0, total_timeout_s=4.0))


# -- correct programs and ordinary failures ----------------------------------------------------------------


def test_correct_solutions_pass_every_form(verifier: CodeVerifier) -> None:
    verdicts = verifier.verify_batch(
        [fenced(GOOD_ADD), fenced(GOOD_ADD), fenced(GOOD_SOLUTION), fenced(GOOD_STDIN)],
        [HUMANEVAL_ADD, MBPP_ADD, LEETCODE_ADD, STDIN_ADD],
    )
    for verdict in verdicts:
        assert (verdict.reason, verdict.score, verdict.correct) == ("correct", 1.0, True), verdict
        assert verdict.passed == verdict.total and verdict.first_failure is None
        assert verdict.feedback() == f"All {verdict.total} tests passed."


def test_wrong_answers_with_feedback(verifier: CodeVerifier) -> None:
    minus = "def add(a, b):\n    return a - b\n"
    he, mbpp, lc, std = verifier.verify_batch(
        [
            fenced(minus),
            fenced(minus),
            fenced("class Solution:\n    def add(self, a, b):\n        return a - b if a != 2 else a + b\n"),
            fenced("a, b = map(int, input().split())\nprint(a * b)\n"),
        ],
        [HUMANEVAL_ADD, MBPP_ADD, LEETCODE_ADD, STDIN_ADD],
    )
    assert (he.reason, he.passed, he.total) == ("wrong_answer", 0, 1)
    assert he.first_failure.got == "-1" and he.first_failure.expected == "3"
    assert "assert candidate(1, 2) == 3" in he.first_failure.error  # the failing line of check()
    assert (mbpp.reason, mbpp.passed, mbpp.total) == ("wrong_answer", 0, 3)
    assert mbpp.first_failure.index == 0 and mbpp.first_failure.input == "assert add(1, 2) == 3"
    assert (lc.reason, lc.passed) == ("wrong_answer", 1)
    assert (lc.first_failure.input, lc.first_failure.expected, lc.first_failure.got) == ("1\n2", "3", "-1")
    assert (std.reason, std.passed) == ("wrong_answer", 1)  # 2 * 2 == 4
    assert (std.first_failure.input, std.first_failure.expected, std.first_failure.got) == (
        "1 2\n",
        "3\n",
        "2\n",
    )
    assert "Expected:\n3" in std.feedback() and "Got:\n2" in std.feedback()
    record = json.loads(json.dumps(std.to_dict()))
    assert (record["reason"], record["passed"], record["total"]) == ("wrong_answer", 1, 3)
    assert record["first_failure"]["got"] == "2\n" and record["extracted"].startswith("a, b = map")


def test_fraction_score_and_stop_at_first_failure(sandbox: object) -> None:
    half = "def add(a, b):\n    return 4 if a == 2 else 0\n"
    stdin_half = "a, b = map(int, input().split())\nprint(4 if a == 2 else 0)\n"
    full = CodeVerifier(sandbox, CodeConfig(score="fraction"))
    mbpp, std = full.verify_batch([fenced(half), fenced(stdin_half)], [MBPP_ADD, STDIN_ADD])
    assert (mbpp.score, mbpp.passed, [t.status for t in mbpp.tests]) == (
        pytest.approx(1 / 3),
        1,
        ["wrong_answer", "passed", "wrong_answer"],
    )
    assert (std.score, std.passed) == (pytest.approx(1 / 3), 1)
    stop = CodeVerifier(sandbox, CodeConfig(score="fraction", stop_at_first_failure=True))
    mbpp, std = stop.verify_batch([fenced(half), fenced(stdin_half)], [MBPP_ADD, STDIN_ADD])
    assert [t.status for t in mbpp.tests] == ["wrong_answer", "not_run", "not_run"]
    assert [t.status for t in std.tests] == ["wrong_answer", "not_run", "not_run"]
    assert mbpp.score == std.score == 0.0


def test_no_code_and_syntax_errors(verifier: CodeVerifier) -> None:
    no_code, syntax, unclosed = verifier.verify_batch(
        ["I would add the numbers.", fenced("def add(a, b)\n    return a + b\n"), "```python\n" + GOOD_ADD],
        HUMANEVAL_ADD,
    )
    assert no_code.reason == "no_code" and no_code.score == 0.0
    assert syntax.reason == "syntax_error" and "expected ':'" in syntax.details["error"]
    assert unclosed.reason == "correct" and unclosed.details["extraction"] == "unclosed"


def test_runtime_errors_timeouts_and_memory(verifier: CodeVerifier) -> None:
    crash = "def add(a, b):\n    return a / 0\n"
    loop = "def add(a, b):\n    while True:\n        pass\n"
    hog = "def add(a, b):\n    x = bytearray(2 << 30)\n    return a + b\n"
    top_crash = "import not_a_module\n" + GOOD_ADD
    verdicts = verifier.verify_batch([fenced(c) for c in (crash, loop, hog, top_crash)], MBPP_ADD)
    assert [v.reason for v in verdicts] == ["runtime_error", "timeout", "memory", "runtime_error"]
    assert "ZeroDivisionError" in verdicts[0].first_failure.error
    assert "solution.py, line 2" in verdicts[0].first_failure.error
    assert "No module named 'not_a_module'" in verdicts[3].details["error"]
    stdin_loop, stdin_crash = verifier.verify_batch(
        [fenced("while True:\n    pass\n"), fenced("print(1 // 0)\n")], STDIN_ADD
    )
    assert stdin_loop.reason == "timeout" and stdin_crash.reason == "runtime_error"
    assert "ZeroDivisionError" in stdin_crash.first_failure.error


def test_functional_results(sandbox: object) -> None:
    suite = CodeTests(
        kind="functional",
        cases=(
            CodeTestCase("10000", str(2**10000)),
            CodeTestCase("0", "[1, 2]"),
            CodeTestCase("1", "0.3"),
            CodeTestCase("20000", "1"),
        ),
        fn_name="f",
    )
    tolerant = CodeVerifier(sandbox, CodeConfig(float_tolerance=1e-9))
    code = "def f(n):\n    return 2 ** n if n > 1 else (1, 2) if n == 0 else 0.1 + 0.2\n"
    assert [t.status for t in tolerant.verify(fenced(code), suite).tests] == ["passed"] * 3 + ["wrong_answer"]
    exact = CodeVerifier(sandbox).verify(fenced(code), suite)
    assert [t.status for t in exact.tests] == ["passed", "passed", "wrong_answer", "wrong_answer"]
    assert (
        exact.tests[3].got == "<an integer too long to print>"
    )  # 2**20000 came back (hex-tagged) and differs
    as_set = CodeVerifier(sandbox).verify(fenced("def f(n):\n    return {1, 2}\n"), suite)
    assert as_set.tests[1].status == "wrong_answer" and as_set.tests[1].got == "{1, 2}"
    missing = CodeVerifier(sandbox).verify(fenced("def g(n):\n    return n\n"), suite)
    assert missing.reason == "runtime_error" and "defines no function f" in missing.details["error"]
    counter = "import collections\ndef f(n):\n    return collections.deque([1, 2])\n"
    assert CodeVerifier(sandbox).verify(fenced(counter), suite).tests[1].status == "wrong_answer"
    lenient = CodeVerifier(sandbox, CodeConfig(result_types=("collections.deque",)))
    assert lenient.verify(fenced(counter), suite).tests[1].status == "passed"


def test_bad_tests(verifier: CodeVerifier) -> None:
    broken = CodeTests(kind="functional", cases=(CodeTestCase("not json", "1"),), fn_name="f")
    empty = CodeTests(kind="stdin", cases=())
    bad, none = verifier.verify_batch([fenced("def f(x):\n    return 1\n")] * 2, [broken, empty])
    assert bad.reason == "bad_tests" and none.reason == "bad_tests"


def test_total_time_budget(sandbox: object) -> None:
    slow = "import time\ndef add(a, b):\n    time.sleep(0.8)\n    return a + b\n"
    verifier = CodeVerifier(sandbox, CodeConfig(test_timeout_s=2.0, total_timeout_s=2.0))
    verdict = verifier.verify(fenced(slow), MBPP_ADD)
    assert verdict.passed == 2 and verdict.reason == "timeout"
    assert verdict.tests[2].status == "timeout"


def test_batch_of_a_group_runs_duplicates_once(verifier: CodeVerifier) -> None:
    group = [fenced(GOOD_ADD)] * 6 + [fenced("def add(a, b):\n    return 0\n")] * 2 + ["no code"]
    verdicts = verifier.verify_batch(group, MBPP_ADD)
    assert [v.reason for v in verdicts] == ["correct"] * 6 + ["wrong_answer"] * 2 + ["no_code"]
    assert all(v.reason in CODE_REASONS for v in verdicts)


def test_threads_finish_before_stdin_output_is_read(verifier: CodeVerifier) -> None:
    """Competitive programs often run `main` in a thread for its stack size; `python main.py` waits for it."""
    threaded = (
        "import threading\n"
        "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n"
        "threading.stack_size(1 << 26)\nthreading.Thread(target=main).start()\n"
    )
    verdict = verifier.verify(fenced(threaded), STDIN_ADD)
    assert verdict.reason == "correct", verdict.first_failure


def test_humaneval_body_completion_continues_the_prompt(sandbox: object) -> None:
    task = {
        "task_id": "toy/0",
        "prompt": 'def add(a, b):\n    """Add two numbers."""\n',
        "entry_point": "add",
        "test": HUMANEVAL_ADD.setup,
    }
    suite = CodeTests.from_humaneval(task)
    raw = CodeVerifier(sandbox, CodeConfig(extract=CodeExtractConfig(raw=True)))
    assert raw.verify("    return a + b\n", suite).correct
    assert not raw.verify("  return a +", suite).correct
    default = CodeVerifier(sandbox)
    assert default.verify("    return a + b\n", suite).correct  # the body parses after the prompt
    assert default.verify(fenced(GOOD_ADD), suite).correct  # a full function redefines the stub


# -- programs that try to pass without solving the task ------------------------------------------------------

WRONG = "def add(a, b):\n    return 0\n"
FORGED_RUN = ["('setup', 'ok', {})", *(f"('test', {i}, 'passed', {{}})" for i in range(3)), "('done', 3)"]
WRITE_EVERYWHERE = (
    "for fd in range(1, 40):\n    try:\n        os.write(fd, {line})\n    except OSError:\n        pass"
)


def forge(writer: str, secret: str) -> str:
    """Code that writes a complete, well-formed run of records (tagged with `secret`) and exits at once: it would
    be rewarded if the secret were right (see test_forgery_needs_the_secret)."""
    lines = [f"_line = b'\\n' + _secret + b' ' + {record!r}.encode() + b'\\n'" for record in FORGED_RUN]
    body = "\n".join(f"{line}\n{writer.format(line='_line')}" for line in lines)
    return f"import os, sys\n_secret = {secret}\n{body}\nos._exit(0)\n"


ALWAYS_EQUAL = """
class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__
def add(a, b):
    return AlwaysEqual()
"""
BROKEN_INT = """
class Int(int):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __sub__(self, other):
        return Int(0)
    def __abs__(self):
        return 0
    __hash__ = int.__hash__
def add(a, b):
    return Int(0)
"""
EXIT_FROM_EQ = """
class Leave:
    def __eq__(self, other):
        raise SystemExit(0)
    def __bool__(self):
        raise SystemExit(0)
def add(a, b):
    return Leave()
"""
HOSTILE = {
    "prints a success marker and a forged run": WRONG
    + 'print("passed")\nprint("All tests passed!")\n'
    + forge("print({line}.decode(), end='', flush=True)", "b'0' * 32"),
    "writes a forged run on every descriptor": WRONG + forge(WRITE_EVERYWHERE, "b'0' * 32"),
    "os._exit(0) before the tests run": WRONG + "import os\nos._exit(0)\n",
    "reads stdin for the secret": WRONG
    + forge(WRITE_EVERYWHERE, "sys.stdin.buffer.read().split(b'\\n')[0] + os.read(0, 100)"),
    "os._exit(0) inside the function": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "sys.exit(0) inside the function": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "sys.exit(0) at top level": WRONG + "import sys\nsys.exit(0)\n",
    "an object whose __eq__ is always true": ALWAYS_EQUAL,
    "an int subclass with a broken __eq__": BROKEN_INT,
    "SystemExit raised from __eq__": EXIT_FROM_EQ,
    "replaces builtins.AssertionError": WRONG
    + "import builtins\nbuiltins.AssertionError = type('Quiet', (Exception,), {})\n",
    "patches builtins abs, all, print, isinstance and type": WRONG
    + "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.all = lambda x: True\n"
    "builtins.print = lambda *a, **k: None\nbuiltins.isinstance = lambda *a: True\nbuiltins.type = lambda *a: int\n",
    "shadows builtins at top level": WRONG + "abs = lambda x: 0\ndef all(*a):\n    return True\n",
    "patches json": WRONG
    + 'import json, json.encoder\njson.dumps = lambda *a, **k: \'{"status": "passed"}\'\n'
    "json.loads = lambda *a, **k: {}\njson.encoder.c_make_encoder = None\n",
    "patches math.isclose": "import math\nmath.isclose = lambda *a, **k: True\n" + WRONG,
    "replaces sys.modules['math']": "import sys, types\nfake = types.ModuleType('math')\n"
    "fake.isclose = lambda *a, **k: True\nsys.modules['math'] = fake\n" + WRONG,
    "overwrites everything in sys.modules['__main__']": WRONG
    + "import sys\nmain = sys.modules['__main__']\nfor name in list(vars(main)):\n"
    "    if not name.startswith('__'):\n        setattr(main, name, lambda *a, **k: None)\n"
    "main.emit = main.report = lambda *a, **k: None\n",
    "overwrites its own globals' check and candidate names": WRONG
    + "def check(candidate):\n    return None\ncandidate = check\n",
    "points the report descriptor at /dev/null": WRONG
    + "import os\nnull = os.open('/dev/null', os.O_WRONLY)\nfor fd in range(1, 40):\n    if fd != null:\n"
    "        try:\n            os.dup2(null, fd)\n        except OSError:\n            pass\n",
    "swallows the timer and loops": "import time\ndef add(a, b):\n    while True:\n        try:\n"
    "            time.sleep(10)\n        except BaseException:\n            pass\n",
    "forks a child that writes a forged run later": WRONG
    + "import os, time\nif os.fork() == 0:\n    time.sleep(0.3)\n"
    + textwrap.indent(forge(WRITE_EVERYWHERE, "b'0' * 32"), "    "),
}


@pytest.fixture(scope="module")
def hostile_verdicts(verifier: CodeVerifier) -> dict[tuple[str, str], object]:
    """Every hostile program against both assert-style suites, in one batch (the slow ones overlap)."""
    pairs = [(name, suite_name) for name in sorted(HOSTILE) for suite_name in ASSERT_SUITES]
    verdicts = verifier.verify_batch(
        [fenced(HOSTILE[name]) for name, _ in pairs], [ASSERT_SUITES[s] for _, s in pairs]
    )
    return dict(zip(pairs, verdicts, strict=True))


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("suite_name", sorted(ASSERT_SUITES))
def test_hostile_assert_programs_are_not_rewarded(
    hostile_verdicts: dict[tuple[str, str], object], name: str, suite_name: str
) -> None:
    verdict = hostile_verdicts[name, suite_name]
    assert not verdict.correct and verdict.score == 0.0, (name, verdict)
    assert verdict.passed == 0, (name, verdict.tests)  # not even partial credit: `add` is wrong everywhere
    assert verdict.reason in CODE_REASONS


def test_hostile_reasons(hostile_verdicts: dict[tuple[str, str], object]) -> None:
    expected = {
        "an object whose __eq__ is always true": "wrong_answer",
        "an int subclass with a broken __eq__": "wrong_answer",
        "SystemExit raised from __eq__": "wrong_answer",
        "patches math.isclose": "tampering",
        "replaces sys.modules['math']": "tampering",
        "os._exit(0) before the tests run": "runtime_error",
        "os._exit(0) inside the function": "runtime_error",
        "sys.exit(0) inside the function": "runtime_error",
        "swallows the timer and loops": "timeout",
    }
    reasons = {name: hostile_verdicts[name, "mbpp"].reason for name in expected}
    assert reasons == expected
    always = hostile_verdicts["an object whose __eq__ is always true", "mbpp"].first_failure
    assert "AlwaysEqual" in always.error and "not plain data" in always.error
    assert "math.isclose was changed" in hostile_verdicts["patches math.isclose", "mbpp"].details["error"]


def test_forgery_needs_the_secret(verifier: CodeVerifier, monkeypatch: pytest.MonkeyPatch) -> None:
    """Control for the forging programs above: with the secret known in advance, the forged run written on the
    descriptors is accepted (so those programs fail because of the secret, not because their forgery is
    malformed); the printed one still is not, because the candidate's prints go to stderr."""
    monkeypatch.setattr(code_harness, "secrets", types.SimpleNamespace(token_hex=lambda n: "0" * 32))
    written, printed = verifier.verify_batch(
        [
            fenced(HOSTILE[name])
            for name in (
                "writes a forged run on every descriptor",
                "prints a success marker and a forged run",
            )
        ],
        MBPP_ADD,
    )
    assert written.correct, written
    assert not printed.correct, printed


def test_harness_files_are_gone_before_the_candidate_runs(verifier: CodeVerifier) -> None:
    nosy = "import os\nassert os.listdir('.') == [], os.listdir('.')\n" + GOOD_ADD
    assert verifier.verify(fenced(nosy), MBPP_ADD).correct


def test_hostile_functional_and_stdin_programs(verifier: CodeVerifier) -> None:
    def solution(body: str) -> str:
        return body + "\nclass Solution:\n    def add(self, a, b):\n        return add(a, b)\n"

    functional = [
        solution(ALWAYS_EQUAL),
        solution(BROKEN_INT),
        solution(EXIT_FROM_EQ),
        solution(HOSTILE["prints a success marker and a forged run"]),
        solution(HOSTILE["os._exit(0) inside the function"]),
        "import json\njson.loads = lambda *a, **k: 3\n" + solution(WRONG),
    ]
    for verdict in verifier.verify_batch([fenced(c) for c in functional], LEETCODE_ADD):
        assert not verdict.correct, verdict
    stdin = [
        'print("passed")\n',
        "import os\nos._exit(0)\n",
        "import sys\nprint(3)\nsys.exit(0)\n",  # right for the first case only
    ]
    for verdict in verifier.verify_batch([fenced(c) for c in stdin], STDIN_ADD):
        assert not verdict.correct, verdict


FRAME_WALKER = """
import sys
def add(a, b):
    frame = sys._getframe(1)
    while frame is not None:
        emit = frame.f_locals.get("emit")
        finish = frame.f_locals.get("finish")
        if emit is not None and finish is not None:
            for index in range(3):
                emit("test", index, "passed", {})
            finish(3)
        frame = frame.f_back
    return 0
"""


@pytest.mark.xfail(
    strict=True,
    reason="documented residual risk: a candidate that walks the interpreter's frames can call the harness's "
    "own reporting function and forge assert-style records (functional and stdin tests are decided from "
    "values the candidate cannot forge)",
)
def test_residual_risk_frame_walking_forges_assert_records(verifier: CodeVerifier) -> None:
    assert not verifier.verify(fenced(FRAME_WALKER), MBPP_ADD).correct


def test_frame_walking_cannot_forge_functional_results(verifier: CodeVerifier) -> None:
    forger = FRAME_WALKER.replace(
        'emit("test", index, "passed", {})', 'emit("test", index, "returned", {"value": 0})'
    )
    code = forger + "\nclass Solution:\n    def add(self, a, b):\n        return add(a, b)\n"
    assert not verifier.verify(fenced(code), LEETCODE_ADD).correct
