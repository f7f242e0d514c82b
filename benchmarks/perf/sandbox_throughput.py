"""Throughput and latency of rlvr's sandbox backends against one `docker run --rm` per job.

Workloads:
  trivial    `print("ok")`;
  humaneval  the 164 HumanEval canonical solutions with their tests, from ../shared/data/code/humaneval.jsonl:
             program = prompt + canonical_solution + "\\n" + test + "\\n" + f"check({entry_point})\\n".

Backends, measured in one process, `--rounds` times in alternation (medians reported):
  (a) baseline: one `docker run --rm` per job, same image and the pool's hardening (network none, read-only
      root, tmpfs /tmp, memory and pids limits, cap-drop ALL, no-new-privileges, log driver none) and a
      non-root user, program passed with `python3 -I -c`; the first `--baseline-jobs` jobs of a workload, run
      sequentially and with `--size` at once (threads). The concurrent figure is the one ratios use.
  (b) `DockerSandbox(size=--size)`, started with `start()` before any timing (start-up reported apart);
      throughput: `run_many` over the workload's jobs; latency: one `run()` at a time.
  (c) `LocalSandbox(size=--size)` (runners in bubblewrap), measured as (b).
Each round runs, per workload: (a) sequential, (a) concurrent, (b) run_many, (c) run_many. After the rounds,
the latency passes of (b) and (c). Every job must end `ok` (a trivial one must print "ok") on every backend;
the script lists any that do not.

The machine is shared: the script first waits (up to `--max-wait-s`) for the 1-min load average to fall below
`--max-load` and the CPU to be under 15 % busy over 10 s. It reports the load before/after and splits the CPU time
used during the measurements by process tree: this process and its children; the Docker engine; containerd
shims with their containers (live, or exited and reaped by init, or removed by force: from their cgroup);
other users' containers (polled from the `docker` cgroup); other users' processes; kernel threads. It prints
DISTURBED when other users took more than 10 % of the machine.

Run: .venv/bin/python benchmarks/perf/sandbox_throughput.py [--rounds 3 --size 2 --trivial-jobs 1000
     --humaneval-repeats 3 --baseline-jobs 40 --latency-trivial-jobs 300 --max-load 1.5 --json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from perf_common import busy_cpu_seconds, percentile, source_state

from rlvr.sandbox import DEFAULT_IMAGE, DockerSandbox, ExecResult, Job, LocalSandbox
from rlvr.sandbox.base import RUNNER_SOURCE, RunnerSession
from rlvr.sandbox.docker_backend import JOB_UID

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "code"  # ../shared/data/code
TRIVIAL = 'print("ok")'
WORKLOADS = ("trivial", "humaneval")
BACKENDS = ("baseline_seq", "baseline", "pool", "local")
LABELS = {
    "baseline_seq": "(a) docker run --rm, sequential",
    "baseline": "(a) docker run --rm, concurrent",
    "pool": "(b) DockerSandbox pool",
    "local": "(c) LocalSandbox (bwrap)",
}
# The pool's container settings (DockerSandbox defaults) and hardening, for a fresh container per job.
DOCKER_RUN = [
    "docker", "run", "--rm",
    "--network", "none",
    "--read-only",
    "--tmpfs", "/tmp:rw,size=256m,mode=1777",
    "--memory", "1024m", "--memory-swap", "1024m",
    "--pids-limit", "256",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--log-driver", "none",
    "--user", f"{JOB_UID}:{JOB_UID}",
]  # fmt: skip


@dataclass(frozen=True)
class Task:
    name: str
    job: Job


@dataclass
class Outcome:
    name: str
    status: str
    detail: str = ""


# -- workload ------------------------------------------------------------------------------------------------


def humaneval_tasks() -> list[Task]:
    with open(DATA / "humaneval.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [
        Task(
            r["task_id"],
            Job(
                r["prompt"]
                + r["canonical_solution"]
                + "\n"
                + r["test"]
                + "\n"
                + f"check({r['entry_point']})\n"
            ),
        )
        for r in rows
    ]


def trivial_tasks(n: int) -> list[Task]:
    return [Task(f"trivial/{i}", Job(TRIVIAL)) for i in range(n)]


def outcome(task: Task, result: ExecResult) -> Outcome:
    status = result.status
    if status == "ok" and task.name.startswith("trivial/") and result.stdout != "ok\n":
        status = "wrong_output"
    return Outcome(task.name, status, (result.detail or result.stderr)[-300:])


# -- backends ------------------------------------------------------------------------------------------------


def docker_run(task: Task, image: str, ours: set[str]) -> Outcome:
    """(a): one fresh hardened container for one job; its id goes into `ours` (for the CPU split)."""
    job = task.job
    cidfile = Path(tempfile.gettempdir()) / f"rlvr-bench-{uuid.uuid4().hex}.cid"
    command = [*DOCKER_RUN, "--cidfile", str(cidfile), image, "python3", "-I", "-c", job.source]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=job.limits.wall_s + 60)
    except subprocess.TimeoutExpired:
        return Outcome(task.name, "timeout")
    finally:
        try:
            ours.add(cidfile.read_text(encoding="ascii").strip())
            cidfile.unlink()
        except OSError:
            pass
    if proc.returncode != 0:
        return Outcome(task.name, "error", f"exit {proc.returncode}: {proc.stderr[-300:]}")
    if task.name.startswith("trivial/") and proc.stdout != "ok\n":
        return Outcome(task.name, "wrong_output", proc.stdout[-300:])
    return Outcome(task.name, "ok")


def timed(fn: Callable[[Task], Outcome], task: Task) -> tuple[Outcome, float]:
    start = time.perf_counter()
    result = fn(task)
    return result, time.perf_counter() - start


def run_sequential(
    fn: Callable[[Task], Outcome], tasks: Sequence[Task]
) -> tuple[float, list[float], list[Outcome]]:
    """One job at a time: wall seconds, per-job latencies, outcomes."""
    start = time.perf_counter()
    pairs = [timed(fn, t) for t in tasks]
    return time.perf_counter() - start, [p[1] for p in pairs], [p[0] for p in pairs]


def run_concurrent(
    fn: Callable[[Task], Outcome], tasks: Sequence[Task], size: int
) -> tuple[float, list[float], list[Outcome]]:
    """`size` jobs at once from a thread pool: wall seconds, per-job latencies, outcomes."""
    with ThreadPoolExecutor(size) as pool:
        start = time.perf_counter()
        pairs = list(pool.map(lambda t: timed(fn, t), tasks))
        seconds = time.perf_counter() - start
    return seconds, [p[1] for p in pairs], [p[0] for p in pairs]


def run_pool_many(
    sandbox: DockerSandbox | LocalSandbox, tasks: Sequence[Task]
) -> tuple[float, list[Outcome]]:
    start = time.perf_counter()
    results = sandbox.run_many([t.job for t in tasks])
    seconds = time.perf_counter() - start
    return seconds, [outcome(t, r) for t, r in zip(tasks, results, strict=True)]


# -- machine state -------------------------------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (ppid, comm, utime + stime + cutime + cstime in seconds) of every live process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        head, tail = text.rsplit(")", 1)
        fields = tail.split()
        out[int(name)] = (int(fields[1]), head.split("(", 1)[1], sum(int(x) for x in fields[11:15]) / tick)
    return out


def cpu_snapshot() -> dict:
    """CPU seconds used so far, split by process tree (a tree: a process, what it reaped, its live descendants).

    own: this process's tree (the docker CLI, the local runners and their jobs). Per root pid, for the trees
    whose root is a child of init: the Docker engine (dockerd, containerd), the live containerd shims (each with
    its container's processes), and everything else (other users' sessions). Per pid: kernel threads. Init's
    cutime: the trees it reaped, chiefly the shims of exited containers with their runc and container processes.
    """
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)

    def tree(root: int) -> float:
        total, stack = 0.0, [root]
        while stack:
            pid = stack.pop()
            total += procs[pid][2]
            stack += children.get(pid, [])
        return total

    me = os.getpid()
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system + tree(me) - procs.get(me, (0, "", 0.0))[2]
    ancestors, pid = set(), me
    while pid in procs and pid > 1:
        ancestors.add(pid)
        pid = procs[pid][0]
    groups: dict[str, dict[int, float]] = {"engine": {}, "shims": {}, "sessions": {}, "kernel": {}}
    for pid, (ppid, comm, cpu) in procs.items():
        if pid == 2 or ppid == 2:
            groups["kernel"][pid] = cpu
        elif ppid == 1 and pid not in ancestors:
            if comm in ("dockerd", "containerd"):
                groups["engine"][pid] = tree(pid)
            elif comm.startswith("containerd-shim"):
                groups["shims"][pid] = tree(pid)
            else:
                groups["sessions"][pid] = tree(pid)
    return {"busy": busy_cpu_seconds() or 0.0, "own": own, "init_reaped": _reaped_cpu(1), **groups}


def _reaped_cpu(pid: int) -> float:
    """cutime + cstime of a process: what its reaped children used."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    """Seconds used between two snapshots. A per-pid group counts the trees alive at the end; a tree that ended
    in between shows up in init's cutime (`init_reaped`)."""
    out = {name: after[name] - before[name] for name in ("busy", "own", "init_reaped")}
    for name in ("engine", "shims", "sessions", "kernel"):
        out[name] = sum(cpu - before[name].get(pid, 0.0) for pid, cpu in after[name].items())
    return out


