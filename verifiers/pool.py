"""A pool of worker processes that runs one function with a hard deadline per call.

Each call runs in a worker process; a call still running at its deadline gets a `timeout` outcome at once, and
its worker is killed (SIGKILL) and replaced. One scheduler thread owns the workers; callers only queue items and
wait on `concurrent.futures.Future`s, so the pool is usable from any thread and, through `asyncio.wrap_future`,
from asyncio code. No `signal.alarm` runs in the caller's process.

Workers are plain child processes (`rlvr.verifiers.pool_worker.serve`), not multiprocessing children, so the
caller's `__main__` is never re-imported in them. A worker receives work only after it reports that its imports
are done, so a replacement's start-up time never counts against an item's deadline.
"""

from __future__ import annotations

import collections
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from rlvr.verifiers.pool_worker import FAILED, OK, READY

TIMEOUT = "timeout"
CRASHED = "crashed"  # the worker process died, or could not start
CLOSED = "closed"  # the pool was closed before the item ran
__all__ = ["CLOSED", "CRASHED", "FAILED", "OK", "TIMEOUT", "DeadlinePool", "PoolOutcome"]

_MAX_START_FAILURES = 3
_WORKER_COMMAND = "import sys; from rlvr.verifiers.pool_worker import serve; serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))"


@dataclass(frozen=True)
class PoolOutcome:
    """What happened to one item: `status` is one of OK, FAILED (the function raised; `value` holds the
    exception), TIMEOUT, CRASHED, CLOSED."""

    status: str
    value: Any = None
    seconds: float = 0.0


def default_pool_size() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _Task:
    task_id: int
    item: Any
    timeout_s: float
    future: Future


class _Worker:
    def __init__(self, function_path: str, memory_limit_mb: int | None) -> None:
        parent, child = socket.socketpair()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER_COMMAND,
                function_path,
                str(child.fileno()),
                str(memory_limit_mb or 0),
            ],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.ready = False
        self.task: _Task | None = None
        self.started = 0.0

    @property
    def deadline(self) -> float:
        assert self.task is not None
        return self.started + self.task.timeout_s

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.process.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=10)
        self.conn.close()


class DeadlinePool:
    """Runs `function_path` ("module:function") on items in `size` worker processes, each call under a deadline.

    Workers start on the first `submit`. `memory_limit_mb` caps each worker's address space, so an input that
    makes sympy build a gigantic integer fails with MemoryError instead of exhausting the machine.
    """

    def __init__(
        self, function_path: str, size: int | None = None, memory_limit_mb: int | None = 4096
    ) -> None:
        if size is not None and size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.function_path = function_path
        self.size = size or default_pool_size()
        self.memory_limit_mb = memory_limit_mb
        self._init_state()

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: collections.deque[_Task] = collections.deque()
        self._workers: list[_Worker] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_failures = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.replaced_workers = 0

    # -- caller side ---------------------------------------------------------------------------------------

    def submit(self, item: Any, timeout_s: float) -> Future:
        """Queue one call; the future resolves to a PoolOutcome (it never raises)."""
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if os.getpid() != self._pid:  # we are in a forked child: the parent's workers and thread are not ours
            self._init_state()
        future: Future = Future()
        with self._lock:
            if self._closed:
                future.set_result(PoolOutcome(CLOSED))
                return future
            self._queue.append(_Task(next(self._ids), item, timeout_s, future))
            if self._thread is None:
                self._start()
        self._wake()
        return future

    def close(self) -> None:
        """Stop the workers; items not yet finished resolve with status CLOSED."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._wake()
        if thread is not None and os.getpid() == self._pid:
            thread.join(timeout=30)
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> DeadlinePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or the pool is closing

    def _start(self) -> None:
        self._workers = [self._new_worker() for _ in range(self.size)]
        self._thread = threading.Thread(target=self._run, name="rlvr-deadline-pool", daemon=True)
        self._thread.start()

    def _new_worker(self) -> _Worker:
        return _Worker(self.function_path, self.memory_limit_mb)

    # -- scheduler thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                closed = self._closed
            if closed:
                self._shutdown()
                return
            self._assign()
            busy = [w for w in self._workers if w.task is not None]
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic()) if busy else None
            ready = wait([self._wake_r, *(w.conn for w in self._workers)], timeout)
            if self._wake_r in ready:
                self._drain_wake()
            for worker in list(self._workers):
                if worker.conn in ready:
                    self._receive(worker)
            now = time.monotonic()
            for worker in busy:
                if worker.task is not None and now >= worker.deadline:
                    task, started = worker.task, worker.started
                    self._replace(worker)
                    task.future.set_result(PoolOutcome(TIMEOUT, None, now - started))

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _assign(self) -> None:
        for worker in self._workers:
            if not worker.ready or worker.task is not None:
                continue
            task = self._next_task()
            if task is None:
                return
            try:
                worker.conn.send((task.task_id, task.item))
            except (OSError, ValueError):  # the worker died while idle: requeue the item and replace it
                with self._lock:
                    self._queue.appendleft(task)
                self._replace(worker)
                continue
            worker.task, worker.started = task, time.monotonic()

    def _next_task(self) -> _Task | None:
        with self._lock:
            while self._queue:
                task = self._queue.popleft()
                if task.future.running() or task.future.set_running_or_notify_cancel():
                    return task
        return None

    def _receive(self, worker: _Worker) -> None:
        task, started = worker.task, worker.started
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._on_death(worker, task, started)
            return
        if message == READY:
            worker.ready = True
            self._start_failures = 0
            return
        worker.task = None
        task_id, status, value = message
        if task is not None and task_id == task.task_id:
            task.future.set_result(PoolOutcome(status, value, time.monotonic() - started))

    def _on_death(self, worker: _Worker, task: _Task | None, started: float) -> None:
        if not worker.ready:
            self._start_failures += 1
        self._replace(worker)
        if task is not None:
            task.future.set_result(PoolOutcome(CRASHED, None, time.monotonic() - started))
        if (
            self._start_failures >= _MAX_START_FAILURES
        ):  # workers cannot start at all: fail loudly, do not spin
            with self._lock:
                pending, self._queue = list(self._queue), collections.deque()
            message = (
                f"worker processes for {self.function_path} failed to start {self._start_failures} times; "
                "check that `python -c 'import rlvr.verifiers.pool_worker'` works in this environment"
            )
            for queued in pending:
                if queued.future.running() or queued.future.set_running_or_notify_cancel():
                    queued.future.set_result(PoolOutcome(CRASHED, message))

    def _replace(self, worker: _Worker) -> None:
        index = self._workers.index(worker)
        worker.task = None
        worker.kill()
        self.replaced_workers += 1
        self._workers[index] = self._new_worker()

    def _shutdown(self) -> None:
        for worker in self._workers:
            task = worker.task
            if task is not None:
                worker.kill()
                task.future.set_result(PoolOutcome(CLOSED))
            else:
                worker.stop()
        with self._lock:
            pending, self._queue = list(self._queue), collections.deque()
        for task in pending:
            if task.future.running() or task.future.set_running_or_notify_cancel():
                task.future.set_result(PoolOutcome(CLOSED))
