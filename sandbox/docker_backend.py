"""The Docker backend: a pool of long-lived, hardened containers, each running the job runner as PID 1.

Each container: no network, read-only root, a small tmpfs `/tmp`, memory and pids limits, every capability
dropped except the few the runner needs to switch each job to a non-root uid, no-new-privileges, no logging
driver. Each container runs its jobs as its own uid (JOB_UID and up, one per live runner on this machine), so
that jobs in different containers never share a process count. The runner talks over the container's attach
stream (stdin/stdout), attached before the container starts, so a remote engine set with `DOCKER_HOST` works the
same as the local one.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from rlvr.sandbox.base import RUNNER_SOURCE, RunnerPool, RunnerSession, SandboxUnavailable, UidLease
from rlvr.sandbox.protocol import DockerFrames

DEFAULT_IMAGE = "rlvr-sandbox:py3-bookworm-v1"
JOB_UID = 10000  # the first job uid; a container's jobs run as JOB_UID + k, k < JOB_UIDS
JOB_UIDS = 1000
_CAPABILITIES = ["SETUID", "SETGID", "KILL", "CHOWN", "DAC_OVERRIDE", "FOWNER"]
LABEL = "org.rlvr.sandbox"  # on every sandbox container (value "1")
POOL_LABEL = "org.rlvr.sandbox.pool"  # the `pool_id` of the DockerSandbox that started the container


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def docker_client(timeout_s: float = 10.0) -> Any:
    """A connected docker SDK client, or SandboxUnavailable saying how to get one."""
    try:
        import docker
    except ImportError as exc:
        raise SandboxUnavailable("the docker Python SDK is not installed: pip install docker") from exc
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except Exception as exc:
        raise SandboxUnavailable(
            f"Docker engine not reachable at {engine_address()} ({type(exc).__name__}); start dockerd "
            "(bash scripts/setup_sandbox.sh does) or use backend='local'"
        ) from exc
    return client


class DockerSession(RunnerSession):
    def __init__(
        self,
        client: Any,
        image: str,
        memory_mb: int,
        pids: int,
        tmp_mb: int,
        seccomp: bool,
        lease: UidLease | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        super().__init__(lease)
        uid = lease.uid if lease is not None else JOB_UID
        # Created, attached, then started: the runner's first message (ready) is written as soon as it starts, and
        # with no logging driver whatever a container writes before anyone is attached is lost.
        self.container = client.containers.create(
            image,
            ["python3", "-I", "-c", RUNNER_SOURCE, "--uid", str(uid), "--private-tmp"]
            + ([] if seccomp else ["--no-seccomp"]),
            stdin_open=True,
            tty=False,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,size={tmp_mb}m,mode=1777"},
            mem_limit=f"{memory_mb}m",
            memswap_limit=f"{memory_mb}m",
            pids_limit=pids,
            cap_drop=["ALL"],
            cap_add=_CAPABILITIES,
            security_opt=["no-new-privileges"],
            log_config={"type": "none"},
            labels={LABEL: "1", **(labels or {})},
            user="0",
        )
        self._stream: Any = None
        try:
            stream = self.container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._socket: socket.socket = getattr(stream, "_sock", stream)
            self._stream = stream  # keep the wrapper alive: closing it closes the socket
            self._frames = DockerFrames()
            self.container.start()
            self.wait_ready()
        except BaseException:
            self.close()
            raise

    def _send(self, data: bytes) -> None:
        self._socket.sendall(data)

    def _receive(self, timeout_s: float) -> bytes:
        self._socket.settimeout(timeout_s)
        try:
            data = self._socket.recv(1 << 20)
        except TimeoutError as exc:
            raise TimeoutError from exc
        if not data:
            return b""
        stdout = self._frames.feed(data)
        if not stdout:
            raise TimeoutError  # only stderr or a partial frame so far; keep reading
        return stdout

    def _why_dead(self) -> str:
        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
            detail = f" (container {state.get('Status')}, exit {state.get('ExitCode')}"
            detail += ", killed by the out-of-memory killer)" if state.get("OOMKilled") else ")"
        except Exception:
            detail = " (container gone)"
        tail = self._frames.stderr.decode("utf-8", "replace").strip()
        return detail + (f": {tail[-500:]}" if tail else "")

    def close(self) -> None:
        try:
            if self._stream is not None:
                self._stream.close()
        except Exception:
            pass
        try:
            self.container.remove(force=True)
        except Exception:
            pass  # already gone
        self._release_uid()


class DockerSandbox(RunnerPool):
    """Runs jobs in `size` warm containers of `image` (build it with `rlvr sandbox build-image`).

    Every container carries the labels `org.rlvr.sandbox=1` and `org.rlvr.sandbox.pool=<pool_id>`.
    """

    backend = "docker"

    def __init__(
        self,
        size: int = 2,
        image: str = DEFAULT_IMAGE,
        recycle_after: int = 500,
        container_memory_mb: int = 1024,
        container_pids: int = 256,
        tmp_mb: int = 256,
        seccomp: bool = True,
    ) -> None:
        super().__init__(size, recycle_after)
        self.client = docker_client()
        self.image = image
        self.pool_id = uuid.uuid4().hex[:12]
        self._options = (container_memory_mb, container_pids, tmp_mb, seccomp)
        try:
            self.client.images.get(image)
        except Exception as exc:
            raise SandboxUnavailable(
                f"sandbox image {image!r} not found on the engine at {engine_address()}; build it with "
                "`rlvr sandbox build-image` (nothing can be pulled)"
            ) from exc

    def _new_session(self, slot: int) -> RunnerSession:
        lease = UidLease(JOB_UID, JOB_UIDS)
        try:
            return DockerSession(
                self.client, self.image, *self._options, lease=lease, labels={POOL_LABEL: self.pool_id}
            )
        except BaseException as exc:
            lease.release()
            if isinstance(exc, (SandboxUnavailable, KeyboardInterrupt, SystemExit)):
                raise
            raise SandboxUnavailable(
                f"could not start a sandbox container from {self.image!r}: {exc}"
            ) from exc
