"""Faults of the sandbox itself: a runner dying mid-job, no engine, no image, a slow attach; and the command line
(`rlvr sandbox doctor --json`, `rlvr sandbox run FILE --json`) on both backends."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sandbox_helpers import (
    BACKENDS,
    descendants,
    open_sandbox,
    pool_containers,
    runner_and_fork_server,
    session_root_pid,
    skip_unless_available,
    wait_until,
)

from rlvr.sandbox import (
    DockerSandbox,
    Job,
    Limits,
    LocalSandbox,
    SandboxUnavailable,
    docker_backend,
    doctor,
    make_sandbox,
)
from rlvr.sandbox import local as local_backend
from rlvr.sandbox.base import RunnerSession, UidLease

RLVR = shutil.which("rlvr", path=str(Path(sys.executable).parent)) or "rlvr"
NO_ENGINE = "unix:///nonexistent.sock"
SLEEP = Job("import time\ntime.sleep(30)", limits=Limits(wall_s=20))


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


# -- a runner dies mid-job ---------------------------------------------------------------------------------------


@pytest.mark.docker
def test_container_killed_mid_job():
    with open_sandbox("docker", size=1) as sb:
        sb.start()
        container = sb._idle[0].container
        later(0.8, lambda: sb.client.api.kill(container.id))
        start = time.monotonic()
        result = sb.run(SLEEP)
        assert result.status == "sandbox_error", result
        assert "runner exited" in result.detail and "container" in result.detail
        assert time.monotonic() - start < 6  # noticed at once, not at the wall limit
        assert container.id not in [c.id for c in pool_containers(sb)]  # the dead container was removed
        after = sb.run(Job("print('after')"))
        assert (after.status, after.stdout) == ("ok", "after\n")
        assert len(pool_containers(sb)) == 1 and sb.sessions_started == 2
    assert pool_containers(sb) == []


def test_local_runner_killed_mid_job():
    with open_sandbox("local", size=1) as sb:
        sb.start()
        session = sb._idle[0]
        outer = session_root_pid(session)
        runner, _ = runner_and_fork_server(session)
        processes = descendants(outer)
        later(0.8, lambda: os.kill(runner, signal.SIGKILL))
        start = time.monotonic()
        result = sb.run(SLEEP)
        assert result.status == "sandbox_error", result
        assert "runner exited" in result.detail
        assert time.monotonic() - start < 6
        # Everything of that runner is gone: bubblewrap, its init, the fork server, and the sleeping job.
        assert wait_until(lambda: not any(pid in descendants(outer) for pid in processes))
        after = sb.run(Job("print('after')"))
        assert (after.status, after.stdout) == ("ok", "after\n")
        assert sb.sessions_started == 2


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_fork_server_killed_mid_job(backend_name):
    with open_sandbox(backend_name, size=1) as sb:
        sb.start()
        _, fork_server = runner_and_fork_server(sb._idle[0])
        later(0.8, lambda: os.kill(fork_server, signal.SIGKILL))
        result = sb.run(SLEEP)
        assert result.status == "sandbox_error", result
        assert "fork server" in result.detail, result.detail  # the runner said why it gave up
        assert sb.run(Job("print('after')")).stdout == "after\n"
        assert sb.sessions_started == 2


# -- no engine, no image, a slow engine --------------------------------------------------------------------------


def test_unreachable_engine(monkeypatch, caplog):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with pytest.raises(SandboxUnavailable) as caught:
        DockerSandbox(size=1)
    message = str(caught.value)
    assert NO_ENGINE in message  # where it looked
    assert "scripts/setup_sandbox.sh" in message and "backend='local'" in message  # what to do
    report = doctor(measure=False)
    assert report["engine"] is None and NO_ENGINE in report["engine_error"]
    assert report["auto_backend"] == "local"

    skip_unless_available("local")
    with caplog.at_level(logging.WARNING, logger="rlvr.sandbox.factory"):
        sb = make_sandbox("auto", size=1)
    with sb:
        assert isinstance(sb, LocalSandbox)
        assert sb.run(Job("print('fell back')")).stdout == "fell back\n"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "falling back to the local backend" in warnings[0].getMessage()
    assert NO_ENGINE in warnings[0].getMessage()


@pytest.mark.docker
def test_missing_image(caplog):
    skip_unless_available("docker")
    with pytest.raises(SandboxUnavailable) as caught:
        DockerSandbox(size=1, image="rlvr-sandbox:no-such-tag")
    message = str(caught.value)
    assert "rlvr-sandbox:no-such-tag" in message and "`rlvr sandbox build-image`" in message
    skip_unless_available("local")
    with caplog.at_level(logging.WARNING, logger="rlvr.sandbox.factory"):
        sb = make_sandbox("auto", size=1, image="rlvr-sandbox:no-such-tag")
    sb.close()
    assert isinstance(sb, LocalSandbox)
    assert any("build-image" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.docker
def test_runner_ready_message_is_not_lost_to_a_slow_attach(monkeypatch):
    # Regression: the container was started and attached to afterwards; with no logging driver, what the runner
    # wrote before the attach (its ready message) was lost and the session failed after waiting 60 s.
    skip_unless_available("docker")
    import docker.models.containers

    real_attach = docker.models.containers.Container.attach_socket

    def slow_attach(self, *args, **kwargs):
        time.sleep(1.5)
        return real_attach(self, *args, **kwargs)

    real_wait = RunnerSession.wait_ready
    monkeypatch.setattr(docker.models.containers.Container, "attach_socket", slow_attach)
    monkeypatch.setattr(RunnerSession, "wait_ready", lambda self, timeout_s=10: real_wait(self, timeout_s))
    with DockerSandbox(size=1) as sb:
        result = sb.run(Job("print('ready')"))
        assert (result.status, result.stdout) == ("ok", "ready\n"), result.detail


@pytest.mark.docker
def test_container_that_cannot_be_attached_is_removed(monkeypatch):
    # Regression: a container whose attach failed was left running (and its uid reserved).
    skip_unless_available("docker")
    import docker.models.containers

    def broken_attach(self, *args, **kwargs):
        raise ConnectionError("attach refused")

    leases = []

    class RecordingLease(UidLease):
        def __init__(self, base: int, count: int) -> None:
            super().__init__(base, count)
            leases.append(self)

    monkeypatch.setattr(docker.models.containers.Container, "attach_socket", broken_attach)
    monkeypatch.setattr(docker_backend, "UidLease", RecordingLease)
    sb = DockerSandbox(size=1)
    with pytest.raises(SandboxUnavailable, match="attach refused"):
        sb.start()
    assert pool_containers(sb) == []
    assert len(leases) == 1 and leases[0]._fd is None  # its uid was given back
    sb.close()


# -- the command line --------------------------------------------------------------------------------------------


def cli(*args: str, backend: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if backend == "local":
        env["DOCKER_HOST"] = NO_ENGINE  # `doctor` measures the backend `auto` picks: make it pick local
    result = subprocess.run([RLVR, *args], capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_cli_doctor_json(backend_name):
    skip_unless_available(backend_name)
    report = json.loads(cli("sandbox", "doctor", "--json", backend=backend_name).stdout)
    assert report["auto_backend"] == backend_name
    assert "measure_error" not in report, report
    assert report["seccomp"] == "deny-list filter"
    assert 0 < report["latency_ms_p50"] < 1000
    if backend_name == "docker":
        assert report["engine"] and report["image_present"] is True
    else:
        assert report["engine"] is None and report["bubblewrap"]


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_cli_run_json(backend_name, tmp_path):
    skip_unless_available(backend_name)
    program, stdin = tmp_path / "add.py", tmp_path / "in.txt"
    program.write_text("import sys\nprint(sum(map(int, sys.stdin.read().split())))\n", encoding="utf-8")
    stdin.write_text("2 40\n", encoding="utf-8")
    args = ("sandbox", "run", str(program), "--stdin", str(stdin), "--backend", backend_name, "--json")
    result = json.loads(cli(*args, backend=backend_name).stdout)
    assert (result["status"], result["stdout"], result["backend"]) == ("ok", "42\n", backend_name)

    program.write_text("while True:\n    pass\n", encoding="utf-8")
    args = ("sandbox", "run", str(program), "--timeout", "1", "--backend", backend_name, "--json")
    completed = cli(*args, backend=backend_name, check=False)
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["status"] == "timeout"


def test_local_without_bubblewrap_warns_and_still_confines(monkeypatch, caplog):
    """No bwrap: the runners run directly, loudly, and keep rlimits, the non-root uid and the seccomp filter."""
    skip_unless_available("local")
    monkeypatch.setattr(local_backend, "bubblewrap_path", lambda: None)
    with caplog.at_level("WARNING", logger="rlvr.sandbox.local"), LocalSandbox(size=1) as sandbox:
        assert not sandbox.use_bubblewrap
        assert any("bubblewrap (bwrap) is not installed" in r.getMessage() for r in caplog.records)
        ok = sandbox.run(Job("import os; print(os.getuid() != 0, sorted(os.environ))"))
        assert ok.status == "ok" and ok.stdout.startswith("True"), ok
        network = sandbox.run(Job("import socket; socket.socket().connect(('127.0.0.1', 9))"))
        assert network.status == "error" and "Operation not permitted" in network.stderr, network
        loop = sandbox.run(Job("while True: pass", limits=Limits(wall_s=1, cpu_s=1)))
        assert loop.status == "timeout", loop


class _TcpToUnixForwarder:
    """A loopback TCP endpoint relaying to the local engine's socket: the Docker API over TCP, as a remote
    engine named by DOCKER_HOST=tcp://HOST:PORT is reached (bounded: it stops with the test)."""

    def __init__(self, unix_path: str) -> None:
        import socket

        self._unix_path = unix_path
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import socket

        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self._unix_path)
            for source, target in ((client, engine), (engine, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source, target) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(2)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


@pytest.mark.docker
def test_docker_host_over_tcp_runs_jobs(monkeypatch):
    """DOCKER_HOST naming a TCP engine: container lifecycle and the attach stream work over the network API."""
    skip_unless_available("docker")
    forwarder = _TcpToUnixForwarder("/var/run/docker.sock")
    try:
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{forwarder.port}")
        with DockerSandbox(size=1) as sandbox:
            result = sandbox.run(Job("print(input()[::-1])", stdin="olleh\n"))
            assert result.status == "ok" and result.stdout == "hello\n", result
            assert sandbox.run(Job("while True: pass", limits=Limits(wall_s=1, cpu_s=1))).status == "timeout"
            assert sandbox.run(Job("print(6 * 7)")).stdout == "42\n"
    finally:
        forwarder.close()
