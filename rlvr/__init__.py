"""rlvr: reinforcement learning of language models with verifiable rewards.

Importing `rlvr` (or any `rlvr.X`) loads nothing heavy: `import rlvr.verifiers` pulls in neither Gymnasium, nor
the environments, nor torch. The names below are imported on first use. The built-in environments (and every
installed plugin's, see `rlvr.envs.plugins`) are registered with Gymnasium as soon as Gymnasium is imported, so
`import rlvr; gymnasium.make("rlvr/...")` works.
"""

from __future__ import annotations

from typing import Any

from rlvr.gym_hook import register_when_gymnasium_loads
from rlvr.version import __version__

_LAZY = {
    "Completion": "rlvr.envs.types",
    "Task": "rlvr.envs.types",
    "list_ids": "rlvr.envs.registry",
    "make": "rlvr.envs.registry",
    "register": "rlvr.envs.registry",
}

__all__ = ["Completion", "Task", "__version__", "list_ids", "make", "register"]

register_when_gymnasium_loads()


def __getattr__(name: str) -> Any:
    """PEP 562: `rlvr.make` and the other re-exports import their module on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'rlvr' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
