"""Launching test workers under torchrun: a clean environment, a process group of their own, and a wait that
cannot hang (a timeout kills every rank, then the test fails with the output so far)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence

import pytest

LAUNCH_ENV = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "GROUP_RANK",
)
"""torchrun's variables: a test run under torchrun itself must not pass its own to the workers."""


def start(command: Sequence[str]) -> subprocess.Popen:
    """Start `command` with one thread per process, its output piped, in its own process group."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen(
        list(command),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a timeout kills the ranks too, not only torchrun
    )


def finish(process: subprocess.Popen, what: str, timeout_s: float) -> str:
    """Wait for `process` and return its output; fail the test when it exits non-zero or runs past `timeout_s`.

    On a timeout the whole process group is killed: killing torchrun alone would leave a rank holding the pipe,
    and reading the output would never end.
    """
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            output = "(no output: the pipe stayed open)"
        pytest.fail(f"{what} did not finish in {timeout_s} s (a hang):\n{output[-4000:]}")
    assert process.returncode == 0, f"{what} exited with {process.returncode}:\n{output[-4000:]}"
    return output
