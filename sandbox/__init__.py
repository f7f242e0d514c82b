"""Runs untrusted programs: one Sandbox interface over a Docker pool and a local bubblewrap backend."""

from rlvr.sandbox.base import RunnerPool, SandboxUnavailable
from rlvr.sandbox.docker_backend import DEFAULT_IMAGE, DockerSandbox
from rlvr.sandbox.factory import doctor, make_sandbox
from rlvr.sandbox.local import LocalSandbox
from rlvr.sandbox.types import STATUSES, ExecResult, Job, Limits

Sandbox = RunnerPool  # the interface: run, run_many, arun, arun_many, start, close

__all__ = [
    "DEFAULT_IMAGE",
    "STATUSES",
    "DockerSandbox",
    "ExecResult",
    "Job",
    "Limits",
    "LocalSandbox",
    "Sandbox",
    "SandboxUnavailable",
    "doctor",
    "make_sandbox",
]
