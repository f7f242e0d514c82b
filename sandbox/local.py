"""The local backend: job runners started once each inside bubblewrap, on this machine, without Docker.

In bubblewrap a runner gets new network, pid, ipc and uts namespaces, a read-only view of the system directories
only (`/usr`, `/etc` and the `/bin`, `/lib` links; no `/home`, `/root`, `/work`, `/var`), a private `/tmp` of
`tmp_mb` MiB, and only the capabilities it needs to switch each job to its non-root uid. Without bubblewrap the
runners run directly, still with rlimits, a per-runner non-root uid and the seccomp filter (which refuses network
sockets), and a loud warning says what is missing. Either way a runner starts with a minimal environment, never
this process's: a job is forked from it and could read back the environment it started with.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

from rlvr.sandbox.base import RUNNER_SOURCE, RunnerPool, RunnerSession, SandboxUnavailable, UidLease

log = logging.getLogger(__name__)

SYSTEM_PYTHON = (
    "/usr/bin/python3"  # the distribution's Python: readable by the jobs' uid, unlike a ~/.pyenv one
)
# Each live runner runs its jobs as its own uid 61000 + k, k < 1000 (no such users exist on a normal system).
_UID_BASE = 61000
_UIDS = 1000
# All a runner gets of the environment (a job is forked from the runner: it could read back the runner's).
_RUNNER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
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


def bubblewrap_command(python: str, runner_args: list[str], tmp_mb: int = 256) -> list[str]:
    caps: list[str] = []
    for cap in _CAPABILITIES:
        caps += ["--cap-add", cap]
    return [
        "bwrap",
        *_system_binds(),
        "--size", str(tmp_mb << 20), "--tmpfs", "/tmp",
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
    def __init__(self, lease: UidLease, use_bubblewrap: bool, seccomp: bool, tmp_mb: int = 256) -> None:
        super().__init__(lease)
        self._jobs_root: str | None = None
        runner_args = ["--uid", str(lease.uid)] + ([] if seccomp else ["--no-seccomp"])
        if use_bubblewrap:
            command = bubblewrap_command(SYSTEM_PYTHON, runner_args, tmp_mb)
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
            env=dict(_RUNNER_ENV),
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
        try:  # its stdout has just closed: give the process a moment to finish exiting
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return ""
        stderr = b""
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        while len(stderr) < 4000 and select.select([fd], [], [], 0.2)[0]:  # never block on a held pipe
            chunk = os.read(fd, 4000)
            if not chunk:
                break
            stderr += chunk
        return f" with status {code}: {stderr.decode('utf-8', 'replace').strip()[-2000:]}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        if self._jobs_root:
            shutil.rmtree(self._jobs_root, ignore_errors=True)
        self._release_uid()


class LocalSandbox(RunnerPool):
    """Runs jobs on this machine in `size` runners, each inside bubblewrap when it is installed.

    `tmp_mb` bounds each runner's private `/tmp` (the job directories), as the Docker backend's tmpfs does.
    """

    backend = "local"

    def __init__(
        self, size: int = 2, recycle_after: int = 500, seccomp: bool = True, tmp_mb: int = 256
    ) -> None:
        super().__init__(size, recycle_after)
        if tmp_mb < 1:
            raise ValueError(f"tmp_mb must be >= 1 MiB, got {tmp_mb}")
        self.tmp_mb = tmp_mb
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
        lease = UidLease(_UID_BASE, _UIDS)
        try:
            return LocalSession(lease, self.use_bubblewrap, self.seccomp, self.tmp_mb)
        except BaseException:
            lease.release()
            raise
