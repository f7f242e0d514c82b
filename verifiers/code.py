"""Verifying code by running tests in the sandbox: `CodeVerifier(sandbox, CodeConfig()).verify(completion, tests)`.

Pipeline: extract the program (`code_extract`) -> check its syntax here -> build sandbox jobs (`code_harness`) ->
run every job of a batch in one `run_many` -> decide each test **in this process** -> `CodeVerdict`.

What decides a test (never the program's exit code or anything it prints about itself):

- stdin: the program's stdout, compared here with the expected output (LiveCodeBench rules, `code_tests`); a
  non-zero exit, a timeout or a crash fails the case. The expected output never enters the sandbox.
- functional: the harness calls the method and sends back its result; the result must be plain data (exact
  int, float, bool, str, None, complex, bytes, list, tuple, dict, set, frozenset, recursively) and is compared
  here with the expected JSON value, which never enters the sandbox.
- assert: the asserts must run next to the candidate, so the harness reports each test's outcome in records
  tagged with a per-run random secret, passed on stdin and read before the candidate runs. A test passes only
  when its record says so; a missing, unreadable, repeated or out-of-order record fails it.

Defences in the harness against a candidate that tries to pass without solving the task:

- printing a success marker or fake records: the parent reads only records starting with the secret, and the
  candidate's prints go to stderr (descriptor 1 is pointed at stderr; the harness writes on a private copy);
- exiting early (`os._exit(0)`, `sys.exit(0)` at import or inside the function): tests without a record fail;
  `SystemExit` raised inside a test fails that test;
- results that lie about equality (an `__eq__` that is always true, an `__ne__` that is always false, an `int`
  subclass with a broken `__eq__`, a `SystemExit` raised from `__eq__`): the functions under test (HumanEval's
  `entry_point`, the functions MBPP asserts call, the LeetCode method) are wrapped; a result that is not plain
  data of the exact builtin types fails the test before anything compares it, and the check runs no code of the
  result's classes (`result_types` can admit exact stdlib types such as `collections.Counter`, whose modules are
  then watched like the tests' own);
- patching builtins (`builtins.AssertionError`, `print`, `abs`, `len`, ...): the tests run in a namespace of
  their own whose builtins are a copy taken before the candidate ran, and the candidate's own top-level names
  that shadow builtins are dropped from it (the functions under test excepted); `assert` raises the real
  AssertionError whatever `builtins` says;
- patching the modules the tests use (`math.isclose = lambda *a, **k: True`, a class attribute of
  `collections.Counter`, `sys.modules['math']`): they are imported before the candidate runs and compared,
  object by object, with a snapshot after the candidate's definitions and after every test: any change fails the
  whole run (`tampering`);
- overwriting the harness (`sys.modules['__main__']`, its globals, `json.dumps`, `os.write`): the harness runs
  in a namespace no module refers to, keeps its own references to every function it uses (taken before the
  candidate ran), writes records with `repr` of exact builtin types (no `json`), and deletes its files before
  the candidate runs;
- reading the expected outputs: stdin and functional expectations never enter the sandbox.

What remains possible (documented, not defended; all of them need deliberate introspection of the harness):

- the secret, the report descriptor and the harness's functions live in the same process as the candidate: a
  program that walks frames (`sys._getframe`, a traceback's `tb_frame.f_back`), the garbage collector
  (`gc.get_objects`, `gc.get_referrers`) or its own memory (`ctypes`, `/proc/self/mem`) can find the secret or
  call the harness's `emit`, and a trace function (`sys.settrace`, `frame.f_trace`) can rewrite the harness's
  locals: assert-style records can be forged this way (tested: `test_residual_risk_frame_walking_...`). The
  sandbox still contains the program; only the reward of that one completion is at stake. Prefer functional or
  stdin tests for RL where a task allows it: their verdicts need values the candidate does not have.
- assert-style test code, expected values included, is in the process: the candidate can read it the same way
  (or from the calling frame) and return the expected value for the inputs it sees.
- helpers the tests call that are not functions under test (HumanEval/32's `poly`, /38's `encode_cyclic`, which a
  completion may redefine) are not wrapped; their results are compared as they are.
- a thread or signal handler started by the candidate keeps running during the tests.
- LeetCode-style results are compared as JSON would see them (tuples are lists; `True == 1` as in Python and in
  LiveCodeBench).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rlvr.sandbox.types import ExecResult
from rlvr.verifiers.code_extract import CANDIDATE_FILENAME, CodeExtractConfig, CodeExtraction, extract_code
from rlvr.verifiers.code_harness import Budget, HarnessJob, harness_job, read_report, stdin_job
from rlvr.verifiers.code_tests import CodeTests, compare_stdout, values_equal
from rlvr.verifiers.types import Verdict

# Reasons of a code verdict (and statuses of one test, with "passed" and "not_run").
CORRECT = "correct"
WRONG_ANSWER = "wrong_answer"
RUNTIME_ERROR = "runtime_error"
TIMEOUT = "timeout"
MEMORY = "memory"
OUTPUT_LIMIT = "output_limit"
NO_CODE = "no_code"
SYNTAX_ERROR = "syntax_error"
TAMPERING = "tampering"  # the candidate changed what the tests rely on, or the harness's records were forged
BAD_TESTS = "bad_tests"  # the tests themselves could not be read or set up
SANDBOX_ERROR = "sandbox_error"  # the sandbox failed; the program is not to blame
CODE_REASONS = (
    CORRECT,
    WRONG_ANSWER,
    RUNTIME_ERROR,
    TIMEOUT,
    MEMORY,
    OUTPUT_LIMIT,
    NO_CODE,
    SYNTAX_ERROR,
    TAMPERING,
    BAD_TESTS,
    SANDBOX_ERROR,
)
PASSED = "passed"
NOT_RUN = "not_run"  # after the first failure, with stop_at_first_failure

# Result types that are safe to accept when a task's reference returns them (MBPP 88 returns a Counter, 737, 787
# and 794 a re.Match): C types, or Python classes whose module the harness watches for changes.
STDLIB_RESULT_TYPES = ("collections.Counter", "collections.OrderedDict", "collections.deque", "re.Match")

_JOB_STATUS = {
    "timeout": TIMEOUT,
    "memory": MEMORY,
    "output_limit": OUTPUT_LIMIT,
    "sandbox_error": SANDBOX_ERROR,
}


@dataclass(frozen=True)
class CodeConfig:
    extract: CodeExtractConfig = field(default_factory=CodeExtractConfig)
    score: str = "all"
    """"all": 1.0 when every test passes, else 0.0; "fraction": the fraction of tests passed."""
    stop_at_first_failure: bool = False
    """Stop at the first failing test; later tests count as failed (`not_run`)."""
    test_timeout_s: float = 6.0
    """Wall time of one test (and of the candidate's top-level code)."""
    total_timeout_s: float = 60.0
    """Wall time of all the tests of one completion together."""
    memory_mb: int = 512
    output_bytes: int = 4 << 20
    float_tolerance: float | None = None
    """Numbers within `tol * max(1, |expected|)` are equal (stdin and functional tests); None: exact, as LCB."""
    result_types: tuple[str, ...] = ()
    """Exact standard-library types accepted as results besides plain data, as "module.Name" (for example
    `STDLIB_RESULT_TYPES`); their modules are guarded like the tests' own."""
    max_code_chars: int = 200_000
    """Longer programs are not run (`no_code`)."""
    feedback_chars: int = 400

    def __post_init__(self) -> None:
        if self.score not in ("all", "fraction"):
            raise ValueError(f"CodeConfig.score must be 'all' or 'fraction', got {self.score!r}")
        if not (self.test_timeout_s > 0 and self.total_timeout_s > 0):
            raise ValueError("CodeConfig time budgets must be > 0")


@dataclass(frozen=True)
class CodeTestResult:
    """One test's outcome; `input`/`expected`/`got`/`error` are filled for failures (truncated)."""

    __test__ = False

    index: int
    status: str
    """"passed", "not_run", or a failure reason (wrong_answer, runtime_error, timeout, ...)."""
    time_s: float | None = None
    input: str = ""
    expected: str = ""
    got: str = ""
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def feedback(self) -> str:
        """A short text for a multi-turn reply."""
        lines = [f"Test {self.index + 1} failed: {self.status.replace('_', ' ')}."]
        for label, value in (("Input", self.input), ("Expected", self.expected), ("Got", self.got)):
            if value:
                lines.append(f"{label}:\n{value}")
        if self.error:
            lines.append(f"Error: {self.error}")
        return "\n".join(lines)


@dataclass(frozen=True)
class CodeVerdict(Verdict):
    """A `Verdict` with the counts: `passed` of `total` tests, the first failure and every test's result."""

    passed: int = 0
    total: int = 0
    first_failure: CodeTestResult | None = None
    tests: tuple[CodeTestResult, ...] = ()

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def feedback(self) -> str:
        if self.correct:
            return f"All {self.total} tests passed."
        if self.first_failure is not None:
            return self.first_failure.feedback()
        return str(self.details.get("error") or self.reason.replace("_", " "))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(passed=self.passed, total=self.total)
        data["first_failure"] = None if self.first_failure is None else vars(self.first_failure).copy()
        return data


@dataclass
class _Item:
    """One (program, tests) pair on its way through a batch."""

    program: str
    tests: CodeTests
    extraction: CodeExtraction
    results: dict[int, CodeTestResult] = field(default_factory=dict)
    error: str = ""
    reason: str = ""
    wall_s: float = 0.0


class CodeVerifier:
    """Scores completions by running their code against tests in a sandbox (`rlvr.sandbox`).

    `verify(completion, tests)` and `verify_batch(completions, tests)` never raise: every outcome is a
    `CodeVerdict` with a reason from `CODE_REASONS`. The jobs of a batch go to the sandbox in one `run_many`
    (two with `stop_at_first_failure` and stdin tests: first cases, then the rest), so its pool stays busy.
    """

    def __init__(self, sandbox: Any, config: CodeConfig | None = None) -> None:
        self.sandbox = sandbox
        self.config = config or CodeConfig()
        self._budget = Budget(
            self.config.test_timeout_s,
            self.config.total_timeout_s,
            self.config.memory_mb,
            self.config.output_bytes,
            tuple(self.config.result_types),
        )

    def verify(self, completion: str, tests: CodeTests) -> CodeVerdict:
        return self.verify_batch([completion], tests)[0]

    def verify_batch(
        self, completions: Sequence[str], tests: CodeTests | Sequence[CodeTests]
    ) -> list[CodeVerdict]:
        """One verdict per completion; `tests` is one suite for all of them (a group) or one per completion."""
        suites = [tests] * len(completions) if isinstance(tests, CodeTests) else list(tests)
        if len(suites) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(suites)} test suites")
        verdicts: list[CodeVerdict | None] = [None] * len(completions)
        items: dict[tuple[str, int], _Item] = {}
        owners: list[tuple[int, tuple[str, int]]] = []
        for position, (completion, suite) in enumerate(zip(completions, suites, strict=True)):
            try:
                early, item = self._prepare(completion, suite)
            except Exception as exc:  # a verifier never raises into its caller
                early, item = _verdict_without_run(RUNTIME_ERROR, f"internal error: {exc!r}", 0), None
            if early is not None:
                verdicts[position] = early
                continue
            assert item is not None
            key = (item.program, id(suite))
            items.setdefault(key, item)
            owners.append((position, key))
        self._run(list(items.values()))
        decided = {key: self._verdict(item) for key, item in items.items()}
        for position, key in owners:
            verdicts[position] = decided[key]
        return [v for v in verdicts if v is not None]

    # -- stages ---------------------------------------------------------------------------------------------

    def _prepare(self, completion: str, tests: CodeTests) -> tuple[CodeVerdict | None, _Item | None]:
        total = len(tests.cases)
        if total == 0:
            return _verdict_without_run(BAD_TESTS, "the suite has no tests", 0), None
        extraction = extract_code(completion, self.config.extract, prefix=tests.prefix)
        if extraction.code is None:
            return _verdict_without_run(NO_CODE, "no code found in the completion", total, extraction), None
        if len(extraction.code) > self.config.max_code_chars:
            message = f"the code has {len(extraction.code)} characters (limit {self.config.max_code_chars})"
            return _verdict_without_run(NO_CODE, message, total, extraction), None
        program = _join(tests.prefix, extraction.code, extraction.method)
        syntax = _syntax_error(program)
        if syntax:
            return _verdict_without_run(SYNTAX_ERROR, syntax, total, extraction), None
        return None, _Item(program, tests, extraction)

    def _run(self, items: list[_Item]) -> None:
        stop_first = self.config.stop_at_first_failure
        harnessed = [item for item in items if item.tests.kind != "stdin"]
        stdin_items = [item for item in items if item.tests.kind == "stdin"]
        first_wave = {id(item): range(1 if stop_first else len(item.tests.cases)) for item in stdin_items}
        self._wave(harnessed, stdin_items, first_wave)
        if stop_first:
            rest = [item for item in stdin_items if item.results.get(0, CodeTestResult(0, "")).passed]
            self._wave([], rest, {id(item): range(1, len(item.tests.cases)) for item in rest})

    def _wave(self, harnessed: list[_Item], stdin_items: list[_Item], cases: dict[int, range]) -> None:
        jobs = [
            harness_job(item.program, item.tests, self._budget, self.config.stop_at_first_failure)
            for item in harnessed
        ]
        plan = [(item, index) for item in stdin_items for index in cases[id(item)]]
        all_jobs = [job.job for job in jobs] + [
            stdin_job(item.program, item.tests, i, self._budget) for item, i in plan
        ]
        if not all_jobs:
            return
        try:
            results = list(self.sandbox.run_many(all_jobs))
        except Exception as exc:
            results = [ExecResult.sandbox_error(f"the sandbox failed: {exc!r}")] * len(all_jobs)
        for item, job, result in zip(harnessed, jobs, results, strict=False):
            item.wall_s += result.wall_s
            self._read_harness(item, job, result)
        for (item, index), result in zip(plan, results[len(jobs) :], strict=True):
            item.wall_s += result.wall_s
            item.results[index] = self._judge_stdin(item.tests, index, result)

    # -- deciding tests -------------------------------------------------------------------------------------

    def _judge_stdin(self, tests: CodeTests, index: int, result: ExecResult) -> CodeTestResult:
        case = tests.cases[index]
        cut = self.config.feedback_chars
        base = {"index": index, "time_s": result.wall_s, "input": _cut(case.input, cut)}
        if result.status == "ok":
            equal, why = compare_stdout(result.stdout, case.output, self.config.float_tolerance)
            if equal:
                return CodeTestResult(index, PASSED, result.wall_s)
            return CodeTestResult(
                **base,
                status=WRONG_ANSWER,
                expected=_cut(case.output, cut),
                got=_cut(result.stdout, cut),
                error=why,
            )
        if result.status in _JOB_STATUS:
            status = _JOB_STATUS[result.status]
            error = result.detail or _tail(result.stderr, cut) or status.replace("_", " ")
            if status == TIMEOUT:
                error = f"time limit exceeded ({min(self.config.test_timeout_s, self.config.total_timeout_s):g} s)"
            return CodeTestResult(**base, status=status, error=error)
        why = (
            f"exit code {result.exit_code}" if result.signal is None else f"killed by signal {result.signal}"
        )
        return CodeTestResult(**base, status=RUNTIME_ERROR, error=_tail(result.stderr, cut) or why)

    def _read_harness(self, item: _Item, job: HarnessJob, result: ExecResult) -> None:
        tests, cut = item.tests, self.config.feedback_chars
        count = len(tests.cases)
        report = read_report(result.stdout, job.secret, count)
        if report.problem:
            item.reason, item.error = TAMPERING, report.problem
            return
        if report.setup is None:
            item.reason, item.error = _no_record(result, "before the tests were set up", cut)
            return
        setup_status, setup_info = report.setup
        if setup_status != "ok":
            item.reason = {
                "syntax_error": SYNTAX_ERROR,
                "bad_tests": BAD_TESTS,
                "tampering": TAMPERING,
                "timeout": TIMEOUT,
                "memory": MEMORY,
            }.get(setup_status, RUNTIME_ERROR)
            item.error = _cut(str(setup_info.get("error", "")), cut) or setup_status
            if item.reason == TIMEOUT:
                item.error = (
                    f"the code's top-level statements took more than {self.config.test_timeout_s:g} s"
                )
            return
        for index in range(count):
            case = tests.cases[index]
            shown_input = _cut(case.input, cut)
            if index not in report.tests:
                if any(r.status != PASSED for r in item.results.values()):
                    break  # stopped after a failure
                reason, error = _no_record(result, f"before test {index + 1} reported", cut)
                item.results[index] = CodeTestResult(index, reason, None, shown_input, error=error)
                break
            status, info = report.tests[index]
            if status == TAMPERING:
                item.reason, item.error = TAMPERING, _cut(str(info.get("error", "")), cut)
                return
            elapsed = info.get("time")
            if tests.kind == "functional" and status == "returned":
                item.results[index] = self._judge_value(tests, index, info.get("value"), elapsed)
            elif tests.kind == "assert" and status == PASSED:
                item.results[index] = CodeTestResult(index, PASSED, elapsed)
            else:
                item.results[index] = self._harness_failure(tests, index, status, info)

    def _harness_failure(
        self, tests: CodeTests, index: int, status: str, info: dict[str, Any]
    ) -> CodeTestResult:
        case, cut = tests.cases[index], self.config.feedback_chars
        error = _cut(str(info.get("error", "")), cut)
        if status == "not_plain" or (status == "error" and info.get("assert")):
            reason = WRONG_ANSWER
        else:
            reason = {"timeout": TIMEOUT, "memory": MEMORY}.get(status, RUNTIME_ERROR)
        if reason == TIMEOUT:
            error = f"time limit exceeded ({self.config.test_timeout_s:g} s)" + (
                f"; {error}" if error else ""
            )
        expected = str(info.get("expected", "")) or (case.output if tests.kind == "functional" else "")
        return CodeTestResult(
            index,
            reason,
            info.get("time"),
            _cut(case.input, cut),
            expected=_cut(expected, cut),
            got=_cut(str(info.get("got", "")), cut),
            error=error,
        )

    def _judge_value(self, tests: CodeTests, index: int, value: Any, elapsed: float | None) -> CodeTestResult:
        case, cut = tests.cases[index], self.config.feedback_chars
        try:
            expected = json.loads(case.output)
        except ValueError as exc:
            return CodeTestResult(
                index, BAD_TESTS, elapsed, _cut(case.input, cut), error=f"expected output: {exc}"
            )
        if values_equal(value, expected, self.config.float_tolerance):
            return CodeTestResult(index, PASSED, elapsed)
        return CodeTestResult(
            index,
            WRONG_ANSWER,
            elapsed,
            _cut(case.input, cut),
            expected=_cut(case.output, cut),
            got=_cut(_show(value), cut),
        )

    def _verdict(self, item: _Item) -> CodeVerdict:
        total = len(item.tests.cases)
        details: dict[str, Any] = {
            "extracted": item.extraction.code,
            "extraction": item.extraction.method,
            "blocks": item.extraction.blocks,
            "wall_s": round(item.wall_s, 4),
            "task_id": item.tests.task_id,
        }
        if item.reason:
            details["error"] = item.error
            results = tuple(
                CodeTestResult(i, item.reason, error=item.error if i == 0 else "") for i in range(total)
            )
            return CodeVerdict(
                0.0, False, item.reason, details, 0, total, results[0] if results else None, results
            )
        results = []
        failed = False
        for index in range(total):
            result = item.results.get(index)
            if result is None or (failed and self.config.stop_at_first_failure):
                result = CodeTestResult(index, NOT_RUN)
            results.append(result)
            failed = failed or not result.passed
        passed = sum(r.passed for r in results)
        first = next((r for r in results if not r.passed), None)
        correct = first is None
        reason = CORRECT if correct else (first.status if first.status != NOT_RUN else RUNTIME_ERROR)
        score = float(correct) if self.config.score == "all" else passed / total
        if first is not None and first.error:
            details["error"] = first.error
        return CodeVerdict(score, correct, reason, details, passed, total, first, tuple(results))


