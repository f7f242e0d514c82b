"""Fixtures for the sandbox tests: every test that takes `backend` or `sandbox` runs on both backends.

Docker runs are marked `docker` and skipped, with the reason, when no engine answers or the image is missing;
local runs are skipped when the local backend cannot start here (not root, no /usr/bin/python3) or when
bubblewrap is missing (the isolation these tests check needs it). Sandboxes are module-scoped: one per backend
per test module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sandbox_helpers import BACKENDS, open_sandbox, skip_unless_available

from rlvr.sandbox.base import RunnerPool


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    skip_unless_available(request.param)
    return request.param


@pytest.fixture(scope="module")
def sandbox(backend: str) -> Iterator[RunnerPool]:
    """A started sandbox of two runners, shared by the tests of one module."""
    with open_sandbox(backend, size=2) as sb:
        sb.start()
        yield sb
