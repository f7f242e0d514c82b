"""`rlvr train [CONFIG] [section.key=value ...] [--resume]`: run the GRPO/DAPO trainer."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
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
        "--resume", action="store_true", help="continue from the latest checkpoint in run.output_dir"
    )
    train.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    train.set_defaults(run=_run_train)


def default_config_path() -> Path:
    """The quickstart config, shipped inside the package (`rlvr train` with no file runs it)."""
    return Path(str(resources.files("rlvr").joinpath("data/quickstart.yaml")))


def _run_train(args: argparse.Namespace) -> int:
    import json

    from rlvr.trainer.config import load_config
    from rlvr.trainer.loop import train

    config_path, overrides = args.config, list(args.overrides)
    if config_path is not None and "=" in config_path:  # `rlvr train run.steps=5`: overrides only
        overrides.insert(0, config_path)
        config_path = None
    config = load_config(config_path or default_config_path(), overrides)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    result = train(config, resume=args.resume)
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
