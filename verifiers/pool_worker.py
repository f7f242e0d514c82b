"""The loop of a deadline-pool worker process, started by `pool.py` as `serve(FUNC, FD, MEMORY_MB)`.

It imports FUNC ("module:function"), says it is ready, then answers (task_id, item) messages on the socket FD
with (task_id, status, value) until it receives None or the socket closes.
"""

from __future__ import annotations

import importlib
import resource
import socket
from multiprocessing.connection import Connection

READY = "ready"
OK = "ok"
FAILED = "failed"


def serve(function_path: str, fd: int, memory_limit_mb: int) -> None:
    if memory_limit_mb > 0:
        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn = Connection(socket.socket(fileno=fd).detach())
    module_name, _, name = function_path.partition(":")
    function = getattr(importlib.import_module(module_name), name)
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, item = message
        try:
            reply = (task_id, OK, function(item))
        except BaseException as exc:  # a bad input must come back as data, not kill the worker
            reply = (task_id, FAILED, f"{type(exc).__name__}: {str(exc)[:200]}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
