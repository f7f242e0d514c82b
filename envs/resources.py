"""Process-wide heavy resources shared by every environment instance: one sandbox, one math verifier.

Environments are cheap objects; the pools they score with are not. Each process creates one sandbox on first
use (`RLVR_SANDBOX` picks the backend, default "auto"; `RLVR_SANDBOX_WORKERS` its size, default 2) and closes it
at exit. Both pools are thread-safe, so the rollout loop steps many environments against them at once.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from rlvr.verifiers.math_verifier import MathVerifier, default_verifier
from rlvr.verifiers.types import Verdict

_lock = threading.Lock()
_sandbox: Any = None


def shared_sandbox() -> Any:
    """The process-wide sandbox (created on first call)."""
    global _sandbox
    with _lock:
        if _sandbox is None:
            from rlvr.sandbox import make_sandbox

            backend = os.environ.get("RLVR_SANDBOX", "auto")
            size = int(os.environ.get("RLVR_SANDBOX_WORKERS", "2"))
            _sandbox = make_sandbox(backend, size=size)
            atexit.register(close_shared_sandbox)
        return _sandbox


def close_shared_sandbox() -> None:
    """Close the process-wide sandbox (a later `shared_sandbox()` makes a new one)."""
    global _sandbox
    with _lock:
        sandbox, _sandbox = _sandbox, None
    if sandbox is not None:
        sandbox.close()


def shared_math_verifier() -> MathVerifier:
    """The process-wide math verifier (`rlvr.verifiers.default_verifier`)."""
    return default_verifier()


def verify_math_answer(gold: str, completion: str) -> Verdict:
    """The process-wide math verifier's verdict, less its `path` detail.

    `path` says how the verifier decided ("fast", "math_verify", or "cache" on a repeat), so it differs between
    two identical steps; environments put verdicts in `info`, which Gymnasium's contract wants repeatable.
    """
    verdict = shared_math_verifier().verify(gold, completion)
    details = {key: value for key, value in verdict.details.items() if key != "path"}
    return Verdict(verdict.score, verdict.correct, verdict.reason, details)
