"""Hostile programs, on both backends. Each must be contained: the test asserts its status or that the attempted
effect failed (on the host too where it could show there), and then a normal job must pass in a clean
environment: a fresh work directory, no files or IPC objects left by the hostile job, no process of its uid.

The sandbox is module-scoped with two runners; jobs run one at a time, so the check right after a hostile job
runs in the same runner unless that runner was replaced (after a timeout or running out of memory)."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import assert_clean, open_sandbox, pool_containers, sandbox_processes

from rlvr.sandbox import Job, Limits

REPO = Path(__file__).resolve().parents[2]
LOOP = Limits(wall_s=2, cpu_s=2)  # the hostile loops: short limits


class Host:
    """What the host holds that a job must never reach: a secret in the environment, files in /root, in the
    repository and in /tmp."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.secret_name = f"RLVR_HOST_SECRET_{self.token[:8]}"
        self.secret_value = f"host-secret-{self.token}"
        self.files = [
            Path.home() / f".rlvr-hostile-{self.token}.txt",
            REPO / f".rlvr-hostile-{self.token}.txt",
            Path(tempfile.gettempdir()) / f"rlvr-hostile-{self.token}.txt",
        ]

    def create(self) -> None:
        for path in self.files:
            path.write_text(f"host file {self.token}\n", encoding="utf-8")

    def remove(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)

    def intact(self) -> bool:
        return all(p.read_text(encoding="utf-8") == f"host file {self.token}\n" for p in self.files)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    host = Host()
    host.create()
    try:
        yield host
    finally:
        host.remove()


@pytest.fixture(scope="module")
def hostile(backend: str, host: Host) -> Iterator[object]:
    """Two runners, started while the host environment holds a secret (a runner must not pass it on)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(host.secret_name, host.secret_value)
        with open_sandbox(backend, size=2) as sb:
            sb.start()
            yield sb


def run_json(sb, source: str, **job):
    result = sb.run(Job(source, **job))
    assert result.status == "ok", (result.status, result.stderr[-2000:], result.detail)
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- resource exhaustion ---------------------------------------------------------------------------------------

FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


def test_fork_bomb(hostile):
    result = hostile.run(Job(FORK_BOMB, limits=LOOP))
    assert result.status == "timeout"
    assert_clean(hostile)


THREAD_BOMB = """
import threading, time
threads = []
try:
    while True:
        t = threading.Thread(target=time.sleep, args=(30,), daemon=True)
        t.start()
        threads.append(t)
except RuntimeError as exc:
    print(len(threads), exc)
"""


def test_thread_bomb(hostile):
    result = hostile.run(Job(THREAD_BOMB, limits=Limits(wall_s=5, processes=32)))
    assert result.status == "ok", result.stderr
    assert int(result.stdout.split()[0]) < 32  # RLIMIT_NPROC counts threads
    assert_clean(hostile)


FORK_BOMB_NEIGHBOUR = """
import subprocess, time
time.sleep(0.7)
print(subprocess.run(["/bin/echo", "neighbour ran"], capture_output=True, text=True).stdout.strip())
"""


def test_fork_bomb_does_not_starve_a_concurrent_job(hostile):
    # Regression: every Docker container ran its jobs as uid 10000, and RLIMIT_NPROC counts per uid across the
    # kernel, so a fork bomb in one container made fork fail in the others (BlockingIOError).
    bomb, neighbour = hostile.run_many([Job(FORK_BOMB, limits=LOOP), Job(FORK_BOMB_NEIGHBOUR, limits=LOOP)])
    assert bomb.status == "timeout"
    assert (neighbour.status, neighbour.stdout) == ("ok", "neighbour ran\n"), neighbour.stderr[-500:]
    assert_clean(hostile)


def test_memory_bomb(hostile):
    source = "hoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))"
    result = hostile.run(Job(source, limits=Limits(wall_s=5, memory_mb=256)))
    assert result.status == "memory" and "MemoryError" in result.stderr
    assert_clean(hostile)


OOM = """
hoard = bytearray(1536 << 20)  # within its own address-space limit, beyond the container's 1 GiB
for i in range(0, len(hoard), 4096):
    hoard[i] = 1
