"""The job runner: runs inside a sandbox (a container's PID 1, or inside bubblewrap) and executes jobs one by one.

Standard library only, and no imports from rlvr: the backends start it as `python3 -I -c <this file's source>`.
Protocol on stdin/stdout: messages are a 4-byte big-endian length and UTF-8 JSON. The runner first sends
{"ready": ...}; then for each job message it sends one result message.

Each job runs in a child process that gets a fresh work directory, its own session, rlimits (CPU, address space,
processes, file size, open files, no core files), a non-root uid/gid with no supplementary groups, an optional
seccomp filter, and a minimal environment. The job's process is forked by a fork server (the "zygote") that the
runner starts before it reads any job, so a job inherits an already-started interpreter but none of the runner's
memory of earlier jobs (their sources, stdin and outputs). The runner enforces the wall-time and output limits,
kills every process of the job's uid when the job ends (background processes included), removes what the job
left in the work directory, `/dev/shm`, `/dev/mqueue` and System V IPC, and reaps orphans (it may be PID 1).
"""

import atexit
import ctypes
import json
import os
import pkgutil  # noqa: F401 - runpy.run_path imports it per call; loaded here, the fork server's jobs inherit it
import platform
import resource
import runpy
import selectors
import shutil
import signal
import socket
import stat
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
# modules and keys, BPF, perf, io_uring, cross-process memory access, and System V IPC and POSIX message queues
# (objects that would outlive the job and could carry data to the next one).
_DENIED_X86_64 = (
    29,  # shmget
    30,  # shmat
    31,  # shmctl
    64,  # semget
    65,  # semop
    66,  # semctl
    67,  # shmdt
    68,  # msgget
    69,  # msgsnd
    70,  # msgrcv
    71,  # msgctl
    101,  # ptrace
    155,  # pivot_root
    161,  # chroot
    163,  # acct
    165,  # mount
    166,  # umount2
    167,  # swapon
    168,  # swapoff
    169,  # reboot
    170,  # sethostname
    171,  # setdomainname
    175,  # init_module
    176,  # delete_module
    220,  # semtimedop
    240,  # mq_open
    241,  # mq_unlink
    242,  # mq_timedsend
    243,  # mq_timedreceive
    244,  # mq_notify
    245,  # mq_getsetattr
    246,  # kexec_load
    248,  # add_key
    249,  # request_key
    250,  # keyctl
    272,  # unshare
    298,  # perf_event_open
    304,  # open_by_handle_at
    308,  # setns
    310,  # process_vm_readv
    311,  # process_vm_writev
    320,  # kexec_file_load
    321,  # bpf
    323,  # userfaultfd
    425,  # io_uring_setup
    426,  # io_uring_enter
    427,  # io_uring_register
)
_SOCKET_X86_64 = 41
_CLONE_X86_64 = 56
_CLONE3_X86_64 = 435
_AF_UNIX = 1
# CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME:
# clone() with any of them is unshare() by another name.
_CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
_CLONE_NAMESPACE_FLAGS |= 0x40000000 | 0x00000080


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
    """Allow everything but: the denied syscalls, non-AF_UNIX sockets and clone() into new namespaces (EPERM);
    clone3, whose flags a filter cannot read (ENOSYS, so the C library falls back to clone); other ABIs (kill)."""
    ld_w_abs, jeq_k, jge_k, jset_k, ret_k = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38
    code, labels = [], {}

    def emit(op, k, jt=None, jf=None):  # jt/jf: a label, or None for the next instruction
        code.append((op, jt, jf, k))

    def label(name):
        labels[name] = len(code)

    emit(ld_w_abs, 4)  # seccomp_data.arch
    emit(jeq_k, _AUDIT_ARCH_X86_64, jf="kill")
    emit(ld_w_abs, 0)  # seccomp_data.nr
    emit(jge_k, 0x40000000, jt="eperm")  # x32 ABI numbers
    for nr in _DENIED_X86_64:
        emit(jeq_k, nr, jt="eperm")
    emit(jeq_k, _SOCKET_X86_64, jt="socket")
    emit(jeq_k, _CLONE_X86_64, jt="clone")
    emit(jeq_k, _CLONE3_X86_64, jt="enosys")
    emit(ret_k, allow)
    label("socket")
    emit(ld_w_abs, 16)  # low 32 bits of args[0]: the address family
    emit(jeq_k, _AF_UNIX, jt="allow", jf="eperm")
    label("clone")
    emit(ld_w_abs, 16)  # low 32 bits of args[0]: the clone flags
    emit(jset_k, _CLONE_NAMESPACE_FLAGS, jt="eperm", jf="allow")
    label("allow")  # BPF jumps only forward: the returns come last
    emit(ret_k, allow)
    label("eperm")
    emit(ret_k, eperm)
    label("enosys")
    emit(ret_k, enosys)
    label("kill")
    emit(ret_k, kill)

    program = []
    for index, (op, jt, jf, k) in enumerate(code):
        offsets = [0 if target is None else labels[target] - index - 1 for target in (jt, jf)]
        if any(not 0 <= offset <= 255 for offset in offsets):
            raise ValueError(f"seccomp program: jump out of range at instruction {index}")
        program.append((op, offsets[0], offsets[1], k))
    return program


