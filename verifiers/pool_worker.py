"""The loop of a deadline-pool worker process, started by `pool.py` as `serve(FUNC, FD, MEMORY_MB, WARMUP)`.

It imports FUNC ("module:function"), says it is ready, then answers (task_id, pickled item) messages on the
socket FD with (task_id, status, value) until it receives None or the socket closes.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import pickle
import resource
import signal
import socket
import sys
from multiprocessing.connection import Connection

READY = "ready"
_PR_SET_PDEATHSIG = 1
OK = "ok"
FAILED = "failed"


def serve(function_path: str, fd: int, memory_limit_mb: int, warmup_path: str | None = None) -> None:
    _die_with_parent()
    if memory_limit_mb > 0:
        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn = Connection(socket.socket(fileno=fd).detach())
    module_name, _, name = function_path.partition(":")
    function = getattr(importlib.import_module(module_name), name)
    if warmup_path:
        _warm_up(warmup_path)
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, payload = message
        try:
            # The item arrives pickled, and the reply is pickled here, so that an item this process cannot
            # unpickle or a result it cannot pickle comes back as FAILED instead of killing the worker.
            reply = pickle.dumps((task_id, OK, function(pickle.loads(payload))), pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # a bad input must come back as data, not kill the worker
            reply = pickle.dumps((task_id, FAILED, _describe(exc)), pickle.HIGHEST_PROTOCOL)
        try:
            conn.send_bytes(reply)
        except (OSError, ValueError):
            return


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its parent dies, so that a check still running when the caller
    exits (a runaway sympy computation) does not live on as an orphan."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the worker still exits when its socket closes
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _warm_up(warmup_path: str) -> None:
    """Run the warm-up function; a failing warm-up only costs speed, so it is reported and ignored."""
    try:
        module_name, _, name = warmup_path.partition(":")
        getattr(importlib.import_module(module_name), name)()
    except Exception as exc:
        print(f"rlvr: worker warm-up {warmup_path} failed: {_describe(exc)}", file=sys.stderr)


def _describe(exc: BaseException) -> str:
    """`Type: message` of an exception, short, even when its `__str__` fails."""
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable>"
    return f"{type(exc).__name__}: {text[:200]}"
