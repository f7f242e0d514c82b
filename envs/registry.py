"""The registry: rlvr ids live in Gymnasium's own registry, so `gymnasium.make("rlvr/...")` works.

`register` adds Gymnasium's spec (entry point as a "module:Class" string, so nothing is imported until `make`)
and a card with what `rlvr envs show` prints; `make(id, **overrides)` lays the overrides over the spec's kwargs.
The built-in registrations are listed in one module, `rlvr.envs.registrations`. Every function here also takes
a user environment as `module:id`, and sees the ids of installed plugins (`rlvr.envs.plugins`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec, load_env_creator

from rlvr.envs.plugins import import_id, load_plugins
from rlvr.errors import ConfigError

NAMESPACE = "rlvr"


@dataclass(frozen=True)
class EnvCard:
    """What a registration says about itself, for people: `rlvr envs show`."""

    id: str
    description: str
    data_source: str
    tags: tuple[str, ...] = ()
    wrappers: tuple[str, ...] = field(default=())


_cards: dict[str, EnvCard] = {}


class UnknownEnvironment(ConfigError, gym.error.NameNotFound):
    """No environment is registered under the id (an rlvr error, and Gymnasium's NameNotFound)."""


def register(
    id: str,
    entry_point: str | Callable[..., gym.Env],
    *,
    kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[tuple[str, dict[str, Any]]] = (),
    description: str = "",
    data_source: str = "",
    tags: Sequence[str] = (),
) -> None:
    """Register `id` (e.g. "rlvr/math-gsm8k-v0") with Gymnasium.

    `entry_point` is "module:Class" (imported at `make`), or the class or a factory function itself; `wrappers` are ("module:Wrapper", kwargs) pairs
    applied by `gymnasium.make` in order, so training and evaluation get the same reward pipeline.
    """
    if id in gym.registry:
        raise ValueError(
            f"environment id {id!r} is already registered; pick a new id or bump its version (-v1)"
        )
    specs = tuple(
        WrapperSpec(name=wrapper.rsplit(":", 1)[-1], entry_point=wrapper, kwargs=dict(options))
        for wrapper, options in wrappers
    )
    gym.register(id=id, entry_point=entry_point, kwargs=dict(kwargs or {}), additional_wrappers=specs)
    _cards[id] = EnvCard(
        id=id,
        description=description,
        data_source=data_source,
        tags=tuple(tags),
        wrappers=tuple(spec.name for spec in specs),
    )


def make(id: str, **overrides: Any) -> gym.Env:
    """`gymnasium.make(id, **overrides)` once the registrations are loaded; `id` may be `module:id`.

    An override the environment does not take is a ConfigError naming the ones it does (not a TypeError).
    """
    id = resolve(id)
    check_overrides(id, overrides)
    return gym.make(id, **overrides)


def resolve(id: str) -> str:
    """The registered id behind `id` (importing the module of a `module:id`); UnknownEnvironment if none."""
    load_builtins()
    id = import_id(id)
    _require(id)
    return id


def list_ids(namespace: str | None = NAMESPACE) -> list[str]:
    """Registered ids, sorted: rlvr's and every id registered through `register` (plugins, user modules);
    `namespace="mylab"` only that namespace; `namespace=None` every Gymnasium id."""
    load_builtins()
    if namespace is None:
        return sorted(gym.registry)
    if namespace == NAMESPACE:
        return sorted({i for i in gym.registry if i.startswith(NAMESPACE + "/")} | set(_cards))
    return sorted(i for i in gym.registry if i.startswith(namespace + "/"))


def card(id: str) -> EnvCard:
    """The card of a registered id (a bare one for ids registered with `gymnasium.register` directly)."""
    id = resolve(id)
    return _cards.get(id, EnvCard(id=id, description="", data_source=""))


def accepted_kwargs(id: str) -> set[str] | None:
    """The keyword arguments the environment of a registered id takes (None: any, it has **kwargs)."""
    entry_point = gym.spec(id).entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    try:
        parameters = inspect.signature(creator).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): let the call decide
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_overrides(id: str, overrides: dict[str, Any]) -> None:
    """ConfigError when `overrides` names a keyword the environment of `id` does not take."""
    accepted = accepted_kwargs(id)
    unknown = sorted(set(overrides) - accepted) if accepted is not None else []
    if unknown:
        raise ConfigError(
            f"{id} takes no {', '.join(map(repr, unknown))}; it takes: {', '.join(sorted(accepted)) or 'nothing'}"
        )


def reward_components(env: gym.Env) -> list[str]:
    """The names an environment puts in `info["rewards"]`: its own, then each wrapper's, innermost first."""
    names = list(getattr(env.unwrapped, "reward_components", ()))
    chain = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    for wrapper in reversed(chain):
        name = getattr(wrapper, "component", None)
        if name:
            names.append(name)
    return names


def load_builtins() -> None:
    """Import the module that lists the built-in registrations, and the installed plugins (idempotent)."""
    import rlvr.envs.registrations  # noqa: F401

    load_plugins()


def _require(id: str) -> None:
    """Raise UnknownEnvironment, naming close ids, when `id` is not registered."""
    if id not in gym.registry:
        import difflib

        close = difflib.get_close_matches(id, list(gym.registry), n=3, cutoff=0.6)
        raise UnknownEnvironment(
            f"no environment {id!r}; `rlvr envs list` shows the registered ids"
            + (f" (close: {', '.join(close)})" if close else "")
        )
