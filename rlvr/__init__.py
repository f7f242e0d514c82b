"""rlvr: reinforcement learning of language models with verifiable rewards.

`import rlvr` registers the built-in environments with Gymnasium, so `gymnasium.make("rlvr/...")` works.
"""

__version__ = "0.1.0"

from rlvr.envs import Completion, Task, list_ids, make, register

__all__ = ["Completion", "Task", "__version__", "list_ids", "make", "register"]
