"""Typed records of the sandbox: a job, its limits, and its result."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

# Result statuses.
OK = "ok"  # exited with code 0
ERROR = "error"  # exited with a non-zero code (an exception, a failed assert, sys.exit(1))
TIMEOUT = "timeout"  # passed its wall-time or CPU-time limit and was killed
MEMORY = "memory"  # ran out of memory: MemoryError, or killed by a container's out-of-memory killer
OUTPUT_LIMIT = "output_limit"  # wrote more than the output limit and was killed
KILLED = "killed"  # ended by a signal for another reason (for example it killed itself)
SANDBOX_ERROR = "sandbox_error"  # the sandbox failed (a container died mid-job); the program is not to blame

STATUSES = (OK, ERROR, TIMEOUT, MEMORY, OUTPUT_LIMIT, KILLED, SANDBOX_ERROR)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job."""

    wall_s: float = 10.0
    """Wall-clock time, seconds."""
    cpu_s: float = 10.0
    """CPU time, seconds (RLIMIT_CPU)."""
    memory_mb: int = 512
    """Address space, MiB (RLIMIT_AS)."""
    processes: int = 32
    """Processes and threads the job's user may have at once (RLIMIT_NPROC)."""
    output_bytes: int = 1 << 20
    """Bytes of stdout and of stderr kept; writing more kills the job with status `output_limit`."""
    file_size_mb: int = 16
    """Largest file the job may write, MiB (RLIMIT_FSIZE)."""

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_mb", "processes", "output_bytes", "file_size_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"Limits.{name} must be a number, got {value!r}")
            if not (value > 0 and math.isfinite(value)):  # an infinite limit would be no limit at all
                raise ValueError(f"Limits.{name} must be finite and > 0, got {value}")


@dataclass(frozen=True)
class Job:
    """A program to run: Python source, its stdin, extra files next to it, and its argv."""

    source: str
    stdin: str = ""
    files: dict[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    language: str = "python"
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.language != "python":
            raise ValueError(f"language {self.language!r} is not supported yet; use 'python'")
        for name in self.files:
            # A "", "." or ".." part: an absolute path, a directory, or a way out of the job directory.
            parts = name.split("/")
            if any(part in ("", ".", "..") for part in parts) or "\0" in name or name == "main.py":
                raise ValueError(
                    f"extra file name {name!r} must be a relative path of a file inside the job directory "
                    "(not main.py)"
                )

    def to_wire(self, job_id: int) -> dict[str, Any]:
        """The JSON message the job runner receives."""
        return {
            "id": job_id,
            "source": self.source,
            "stdin": self.stdin,
            "files": dict(self.files),
            "argv": list(self.argv),
            "limits": asdict(self.limits),
        }


@dataclass(frozen=True)
class ExecResult:
    """What happened to a job. `stdout`/`stderr` are truncated to the output limit (`truncated` says so)."""

    status: str
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    wall_s: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    @classmethod
    def from_wire(cls, message: dict[str, Any]) -> ExecResult:
        return cls(
            status=message["status"],
            exit_code=message.get("exit_code"),
            signal=message.get("signal"),
            stdout=message.get("stdout", ""),
            stderr=message.get("stderr", ""),
            truncated=bool(message.get("truncated", False)),
            wall_s=float(message.get("wall_s", 0.0)),
            detail=message.get("detail", ""),
        )

    @classmethod
    def sandbox_error(cls, detail: str, wall_s: float = 0.0) -> ExecResult:
        return cls(status=SANDBOX_ERROR, detail=detail, wall_s=wall_s)
