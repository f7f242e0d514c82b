"""Helpers of the sandbox tests: opening a sandbox of either backend (or skipping, with the reason), looking at
its processes and containers from the host, and the check that a job sees a clean environment."""

from __future__ import annotations

import functools
import os
import time

import pytest

from rlvr.sandbox import DEFAULT_IMAGE, DockerSandbox, Job, LocalSandbox, SandboxUnavailable
from rlvr.sandbox.base import RunnerPool
from rlvr.sandbox.local import SYSTEM_PYTHON, bubblewrap_path

BACKENDS = [pytest.param("local", id="local"), pytest.param("docker", id="docker", marks=pytest.mark.docker)]


@functools.cache
def docker_unavailable() -> str | None:
    """Why the Docker backend cannot run here, or None."""
    from rlvr.sandbox.docker_backend import docker_client

    try:
        client = docker_client(timeout_s=5)
    except SandboxUnavailable as exc:
        return f"no Docker engine: {exc}"
    try:
        client.images.get(DEFAULT_IMAGE)
    except Exception:
        return f"Docker image {DEFAULT_IMAGE} missing: build it with `rlvr sandbox build-image`"
    return None


@functools.cache
def local_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the local backend needs root"
    if not os.path.exists(SYSTEM_PYTHON):
        return f"the local backend needs {SYSTEM_PYTHON}"
    if bubblewrap_path() is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    return None


def skip_unless_available(backend: str) -> None:
    reason = docker_unavailable() if backend == "docker" else local_unavailable()
    if reason:
        pytest.skip(reason)


def open_sandbox(backend: str, size: int = 2, **options: object) -> RunnerPool:
    skip_unless_available(backend)
    if backend == "docker":
        return DockerSandbox(size=size, **options)  # type: ignore[arg-type]
    return LocalSandbox(size=size, **options)  # type: ignore[arg-type]


# -- looking at a sandbox from the host ----------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, real uid, state) of every process on this machine."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", encoding="utf-8", errors="replace") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
            table[int(name)] = (
                int(fields["PPid"]),
                int(fields["Uid"].split()[0]),
                fields["State"].strip()[:1],
            )
        except (OSError, KeyError, ValueError):
            continue
    return table


def descendants(root: int, table: dict[int, tuple[int, int, str]] | None = None) -> set[int]:
    """`root` and every live (not zombie) process below it."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in table and table[pid][2] != "Z":
            found.add(pid)
        todo += children.get(pid, [])
    return found


def session_root_pid(session: object) -> int:
    """The host pid of a session's outermost process: the bwrap process, or the container's PID 1."""
    if hasattr(session, "process"):
        return session.process.pid  # type: ignore[attr-defined]
    container = session.container  # type: ignore[attr-defined]
    container.reload()
    return int(container.attrs["State"]["Pid"])


def sandbox_processes(sb: RunnerPool) -> dict[int, int]:
    """pid -> uid of every process of the sandbox's idle sessions, seen from the host."""
    table = process_table()
    found: dict[int, int] = {}
    for session in list(sb._idle):
        for pid in descendants(session_root_pid(session), table):
            found[pid] = table[pid][1]
    return found


def pool_containers(sb: RunnerPool) -> list[object]:
    """The containers, running or not, that carry this Docker sandbox's pool label."""
    from rlvr.sandbox.docker_backend import LABEL, POOL_LABEL

    return sb.client.containers.list(  # type: ignore[attr-defined]
        all=True, filters={"label": [f"{LABEL}=1", f"{POOL_LABEL}={sb.pool_id}"]}
    )


def wait_until(predicate, timeout_s: float = 5.0, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)


# -- a normal job, run after a hostile one: it must pass and see a clean environment -------------------------

CLEAN_CHECK = r"""
import json, os, sys
me, uid = os.getpid(), os.getuid()
problems = []
if sorted(os.listdir(".")) != ["main.py"]:
    problems.append(f"work dir not fresh: {sorted(os.listdir('.'))}")
if os.getcwd() != os.environ.get("HOME"):
    problems.append(f"cwd {os.getcwd()} is not HOME {os.environ.get('HOME')}")
others = []
for name in os.listdir("/proc"):
    if name.isdigit() and int(name) != me:
        try:
            with open(f"/proc/{name}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            others.append((int(name), fields["Name"].strip()))
if others:
    problems.append(f"processes of uid {uid} left: {others}")
for top in ("/dev/shm", "/dev/mqueue"):
    if os.path.isdir(top) and os.listdir(top):
        problems.append(f"{top} not empty: {os.listdir(top)}")
for kind in ("shm", "sem", "msg"):
    with open(f"/proc/sysvipc/{kind}") as handle:
        if len(handle.read().splitlines()) > 1:
            problems.append(f"System V IPC objects ({kind}) left")
st = os.statvfs(".")
if st.f_bavail * st.f_frsize < 100 << 20:
    problems.append(f"only {st.f_bavail * st.f_frsize >> 20} MiB free in the work dir")
with open("scratch.bin", "wb") as handle:
    handle.write(os.urandom(1 << 20))
expected_env = {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING"}
if set(os.environ) != expected_env:
    problems.append(f"environment: {sorted(os.environ)}")
print(json.dumps({"problems": problems, "uid": uid}))
"""


def assert_clean(sb: RunnerPool) -> int:
    """Run CLEAN_CHECK; it must pass. Returns the uid it ran as."""
    import json

    result = sb.run(Job(CLEAN_CHECK))
    assert result.status == "ok", (result.status, result.stderr, result.detail)
    report = json.loads(result.stdout)
    assert report["problems"] == [], report["problems"]
    assert all(names == [] for names in jobs_left(sb).values()), jobs_left(sb)  # every work dir removed
    return report["uid"]


def jobs_left(sb: RunnerPool) -> dict[int, list[str]]:
    """What is left in each idle runner's /tmp/rlvr-jobs, seen from the host through /proc/PID/root."""
    table = process_table()
    left: dict[int, list[str]] = {}
    for session in list(sb._idle):
        root = session_root_pid(session)
        inside = sorted(descendants(root, table) - ({root} if hasattr(session, "process") else set()))
        for pid in inside:
            try:
                left[pid] = sorted(os.listdir(f"/proc/{pid}/root/tmp/rlvr-jobs"))
                break
            except OSError:
                continue
    return left


def runner_and_fork_server(session: object) -> tuple[int, int]:
    """Host pids of a session's runner and of its fork server (both root, both started as the runner's command)."""
    root = session_root_pid(session)
    table = process_table()
    ours = []
    for pid in descendants(root, table):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            # python3 -I -c SOURCE --uid N ... (bubblewrap's own command line holds the same words after "bwrap")
            is_runner_command = os.path.basename(argv[0]).startswith(b"python") and b"--uid" in argv
        except OSError:
            continue
        if is_runner_command and table[pid][1] == 0:
            ours.append(pid)
    runner = next(pid for pid in ours if table[pid][0] not in ours)
    fork_server = next(pid for pid in ours if table[pid][0] == runner)
    return runner, fork_server
