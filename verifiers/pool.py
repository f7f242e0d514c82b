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
import pickle
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from rlvr.verifiers.pool_worker import FAILED, OK, READY, _describe

TIMEOUT = "timeout"
CRASHED = "crashed"  # the worker process died, or could not start
CLOSED = "closed"  # the pool was closed before the item ran
__all__ = ["CLOSED", "CRASHED", "FAILED", "OK", "TIMEOUT", "DeadlinePool", "PoolOutcome"]

_MAX_START_FAILURES = 3
_MAX_WAIT_S = 3600.0  # longest single wait of the scheduler; selectors refuse infinite or huge timeouts
_WORKER_COMMAND = (
    "import sys; from rlvr.verifiers.pool_worker import serve; "
    "serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] or None)"
)


@dataclass(frozen=True)
class PoolOutcome:
    """What happened to one item: `status` is one of OK, FAILED (the function raised, or the item or result could
    not be pickled; `value` holds the exception as text), TIMEOUT, CRASHED (`value` says how), CLOSED."""

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
    payload: bytes  # the item, pickled by the caller: an unpicklable item fails its own future, not the pool
    timeout_s: float
    future: Future
    slot: int | None = None  # the worker slot this item prefers (see `submit`'s `affinity`)


class _Worker:
    def __init__(self, function_path: str, memory_limit_mb: int | None, warmup_path: str | None) -> None:
        parent, child = socket.socketpair()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER_COMMAND,
                function_path,
                str(child.fileno()),
                str(memory_limit_mb or 0),
                warmup_path or "",
            ],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.ready = False
        self.task: _Task | None = None
        self.started = 0.0
        self.slot = 0  # set by the pool: a replacement takes the slot of the worker it replaces

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

    Workers start on the first `submit`, or on `start()`. `warmup_path` ("module:function") is called once in
    each worker before it reports ready, to warm caches without counting against any item's deadline.
    `memory_limit_mb` caps each worker's address space, so an input that makes sympy build a gigantic integer
    fails with MemoryError instead of exhausting the machine. When workers
    fail to start several times in a row (a function that cannot be imported), queued items resolve CRASHED with
    the reason and no more workers are started until the next `submit` tries again.
    """

    def __init__(
        self,
        function_path: str,
        size: int | None = None,
        memory_limit_mb: int | None = 4096,
        warmup_path: str | None = None,
    ) -> None:
        if size is not None and size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.function_path = function_path
        self.warmup_path = warmup_path
        self.size = size or default_pool_size()
        self.memory_limit_mb = memory_limit_mb
        self._init_state()

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: collections.deque[_Task] = collections.deque()  # items without a preferred worker
        self._slot_queues: list[collections.deque[_Task]] = [collections.deque() for _ in range(self.size)]
        self._workers: list[_Worker] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_failures = 0
        self._broken: str | None = None  # set when workers cannot start; queued items fail instead of waiting
        self._all_ready = threading.Event()  # every worker has started and reported ready
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.replaced_workers = 0

    # -- caller side ---------------------------------------------------------------------------------------

    def submit(self, item: Any, timeout_s: float, affinity: int | None = None) -> Future:
        """Queue one call; the future resolves to a PoolOutcome (it never raises). `timeout_s` may be infinite.

        Items with the same `affinity` go to the same worker slot when it is free, so that what a worker cached
        for one (a parsed gold, sympy's caches) serves the next; an idle worker with nothing of its own takes
        any item, so affinity never leaves a worker idle while items wait.
        """
        if not timeout_s > 0:  # also refuses NaN, which would never time out
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if os.getpid() != self._pid:  # we are in a forked child: the parent's workers and thread are not ours
            self._init_state()
        future: Future = Future()
        try:
            payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            future.set_result(PoolOutcome(FAILED, f"item cannot be sent to a worker: {_describe(exc)}"))
            return future
        with self._lock:
            if self._closed:
                future.set_result(PoolOutcome(CLOSED))
                return future
            slot = None if affinity is None else affinity % self.size
            task = _Task(next(self._ids), payload, timeout_s, future, slot)
            (self._queue if slot is None else self._slot_queues[slot]).append(task)
            self._ensure_running()
        self._wake()
        return future

    def start(self, wait_s: float | None = None) -> bool:
        """Start the workers now instead of on the first `submit`; with `wait_s`, wait until all are ready.

        Returns True when all workers are ready (or when not waiting), False on timeout or if they cannot start.
        """
        if os.getpid() != self._pid:
            self._init_state()
        with self._lock:
            if self._closed:
                raise RuntimeError("this pool is closed; create a new one")
            self._ensure_running()
        self._wake()
        if wait_s is None:
            return True
        deadline = time.monotonic() + wait_s
        while not self._all_ready.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            with self._lock:
                if self._broken is not None or time.monotonic() >= deadline:
                    return False
        return True

    def _ensure_running(self) -> None:
        """Start the scheduler thread if needed, and retry workers that could not start before. Holds the lock."""
        if self._broken is not None:
            self._broken, self._start_failures = None, 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rlvr-deadline-pool", daemon=True)
            self._thread.start()

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

    # -- scheduler thread ------------------------------------------------------------------------------------

    def _top_up(self) -> None:
        """Start workers until there are `size`, unless starting them keeps failing (then wait for a submit)."""
        while len(self._workers) < self.size:
            with self._lock:
                if self._broken is not None:
                    return
            try:
                worker = _Worker(self.function_path, self.memory_limit_mb, self.warmup_path)
                worker.slot = min(set(range(self.size)) - {w.slot for w in self._workers})
                self._workers.append(worker)
            except OSError as exc:  # no process could be started at all (process or memory limits)
                self._start_failed(f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        while True:
            with self._lock:
                closed = self._closed
            if closed:
                self._shutdown()
                return
            self._assign()
            self._top_up()  # after assigning, so that a worker removed there is replaced before the wait
            busy = [w for w in self._workers if w.task is not None]
            timeout = (
                min(max(0.0, min(w.deadline for w in busy) - time.monotonic()), _MAX_WAIT_S) if busy else None
            )
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
                    self._remove(worker)
                    task.future.set_result(PoolOutcome(TIMEOUT, None, now - started))

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _assign(self) -> None:
        """Give each idle worker an item: first every worker its own slot's items, then anything left."""
        for steal in (False, True):
            for worker in list(self._workers):
                if worker.ready and worker.task is None:
                    self._assign_one(worker, steal)

    def _assign_one(self, worker: _Worker, steal: bool) -> None:
        task = self._next_task(worker.slot, steal)
        if task is not None:
            try:
                worker.conn.send((task.task_id, task.payload))
            except (OSError, ValueError):  # the worker died while idle: requeue the item and replace it
                with self._lock:
                    (self._queue if task.slot is None else self._slot_queues[task.slot]).appendleft(task)
                self._remove(worker)
                return
            worker.task, worker.started = task, time.monotonic()

    def _next_task(self, slot: int, steal: bool) -> _Task | None:
        """The oldest item for `slot`; with `steal`, else the oldest without a slot, else the oldest of the
        longest other slot's queue."""
        with self._lock:
            while True:
                queue = self._slot_queues[slot]
                if not queue and steal:
                    queue = self._queue or max(self._slot_queues, key=len)
                if not queue:
                    return None
                task = queue.popleft()
                if task.future.running() or task.future.set_running_or_notify_cancel():
                    return task

    def _take_queued(self) -> list[_Task]:
        """Empty every queue and return what was in them. Holds the lock."""
        pending = list(self._queue)
        self._queue = collections.deque()
        for queue in self._slot_queues:
            pending += queue
            queue.clear()
        return pending

    def _receive(self, worker: _Worker) -> None:
        task, started = worker.task, worker.started
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._on_death(worker, task, started)
            return
        try:
            message = pickle.loads(data)
        except Exception as exc:  # e.g. a result of a class this process cannot import
            message = (task.task_id if task else None, FAILED, f"result cannot be read: {_describe(exc)}")
        if message == READY:
            worker.ready = True
            if len(self._workers) == self.size and all(w.ready for w in self._workers):
                self._all_ready.set()
            with self._lock:
                self._start_failures = 0
            return
        worker.task = None
        task_id, status, value = message
        if task is not None and task_id == task.task_id:
            task.future.set_result(PoolOutcome(status, value, time.monotonic() - started))

    def _on_death(self, worker: _Worker, task: _Task | None, started: float) -> None:
        try:  # its socket closed: let it finish exiting, so that its own exit status is reported
            worker.process.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            pass
        self._remove(worker)
        why = f"worker exited with status {worker.process.returncode}"
        if task is not None:
            task.future.set_result(PoolOutcome(CRASHED, why, time.monotonic() - started))
        if not worker.ready:
            self._start_failed(why)

    def _start_failed(self, why: str) -> None:
        """Count a worker that could not start; after a few in a row, fail the queue instead of spinning."""
        with self._lock:
            self._start_failures += 1
            if self._start_failures < _MAX_START_FAILURES:
                return
            # Workers cannot start at all: fail loudly and stop starting new ones until the next submit.
            self._broken = (
                f"worker processes for {self.function_path} failed to start {self._start_failures} times "
                f"(last: {why}); check that `python -c 'import rlvr.verifiers.pool_worker'` works in this "
                "environment and that the function can be imported"
            )
            message, pending = self._broken, self._take_queued()
        for queued in pending:
            if queued.future.running() or queued.future.set_running_or_notify_cancel():
                queued.future.set_result(PoolOutcome(CRASHED, message))

    def _remove(self, worker: _Worker) -> None:
        """Kill a worker; the next scheduler round starts its replacement."""
        self._all_ready.clear()
        self._workers.remove(worker)
        worker.task = None
        worker.kill()
        self.replaced_workers += 1

    def _shutdown(self) -> None:
        for worker in self._workers:
            task = worker.task
            if task is not None:
                worker.kill()
                task.future.set_result(PoolOutcome(CLOSED))
            else:
                worker.stop()
        with self._lock:
            pending = self._take_queued()
        for task in pending:
            if task.future.running() or task.future.set_running_or_notify_cancel():
                task.future.set_result(PoolOutcome(CLOSED))