class ContainerCpu:
    """Polls the `docker` cpuacct cgroup (cgroup v1, cgroupfs driver) to split container CPU between this
    script's containers and everyone else's. A container that lives less than `interval_s` may be missed."""

    ROOT = Path("/sys/fs/cgroup/cpuacct/docker")

    def __init__(self, interval_s: float = 0.5) -> None:
        self.available = (self.ROOT / "cpuacct.usage").exists()
        self.interval_s = interval_s
        self.ours: set[str] = set()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self._initial = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.total_before = self._usage(self.ROOT) if self.available else 0.0
        self.total_after = self.total_before
        self.live: set[str] = set()

    @staticmethod
    def _usage(path: Path) -> float:
        try:
            return int((path / "cpuacct.usage").read_text(encoding="ascii")) / 1e9
        except (OSError, ValueError):
            return -1.0

    def poll(self) -> None:
        try:
            entries = list(self.ROOT.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.is_dir():
                usage = self._usage(entry)
                if usage >= 0:
                    if entry.name not in self.first:  # running before start(): count from then on
                        self.first[entry.name] = usage if self._initial else 0.0
                    self.last[entry.name] = usage

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def start(self) -> None:
        if self.available:
            self.poll()
            self._initial = False
            self._thread.start()

    def stop(self) -> None:
        if self.available:
            self._stop.set()
            self._thread.join()
            self.poll()
            self.total_after = self._usage(self.ROOT)
            self.live = {c for c in self.last if (self.ROOT / c).is_dir()}

    def figures(self) -> dict[str, float | int]:
        foreign = [c for c in self.last if c not in self.ours]
        all_containers = self.total_after - self.total_before
        return {
            "all_containers_s": all_containers,
            "exited_containers_s": all_containers - sum(self.last[c] - self.first[c] for c in self.live),
            "foreign_containers_seen": len(foreign),
            "foreign_containers_s": sum(self.last[c] - self.first[c] for c in foreign),
        }


class TrackedDockerSandbox(DockerSandbox):
    """DockerSandbox that records the ids of the containers it starts (for the CPU split only)."""

    def __init__(self, *args: object, tracker: ContainerCpu, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._tracker = tracker

    def _new_session(self, slot: int) -> RunnerSession:
        session = super()._new_session(slot)
        self._tracker.ours.add(session.container.id)  # type: ignore[attr-defined]
        return session


def wait_for_quiet(max_load: float, max_wait_s: float, window_s: float = 10.0) -> float:
    """Wait until the machine is quiet (other people's jobs share it): the 1-min load average below `max_load`
    and, over the last `window_s`, less than 15 % of the machine's CPU busy. Return the seconds waited."""
    start = time.monotonic()
    if max_load <= 0:
        return 0.0
    while True:
        before = busy_cpu_seconds() or 0.0
        time.sleep(window_s)
        busy = ((busy_cpu_seconds() or 0.0) - before) / (window_s * (os.cpu_count() or 1))
        load = os.getloadavg()[0]
        if load < max_load and busy < 0.15:
            break
        waited = time.monotonic() - start
        if waited >= max_wait_s:
            print(
                f"machine still busy (load {load:.2f}, {100 * busy:.0f} % CPU) after {waited:.0f} s; measuring anyway"
            )
            break
    return time.monotonic() - start


def tool_version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


# -- main ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--size", type=int, default=2, help="runners per sandbox, and baseline concurrency")
    parser.add_argument("--trivial-jobs", type=int, default=1000, help="trivial jobs per round for (b), (c)")
    parser.add_argument(
        "--humaneval-repeats", type=int, default=3, help="passes over the 164 programs per round for (b), (c)"
    )
    parser.add_argument(
        "--baseline-jobs", type=int, default=40, help="jobs per workload, per mode and round for (a)"
    )
    parser.add_argument(
        "--latency-trivial-jobs", type=int, default=300, help="sequential trivial jobs for (b), (c) latency"
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=1.5,
        help="before starting, wait until the 1-min load average is below this and the CPU is < 15 %% busy "
        "over 10 s (0: do not wait)",
    )
    parser.add_argument("--max-wait-s", type=float, default=600.0, help="give up waiting after this long")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    waited = wait_for_quiet(args.max_load, args.max_wait_s)
    load_before = os.getloadavg()
    containers = ContainerCpu()
    containers.start()
    cpu_before = cpu_snapshot()
    wall_start = time.perf_counter()

    humaneval = humaneval_tasks()
    tasks = {
        "trivial": trivial_tasks(args.trivial_jobs),
        "humaneval": humaneval * args.humaneval_repeats,
    }
    baseline_tasks = {
        "trivial": trivial_tasks(args.baseline_jobs),
        "humaneval": humaneval[: args.baseline_jobs],
    }
    latency_tasks = {"trivial": trivial_tasks(args.latency_trivial_jobs), "humaneval": humaneval}

    def baseline(task: Task) -> Outcome:
        return docker_run(task, args.image, containers.ours)

    warm = baseline(Task("trivial/warm-up", Job(TRIVIAL)))  # image layers and the CLI into the page cache
    if warm.status != "ok":
        raise SystemExit(f"baseline docker run failed: {warm.status} {warm.detail}")

    startup: dict[str, float] = {}
    sandboxes: dict[str, DockerSandbox | LocalSandbox] = {}
    try:
        start = time.perf_counter()
        sandboxes["pool"] = TrackedDockerSandbox(size=args.size, image=args.image, tracker=containers)
        sandboxes["pool"].start()
        startup["pool"] = time.perf_counter() - start
        start = time.perf_counter()
        sandboxes["local"] = LocalSandbox(size=args.size)
        sandboxes["local"].start()
        startup["local"] = time.perf_counter() - start
        info = {name: dict(s._idle[0].info) for name, s in sandboxes.items()}

        def runner_for(backend: str) -> Callable[[Task], Outcome]:
            if backend.startswith("baseline"):
                return baseline
            sandbox = sandboxes[backend]
            return lambda t: outcome(t, sandbox.run(t.job))

        seconds: dict[tuple[str, str], list[float]] = {}
        jobs: dict[tuple[str, str], int] = {}
        latencies: dict[tuple[str, str], list[float]] = {}
        concurrent_latencies: list[float] = []
        bad: dict[tuple[str, str], list[Outcome]] = {}
        ran: dict[tuple[str, str], int] = {}

        def record(key: tuple[str, str], outcomes: list[Outcome], wall: float | None = None) -> None:
            if wall is not None:
                seconds.setdefault(key, []).append(wall)
                jobs[key] = len(outcomes)
            ran[key] = ran.get(key, 0) + len(outcomes)
            bad.setdefault(key, []).extend(o for o in outcomes if o.status != "ok")

        for _ in range(args.rounds):
            for workload in WORKLOADS:
                base = baseline_tasks[workload]
                wall, lat, outs = run_sequential(baseline, base)
                record((workload, "baseline_seq"), outs, wall)
                latencies.setdefault((workload, "baseline_seq"), []).extend(lat)
                wall, lat, outs = run_concurrent(baseline, base, args.size)
                record((workload, "baseline"), outs, wall)
                if workload == "trivial":
                    concurrent_latencies += lat
                for backend in ("pool", "local"):
                    wall, outs = run_pool_many(sandboxes[backend], tasks[workload])
                    record((workload, backend), outs, wall)
        sequential: dict[tuple[str, str], float] = {}
        for workload in WORKLOADS:
            for backend in ("pool", "local"):
                wall, lat, outs = run_sequential(runner_for(backend), latency_tasks[workload])
                latencies[(workload, backend)] = lat
                sequential[(workload, backend)] = len(lat) / wall
                record((workload, backend), outs)
        cpu_after = cpu_snapshot()  # before close(): the local runners are still alive, so counted as ours
        containers.stop()
        cpu_window = time.perf_counter() - wall_start
        sessions = {name: s.sessions_started for name, s in sandboxes.items()}
    finally:
        for sandbox in sandboxes.values():
            sandbox.close()
    wall_total = time.perf_counter() - wall_start
    load_after = os.getloadavg()

    cpu = cpu_delta(cpu_before, cpu_after)
    capacity = (os.cpu_count() or 1) * cpu_window
    cpu.update(containers.figures())
    # Containers' processes are inside the shims' trees (live) or init's cutime (exited), except those of a
    # container removed by force (the pool's): the kernel passes their CPU to no parent; their cgroup has it.
    docker_side = cpu["engine"] + cpu["shims"] + cpu["init_reaped"]
    rest = cpu["busy"] - cpu["own"] - docker_side - cpu["sessions"] - cpu["kernel"]
    cpu["removed_containers_s"] = max(0.0, min(rest, cpu["exited_containers_s"]))
    cpu["unattributed_s"] = rest - cpu["removed_containers_s"]
    cpu["ours_docker_s"] = max(0.0, docker_side + cpu["removed_containers_s"] - cpu["foreign_containers_s"])
    cpu["disturbance_s"] = cpu["sessions"] + cpu["foreign_containers_s"]

    rows = {}
    for workload in WORKLOADS:
        for backend in BACKENDS:
            key = (workload, backend)
            wall = statistics.median(seconds[key])
            lat = latencies.get(key, [])
            rows[f"{workload}/{backend}"] = {
                "jobs_per_round": jobs[key],
                "seconds_per_round": seconds[key],
                "jobs_per_s": jobs[key] / wall,
                "sequential_jobs_per_s": sequential.get(key),
                "latency_jobs": len(lat),
                "latency_p50_ms": 1e3 * percentile(lat, 50) if lat else None,
                "latency_p99_ms": 1e3 * percentile(lat, 99) if lat else None,
                "not_ok": [vars(o) for o in bad.get(key, [])],
            }
    ratios = {
        workload: {
            "pool_over_baseline": rows[f"{workload}/pool"]["jobs_per_s"]
            / rows[f"{workload}/baseline"]["jobs_per_s"],
            "pool_over_baseline_seq": rows[f"{workload}/pool"]["jobs_per_s"]
            / rows[f"{workload}/baseline_seq"]["jobs_per_s"],
            "local_over_baseline": rows[f"{workload}/local"]["jobs_per_s"]
            / rows[f"{workload}/baseline"]["jobs_per_s"],
        }
        for workload in WORKLOADS
    }
    local_trivial = rows["trivial/local"]["jobs_per_s"]
    figures = {
        "rounds": args.rounds,
        "size": args.size,
        "image": args.image,
        "rows": rows,
        "ratios": ratios,
        "target_pool_over_baseline": 30.0,
        "target_local_trivial_jobs_per_s": 100.0,
        "pool_target_met": {w: ratios[w]["pool_over_baseline"] >= 30.0 for w in WORKLOADS},
        "local_target_met": local_trivial >= 100.0,
        "startup_s": startup,
        "sessions_started": sessions,
        "runner_info": info,
        "baseline_concurrent_trivial_latency_p50_ms": 1e3 * percentile(concurrent_latencies, 50),
        "baseline_concurrent_trivial_latency_p99_ms": 1e3 * percentile(concurrent_latencies, 99),
        "wall_s": wall_total,
        "load_average_before_after": [load_before[0], load_after[0]],
        "waited_for_load_s": waited,
        "cpu_seconds": cpu,
        "cpu_window_s": cpu_window,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "docker_server": tool_version(["docker", "version", "--format", "{{.Server.Version}}"]),
        "bubblewrap": tool_version(["bwrap", "--version"]),
        "source": source_state("sandbox"),
        "runner_sha256": hashlib.sha256(RUNNER_SOURCE.encode("utf-8")).hexdigest()[:12],
    }

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    print(
        f"workloads: trivial = {TRIVIAL!r}; humaneval = 164 canonical solutions + tests from {DATA.name}/"
        f"humaneval.jsonl. size {args.size}, {args.rounds} rounds (medians); per round: (a) {args.baseline_jobs} "
        f"jobs per workload and mode, (b)/(c) {args.trivial_jobs} trivial and {len(tasks['humaneval'])} HumanEval "
        f"jobs via run_many; latency: one run() at a time, {args.latency_trivial_jobs} trivial / 164 HumanEval"
    )
    print(
        f"start-up (construct + start(), {args.size} runners): pool {startup['pool']:.2f} s, "
        f"local {startup['local']:.2f} s; runners: python {info['pool'].get('python')} (pool), "
        f"{info['local'].get('python')} (local), seccomp {info['pool'].get('seccomp')}/{info['local'].get('seccomp')}"
    )
    header = f"{'workload':<10} {'backend':<34} {'jobs/s':>8} {'seq jobs/s':>10} {'p50 ms':>8} {'p99 ms':>8}  rounds (s)"
    print(header)
    print("-" * len(header))
    for workload in WORKLOADS:
        for backend in BACKENDS:
            row = rows[f"{workload}/{backend}"]
            seq = row["sequential_jobs_per_s"]
            if backend == "baseline_seq":
                seq = row["jobs_per_s"]
            print(
                f"{workload:<10} {LABELS[backend]:<34} {row['jobs_per_s']:>8.1f} "
                f"{'-' if seq is None else f'{seq:.1f}':>10} {ms(row['latency_p50_ms']):>8} "
                f"{ms(row['latency_p99_ms']):>8}  {'/'.join(f'{s:.2f}' for s in row['seconds_per_round'])}"
            )
    print(
        f"(a) concurrent, per-job latency of trivial jobs with {args.size} at once: "
        f"p50 {figures['baseline_concurrent_trivial_latency_p50_ms']:.0f} ms, "
        f"p99 {figures['baseline_concurrent_trivial_latency_p99_ms']:.0f} ms"
    )
    for workload in WORKLOADS:
        r = ratios[workload]
        print(
            f"ratio pool/baseline ({workload}, jobs/s): {r['pool_over_baseline']:.1f}x vs concurrent baseline "
            f"(target >= 30: {'met' if r['pool_over_baseline'] >= 30 else 'MISSED'}), "
            f"{r['pool_over_baseline_seq']:.1f}x vs sequential; local/baseline {r['local_over_baseline']:.1f}x"
        )
    print(
        f"local trivial: {local_trivial:.1f} jobs/s (target >= 100: "
        f"{'met' if figures['local_target_met'] else 'MISSED'})"
    )
    for workload in WORKLOADS:
        for backend in BACKENDS:
            key = (workload, backend)
            failures = bad.get(key, [])
            if workload == "humaneval" or failures:
                extra = "".join(f"\n    {o.name}: {o.status} {o.detail!r}" for o in failures[:10])
                print(f"{workload} {LABELS[backend]}: {ran[key] - len(failures)}/{ran[key]} ok{extra}")
    print(f"sessions started: pool {sessions['pool']}, local {sessions['local']} (recycled after 500 jobs)")
    print(
        f"python {figures['python']}, docker server {figures['docker_server']}, {figures['bubblewrap']}, "
        f"{os.cpu_count()} cores, rlvr {figures['source']} (runner.py sha256 {figures['runner_sha256']}), "
        f"total {wall_total:.0f} s, "
        f"1-min load average before/after {load_before[0]:.2f}/{load_after[0]:.2f} "
        f"(waited {waited:.0f} s for a quiet machine)"
    )
    print(
        f"CPU-s during the measurements: {cpu['busy']:.1f} busy of {capacity:.0f}. This script and its "
        f"children (docker CLI, local runners, jobs) {cpu['own']:.1f}; Docker: engine {cpu['engine']:.1f}, live "
        f"shims with their containers {cpu['shims']:.1f}, exited shims with runc and their containers "
        f"(reaped by init) {cpu['init_reaped']:.1f}, containers removed by force (their cgroup) "
        f"{cpu['removed_containers_s']:.1f}; of all that, other users' containers {cpu['foreign_containers_s']:.1f} "
        f"({cpu['foreign_containers_seen']} seen); other users' processes {cpu['sessions']:.1f}; kernel threads "
        f"{cpu['kernel']:.1f}; unattributed (interrupts, processes not yet reaped) {cpu['unattributed_s']:.1f}"
    )
    figures["disturbed"] = cpu["disturbance_s"] > 0.1 * capacity
    if figures["disturbed"]:
        print(
            f"DISTURBED: other users' processes and containers used {cpu['disturbance_s']:.0f} CPU-s, "
            f"{100 * cpu['disturbance_s'] / capacity:.0f} % of the machine; re-run when it is quieter"
        )

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
