"""`rlvr train [CONFIG] [section.key=value ...] [--resume | --overwrite]`: run the GRPO/DAPO trainer."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any


def add_train_command(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a policy with GRPO/DAPO and variants (default: the CPU quickstart)",
        description="Train with the config file CONFIG (YAML; default: the built-in quickstart: the embedded "
        "SmolLM2-135M-Instruct on rlvr/arithmetic-v0) and section.key=value overrides, e.g. "
        "`rlvr train configs/dapo.yaml run.steps=50 algorithm.clip_high=0.3`. Prints the held-out greedy "
        "accuracy before and after training.",
    )
    train.add_argument(
        "config",
        nargs="?",
        help="a YAML config file (see configs/; default: the quickstart, rlvr/data/quickstart.yaml)",
    )
    train.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    train.add_argument(
        "--resume", action="store_true", help="continue the run in run.output_dir from its latest checkpoint"
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in run.output_dir (without --resume or --overwrite, a folder that holds a run "
        "is refused)",
    )
    train.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    train.set_defaults(run=_run_train)
    _overrides_anywhere(train)


def _overrides_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let overrides follow options too: `rlvr train run.steps=2 --resume run.seed=1`.

    argparse fills the positionals from their first run only and leaves later ones unparsed; those that are
    `key=value` are overrides, anything else is an error that says where the arguments go.
    """
    parse = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = parse(args, namespace)
        late = [a for a in extras if "=" in a and not a.startswith("-")]
        stray = [a for a in extras if not a.startswith("-") and a not in late]
        if stray:
            parser.error(
                f"unexpected argument {stray[0]!r}: the config file comes first, then section.key=value "
                "overrides; options (--resume, --overwrite) go anywhere"
            )
        namespace.overrides = [*namespace.overrides, *late]
        return namespace, [a for a in extras if a not in late]

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def _run_train(args: argparse.Namespace) -> int:
    import json

    from rlvr.trainer.config import default_config_path, load_config
    from rlvr.trainer.loop import train

    config_path, overrides = args.config, list(args.overrides)
    if config_path is not None and "=" in config_path:  # `rlvr train run.steps=5`: overrides only
        overrides.insert(0, config_path)
        config_path = None
    config = load_config(config_path or default_config_path(), overrides)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    started = time.time()
    try:
        result = train(config, resume=args.resume, overwrite=args.overwrite)
    except KeyboardInterrupt:
        hint = _how_to_continue(args, Path(config.run.output_dir), started)
        print(f"rlvr: interrupted; {hint}", file=sys.stderr)
        return 130
    print(f"\nrun: {result.output_dir}  ({result.steps} steps, {result.seconds / 60:.1f} min)")
    if result.before is not None and result.after is not None:
        gain = 100 * (result.after.accuracy - result.before.accuracy)
        print(
            f"held-out greedy accuracy on {result.after.tasks} tasks of {result.after.env_id}: "
            f"{result.before.accuracy:.1%} -> {result.after.accuracy:.1%} ({gain:+.1f} points)"
        )
    if (result.output_dir / "curves.png").is_file():
        print(f"curves: {result.output_dir / 'curves.png'}")
    sys.stdout.flush()
    return 0


def _how_to_continue(args: argparse.Namespace, out: Path, started: float) -> str:
    """The command that continues an interrupted run (or starts it again when nothing was saved)."""
    from rlvr.trainer.checkpoint import latest_checkpoint
    from rlvr.trainer.run_dir import run_files

    command = shlex.join(["rlvr", "train", *([args.config] if args.config else []), *args.overrides])
    config_file = out / "config.json"
    replaced = config_file.is_file() and config_file.stat().st_mtime >= started
    if args.overwrite and run_files(out) and not replaced:
        return f"the run in {out} was not replaced yet; start again with: {command} --overwrite"
    checkpoint = latest_checkpoint(out / "checkpoints")
    if checkpoint is not None:
        return f"the run in {out} continues from {checkpoint.name} with: {command} --resume"
    if run_files(out):
        return f"no checkpoint was saved in {out}; start again with: {command} --overwrite"
    return f"nothing was saved; start again with: {command}"
