"""Environments from outside rlvr: `module:id` ids and installed packages' entry points.

- `"mylab.envs:mylab/revword-v0"` (Gymnasium's own form): import `mylab.envs`, whose import registers the id, then
  use `mylab/revword-v0`. Accepted wherever rlvr takes an id: `rlvr.make`, `rlvr envs check|show`, `env.suite`,
  `rlvr eval --suite`. The current folder is searched first, as `python -m` does, so a module beside the user
  needs no install.
- An installed package declares an entry point in the group `rlvr.envs`; its value is a module to import
  (`mylab = "mylab.envs"`) or a function to call (`mylab = "mylab.envs:register_all"`). rlvr loads every such
  entry point with its own built-ins: when Gymnasium is first imported after `import rlvr`, and before any
  registry look-up. A plugin that fails to load is a one-line warning, never a crash of rlvr.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from importlib.metadata import entry_points

from rlvr.errors import ConfigError

GROUP = "rlvr.envs"
"""The entry-point group an installed package declares its environments in."""

_loaded: set[str] = set()
_scanned = False


def load_plugins() -> list[str]:
    """Import (or call) every installed `rlvr.envs` entry point, once per process (reading the installed
    packages' metadata costs ~3 ms, and every `make` asks); the names of those that loaded."""
    global _scanned
    if _scanned:
        return []
    _scanned = True
    names = []
    for point in entry_points(group=GROUP):
        if point.value in _loaded:
            continue
        _loaded.add(point.value)
        try:
            target = point.load()
            if point.attr:
                target()
        except Exception as exc:  # a broken plugin must not break rlvr or the other plugins
            warnings.warn(
                f"rlvr: environment plugin {point.name!r} ({point.value}) did not load: "
                f"{type(exc).__name__}: {exc}",
                stacklevel=2,
            )
            continue
        names.append(point.name)
    return names


def split_module(env_id: str) -> tuple[str | None, str]:
    """("mylab.envs", "mylab/revword-v0") for "mylab.envs:mylab/revword-v0"; (None, id) for a plain id."""
    module, sep, name = env_id.partition(":")
    if not sep:
        return None, env_id
    if not module or not name or "/" in module:
        raise ConfigError(
            f"bad environment id {env_id!r}: expected `id` or `module:id` (e.g. mylab.envs:mylab/revword-v0)"
        )
    return module, name


def import_id(env_id: str) -> str:
    """The plain id of `env_id`, after importing its module when it has the `module:id` form."""
    module, name = split_module(env_id)
    if module is not None:
        import_user_module(module, f"the environment {env_id!r}")
    return name


def import_user_module(module: str, purpose: str = "its environments") -> None:
    """Import a user's module (the current folder searched first); a ConfigError that says why it failed."""
    if os.getcwd() not in sys.path and "" not in sys.path:  # as `python -m`: the user's folder first
        sys.path.insert(0, os.getcwd())
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {module!r} for {purpose} ({exc}); install the package that provides it, or run "
            "from the folder that holds it (or add that folder to PYTHONPATH)"
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"importing {module!r} for {purpose} failed: {type(exc).__name__}: {exc} "
            f"(`python -c 'import {module}'` shows the traceback)"
        ) from exc