print("survived")
"""


def test_memory_bomb_beyond_the_container(hostile, backend):
    # Regression: a job killed by the container's out-of-memory killer got `killed`, so its container (whose
    # memory cgroup had just been full) was kept; it is `memory` now, and the container is replaced.
    if backend != "docker":
        pytest.skip("the local backend has no memory cgroup: RLIMIT_AS per process is its memory limit")
    victim = hostile._idle[-1].container.id  # jobs run one at a time take the last idle runner
    result = hostile.run(Job(OOM, limits=Limits(wall_s=10, memory_mb=3000)))
    assert (result.status, result.signal, result.stdout) == ("memory", signal.SIGKILL, "")
    assert victim not in [c.id for c in pool_containers(hostile)]  # that container was replaced
    assert_clean(hostile)


def test_infinite_loop(hostile):
    result = hostile.run(Job("while True:\n    pass", limits=Limits(wall_s=2, cpu_s=30)))
    assert result.status == "timeout" and result.signal == signal.SIGKILL
    assert 2 <= result.wall_s < 3
    assert_clean(hostile)


def test_long_sleep_ignoring_sigterm(hostile):
    source = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(3600)"
    result = hostile.run(Job(source, limits=LOOP))
    assert result.status == "timeout" and result.wall_s < 3
    assert_clean(hostile)


def test_stdout_flood(hostile):
    source = "import sys\nwhile True:\n    sys.stdout.write('A' * 65536)\n    sys.stdout.flush()"
    result = hostile.run(Job(source, limits=Limits(wall_s=5, output_bytes=100_000)))
    assert result.status == "output_limit" and result.truncated
    assert result.stdout == "A" * 100_000
    assert_clean(hostile)


FILL_DISK = """
import errno, json, os
out = {}
try:
    open("/tmp/fill", "wb").write(b"x")
    out["tmp"] = "written"
except OSError as exc:
    out["tmp"] = errno.errorcode[exc.errno]
for top in (".", "/dev/shm"):
    n = 0
    try:
        while True:
            with open(os.path.join(top, f"fill-{n}"), "wb") as handle:
                handle.write(b"x" * (8 << 20))
            n += 1
    except OSError as exc:
        out[top] = [n, errno.errorcode[exc.errno]]
print(json.dumps(out))
"""


def test_fill_tmp_and_the_job_directory(hostile):
    out = run_json(hostile, FILL_DISK, limits=Limits(wall_s=10))
    assert out["tmp"] == "EACCES"  # /tmp itself is not writable
    written, why = out["."]
    assert why == "ENOSPC" and 20 <= written <= 40  # filled the 256 MiB tmpfs, and no more
    # (Regression: the local backend's /tmp was an unbounded tmpfs, i.e. up to half the machine's memory.)
    assert out["/dev/shm"][1] in ("ENOSPC", "EACCES")  # Docker: 64 MiB tmpfs; bubblewrap: not writable
    assert_clean(hostile)  # has >100 MiB free again, and /dev/shm is empty


# -- files -------------------------------------------------------------------------------------------------------


def test_read_etc_shadow(hostile):
    source = (
        "try:\n    print('READ', open('/etc/shadow').read())\nexcept PermissionError:\n    print('denied')"
    )
    result = hostile.run(Job(source))
    assert (result.status, result.stdout) == ("ok", "denied\n")
    assert_clean(hostile)


READ_HOST = """
import errno, json, os, sys
out = {}
for path in sys.argv[1:] + ["/root", "/work", "/home", "/tmp/rlvr-jobs", "/var/run/docker.sock"]:
    try:
        out[path] = os.listdir(path) if os.path.isdir(path) else open(path).read()
    except OSError as exc:
        out[path] = errno.errorcode[exc.errno]
print(json.dumps(out))
"""


def test_read_host_files(hostile, host):
    out = run_json(hostile, READ_HOST, argv=tuple(str(p) for p in host.files))
    for path in host.files:
        assert out[str(path)] in ("ENOENT", "EACCES"), (path, out[str(path)])
    assert out["/tmp/rlvr-jobs"] == "EACCES"  # other jobs' directories cannot even be listed
    assert out["/var/run/docker.sock"] == "ENOENT"
    assert f"host file {host.token}" not in json.dumps(out)
    assert_clean(hostile)


WRITE_OUTSIDE = """
import errno, json, sys
token = sys.argv[1]
targets = [f"/etc/rlvr-{token}", f"/usr/rlvr-{token}", f"/usr/bin/rlvr-{token}", f"/tmp/rlvr-{token}",
           f"/var/tmp/rlvr-{token}", f"/rlvr-{token}", f"/root/rlvr-{token}", f"/work/main/rlvr-{token}",
           f"/dev/rlvr-{token}", "/etc/passwd", "/usr/bin/python3", "/tmp/rlvr-jobs/planted.py"]