# -- helpers ------------------------------------------------------------------------------------------------


def _verdict_without_run(
    reason: str, error: str, total: int, extraction: CodeExtraction | None = None
) -> CodeVerdict:
    details: dict[str, Any] = {"error": error}
    if extraction is not None:
        details.update(extracted=extraction.code, extraction=extraction.method, blocks=extraction.blocks)
    results = tuple(CodeTestResult(i, reason, error=error if i == 0 else "") for i in range(total))
    return CodeVerdict(0.0, False, reason, details, 0, total, results[0] if results else None, results)


def _join(prefix: str, code: str, method: str) -> str:
    if not prefix or method == "raw" or prefix.endswith("\n"):
        return prefix + code
    return prefix + "\n" + code


def _syntax_error(program: str) -> str:
    try:
        ast.parse(program, CANDIDATE_FILENAME)
    except SyntaxError as exc:
        line = (exc.text or "").strip()
        return f"SyntaxError: {exc.msg} (line {exc.lineno}{': ' + line[:200] if line else ''})"
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return f"{type(exc).__name__}: the code cannot be parsed ({exc})"
    return ""


def _no_record(result: ExecResult, when: str, cut: int) -> tuple[str, str]:
    """Why a harness job stopped reporting: its job status, or a program that ended on its own."""
    if result.status in _JOB_STATUS:
        reason = _JOB_STATUS[result.status]
        return reason, result.detail or f"{reason.replace('_', ' ')} {when}"
    tail = _tail(result.stderr, cut)
    ended = "was killed by a signal" if result.signal is not None else f"exited with code {result.exit_code}"
    return RUNTIME_ERROR, f"the program {ended} {when}" + (f": {tail}" if tail else "")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit // 2] + " ... " + text[-limit // 2 :]


def _tail(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _show(value: Any) -> str:
    try:
        return repr(value)
    except ValueError:
        return "<an integer too long to print>"
