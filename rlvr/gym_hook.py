"""Register rlvr's environments with Gymnasium the moment Gymnasium is imported, without importing it first.

Gymnasium 1.x has no plugin entry points (they were removed in 1.0), and `import rlvr.verifiers` must stay free
of Gymnasium. So `import rlvr` installs a one-shot import finder: when some code imports `gymnasium`, the finder
lets the real import run, then imports `rlvr.envs`, which registers the built-ins and loads the installed
plugins. If Gymnasium is already imported, that happens at once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any


def register_when_gymnasium_loads() -> None:
    """Load rlvr's registrations now if Gymnasium is imported, else right after it is (idempotent)."""
    if "gymnasium" in sys.modules:
        _register()
    elif not any(isinstance(finder, _GymnasiumFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _GymnasiumFinder())


def _register() -> None:
    """Import `rlvr.envs`, which registers the built-ins and loads the plugins. When Gymnasium's import came
    from `rlvr.envs` itself (already in `sys.modules`, half-imported), that import finishes the job."""
    importlib.import_module("rlvr.envs")


class _GymnasiumFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it wraps the loader of `gymnasium` so that registration follows its import."""

    def find_spec(self, name: str, path: Any, target: ModuleType | None = None) -> Any:
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)  # one shot, and the real finders below must answer
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _register()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