class Seccomp:
    """Prepared once in the runner; `apply()` runs in the job's process just before it runs the program."""

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


# -- the job's process, and the clean-up after it ------------------------------------------------------------


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
    try:  # as the interpreter does at exit: wait for non-daemon threads, then run atexit handlers
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
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


def remove_leftovers(uid):
    """Remove what `uid` left outside its work directory: its files in /dev/shm and /dev/mqueue (world-writable in a
    container, and they would outlive the job), and its System V IPC objects (when seccomp does not refuse them)."""
    for top in _SCRATCH_DIRS:
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            path = os.path.join(top, name)
            try:
                info = os.lstat(path)
                if info.st_uid != uid:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass
    objects = _ipc_objects(uid)
    if not objects:
        return
    pid = os.fork()
    # As the job's uid: the creator or owner of an IPC object may remove it without any capability.
    if pid == 0:
        try:
            os.setresuid(uid, uid, uid)
            libc = ctypes.CDLL(None, use_errno=True)
            ipc_rmid = 0
            for kind, ident in objects:
                if kind == "shm":
                    libc.shmctl(ident, ipc_rmid, None)
                elif kind == "sem":
                    libc.semctl(ident, 0, ipc_rmid)
                else:
                    libc.msgctl(ident, ipc_rmid, None)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


_SCRATCH_DIRS = ("/dev/shm", "/dev/mqueue")
# /proc/sysvipc/<kind>: the column of the id, and those of the owner's and creator's uid.
_IPC_COLUMNS = {"shm": (1, 7, 9), "sem": (1, 4, 6), "msg": (1, 7, 9)}


def _ipc_objects(uid):
    objects = []
    for kind, (id_column, uid_column, cuid_column) in _IPC_COLUMNS.items():
        try:
            with open(f"/proc/sysvipc/{kind}", encoding="ascii") as handle:
                rows = [line.split() for line in handle.read().splitlines()[1:]]
        except OSError:
            continue
        for row in rows:
            try:
                if uid in (int(row[uid_column]), int(row[cuid_column])):
                    objects.append((kind, int(row[id_column])))
            except (IndexError, ValueError):
                continue
    return objects


_OOM_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


def _oom_kills():
    """Processes killed so far by the out-of-memory killer in this sandbox's memory cgroup (cgroup v2 or v1), or
    None where no cgroup is visible (bubblewrap mounts no /sys)."""
    for path in _OOM_FILES:
        try:
            with open(path, "rb") as handle:
                for line in handle:
                    key, _, value = line.partition(b" ")
                    if key == b"oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


# -- the fork server -----------------------------------------------------------------------------------------

