"""`rlvr envs list | show | check`: the environment registry from the command line."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from rlvr.errors import ConfigError, DataError


def add_envs_commands(commands: Any) -> None:
    envs = commands.add_parser("envs", help="list, describe and check registered environments")
    envs.set_defaults(run=lambda _args: (envs.print_help(), 2)[1])
    actions = envs.add_subparsers(title="actions", metavar="ACTION")

    listing = actions.add_parser("list", help="print every registered rlvr id, one per line")
    listing.add_argument("--tag", help="only ids with this tag (math, code, procedural, game, tools, ...)")
    listing.add_argument(
        "--import",
        dest="modules",
        metavar="MODULE",
        action="append",
        default=[],
        help="import MODULE first, so the ids it registers are listed too (repeatable)",
    )
    listing.set_defaults(run=_run_list)

    show = actions.add_parser(
        "show", help="description, data source, reward components and an example prompt"
    )
    show.add_argument("id")
    _add_override_options(show)
    show.set_defaults(run=_run_show)

    check = actions.add_parser(
        "check", help="run Gymnasium's check_env and the reference-solution check (exit 0 when both pass)"
    )
    check.add_argument("id")
    check.add_argument("--tasks", type=int, default=3, help="how many first tasks the reference check plays")
    _add_override_options(check)
    check.set_defaults(run=_run_check)


def _add_override_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", metavar="PATH", help="a local data file instead of the hub dataset (data_path=)"
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="an override passed to make(); VALUE is read as JSON when it parses, else as a string",
    )


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if args.data:
        overrides["data_path"] = args.data
    return overrides


def _run_list(args: argparse.Namespace) -> int:
    from rlvr.envs.plugins import import_user_module
    from rlvr.envs.registry import card, list_ids

    for module in args.modules:
        import_user_module(module)
    for env_id in list_ids():
        if args.tag is None or args.tag in card(env_id).tags:
            print(env_id)
    return 0


def _run_show(args: argparse.Namespace) -> int:
    from rlvr.envs.registry import card, make, reward_components
    from rlvr.envs.splits import describe_split, describe_unloaded_split

    info = card(args.id)
    overrides = overrides_from(args)
    header = f"id:          {info.id}\ndescription: {info.description or '-'}\ndata source: {info.data_source or '-'}"
    try:
        env = make(args.id, **overrides)
    except DataError as exc:  # the data is not here: say which split would be read, not only the error
        print(f"{header}\nsplit:       {describe_unloaded_split(info.id, overrides, exc)}")
        return 0
    try:
        messages, reset_info = env.reset(seed=0, options={"task_index": 0})
        print(header)
        print(f"split:       {describe_split(env, info.id, overrides)}")
        print(f"tasks:       {len(env.unwrapped.tasks)}")
        print(f"max turns:   {env.unwrapped.max_turns}")
        print(
            f"rewards:     {', '.join(reward_components(env))} (max episode return {env.get_wrapper_attr('max_reward'):g})"
        )
        if info.wrappers:
            print(f"wrappers:    {', '.join(info.wrappers)}")
        if reset_info.get("tools"):
            print(f"tools:       {', '.join(t['function']['name'] for t in reset_info['tools'])}")
        print(f"example (task {reset_info.get('task_id')}):")
        for message in messages:
            print(f"  [{message['role']}]")
            print(textwrap.indent(str(message.get("content", "")), "    "))
    finally:
        env.close()
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from rlvr.envs.check import check_environment
    from rlvr.envs.registry import resolve

    env_id = resolve(args.id)  # an unknown id or module is a usage error (exit 2), not a failed check
    report = check_environment(env_id, num_tasks=args.tasks, **overrides_from(args))
    status = "ok" if not report.check_env_error else "FAILED"
    print(f"check_env: {status}" + (f"\n  {report.check_env_error}" if report.check_env_error else ""))
    for note in report.check_env_warnings:
        print(f"  warning: {note}")
    for episode in report.episodes:
        verdict = "ok" if episode.ok else "FAILED"
        ending = "terminated" if episode.terminated else "truncated" if episode.truncated else "unfinished"
        print(
            f"{episode.player:>9} task {episode.task_index}: return {episode.episode_return:g} / "
            f"{episode.max_reward:g}, {episode.turns} turn(s), {ending}: {verdict}"
            + (f" ({episode.error})" if episode.error else "")
        )
    if not report.episodes and not report.check_env_error:
        print("reference check: no episodes were played")
    print("PASSED" if report.ok else "FAILED")
    return 0 if report.ok else 1
