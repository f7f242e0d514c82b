"""The job runner: runs inside a sandbox (a container's PID 1, or inside bubblewrap) and executes jobs one by one.

Standard library only, and no imports from rlvr: the backends start it as `python3 -I -c <this file's source>`.
Protocol on stdin/stdout: messages are a 4-byte big-endian length and UTF-8 JSON. The runner first sends
{"ready": ...}; then for each job message it sends one result message.

Each job runs in a child process that gets a fresh work directory, its own session, rlimits (CPU, address space,
processes, file size, open files, no core files), a non-root uid/gid with no supplementary groups, an optional
seccomp filter, and a minimal environment. The runner enforces the wall-time and output limits, kills every
process of the job's uid when the job ends (background processes included), removes the work directory, and
reaps orphans (it may be PID 1).
"""

import atexit
import ctypes
import json
import os
import platform
import resource
import runpy
import selectors
import shutil
import signal
import struct
import sys
import time
import traceback

JOBS_ROOT = "/tmp/rlvr-jobs"
PYTHON = sys.executable or "/usr/bin/python3"
_HEADER = struct.Struct(">I")
_READ_CHUNK = 65536


# -- messages ------------------------------------------------------------------------------------------------


def read_message(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        return None
    return json.loads(body.decode("utf-8"))


def write_message(stream, message):
    body = json.dumps(message).encode("utf-8")
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


# -- seccomp: a deny-list BPF filter built with ctypes, no libseccomp needed ---------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
# Syscalls a test program never needs and an escape attempt might: tracing, mounting, namespaces, kernel
# modules and keys, BPF, perf, io_uring, cross-process memory access.
_DENIED_X86_64 = (
    101,
    155,
    161,
    163,
    165,
    166,
    167,
    168,
    169,
    170,
    171,
    175,
    176,
    246,
    248,
    249,
    250,
    272,
    298,
    304,
    308,
    310,
    311,
    320,
    321,
    323,
    425,
    426,
    427,
)
_SOCKET_X86_64 = 41
_AF_UNIX = 1


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _bpf_program():
    """Allow everything but the denied syscalls (EPERM) and non-AF_UNIX sockets (EPERM); kill other arches."""
    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    allow, errno_eperm, kill = 0x7FFF0000, 0x00050000 | 1, 0x80000000
    program = [
        (ld_w_abs, 0, 0, 4),
        (jeq_k, 1, 0, _AUDIT_ARCH_X86_64),
        (ret_k, 0, 0, kill),
        (ld_w_abs, 0, 0, 0),
    ]
    # Layout after the loads: [x32 check] [one jeq per denied nr] [socket jeq] [allow] [eperm] [socket arg check]
    denied = list(_DENIED_X86_64)
    body_len = 1 + len(denied) + 1 + 1  # x32 check, denied checks, socket check, allow
    eperm_at = body_len  # index (relative to the body start) of the EPERM return
    for index in range(body_len):
        if index == 0:
            program.append((jge_k, eperm_at - index - 1, 0, 0x40000000))  # x32 ABI numbers
        elif index <= len(denied):
            program.append((jeq_k, eperm_at - index - 1, 0, denied[index - 1]))
        elif index == len(denied) + 1:
            program.append((jeq_k, eperm_at - index, 0, _SOCKET_X86_64))  # to the socket arg check
        else:
            program.append((ret_k, 0, 0, allow))
    program.append((ret_k, 0, 0, errno_eperm))
    program += [
        (ld_w_abs, 0, 0, 16),
        (jeq_k, 0, 1, _AF_UNIX),
        (ret_k, 0, 0, allow),
        (ret_k, 0, 0, errno_eperm),
    ]
    return program


class Seccomp:
    """Prepared once in the runner; `apply()` runs in the job's child just before exec."""

    def __init__(self):
        self.available = False
        self.reason = ""
        if platform.machine() != "x86_64":
            self.reason = f"seccomp filter written for x86_64, this is {platform.machine()}"
            return
        try:
            self._libc = ctypes.CDLL(None, use_errno=True)
            program = _bpf_program()
            self._filters = (_SockFilter * len(program))(*[_SockFilter(*op) for op in program])
            self._prog = _SockFprog(len(program), self._filters)
            self.available = True
        except (OSError, AttributeError) as exc:
            self.reason = f"cannot load libc: {exc}"

    def apply(self):
        pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
        if self._libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if self._libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(self._prog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


# -- one job -------------------------------------------------------------------------------------------------


def _write_files(workdir, job, uid):
    files = dict(job.get("files") or {})
    files["main.py"] = job["source"]
    for name, content in files.items():
        path = os.path.realpath(os.path.join(workdir, name))
        if not path.startswith(workdir + os.sep):
            raise ValueError(f"file {name!r} would be outside the job directory")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
    for root, dirs, names in os.walk(workdir):
        for name in dirs + names:
            os.chown(os.path.join(root, name), uid, uid)
    os.chown(workdir, uid, uid)


def _child(job, workdir, uid, pipes, seccomp):
    """In the forked child: confine this process, then run the program. Never returns."""
    stdin_r, out_w, err_w = pipes
    try:
        os.setsid()
        os.dup2(stdin_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        _close_inherited_fds()
        os.chdir(workdir)
        limits = job["limits"]
        cpu = max(1, int(limits["cpu_s"] + 0.999))
        memory = int(limits["memory_mb"]) * 1024 * 1024
        file_size = int(limits["file_size_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_NPROC, (int(limits["processes"]), int(limits["processes"])))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if seccomp is not None:
            seccomp.apply()
        os.environ.clear()
        os.environ.update(
            {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": workdir,
                "TMPDIR": workdir,
                "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONIOENCODING": "utf-8",
            }
        )
    except BaseException as exc:
        try:
            os.write(2, f"rlvr runner: could not start the job: {exc}\n".encode())
        finally:
            os._exit(127)
    _run_program(job.get("argv", []), workdir)


def _run_program(argv, workdir):
    """Run main.py as `python main.py ARGV` would, in this already-started interpreter (the fork-server trick:
    no interpreter start-up per job), then exit with its status. Never returns."""
    sys.argv = ["main.py", *argv]
    sys.path.insert(0, workdir)
    # The program's standard streams, on the job's pipes; they live until this process exits.
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115
    code = 0
    try:
        runpy.run_path("main.py", run_name="__main__")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException as exc:
        tb = exc.__traceback__  # start the traceback at the program, as `python main.py` would
        while tb is not None and tb.tb_frame.f_code.co_filename != "main.py":
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        code = 1
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            code = code or 120  # like CPython when flushing stdout fails at exit
    os._exit(code & 0xFF)


def _close_inherited_fds():
    """Close every descriptor above 2 (listing /proc/self/fd is far cheaper than closing 65,536 numbers)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 1024)
    for fd in fds:
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def kill_uid(uid):
    """SIGKILL every process running as `uid` (the job and anything it left behind), until none is alive."""
    for _ in range(100):
        pid = os.fork()
        if pid == 0:
            try:
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
                os._exit(0)
            except ProcessLookupError:
                os._exit(3)  # nothing left to kill
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        reap()
        if (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3) or not _alive_processes(uid):
            return
        time.sleep(0.001)


def _alive_processes(uid):
    """Pids of processes of `uid` that are not zombies (a killed orphan stays a zombie until its reaper runs)."""
    alive = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as handle:
                fields = dict(line.split(b":", 1) for line in handle.read().splitlines() if b":" in line)
        except OSError:
            continue
        if int(fields[b"Uid"].split()[1]) == uid and not fields[b"State"].strip().startswith(b"Z"):
            alive.append(int(name))
    return alive


def reap():
    """Collect exited children, including orphans re-parented to this process when it is PID 1."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_job(job, uid, seccomp):
    limits = job["limits"]
    workdir = os.path.join(JOBS_ROOT, f"job-{job['id']}")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir, mode=0o700)
    try:
        _write_files(workdir, job, uid)
    except (OSError, ValueError) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        return {"status": "sandbox_error", "detail": f"could not write the job's files: {exc}"}

    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        for fd in (stdin_w, out_r, err_r):
            os.close(fd)
        _child(job, workdir, uid, (stdin_r, out_w, err_w), seccomp)
    for fd in (stdin_r, out_w, err_w):
        os.close(fd)

    cap = int(limits["output_bytes"])
    outputs = {out_r: bytearray(), err_r: bytearray()}
    pending_stdin = job.get("stdin", "").encode("utf-8")
    selector = selectors.DefaultSelector()
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    if pending_stdin:
        os.set_blocking(stdin_w, False)
        selector.register(stdin_w, selectors.EVENT_WRITE)
    else:
        os.close(stdin_w)
        stdin_w = None  # closed: its number may be reused by the pidfd below
    try:
        pidfd = os.pidfd_open(pid)
        selector.register(pidfd, selectors.EVENT_READ)
    except (AttributeError, OSError):
        pidfd = None

    deadline = start + float(limits["wall_s"])
    killed_for = None
    exit_status = None
    while exit_status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            killed_for = "timeout"
            break
        for key, _ in selector.select(timeout=min(remaining, 0.05 if pidfd is None else remaining)):
            fd = key.fd
            if stdin_w is not None and fd == stdin_w:
                try:
                    pending_stdin = pending_stdin[os.write(stdin_w, pending_stdin[:_READ_CHUNK]) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:  # the program stopped reading its stdin
                    pending_stdin = b""
                if not pending_stdin:
                    selector.unregister(stdin_w)
                    os.close(stdin_w)
                    stdin_w = None
            elif fd in outputs:
                try:
                    data = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(fd)
                    continue
                outputs[fd] += data
                if len(outputs[fd]) > cap:
                    killed_for = "output_limit"
        if killed_for:
            break
        waited, status = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            exit_status = status
    wall = time.monotonic() - start

    if exit_status is None:  # timeout or output limit: kill the job's session, then collect its status
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, exit_status = os.waitpid(pid, 0)
    kill_uid(uid)  # anything the job left behind, in any session
    for fd in (out_r, err_r):  # what the job wrote before it ended
        while len(outputs[fd]) <= cap:
            try:
                data = os.read(fd, _READ_CHUNK)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            outputs[fd] += data
    selector.close()
    for fd in (out_r, err_r, stdin_w, pidfd):
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    reap()
    shutil.rmtree(workdir, ignore_errors=True)

    stdout, stderr = bytes(outputs[out_r]), bytes(outputs[err_r])
    truncated = len(stdout) > cap or len(stderr) > cap
    result = {
        "stdout": stdout[:cap].decode("utf-8", "replace"),
        "stderr": stderr[:cap].decode("utf-8", "replace"),
        "truncated": truncated,
        "wall_s": round(wall, 6),
        "exit_code": os.WEXITSTATUS(exit_status) if os.WIFEXITED(exit_status) else None,
        "signal": os.WTERMSIG(exit_status) if os.WIFSIGNALED(exit_status) else None,
    }
    result["status"] = _status(killed_for, result, stderr)
    return result


def _status(killed_for, result, stderr):
    if killed_for:
        return killed_for
    tail = stderr[-4096:]
    if b"MemoryError" in tail or b"Cannot allocate memory" in tail:
        return "memory"
    if result["signal"] in (signal.SIGXCPU,):
        return "timeout"
    if result["signal"] is not None:
        return "killed"
    return "ok" if result["exit_code"] == 0 else "error"


# -- main loop -----------------------------------------------------------------------------------------------


def _option(argv, name, default):
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv):
    global JOBS_ROOT
    uid = int(_option(argv, "--uid", "65534"))
    JOBS_ROOT = _option(argv, "--jobs-root", JOBS_ROOT)
    use_seccomp = "--no-seccomp" not in argv
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.makedirs(JOBS_ROOT, mode=0o711, exist_ok=True)
    os.chmod(JOBS_ROOT, 0o711)
    if "--private-tmp" in argv:  # /tmp is this sandbox's own: the job may write only in its job directory
        os.chmod("/tmp", 0o711)
    seccomp = Seccomp() if use_seccomp else None
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but protocol messages may reach the real stdout
    write_message(
        stdout,
        {
            "ready": True,
            "python": platform.python_version(),
            "pid": os.getpid(),
            "uid": uid,
            "seccomp": bool(seccomp and seccomp.available),
            "seccomp_detail": "" if seccomp is None else seccomp.reason or "deny-list filter",
        },
    )
    if seccomp is not None and not seccomp.available:
        seccomp = None
    while True:
        job = read_message(stdin)
        if job is None:
            return
        try:
            result = run_job(job, uid, seccomp)
        except Exception as exc:  # the runner must answer every job
            result = {"status": "sandbox_error", "detail": f"runner failed: {type(exc).__name__}: {exc}"}
        result["id"] = job.get("id")
        write_message(stdout, result)


if __name__ == "__main__":
    main(sys.argv[1:])