_EVENT = struct.Struct(">iii")  # job pid, event (0: started, 1: ended), wait status
_STARTED, _ENDED = 0, 1


class ForkServerDied(RuntimeError):
    pass


class ForkServer:
    """The zygote: a child of the runner, forked before the runner reads any job, that forks every job's process.

    A job's process so starts from an already-started interpreter (no start-up cost) that has never held another
    job's source, stdin or output: the runner's own memory holds those, and a process forked from the runner
    could read them back. For each job the runner sends the job's pipes over a Unix socket; the zygote forks the
    job's process, which reads its limits, argv and work directory from the first pipe, and reports its pid, then
    its wait status. The zygote itself never reads job data.
    """

    def __init__(self, uid, seccomp):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            _fork_server_main(theirs, uid, seccomp)
        theirs.close()
        self.pid = pid
        self.socket = ours

    def spawn(self, fds):
        """Fork a job's process with these descriptors (job message, stdin, stdout, stderr); return its pid."""
        try:
            socket.send_fds(self.socket, [b"J"], fds)
        except OSError as exc:
            raise ForkServerDied(f"the fork server is gone: {exc}") from exc
        pid, event, _ = self.receive()
        if event != _STARTED:
            raise ForkServerDied(f"the fork server answered event {event} for a new job")
        return pid

    def receive(self):
        data = b""
        while len(data) < _EVENT.size:
            try:
                chunk = self.socket.recv(_EVENT.size - len(data))
            except OSError as exc:
                raise ForkServerDied(f"lost the fork server: {exc}") from exc
            if not chunk:
                raise ForkServerDied("the fork server exited")
            data += chunk
        return _EVENT.unpack(data)


def _fork_server_main(sock, uid, seccomp):
    """The zygote's loop (see ForkServer). Never returns."""
    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG: die with the runner
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)  # the protocol streams belong to the runner alone
        os.dup2(null, 1)
        os.close(null)
        while True:
            _, fds, _, _ = socket.recv_fds(sock, 16, 4)
            if len(fds) != 4:
                os._exit(0)  # the runner closed the socket
            pid = os.fork()
            if pid == 0:
                sock.close()
                _job_process(fds, uid, seccomp)
            for fd in fds:
                os.close(fd)
            sock.sendall(_EVENT.pack(pid, _STARTED, 0))
            _, status = os.waitpid(pid, 0)
            sock.sendall(_EVENT.pack(pid, _ENDED, status))
    except BaseException:
        os._exit(1)


def _job_process(fds, uid, seccomp):
    """In the job's process, forked by the zygote: read the job message, then confine and run. Never returns."""
    job_r, stdin_r, out_w, err_w = fds
    try:
        with os.fdopen(job_r, "rb") as stream:
            job = json.loads(stream.read().decode("utf-8"))
    except BaseException as exc:
        try:
            os.write(err_w, f"rlvr runner: could not read the job: {exc}\n".encode())
        finally:
            os._exit(127)
    _child(job, job["workdir"], uid, (stdin_r, out_w, err_w), seccomp)


# -- one job -------------------------------------------------------------------------------------------------


