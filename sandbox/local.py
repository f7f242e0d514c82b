"""The local backend: job runners started once each inside bubblewrap, on this machine, without Docker.

In bubblewrap a runner gets new network, pid, ipc and uts namespaces, a read-only view of the system directories
only (`/usr`, `/etc` and the `/bin`, `/lib` links; no `/home`, `/root`, `/work`, `/var`), a private `/tmp`,
and only the capabilities it needs to switch each job to its non-root uid. Without bubblewrap the runners run
directly, still with rlimits, a per-runner non-root uid and the seccomp filter (which refuses network sockets),
and a loud warning says what is missing.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

from rlvr.sandbox.base import RUNNER_SOURCE, RunnerPool, RunnerSession, SandboxUnavailable

log = logging.getLogger(__name__)

SYSTEM_PYTHON = (
    "/usr/bin/python3"  # the distribution's Python: readable by the jobs' uid, unlike a ~/.pyenv one
)
_UID_BASE = 61000  # runner i runs its jobs as uid 61000 + i (no such users exist on a normal system)
_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER")


def bubblewrap_path() -> str | None:
    return shutil.which("bwrap")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(top), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    return args


def bubblewrap_command(python: str, runner_args: list[str]) -> list[str]:
    caps: list[str] = []
    for cap in _CAPABILITIES:
        caps += ["--cap-add", cap]
    return [
        "bwrap",
        *_system_binds(),
        "--tmpfs", "/tmp",
        "--dev", "/dev",
        "--proc", "/proc",
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--hostname", "rlvr-sandbox",
        "--die-with-parent", "--new-session",
        "--cap-drop", "ALL", *caps,
        "--chdir", "/tmp",
        "--", python, "-I", "-c", RUNNER_SOURCE, *runner_args, "--private-tmp",
    ]  # fmt: skip


class LocalSession(RunnerSession):
    def __init__(self, uid: int, use_bubblewrap: bool, seccomp: bool) -> None:
        super().__init__()
        self._jobs_root: str | None = None
        runner_args = ["--uid", str(uid)] + ([] if seccomp else ["--no-seccomp"])
        if use_bubblewrap:
            command = bubblewrap_command(SYSTEM_PYTHON, runner_args)
        else:
            self._jobs_root = tempfile.mkdtemp(prefix="rlvr-jobs-")
            os.chmod(self._jobs_root, 0o711)
            command = [SYSTEM_PYTHON, "-I", "-c", RUNNER_SOURCE, *runner_args, "--jobs-root", self._jobs_root]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise

    def _send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def _receive(self, timeout_s: float) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            raise TimeoutError
        return os.read(fd, 1 << 20)

    def _why_dead(self) -> str:
        code = self.process.poll()
        stderr = self.process.stderr.read(2000).decode("utf-8", "replace") if code is not None else ""
        return f" with status {code}: {stderr.strip()}" if code is not None else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        if self._jobs_root:
            shutil.rmtree(self._jobs_root, ignore_errors=True)


class LocalSandbox(RunnerPool):
    """Runs jobs on this machine in `size` runners, each inside bubblewrap when it is installed."""

    backend = "local"

    def __init__(self, size: int = 2, recycle_after: int = 500, seccomp: bool = True) -> None:
        super().__init__(size, recycle_after)
        if not Path(SYSTEM_PYTHON).exists():
            raise SandboxUnavailable(
                f"the local sandbox runs jobs with {SYSTEM_PYTHON}, which is missing; install it with "
                "`apt-get install python3` (bash scripts/setup_sandbox.sh does)"
            )
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                "the local sandbox must run as root to switch each job to its own non-root uid; "
                "run as root, or use the Docker backend"
            )
        self.use_bubblewrap = bubblewrap_path() is not None
        self.seccomp = seccomp
        if not self.use_bubblewrap:
            log.warning(
                "bubblewrap (bwrap) is not installed: local sandbox jobs run WITHOUT network, pid and mount "
                "namespaces and see this machine's files; they keep rlimits, a non-root uid and the seccomp filter "
                "(no network sockets). Install it with `apt-get install bubblewrap`."
            )

    def _new_session(self, slot: int) -> RunnerSession:
        return LocalSession(_UID_BASE + slot % 1000, self.use_bubblewrap, self.seccomp)