out = {}
for path in targets:
    try:
        with open(path, "a") as handle:
            handle.write("owned\\n")
        out[path] = "written"
    except OSError as exc:
        out[path] = errno.errorcode[exc.errno]
print(json.dumps(out))
"""


def test_write_host_and_system_files(hostile, host):
    passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    out = run_json(hostile, WRITE_OUTSIDE, argv=(host.token,))
    assert all(value in ("EACCES", "EROFS", "ENOENT", "EPERM") for value in out.values()), out
    for path in out:  # nothing of it reached the host
        if host.token in path:
            assert not Path(path).exists(), path
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == passwd
    assert_clean(hostile)


RM_RF = """
import shutil, subprocess, sys
shutil.rmtree("/tmp", ignore_errors=True)
shutil.rmtree("/dev", ignore_errors=True)
sys.exit(subprocess.run(["rm", "-rf", "--no-preserve-root", "/"], stderr=subprocess.DEVNULL).returncode)
"""


def test_rm_rf_root(hostile, host):
    # On the local backend `rm` walks the host's whole read-only /usr and may run out of time: either way it is
    # contained, and the next job finds python, /etc and a fresh work directory.
    result = hostile.run(Job(RM_RF, limits=Limits(wall_s=4)))
    assert result.status in ("error", "timeout"), (result.status, result.stderr[-500:])
    assert host.intact() and Path("/usr/bin/python3").exists() and Path("/etc/passwd").exists()
    assert_clean(hostile)


SYMLINKS = """
import os
os.symlink("/usr", "usr-link")
os.symlink("/etc", "etc-link")
os.makedirs("deep/er")
open("deep/er/file", "w").write("x")
os.chmod("deep/er", 0)
os.chmod("deep", 0)
for top in ("/dev/shm", "/dev/mqueue"):
    try:
        os.symlink(os.getcwd(), os.path.join(top, "link"))
    except OSError:
        pass
print("planted")
"""


def test_symlinks_and_unreadable_directories_left_for_the_cleanup(hostile):
    # The runner removes the work directory as root: it must not follow the links, and must get through 0-mode dirs.
    result = hostile.run(Job(SYMLINKS))
    assert (result.status, result.stdout) == ("ok", "planted\n"), result.stderr
    assert_clean(hostile)  # the work dirs are gone (seen from the host), /usr and /etc are intact
    assert Path("/usr/bin/python3").exists()


LEFTOVERS = """
import errno, json, os
from multiprocessing import shared_memory
out = {}
for path in ("/dev/shm/leftover", "/dev/mqueue/leftover"):
    try:  # (a file in /dev/mqueue is a POSIX message queue: it can be created, not written)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        out[path] = "created"
    except OSError as exc:
        out[path] = errno.errorcode[exc.errno]
try:
    block = shared_memory.SharedMemory(name="leftover-block", create=True, size=1 << 20)
    block.buf[:5] = b"hello"
    out["shared_memory"] = "created"  # and never unlinked
except OSError as exc:
    out["shared_memory"] = errno.errorcode[exc.errno]
print(json.dumps(out))
"""


def test_files_left_in_dev_shm_and_mqueue(hostile, backend):
    # Regression: in a container /dev/shm and /dev/mqueue are world-writable and outlive the job; what one job
    # left there, the next job in that container saw.
    out = run_json(hostile, LEFTOVERS)
    if backend == "docker":
        assert out == dict.fromkeys(("/dev/shm/leftover", "/dev/mqueue/leftover", "shared_memory"), "created")
    assert_clean(hostile)  # /dev/shm and /dev/mqueue are empty again


# -- network ---------------------------------------------------------------------------------------------------


class LoopbackServer:
    """A TCP and a UDP server on the host's 127.0.0.1, in this process: they count what reaches them and stop by
    themselves after `lifetime_s`."""

    def __init__(self, lifetime_s: float = 20.0) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.tcp.getsockname()[1]))
        self.port = self.tcp.getsockname()[1]
        self.connections = 0
        self.datagrams = 0
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime_s
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.tcp.settimeout(0.1)
        self.udp.settimeout(0.1)
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self.tcp.accept()
                self.connections += 1
                conn.close()
            except TimeoutError:
                pass
            try:
                self.udp.recv(100)
                self.datagrams += 1
            except TimeoutError:
                pass
        self.tcp.close()
        self.udp.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    try:
        yield server
    finally:
        server.stop()


CONNECT = """
import errno, json, socket, sys
port = int(sys.argv[1])
out = {}
def attempt(name, family, kind, address):
    try:
        s = socket.socket(family, kind)
        s.settimeout(1)
        if kind == socket.SOCK_DGRAM:
            s.sendto(b"hello", address)
            out[name] = "sent"
        else:
            s.connect(address)
            out[name] = "connected"
    except OSError as exc:
        out[name] = errno.errorcode.get(exc.errno, str(exc))
