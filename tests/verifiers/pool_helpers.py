"""Functions for DeadlinePool tests, imported by worker processes as `pool_helpers:NAME`.

The tests put this folder on the workers' PYTHONPATH; keep this module free of imports from the test suite.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any


def echo(item: Any) -> Any:
    """Return the item unchanged."""
    return item


def sleep_for(seconds: float) -> float:
    """Sleep, then return the seconds slept."""
    time.sleep(seconds)
    return seconds


def crash(code: int) -> None:
    """End the worker process at once, as a segfault or the OOM killer would."""
    os._exit(code)


def raise_error(message: str) -> None:
    """Raise an ordinary exception with `message`."""
    raise ValueError(message)


def unpicklable_result(_: Any) -> Any:
    """Return a value that cannot be sent back to the caller."""
    return threading.Lock()


def pid(_: Any) -> int:
    """The worker's process id."""
    return os.getpid()


def call(request: tuple[str, Any]) -> Any:
    """Dispatch `(name, argument)` to one of the functions above, so that one pool can exercise them all."""
    name, argument = request
    functions = {
        "echo": echo,
        "sleep_for": sleep_for,
        "crash": crash,
        "raise_error": raise_error,
        "unpicklable_result": unpicklable_result,
        "pid": pid,
    }
    return functions[name](argument)