def run_job(job, uid, fork_server):
    """Run one job as `uid`: write its files, have the fork server start its process, feed its stdin and collect
    its output within its limits, then kill what it left running and clean up after it. Returns its result."""
    limits = job["limits"]
    workdir = os.path.join(JOBS_ROOT, f"job-{job['id']}")
    error = _prepare_workdir(workdir, job, uid)
    if error is not None:
        return error

    job_r, job_w = os.pipe()
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    oom_before = _oom_kills()
    start = time.monotonic()
    try:
        pid = fork_server.spawn([job_r, stdin_r, out_w, err_w])
    finally:
        for fd in (job_r, stdin_r, out_w, err_w):
            os.close(fd)
    _send_job_message(job_w, workdir, job)

    cap = int(limits["output_bytes"])
    outputs = {out_r: bytearray(), err_r: bytearray()}
    pending_stdin = job.get("stdin", "").encode("utf-8")
    selector, stdin_w = _job_selector(out_r, err_r, stdin_w, pending_stdin, fork_server)
    deadline = start + float(limits["wall_s"])
    exit_status, killed_for, stdin_w = _serve_job(
        selector, fork_server, stdin_w, pending_stdin, outputs, cap, deadline
    )
    wall = time.monotonic() - start

    if exit_status is None:  # timeout or output limit
        exit_status = _kill_job(pid, fork_server)
    kill_uid(uid)  # anything the job left behind, in any session
    _drain_outputs(outputs, cap)  # what the job wrote before it ended
    selector.close()
    _close_quietly(out_r, err_r, stdin_w)
    reap()
    shutil.rmtree(workdir, ignore_errors=True)
    remove_leftovers(uid)
    oom_after = _oom_kills()

    oom_killed = oom_before is not None and oom_after is not None and oom_after > oom_before
    return _job_result(outputs[out_r], outputs[err_r], cap, wall, exit_status, killed_for, oom_killed)


def _prepare_workdir(workdir, job, uid):
    """Create the job's fresh work directory with its files, owned by `uid`; on failure remove it and return the
    `sandbox_error` result (None on success)."""
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir, mode=0o700)
    try:
        _write_files(workdir, job, uid)
    except (OSError, ValueError) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        return {"status": "sandbox_error", "detail": f"could not write the job's files: {exc}"}
    return None


def _send_job_message(job_w, workdir, job):
    """Write the job's process its message on the first pipe, then close the pipe."""
    # What the job's process needs beyond its files: not the source nor the stdin (the program gets those itself).
    fields = {"workdir": workdir, "limits": job["limits"], "argv": job.get("argv", [])}
    message = json.dumps(fields).encode("utf-8")
    try:
        view = memoryview(message)
        while view:
            view = view[os.write(job_w, view) :]
    except BrokenPipeError:
        pass  # the job's process died before it read its job: its wait status says how
    finally:
        os.close(job_w)


def _job_selector(out_r, err_r, stdin_w, pending_stdin, fork_server):
    """A selector over the job's stdout and stderr (made non-blocking), its stdin while there is input to write (with
    none, the pipe is closed now), and the fork server's socket. Returns (selector, stdin_w or None once closed)."""
    selector = selectors.DefaultSelector()
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    if pending_stdin:
        os.set_blocking(stdin_w, False)
        selector.register(stdin_w, selectors.EVENT_WRITE)
    else:
        os.close(stdin_w)
        stdin_w = None
    server_fd = fork_server.socket.fileno()
    selector.register(server_fd, selectors.EVENT_READ)  # readable when the job's process has ended
    return selector, stdin_w


def _serve_job(selector, fork_server, stdin_w, pending_stdin, outputs, cap, deadline):
    """Feed the job's stdin and collect its stdout and stderr into `outputs` until its process ends, the deadline
    passes or an output goes over `cap`. Returns (wait status, or None when the process has not ended; "timeout",
    "output_limit" or None; stdin_w, or None once closed)."""
    server_fd = fork_server.socket.fileno()
    killed_for = None
    exit_status = None
    while exit_status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            killed_for = "timeout"
            break
        for key, _ in selector.select(timeout=remaining):
            fd = key.fd
            if fd == server_fd:
                _, _, exit_status = fork_server.receive()
            elif stdin_w is not None and fd == stdin_w:
                stdin_w, pending_stdin = _feed_stdin(selector, stdin_w, pending_stdin)
            elif fd in outputs and _read_output(selector, fd, outputs[fd], cap):
                killed_for = "output_limit"
        if killed_for and exit_status is None:
            break
    return exit_status, killed_for, stdin_w


