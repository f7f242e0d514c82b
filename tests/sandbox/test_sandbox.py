"""The Sandbox interface on both backends: I/O, files, every status with a real program, parallelism, asyncio,
closing, recycling, and the validation of limits and jobs."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import time
from typing import ClassVar

import pytest
from sandbox_helpers import (
    BACKENDS,
    descendants,
    open_sandbox,
    pool_containers,
    session_root_pid,
    skip_unless_available,
    wait_until,
)

from rlvr.sandbox import Job, Limits, LocalSandbox, SandboxUnavailable, make_sandbox
from rlvr.sandbox import local as local_backend
from rlvr.sandbox.base import UidLease

# -- input and output ------------------------------------------------------------------------------------------


def test_stdout_stderr_and_exit_code(sandbox):
    result = sandbox.run(Job("import sys\nprint('hello')\nprint('note', file=sys.stderr)"))
    assert result.status == "ok" and result.ok
    assert (result.exit_code, result.signal) == (0, None)
    assert result.stdout == "hello\n" and result.stderr == "note\n"
    assert not result.truncated and result.wall_s > 0


def test_stdin_and_argv(sandbox):
    source = "import sys\ndata = sys.stdin.read()\nprint(sys.argv[1:], repr(data.upper()))"
    result = sandbox.run(Job(source, stdin="two words\nand a line\n", argv=("x", "--flag", "3")))
    assert result.status == "ok", result.stderr
    assert result.stdout == "['x', '--flag', '3'] 'TWO WORDS\\nAND A LINE\\n'\n"


def test_large_stdin_and_unicode(sandbox):
    text = "héllo wörld ✓\n" * 200_000  # ~3 MB, far more than a pipe holds
    result = sandbox.run(Job("import sys\ndata = sys.stdin.read()\nprint(len(data), data[:13])", stdin=text))
    assert result.status == "ok", result.stderr
    assert result.stdout == f"{len(text)} héllo wörld ✓\n"


def test_program_that_never_reads_a_large_stdin(sandbox):
    # Regression: the runner kept SIGPIPE at its default, so feeding stdin to a program that had exited (or had
    # closed its stdin) killed the local runner (exit 141) and the job got `sandbox_error`.
    started = sandbox.sessions_started
    for source in ("print('hi')", "import os, time\nos.close(0)\ntime.sleep(0.2)\nprint('hi')"):
        result = sandbox.run(Job(source, stdin="x" * 5_000_000))
        assert (result.status, result.stdout) == ("ok", "hi\n"), (result.status, result.detail)
    assert sandbox.sessions_started == started  # the runner survived: nothing was replaced


def test_program_waits_for_its_non_daemon_threads(sandbox):
    # As `python main.py` does: the program ends when its last non-daemon thread does.
    source = (
        "import threading, time\n"
        "def main():\n    time.sleep(0.2)\n    print('from thread')\n"
        "threading.Thread(target=main).start()\n"
    )
    result = sandbox.run(Job(source))
    assert result.status == "ok" and result.stdout == "from thread\n"


def test_extra_files_are_importable_next_to_main(sandbox):
    files = {
        "helper.py": "def answer():\n    return 41\n",
        "pkg/__init__.py": "",
        "pkg/mod.py": "BONUS = 1\n",
        "data/input.txt": "from a file\n",
    }
    source = (
        "import helper\nfrom pkg.mod import BONUS\n"
        "print(helper.answer() + BONUS)\nprint(open('data/input.txt').read().strip())\n"
    )
    result = sandbox.run(Job(source, files=files))
    assert result.status == "ok", result.stderr
    assert result.stdout == "42\nfrom a file\n"


@pytest.mark.parametrize(
    "name",
    [
        "../evil.py",
        "/etc/passwd",
        "a/../../evil.py",
        "main.py",
        "",
        "a//b.py",
        "sub/",
        ".",
        "./main.py",
        "a\0b",
    ],
)
def test_job_rejects_file_names_outside_the_job_directory(name):
    with pytest.raises(ValueError, match="inside the job directory"):
        Job("pass", files={name: "x"})


def test_job_rejects_other_languages():
    with pytest.raises(ValueError, match="not supported"):
        Job("echo hi", language="bash")


# -- statuses ----------------------------------------------------------------------------------------------------


def test_status_error_with_exit_code(sandbox):
    result = sandbox.run(Job("import sys\nprint('partial')\nsys.exit(3)"))
    assert (result.status, result.exit_code, result.signal) == ("error", 3, None)
    assert result.stdout == "partial\n"


def test_status_error_for_an_exception_with_its_traceback(sandbox):
    result = sandbox.run(Job("def f():\n    raise ValueError('boom')\nf()\n"))
    assert (result.status, result.exit_code) == ("error", 1)
    assert 'File "main.py", line 3' in result.stderr and "ValueError: boom" in result.stderr
    assert "runpy" not in result.stderr and "runner" not in result.stderr  # starts at the program


def test_timeout_by_wall_time(sandbox):
    start = time.monotonic()
    result = sandbox.run(Job("import time\ntime.sleep(60)", limits=Limits(wall_s=1.0)))
    assert result.status == "timeout" and result.signal == signal.SIGKILL
    assert 1.0 <= result.wall_s < 2.0 and time.monotonic() - start < 5


def test_timeout_by_cpu_time(sandbox):
    result = sandbox.run(Job("while True:\n    pass", limits=Limits(wall_s=20, cpu_s=1)))
    assert result.status == "timeout" and result.signal == signal.SIGXCPU
    assert result.wall_s < 10  # the CPU limit ended it, not the wall limit


def test_memory(sandbox):
    result = sandbox.run(Job("blob = bytearray(2 << 30)", limits=Limits(memory_mb=256)))
    assert result.status == "memory" and "MemoryError" in result.stderr


def test_memory_growing_until_the_limit(sandbox):
    source = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))"
    result = sandbox.run(Job(source, limits=Limits(memory_mb=200, wall_s=10)))
    assert result.status == "memory", (result.status, result.stderr[-300:])


def test_a_program_that_only_mentions_memory_errors_is_ok(sandbox):
    # Regression: "MemoryError" anywhere in the stderr of a program that exited 0 made it `memory`.
    source = "import sys\nprint('MemoryError: cannot allocate memory (just a message)', file=sys.stderr)"
    result = sandbox.run(Job(source))
    assert (result.status, result.exit_code) == ("ok", 0)


def test_output_limit_keeps_output_up_to_the_limit(sandbox):
    source = "import sys\nwhile True:\n    sys.stdout.write('x' * 4096)"
    result = sandbox.run(Job(source, limits=Limits(output_bytes=10_000)))
    assert result.status == "output_limit" and result.truncated
    assert result.stdout == "x" * 10_000


def test_output_limit_on_stderr(sandbox):
    source = "import sys\nwhile True:\n    sys.stderr.write('e' * 4096)"
    result = sandbox.run(Job(source, limits=Limits(output_bytes=5_000)))
    assert result.status == "output_limit" and result.truncated
    assert result.stderr == "e" * 5_000


def test_output_exactly_at_the_limit_is_ok(sandbox):
    result = sandbox.run(Job("print('y' * 999)", limits=Limits(output_bytes=1_000)))
    assert (result.status, result.truncated, len(result.stdout)) == ("ok", False, 1_000)


@pytest.mark.parametrize(
    ("source", "signum"),
    [
        ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", signal.SIGTERM),
        ("import ctypes\nctypes.string_at(0)", signal.SIGSEGV),
        ("import os\nos.abort()", signal.SIGABRT),
    ],
    ids=["sigterm", "sigsegv", "abort"],
)
def test_killed_by_a_signal(sandbox, source, signum):
    result = sandbox.run(Job(source))
    assert (result.status, result.signal, result.exit_code) == ("killed", signum, None)


def test_subprocesses_and_threads_work(sandbox):
    source = (
        "import subprocess, sys, threading\n"
        "out = subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout\n"
        "box = []\nthreads = [threading.Thread(target=box.append, args=(i,)) for i in range(4)]\n"
        "[t.start() for t in threads]\n[t.join() for t in threads]\n"
        "print(out.strip(), sorted(box))\n"
    )
    result = sandbox.run(Job(source))
    assert (result.status, result.stdout) == ("ok", "42 [0, 1, 2, 3]\n"), result.stderr


# -- many jobs, asyncio ------------------------------------------------------------------------------------------


def sleeper(i: int, seconds: float = 1.0) -> Job:
    return Job(f"import time\ntime.sleep({seconds})\nprint({i})")


def test_run_many_keeps_order_and_runs_in_parallel(sandbox):
    start = time.monotonic()
    results = sandbox.run_many([sleeper(i) for i in range(4)])
    elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n", "3\n"]
    assert all(r.ok for r in results)
    assert 1.9 < elapsed < 3.3, elapsed  # two at a time: about two sleeps, never four


def test_run_many_mixed_statuses_in_order(sandbox):
    jobs = [Job("print(1)"), Job("raise SystemExit(2)"), Job("print(3)"), Job("import os\nos.abort()")]
    assert [r.status for r in sandbox.run_many(jobs)] == ["ok", "error", "ok", "killed"]
    assert sandbox.run_many([]) == []


def test_concurrent_runners_use_distinct_uids(sandbox):
    source = "import os, time\ntime.sleep(0.5)\nprint(os.getuid())"
    results = sandbox.run_many([Job(source), Job(source)])
    uids = {int(r.stdout) for r in results}
    assert len(uids) == 2 and all(uid >= 10000 for uid in uids)


def test_arun_and_arun_many(sandbox):
    async def main():
        one = await sandbox.arun(Job("print('async')"))
        start = time.monotonic()
        many = await sandbox.arun_many([sleeper(i, 0.8) for i in range(4)])
        return one, many, time.monotonic() - start

    one, many, elapsed = asyncio.run(main())
    assert (one.status, one.stdout) == ("ok", "async\n")
    assert [r.stdout for r in many] == ["0\n", "1\n", "2\n", "3\n"]
    assert elapsed < 2.9, elapsed


# -- lifecycle ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_context_manager_closes_everything(backend_name):
    with open_sandbox(backend_name, size=2) as sb:
        sb.start()
        assert sb.run(Job("print(1)")).ok
        roots = [session_root_pid(s) for s in sb._idle]
        processes = set().union(*(descendants(root) for root in roots))
        assert len(processes) >= 2 * 2  # per runner at least the runner and its fork server
        if backend_name == "docker":
            assert len(pool_containers(sb)) == 2
    if backend_name == "docker":
        assert pool_containers(sb) == []  # no container of this pool, running or stopped
    assert wait_until(lambda: not any(descendants(root) for root in roots)), "runner processes left"
    result = sb.run(Job("print(1)"))
    assert result.status == "sandbox_error" and "closed" in result.detail


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_recycles_after_a_timeout_and_after_recycle_after_jobs(backend_name):
    with open_sandbox(backend_name, size=1, recycle_after=3) as sb:
        uids = []
        for _ in range(3):  # jobs 1-3: the first runner, replaced after its third job
            first = sb._idle[0] if sb._idle else None
            result = sb.run(Job("import os\nprint(os.getuid())"))
            uids.append(int(result.stdout))
        assert sb.sessions_started == 1 and len(set(uids)) == 1 and sb._idle == []
        assert first is not None and first.lease._fd is None  # closed: its uid is free for another runner
        assert sb.run(Job("print(4)")).ok  # a second runner
        assert sb.sessions_started == 2
        second = sb._idle[0]
        assert sb.run(Job("import time\ntime.sleep(30)", limits=Limits(wall_s=0.5))).status == "timeout"
        assert sb._idle == [] and second.lease._fd is None  # the runner that timed out was replaced
        assert sb.run(Job("print(5)")).ok and sb.sessions_started == 3
        if backend_name == "docker":
            ids = [c.id for c in pool_containers(sb)]
            assert ids == [sb._idle[0].container.id]  # the replaced containers are gone
        else:
            assert wait_until(lambda: not descendants(session_root_pid(second)))


class RecordingLease(UidLease):
    made: ClassVar[list[UidLease]] = []

    def __init__(self, base: int, count: int) -> None:
        super().__init__(base, count)
        self.made.append(self)


def test_start_failure_stops_the_runners_that_did_start(monkeypatch):
    skip_unless_available("local")
    monkeypatch.setattr(local_backend, "UidLease", RecordingLease)
    RecordingLease.made.clear()
    sb = LocalSandbox(size=3)
    real = LocalSandbox._new_session
    calls = []

    def flaky(self, slot):
        calls.append(slot)
        if len(calls) == 2:
            raise SandboxUnavailable("no luck")
        return real(self, slot)

    monkeypatch.setattr(LocalSandbox, "_new_session", flaky)
    with pytest.raises(SandboxUnavailable, match="no luck"):
        sb.start()
    assert sb._idle == [] and len(RecordingLease.made) == 2
    # Regression: the runners that had started were dropped, still running and holding their uids.
    assert all(lease._fd is None for lease in RecordingLease.made)
    sb.close()


def test_uid_leases_are_exclusive():
    first = UidLease(64990, 2)
    second = UidLease(64990, 2)
    assert {first.uid, second.uid} == {64990, 64991}
    with pytest.raises(SandboxUnavailable, match=r"64990\.\.64991"):
        UidLease(64990, 2)
    first.release()
    third = UidLease(64990, 2)
    assert third.uid == first.uid
    second.release()
    third.release()


# -- validation --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limits",
    [
        {"wall_s": 0},
        {"wall_s": -1},
        {"wall_s": math.nan},
        {"wall_s": math.inf},
        {"cpu_s": math.inf},
        {"memory_mb": 0},
        {"processes": 0},
        {"output_bytes": -5},
        {"file_size_mb": 0},
        {"cpu_s": True},
        {"wall_s": "5"},
    ],
    ids=lambda d: ",".join(f"{k}={v!r}" for k, v in d.items()),
)
def test_limits_validation(limits):
    with pytest.raises(ValueError, match="Limits"):
        Limits(**limits)


def test_sandbox_validation():
    with pytest.raises(ValueError, match="size"):
        LocalSandbox(size=0)
    with pytest.raises(ValueError, match="recycle_after"):
        LocalSandbox(recycle_after=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        make_sandbox("firecracker")


def test_results_round_trip_as_json(sandbox):
    from dataclasses import asdict

    result = sandbox.run(Job("print('x')"))
    assert json.loads(json.dumps(asdict(result)))["stdout"] == "x\n"
