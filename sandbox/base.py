"""What both backends share: a runner session, and a bounded pool of sessions behind one Sandbox interface."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rlvr.sandbox.protocol import MessageBuffer, encode
from rlvr.sandbox.types import MEMORY, TIMEOUT, ExecResult, Job

RUNNER_SOURCE = (Path(__file__).parent / "runner.py").read_text(encoding="utf-8")
_GRACE_S = 10.0  # beyond a job's wall limit, how long the runner may take to kill, clean up and answer


class SandboxUnavailable(RuntimeError):
    """A backend cannot start here (no engine, no image, no bubblewrap); the message says what to do."""


class SessionBroken(RuntimeError):
    """A runner session stopped answering (its container or process died); its job gets `sandbox_error`."""


class UidLease:
    """A job uid reserved for one runner: no other live runner on this machine, in this process or another, gets it.

    Jobs of one uid share its process count (RLIMIT_NPROC counts per uid across the whole kernel) and the runner
    kills every process of its uid after each job, so two runners must never share one. The reservation is an
    exclusive `flock` on a file per uid, held until `release()` or until this process exits.
    """

    def __init__(self, base: int, count: int) -> None:
        lock_dir = os.path.join(tempfile.gettempdir(), f"rlvr-sandbox-uids-{os.getuid()}")
        os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        for uid in range(base, base + count):
            fd = os.open(os.path.join(lock_dir, f"{uid}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid: int = uid
            self._fd: int | None = fd
            return
        raise SandboxUnavailable(
            f"all {count} job uids {base}..{base + count - 1} are taken by other live sandbox runners on this machine"
        )

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


class RunnerSession(ABC):
    """One job runner (a container, or a process in bubblewrap) that runs one job at a time."""

    def __init__(self, lease: UidLease | None = None) -> None:
        self.info: dict[str, Any] = {}
        self.jobs_done = 0
        self.lease = lease
        """The job uid this runner runs every job as; released by `close()`."""
        self._ids = itertools.count(1)
        self._buffer = MessageBuffer()

    @abstractmethod
    def _send(self, data: bytes) -> None: ...

    @abstractmethod
    def _receive(self, timeout_s: float) -> bytes:
        """Bytes of the runner's stdout (b"" at EOF); raise TimeoutError when none came in time."""

    @abstractmethod
    def close(self) -> None:
        """Stop the runner (and every process of its jobs); implementations end with `_release_uid()`."""

    def _release_uid(self) -> None:
        if self.lease is not None:
            self.lease.release()

    def _read_message(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            message = self._buffer.pop()
            if message is not None:
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SessionBroken(f"the runner did not answer within {timeout_s:.0f} s")
            try:
                data = self._receive(remaining)
            except TimeoutError:
                continue
            except OSError as exc:
                raise SessionBroken(f"lost the connection to the runner: {exc}") from exc
            if not data:
                raise SessionBroken(f"the runner exited{self._why_dead()}")
            self._buffer.feed(data)

    def _why_dead(self) -> str:
        return ""

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        self.info = self._read_message(timeout_s)
        if not self.info.get("ready"):
            raise SessionBroken(f"the runner did not start: {self.info}")

    def execute(self, job: Job) -> ExecResult:
        job_id = next(self._ids)
        try:
            self._send(encode(job.to_wire(job_id)))
        except OSError as exc:
            raise SessionBroken(f"cannot send the job to the runner: {exc}") from exc
        message = self._read_message(job.limits.wall_s + _GRACE_S)
        if message.get("id") != job_id:
            raise SessionBroken(f"the runner answered job {message.get('id')} for job {job_id}")
        self.jobs_done += 1
        return ExecResult.from_wire(message)


class RunnerPool:
    """The Sandbox interface over `size` runner sessions: `run`, `run_many`, `arun`, `arun_many`, `close`.

    A session is replaced after a job that timed out or ran out of memory, after `recycle_after` jobs, and when
    it breaks (its job then gets `sandbox_error`). Sessions start on first use, or all at once with `start()`.
    """

    backend = "base"

    def __init__(self, size: int, recycle_after: int = 500) -> None:
        if size < 1:
            raise ValueError(f"a sandbox needs at least one runner, got size={size}")
        if recycle_after < 1:
            raise ValueError(f"recycle_after must be >= 1 job, got {recycle_after}")
        self.size = size
        self.recycle_after = recycle_after
        self._slots = threading.Semaphore(size)
        self._idle: list[RunnerSession] = []
        self._lock = threading.Lock()
        self._closed = False
        self._executor: ThreadPoolExecutor | None = None
        self.sessions_started = 0

    @abstractmethod
    def _new_session(self, slot: int) -> RunnerSession: ...

    # -- the Sandbox interface ------------------------------------------------------------------------------

    def run(self, job: Job) -> ExecResult:
        """Run one job and return its result; never raises for anything the program does."""
        self._slots.acquire()
        try:
            try:
                session = self._take_session()
            except (SandboxUnavailable, SessionBroken) as exc:
                return ExecResult.sandbox_error(str(exc))
            try:
                result = session.execute(job)
            except SessionBroken as exc:
                session.close()
                return ExecResult.sandbox_error(str(exc))
            except BaseException:
                session.close()
                raise
            if result.status in (TIMEOUT, MEMORY) or session.jobs_done >= self.recycle_after:
                session.close()  # recycled: the next job gets a fresh runner
            else:
                self._give_back(session)
            return result
        finally:
            self._slots.release()

    def run_many(self, jobs: Sequence[Job]) -> list[ExecResult]:
        """Run jobs in parallel, at most `size` at once; results in the order of `jobs`."""
        if not jobs:
            return []
        return list(self._pool().map(self.run, jobs))

    async def arun(self, job: Job) -> ExecResult:
        return await asyncio.wrap_future(self._pool().submit(self.run, job))

    async def arun_many(self, jobs: Sequence[Job]) -> list[ExecResult]:
        return list(await asyncio.gather(*(self.arun(job) for job in jobs)))

    def start(self) -> None:
        """Start every session now (in parallel) instead of on first use. If one cannot start, the others that did
        are stopped again and the error is raised."""
        needed = self.size - len(self._idle)
        futures = [self._pool().submit(self._new_session, slot) for slot in range(needed)]
        sessions: list[RunnerSession] = []
        errors: list[BaseException] = []
        for future in futures:
            try:
                sessions.append(future.result())
            except BaseException as exc:
                errors.append(exc)
        if errors:
            for session in sessions:
                session.close()
            raise errors[0]
        with self._lock:
            self._idle.extend(sessions)
            self.sessions_started += len(sessions)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def __enter__(self) -> RunnerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sessions -------------------------------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.size, thread_name_prefix=f"rlvr-sandbox-{self.backend}"
                )
            return self._executor

    def _take_session(self) -> RunnerSession:
        with self._lock:
            if self._closed:
                raise SandboxUnavailable("this sandbox is closed; create a new one")
            if self._idle:
                return self._idle.pop()
            slot = self.sessions_started
            self.sessions_started += 1
        return self._new_session(slot)

    def _give_back(self, session: RunnerSession) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(session)
                return
        session.close()