def _feed_stdin(selector, stdin_w, pending_stdin):
    """Write the next chunk of the job's stdin; once all is written (or the program stopped reading), unregister
    and close the pipe. Returns (stdin_w, or None once closed; what is left to write)."""
    try:
        pending_stdin = pending_stdin[os.write(stdin_w, pending_stdin[:_READ_CHUNK]) :]
    except BlockingIOError:
        return stdin_w, pending_stdin
    except BrokenPipeError:  # the program stopped reading its stdin
        pending_stdin = b""
    if not pending_stdin:
        selector.unregister(stdin_w)
        os.close(stdin_w)
        stdin_w = None
    return stdin_w, pending_stdin


def _read_output(selector, fd, output, cap):
    """Append what `fd` has to `output` (unregister it at EOF); True when this read took `output` over `cap`."""
    try:
        data = os.read(fd, _READ_CHUNK)
    except BlockingIOError:
        return False
    if not data:
        selector.unregister(fd)
        return False
    output += data
    return len(output) > cap


def _kill_job(pid, fork_server):
    """SIGKILL the job's process and its session, then collect its wait status."""
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, _, exit_status = fork_server.receive()
    return exit_status


def _drain_outputs(outputs, cap):
    """Read what is left in the job's stdout and stderr pipes, while each output is within `cap`."""
    for fd, output in outputs.items():
        while len(output) <= cap:
            try:
                data = os.read(fd, _READ_CHUNK)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            output += data


def _close_quietly(*fds):
    """Close each descriptor that is not None, ignoring errors."""
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _job_result(stdout, stderr, cap, wall, exit_status, killed_for, oom_killed):
    """The result message: outputs cut to `cap` bytes, wall time, exit code or signal, and status."""
    stdout, stderr = bytes(stdout), bytes(stderr)
    truncated = len(stdout) > cap or len(stderr) > cap
    result = {
        "stdout": stdout[:cap].decode("utf-8", "replace"),
        "stderr": stderr[:cap].decode("utf-8", "replace"),
        "truncated": truncated,
        "wall_s": round(wall, 6),
        "exit_code": os.WEXITSTATUS(exit_status) if os.WIFEXITED(exit_status) else None,
        "signal": os.WTERMSIG(exit_status) if os.WIFSIGNALED(exit_status) else None,
    }
    result["status"] = _status(killed_for, result, stderr, oom_killed)
    return result


def _status(killed_for, result, stderr, oom_killed=False):
    if killed_for:
        return killed_for
    failed = result["exit_code"] != 0  # a non-zero exit, or a signal (exit_code None)
    if failed and oom_killed:
        return "memory"  # the out-of-memory killer ended the job or one of its processes
    tail = stderr[-4096:]
    if failed and (b"MemoryError" in tail or b"Cannot allocate memory" in tail):
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
    # Ignored, as `python3` itself does: writing to a pipe whose reader is gone (a program that never read its
    # stdin) must raise BrokenPipeError here, not kill the runner. The job inherits this, as it would from python3.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    os.makedirs(JOBS_ROOT, mode=0o711, exist_ok=True)
    os.chmod(JOBS_ROOT, 0o711)
    if "--private-tmp" in argv:  # /tmp is this sandbox's own: the job may write only in its job directory
        os.chmod("/tmp", 0o711)
    seccomp = Seccomp() if use_seccomp else None
    fork_server = ForkServer(uid, seccomp if seccomp is not None and seccomp.available else None)
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
    while True:
        job = read_message(stdin)
        if job is None:
            return
        try:
            result = run_job(job, uid, fork_server)
        except ForkServerDied as exc:  # no clean way to go on: exit, so that the sandbox replaces this runner
            print(f"rlvr runner: {exc}", file=sys.stderr, flush=True)
            kill_uid(uid)
            os._exit(70)
        except Exception as exc:  # the runner must answer every job
            result = {"status": "sandbox_error", "detail": f"runner failed: {type(exc).__name__}: {exc}"}
        result["id"] = job.get("id")
        write_message(stdout, result)


if __name__ == "__main__":
    main(sys.argv[1:])
