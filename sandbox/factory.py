"""Choosing a backend, and the doctor's report of what this machine offers."""

from __future__ import annotations

import logging
import time
from typing import Any

from rlvr.sandbox.base import RunnerPool, SandboxUnavailable
from rlvr.sandbox.docker_backend import DEFAULT_IMAGE, DockerSandbox, docker_client, engine_address
from rlvr.sandbox.local import SYSTEM_PYTHON, LocalSandbox, bubblewrap_path
from rlvr.sandbox.types import Job

log = logging.getLogger(__name__)
BACKENDS = ("auto", "docker", "local")


def make_sandbox(
    backend: str = "auto", size: int = 2, image: str = DEFAULT_IMAGE, **options: Any
) -> RunnerPool:
    """A sandbox of `size` runners. `auto`: Docker when an engine answers and has the image, else local (logged)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "docker":
        return DockerSandbox(size=size, image=image, **options)
    if backend == "local":
        return LocalSandbox(size=size, **options)
    try:
        sandbox = DockerSandbox(size=size, image=image, **options)
    except SandboxUnavailable as exc:
        log.warning("sandbox backend 'auto': Docker unavailable (%s); falling back to the local backend", exc)
        return LocalSandbox(size=size, **options)
    log.info("sandbox backend 'auto': using Docker at %s with image %s", engine_address(), image)
    return sandbox


def doctor(image: str = DEFAULT_IMAGE, measure: bool = True) -> dict[str, Any]:
    """What is available here: engine, image, bubblewrap, seccomp, the backend `auto` picks, and its latency."""
    report: dict[str, Any] = {"docker_host": engine_address(), "image": image}
    try:
        client = docker_client(timeout_s=5)
        report["engine"] = client.version().get("Version", "unknown")
        try:
            client.images.get(image)
            report["image_present"] = True
        except Exception:
            report["image_present"] = False
    except SandboxUnavailable as exc:
        report["engine"] = None
        report["engine_error"] = str(exc)
        report["image_present"] = False
    report["bubblewrap"] = bubblewrap_path()
    report["system_python"] = SYSTEM_PYTHON
    report["auto_backend"] = "docker" if report["engine"] and report["image_present"] else "local"
    if measure:
        try:
            with make_sandbox(report["auto_backend"], size=1, image=image) as sandbox:
                sandbox.start()
                session = sandbox._idle[0]
                report["seccomp"] = (
                    session.info.get("seccomp_detail") if session.info.get("seccomp") else None
                )
                latencies = []
                for _ in range(20):
                    start = time.perf_counter()
                    result = sandbox.run(Job("pass"))
                    latencies.append(time.perf_counter() - start)
                    if not result.ok:
                        raise SandboxUnavailable(f"a trivial job failed: {result.status} {result.detail}")
                report["latency_ms_p50"] = round(1000 * sorted(latencies)[len(latencies) // 2], 2)
        except SandboxUnavailable as exc:
            report["measure_error"] = str(exc)
    return report