attempt("tcp4", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", port))
attempt("tcp6", socket.AF_INET6, socket.SOCK_STREAM, ("::1", port))
attempt("udp4", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", port))
attempt("dns", socket.AF_INET, socket.SOCK_DGRAM, ("8.8.8.8", 53))
attempt("raw", socket.AF_PACKET, socket.SOCK_RAW, None)
attempt("docker.sock", socket.AF_UNIX, socket.SOCK_STREAM, "/var/run/docker.sock")
print(json.dumps(out))
"""


def test_connect_to_a_loopback_server_on_the_host(hostile, loopback_server):
    out = run_json(hostile, CONNECT, argv=(str(loopback_server.port),), limits=Limits(wall_s=10))
    assert all(value not in ("connected", "sent") for value in out.values()), out
    assert out["tcp4"] == "EPERM" and out["udp4"] == "EPERM"  # seccomp refuses IP sockets outright
    assert out["docker.sock"] == "ENOENT"
    time.sleep(0.3)
    assert (loopback_server.connections, loopback_server.datagrams) == (0, 0)
    assert_clean(hostile)


# -- processes ---------------------------------------------------------------------------------------------------

KILL_ALL = """
import os, time
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
for target, name in ((1, "pid 1"), (os.getppid(), "parent")):
    try:
        os.kill(target, 9)
        print(name, "killed", flush=True)
    except PermissionError:
        print(name, "denied", flush=True)
os.kill(-1, 9)  # every process this one may signal, but itself
_, status = os.waitpid(child, 0)
print("child", os.WTERMSIG(status), flush=True)
"""


def test_kill_everything(hostile):
    started = hostile.sessions_started
    result = hostile.run(Job(KILL_ALL))
    assert result.status == "ok", result.stderr
    # It could kill only its own processes: not the runner, nor the fork server (its parent), nor pid 1.
    assert result.stdout == "pid 1 denied\nparent denied\nchild 9\n"
    assert_clean(hostile)
    assert hostile.sessions_started == started  # the runner was never hurt


BACKGROUND = """
import os, sys, time
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork() == 0:  # the daemon: keeps the job's stdout open and sleeps
        print("daemon", os.getpid(), flush=True)
        time.sleep(120)
    os._exit(0)
os.waitpid(first, 0)
time.sleep(0.3)
print("uid", os.getuid(), flush=True)
"""


def test_background_process_left_behind(hostile):
    result = hostile.run(Job(BACKGROUND, limits=Limits(wall_s=5)))
    assert result.status == "ok", result.stderr
    words = dict(line.split() for line in result.stdout.splitlines())
    uid = int(words["uid"])
    assert "daemon" in words
    # From the host: no process of the job's uid is left under any runner of this sandbox.
    assert uid not in sandbox_processes(hostile).values()
    assert assert_clean(hostile) == uid  # same runner, same uid: it sees no process of its uid but itself


SECCOMP = """
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, SIGCHLD = 0x10000000, 0x00020000, 0x40000000, 17
calls = {
    "ptrace": (101, 0, 0, 0, 0),               # PTRACE_TRACEME
    "mount": (165, b"none", b"/tmp", b"tmpfs", 0, 0),
    "umount2": (166, b"/proc", 2),
    "unshare_user": (272, CLONE_NEWUSER),
    "unshare_net": (272, CLONE_NEWNET),
    "clone_newuser": (56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
    "clone_newns": (56, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0),
    "clone3": (435, 0, 0),
    "setns": (308, 0, 0),
    "chroot": (161, b"/tmp"),
    "pivot_root": (155, b"/tmp", b"/tmp"),
    "bpf": (321, 0, 0, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "userfaultfd": (323, 0),
    "io_uring_setup": (425, 1, 0),
    "keyctl": (250, 0, 0, 0, 0, 0),
    "process_vm_readv": (310, 1, 0, 0, 0, 0, 0),
    "init_module": (175, 0, 0, 0),
    "shmget": (29, 0, 4096, 0o1600),           # IPC_PRIVATE, IPC_CREAT
    "semget": (64, 0, 1, 0o1600),
    "msgget": (68, 0, 0o1600),
    "mq_open": (240, b"/q", 0o100 | 2, 0o600, 0),
}
out = {}
for name, (nr, *args) in calls.items():
    ctypes.set_errno(0)
    result = libc.syscall(nr, *args)
    if result == 0 and name.startswith("clone"):
        os._exit(0)  # a child: it must not go on
    out[name] = "succeeded" if result >= 0 else errno.errorcode[ctypes.get_errno()]
with open("/proc/self/status") as handle:
    status = dict(line.split(":", 1) for line in handle if ":" in line)
out["Seccomp"] = status["Seccomp"].strip()
out["NoNewPrivs"] = status["NoNewPrivs"].strip()
print(json.dumps(out))
"""


def test_ptrace_mount_unshare_and_other_escape_syscalls(hostile):
    # Regression: clone() with namespace flags went through (unshare() by another name): on the local backend a
    # job could create user and mount namespaces.
    out = run_json(hostile, SECCOMP)
    assert (
        out.pop("clone3") == "ENOSYS"
    )  # its flags are out of a filter's reach: the C library falls back to clone
    assert (out.pop("Seccomp"), out.pop("NoNewPrivs")) == ("2", "1")
    assert out == dict.fromkeys(out, "EPERM"), out
    assert_clean(hostile)


SETUID = """
import json, os, subprocess
out = {}
for name, call in (("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                   ("seteuid", lambda: os.seteuid(0)), ("setresuid", lambda: os.setresuid(0, 0, 0)),
                   ("setgroups", lambda: os.setgroups([0])), ("chown", lambda: os.chown("main.py", 0, 0))):
    try:
        call()
        out[name] = "succeeded"
    except PermissionError:
        out[name] = "EPERM"
with open("/proc/self/status") as handle:
    status = dict(line.split(":", 1) for line in handle if ":" in line)
out["CapEff"], out["CapPrm"] = status["CapEff"].strip(), status["CapPrm"].strip()
try:  # a setuid-root program: no-new-privileges makes its setuid bit do nothing
    su = subprocess.run(["su", "-c", "id -u", "root"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    out["su"] = su.stdout.strip() or "failed"
except FileNotFoundError:
    out["su"] = "failed"
out["uid"] = os.getuid()
print(json.dumps(out))
"""


def test_setuid_attempts(hostile):
    out = run_json(hostile, SETUID)
    assert all(
        out[name] == "EPERM" for name in ("setuid", "setgid", "seteuid", "setresuid", "setgroups", "chown")
    )
    assert out["CapEff"] == out["CapPrm"] == "0000000000000000"
    assert out["su"] == "failed" and out["uid"] != 0
    assert_clean(hostile)


HOST_ENV = """
import ctypes, json, os
found = {"environ": dict(os.environ)}
try:
    found["proc_environ"] = open("/proc/self/environ", "rb").read().decode(errors="replace")
except PermissionError:
    found["proc_environ"] = "EACCES"
# The environment this process image started with, still on its stack (a forked job inherits it): the strings
# just below the executable name that the kernel put at the top of the stack.
libc = ctypes.CDLL(None)
libc.getauxval.restype = ctypes.c_ulong
execfn = libc.getauxval(31)  # AT_EXECFN
with open("/proc/self/maps") as handle:
    stack = next(line for line in handle if line.rstrip().endswith("[stack]"))
low = int(stack.split("-")[0], 16)
start = max(low, execfn - (256 << 10))
blob = ctypes.string_at(start, execfn - start)
found["initial"] = [s.decode(errors="replace") for s in blob.split(b"\\0") if b"=" in s and len(s) < 4096]
print(json.dumps(found))
"""


def test_host_environment_does_not_reach_the_job(hostile, host):
    # Regression: the local runner inherited this process's whole environment (API keys and all), and a job,
    # forked from it, could read it back from its stack even after os.environ was cleared.
    found = run_json(hostile, HOST_ENV)
    assert set(found["environ"]) == {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
    }
    assert found["proc_environ"] == "EACCES"
    dump = json.dumps(found)
    assert host.secret_name not in dump and host.secret_value not in dump
    assert not any(s.startswith(("VIRTUAL_ENV=", "PYENV_ROOT=", "DOCKER_HOST=")) for s in found["initial"])
    assert_clean(hostile)


RUNNER_PRIVATE = """
import errno, json, os
out = {}
for pid, name in ((1, "pid1"), (os.getppid(), "parent")):
    for what in ("environ", "mem", "fd"):
        path = f"/proc/{pid}/{what}"
        try:
            out[f"{name}/{what}"] = os.listdir(path) if what == "fd" else len(open(path, "rb").read(64))
        except OSError as exc:
            out[f"{name}/{what}"] = errno.errorcode[exc.errno]
out["own_fds"] = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
print(json.dumps(out))
"""


def test_runner_environment_memory_and_descriptors_are_private(hostile):
    out = run_json(hostile, RUNNER_PRIVATE)
    own_fds = out.pop("own_fds")
    assert set(own_fds) <= {0, 1, 2, 3}  # stdin, stdout, stderr (and the listing itself): nothing inherited
    assert out == dict.fromkeys(out, "EACCES"), out
    assert_clean(hostile)


SNOOP_MEMORY = """
import ctypes, json, sys
halves = [(a[::-1].encode(), b[::-1].encode()) for a, b in zip(sys.argv[1::2], sys.argv[2::2])]
found = []
with open("/proc/self/maps") as handle:
    regions = handle.read().splitlines()
for line in regions:
    fields = line.split()
    path = fields[5] if len(fields) > 5 else ""
    if not fields[1].startswith("rw") or path not in ("", "[heap]"):
        continue
    low, high = (int(x, 16) for x in fields[0].split("-"))
    data = ctypes.string_at(low, high - low)
    for head, tail in halves:  # the needle is never whole in this process: look for head followed by tail
        at = data.find(head)
        while at >= 0:
            if data[at + len(head) : at + len(head) + len(tail)] == tail:
                found.append((head + tail).decode())
            at = data.find(head, at + 1)
print(json.dumps(sorted(set(found))))
"""


def test_earlier_jobs_data_is_not_in_a_jobs_memory(hostile, host):
    # Regression: jobs were forked from the runner, whose memory still held earlier jobs' sources, stdin and
    # outputs; a job could read them back (the fork server now forks jobs from a process that never saw them).
    secrets = {
        "source": f"SOURCE-{host.token}",
        "stdin": f"STDIN-{host.token}",
        "output": f"OUTPUT-{host.token}",
    }
    first = hostile.run(
        Job(
            f"# {secrets['source']}\nimport sys\nsys.stdin.read()\nprint('OUTPUT-' + {host.token!r})",
            stdin=secrets["stdin"] * 100,
        )
    )
    assert first.ok and first.stdout.strip() == secrets["output"]
    argv = []
    for secret in secrets.values():  # each needle split in two, reversed: it never appears whole in the job
        argv += [secret[:6][::-1], secret[6:][::-1]]
    result = hostile.run(Job(SNOOP_MEMORY, argv=tuple(argv), limits=Limits(wall_s=10, memory_mb=1024)))
    assert result.status == "ok", result.stderr[-1000:]
    assert json.loads(result.stdout) == []
    assert_clean(hostile)


def test_system_v_ipc_objects_are_removed_without_seccomp(backend):
    # Seccomp refuses System V IPC; with seccomp off the runner still removes what the job's uid created
    # (segments outlive their processes: they would carry memory and data to the next job).
    source = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
ids = [libc.shmget(0x5EED, 1 << 20, 0o1600), libc.semget(0x5EED, 1, 0o1600), libc.msgget(0x5EED, 0o1600)]
print(json.dumps(ids))
"""
    with open_sandbox(backend, size=1, seccomp=False) as sb:
        ids = run_json(sb, source)
        assert all(i >= 0 for i in ids), ids  # created: nothing refused them
        assert_clean(sb)
