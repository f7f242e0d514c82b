"""Gymnasium environments, task sources, wrappers, the registry and the rollout loop.

Importing this package registers the built-in `rlvr/...` ids with Gymnasium (entry points are strings, so no
environment module, dataset or reasoning-gym is imported until `make`), then loads installed plugins
(`rlvr.envs.plugins`).
"""

from rlvr.envs import registrations as _registrations  # noqa: F401  (registers the built-in ids)
from rlvr.envs.base import RlvrEnv, SingleTurnEnv, TaskSource
from rlvr.envs.registry import card, list_ids, load_builtins, make, register, reward_components
from rlvr.envs.types import Completion, Feedback, Message, Sampling, Task

load_builtins()  # the installed plugins, once the names above exist (a plugin may import them)

__all__ = [
    "Completion",
    "Feedback",
    "Message",
    "RlvrEnv",
    "Sampling",
    "SingleTurnEnv",
    "Task",
    "TaskSource",
    "card",
    "list_ids",
    "make",
    "register",
    "reward_components",
]
