"""Sandbox jobs for code tests, and reading back what they report.

A `stdin` case is one job: the candidate (after the prelude) runs as the program, the case's input on stdin;
its stdout is compared in the parent. Functional and assert suites are one job each: `code_harness_program.py`
runs the candidate and the tests and writes records tagged with a per-run secret (see that file); only tagged
records count, and only in the order the harness writes them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.sandbox import Job, Limits
from rlvr.verifiers.code_tests import CodeTests, decode_literal, referenced_modules

HARNESS_SOURCE = (Path(__file__).parent / "code_harness_program.py").read_text(encoding="utf-8")
_HARNESS_FILE = "rlvr_harness.py"

# main.py of a harness job: load the harness, delete both files, run it on a private copy of the builtins
# (nothing in __main__ keeps a reference to the harness's namespace).
HARNESS_MAIN = f'''def _rlvr_boot():
    import builtins
    import os

    with open("{_HARNESS_FILE}", encoding="utf-8") as handle:
        source = handle.read()
    os.unlink("{_HARNESS_FILE}")
    os.unlink("main.py")
    code = compile(source, "<rlvr harness>", "exec")
    exec(code, {{"__builtins__": dict(builtins.__dict__), "__name__": "__rlvr_harness__"}})


_rlvr_boot()
'''

# main.py of a stdin job: the prelude, then solution.py as the __main__ program.
_STDIN_MAIN = """def _rlvr_run():
    with open("solution.py", encoding="utf-8") as handle:
        source = handle.read()
    namespace = {{"__name__": "__main__", "__file__": "solution.py", "__builtins__": __builtins__}}
    exec(compile({prelude!r}, "<prelude>", "exec"), namespace)
    exec(compile(source, "solution.py", "exec"), namespace)


_rlvr_run()
"""

_GRACE_S = 1.0  # a harness job's wall limit over its time budget: interpreter start, imports, reporting


@dataclass(frozen=True)
class Budget:
    per_test_s: float
    total_s: float
    memory_mb: int
    output_bytes: int
    result_types: tuple[str, ...] = ()


def stdin_job(program: str, tests: CodeTests, index: int, budget: Budget) -> Job:
    """One stdin case: the program reads the case's input."""
    seconds = min(budget.per_test_s, budget.total_s)
    return Job(
        source=_STDIN_MAIN.format(prelude=tests.prelude),
        stdin=tests.cases[index].input,
        files={"solution.py": program},
        limits=Limits(
            wall_s=seconds,
            cpu_s=seconds,
            memory_mb=budget.memory_mb,
            output_bytes=budget.output_bytes,
        ),
    )


@dataclass(frozen=True)
class HarnessJob:
    job: Job
    secret: str = field(repr=False)


def harness_job(program: str, tests: CodeTests, budget: Budget, stop_first: bool) -> HarnessJob:
    """A functional or assert suite in one job; the expected results of functional cases stay in the parent."""
    secret = secrets.token_hex(16)
    functional = tests.kind == "functional"
    payload = {
        "kind": tests.kind,
        "code": program,
        "prelude": tests.prelude,
        "setup": tests.setup,
        "tests": [case.input for case in tests.cases],
        "fn_name": tests.fn_name,
        "entry_points": list(tests.entry_points),
        "modules": [] if functional else referenced_modules(tests),
        "result_types": list(budget.result_types),
        "per_test_s": budget.per_test_s,
        "total_s": budget.total_s,
        "stop_first": stop_first,
    }
    seconds = min(budget.total_s, budget.per_test_s * (len(tests.cases) + 1)) + _GRACE_S
    job = Job(
        source=HARNESS_MAIN,
        stdin=secret + "\n" + json.dumps(payload),
        files={_HARNESS_FILE: HARNESS_SOURCE},
        limits=Limits(
            wall_s=seconds,
            cpu_s=seconds,
            memory_mb=budget.memory_mb,
            output_bytes=budget.output_bytes,
        ),
    )
    return HarnessJob(job, secret)


@dataclass(frozen=True)
class HarnessReport:
    """What a harness job reported: its setup record, its test records by index, and whether it finished."""

    setup: tuple[str, dict[str, Any]] | None = None
    tests: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    done: bool = False
    problem: str = ""
    """Set when the records were out of order, repeated or unreadable: the run is not trusted at all."""


def read_report(stdout: str, secret: str, count: int) -> HarnessReport:
    """The records tagged with `secret` in `stdout`, checked to come in the harness's order."""
    tag = secret + " "
    setup: tuple[str, dict[str, Any]] | None = None
    tests: dict[int, tuple[str, dict[str, Any]]] = {}
    done = False
    for line in stdout.split("\n"):
        if not line.startswith(tag):
            continue
        try:
            record = decode_literal(line[len(tag) :])
            if type(record) is not tuple or not record:
                raise ValueError("a record is not a tuple")
            if done:
                raise ValueError("a record after the last one")
            if record[0] == "setup" and setup is None and len(record) == 3:
                setup = (str(record[1]), dict(record[2]))
            elif record[0] == "test" and setup is not None and len(record) == 4:
                index, status, info = record[1], str(record[2]), dict(record[3])
                if index != len(tests) or index >= count:
                    raise ValueError(f"test record {index!r} out of order")
                tests[index] = (status, info)
            elif record[0] == "done" and setup is not None:
                done = True
            else:
                raise ValueError(f"unexpected record {str(record[0])[:40]!r}")
        except (ValueError, TypeError) as exc:
            return HarnessReport(problem=f"the harness's records cannot be trusted: {exc}")
    return HarnessReport(setup, tests, done)
