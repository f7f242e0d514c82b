"""`rlvr rft`: rejection-sampling fine-tuning, iterated (sample -> keep the correct -> SFT), each stage alone.

rlvr rft --model M --env ID [--rounds R] --out DIR    each round: DIR/round-r/{samples,kept}.jsonl, model/
rlvr rft sample --model M --env ID --out DIR          DIR/samples.jsonl (+ settings.json, summary.json)
rlvr rft filter --samples FILE --out FILE             the verified-correct samples, distinct, <= k per task
rlvr rft sft --data FILE --model M --out DIR          an HF model folder fine-tuned on FILE's completions
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError

_DEFAULTS = {"n": 8, "tasks": 64, "max_tokens": 512, "temperature": 0.8, "top_p": 1.0, "gen_batch_size": 64}
_SFT_DEFAULTS = {"lr": 1e-5, "epochs": 2, "train_batch_size": 16, "micro_batch_size": 8}


def add_rft_command(commands: Any) -> None:
    rft = commands.add_parser(
        "rft",
        help="rejection-sampling fine-tuning: sample, keep the verified-correct, fine-tune, repeat",
        description="Each round samples --n completions for each of the first --tasks tasks of the "
        "environment's training split with the current model, keeps the verified-correct ones (deduplicated, "
        "at most --k per task) and fine-tunes on them (NLL of the completion tokens); the next round samples "
        "with that model. Round r writes OUT/round-r/samples.jsonl, kept.jsonl and model/ (an HF folder). "
        "Rerunning the command skips finished rounds and resumes the unfinished one. The subcommands run one "
        "stage on given files.",
    )
    _model_options(rft)
    _sample_options(rft)
    rft.add_argument("--k", type=int, help="completions kept per task at most (default: every distinct one)")
    _sft_options(rft)
    rft.add_argument("--rounds", type=int, default=1, help="sample -> filter -> SFT rounds (default: 1)")
    rft.add_argument("--out", type=Path, default=Path("runs/rft"), help="output folder (default: runs/rft)")
    rft.add_argument(
        "--overwrite", action="store_true", help="remove the rft run already in --out and start again"
    )
    rft.add_argument("--quiet", action="store_true", help="no progress bar")
    rft.set_defaults(run=_run_rft)

    stages = rft.add_subparsers(title="stages (each alone, on given files)", metavar="STAGE")
    sample = stages.add_parser(
        "sample",
        help="n samples per task with a model: OUT/samples.jsonl, as `rlvr eval` writes them",
        description="Sample --n completions for each of the first --tasks tasks of the environment's "
        "training split and score them: OUT/samples.jsonl (one SampleRecord per line, see "
        "docs/EVALUATION.md), OUT/settings.json and OUT/summary.json (avg@n, pass@n). Rerunning resumes.",
    )
    _model_options(sample)
    _sample_options(sample)
    sample.add_argument("--out", type=Path, required=True, help="the folder for samples.jsonl")
    sample.add_argument("--overwrite", action="store_true", help="discard the samples already in --out")
    sample.add_argument("--quiet", action="store_true", help="no progress bar")
    sample.set_defaults(run=_run_sample)

    keep = stages.add_parser(
        "filter",
        help="keep the verified-correct samples of a samples file",
        description="Keep the samples whose verdict is correct and that stopped by themselves (not cut at "
        "max_tokens), each distinct completion of a task once, at most --k per task, in file order.",
    )
    keep.add_argument(
        "--samples", type=Path, required=True, help="a samples.jsonl of `rlvr rft` or `rlvr eval`"
    )
    keep.add_argument("--k", type=int, help="completions kept per task at most (default: every distinct one)")
    keep.add_argument("--out", type=Path, required=True, help="the kept rows, e.g. kept.jsonl")
    keep.add_argument("--overwrite", action="store_true", help="replace --out when it holds other rows")
    keep.set_defaults(run=_run_filter)

    tune = stages.add_parser(
        "sft",
        help="fine-tune a model on JSONL completions (kept.jsonl): an HF model folder",
        description="Fine-tune on the rows of --data (`prompt`: chat messages, `completion`: text) with the "
        "NLL of the completion tokens, the prompt rendered by the chat template as the RL rollout renders "
        "it; write the model and tokenizer to --out.",
    )
    tune.add_argument("--data", type=Path, required=True, help="JSONL rows with prompt and completion")
    _model_options(tune)
    _sft_options(tune)
    tune.add_argument("--seed", type=int, default=0, help="seeds the order of the examples (default: 0)")
    tune.add_argument("--out", type=Path, required=True, help="the model folder to write")
    tune.add_argument("--overwrite", action="store_true", help="replace --out when it exists")
    tune.add_argument("--quiet", action="store_true", help="no progress bar")
    tune.set_defaults(run=_run_sft)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="a model folder, a hub id in the local cache, or smollm2-135m-instruct"
    )
    parser.add_argument("--dtype", default="float32", help="float32 (default), bfloat16 or float16")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")


def _sample_options(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    parser.add_argument("--env", help="the environment id (any of `rlvr envs list`, or module:id)")
    parser.add_argument(
        "--env-kwargs",
        default="{}",
        metavar="YAML",
        help="make() keywords as a YAML mapping, e.g. '{level: 2, system_prompt: Answer briefly.}'",
    )
    parser.add_argument(
        "--tasks", type=int, default=d["tasks"], help=f"first N tasks (default: {d['tasks']})"
    )
    parser.add_argument("--n", type=int, default=d["n"], help=f"samples per task (default: {d['n']})")
    parser.add_argument("--max-tokens", type=int, default=d["max_tokens"], help=f"default: {d['max_tokens']}")
    parser.add_argument(
        "--temperature", type=float, default=d["temperature"], help=f"default: {d['temperature']}"
    )
    parser.add_argument("--top-p", type=float, default=d["top_p"], help=f"default: {d['top_p']}")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (and SFT order) (default: 0)")
    parser.add_argument(
        "--gen-batch-size",
        type=int,
        default=d["gen_batch_size"],
        help=f"conversations per generate call (default: {d['gen_batch_size']})",
    )


def _sft_options(parser: argparse.ArgumentParser) -> None:
    d = _SFT_DEFAULTS
    parser.add_argument("--lr", type=float, default=d["lr"], help=f"AdamW learning rate (default: {d['lr']})")
    parser.add_argument("--epochs", type=int, default=d["epochs"], help=f"default: {d['epochs']}")
    parser.add_argument(
        "--train-batch-size",
        type=int,
        default=d["train_batch_size"],
        help=f"examples per optimiser step (default: {d['train_batch_size']})",
    )
    parser.add_argument(
        "--micro-batch-size",
        type=int,
        default=d["micro_batch_size"],
        help=f"examples per forward/backward (default: {d['micro_batch_size']})",
    )


def _sample_config(args: argparse.Namespace) -> Any:
    from rlvr.trainer.rft import SampleConfig

    if not args.model or not args.env:
        raise ConfigError(
            "rlvr rft needs --model and --env (e.g. --model smollm2-135m-instruct --env rlvr/arithmetic-v0)"
        )
    return SampleConfig(
        env_id=args.env,
        env_kwargs=_env_kwargs(args.env_kwargs),
        n=args.n,
        tasks=args.tasks,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=args.gen_batch_size,
    )


def _sft_config(args: argparse.Namespace) -> Any:
    from rlvr.trainer.sft import SFTConfig

    return SFTConfig(
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.train_batch_size,
        micro_batch_size=args.micro_batch_size,
        seed=args.seed,
    )


def _env_kwargs(text: str) -> dict[str, Any]:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--env-kwargs {text!r} is not YAML ({exc.problem}); e.g. '{{level: 2}}'") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"--env-kwargs takes a YAML mapping such as '{{level: 2}}', got {text!r}")
    return value


def _run_rft(args: argparse.Namespace) -> int:
    from rlvr.trainer.rft import RFTConfig, run_rft

    config = RFTConfig(
        model=args.model,
        sample=_sample_config(args),
        k=args.k,
        sft=_sft_config(args),
        rounds=args.rounds,
        dtype=args.dtype,
        device=args.device,
    )
    result = run_rft(config, args.out, overwrite=args.overwrite, progress=not args.quiet, say=_say)
    print(f"rounds: {len(result.rounds)} ({len(result.skipped)} finished earlier); model: {result.model}")
    print(f"summary: {args.out / 'summary.json'}")
    return 0


def _run_sample(args: argparse.Namespace) -> int:
    from rlvr.trainer.engines.hf import HFEngine
    from rlvr.trainer.rft import SAMPLES, check_environment, sample_stage

    config = _sample_config(args)
    check_environment(config)
    engine = HFEngine(args.model, dtype=args.dtype, device=args.device, max_batch_size=config.batch_size)
    try:
        summary = sample_stage(
            engine, config, args.out, model=args.model, overwrite=args.overwrite, progress=not args.quiet
        )
    finally:
        engine.close()
    metrics = ", ".join(f"{name} {value['value']:.1%}" for name, value in summary["metrics"].items())
    print(f"{summary['problems']} tasks x {config.n} samples: {metrics}")
    print(f"samples: {args.out / SAMPLES}")
    return 0


def _run_filter(args: argparse.Namespace) -> int:
    from rlvr.trainer.rft import keep_correct

    stats = keep_correct(args.samples, args.out, args.k, overwrite=args.overwrite)
    print(
        f"kept {stats.kept} of {stats.samples} samples ({stats.correct} correct; dropped "
        f"{stats.duplicates} duplicates, {stats.over_k} over k, {stats.truncated} cut at max_tokens, "
        f"{stats.multi_turn} multi-turn), {stats.tasks_kept} of {stats.tasks} tasks: {args.out}"
    )
    return 0


def _run_sft(args: argparse.Namespace) -> int:
    from rlvr.trainer.rft import check_model_target, read_examples, sft_stage

    if not args.model:
        raise ConfigError("rlvr rft sft needs --model (the model to fine-tune)")
    config = _sft_config(args)
    examples = read_examples(args.data)  # bad input fails before the model loads
    check_model_target(args.out, args.overwrite)
    from rlvr.trainer.engines.models import load_model, load_tokenizer
    from rlvr.trainer.rft import default_device

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, dtype=args.dtype, device=args.device or default_device())
    info = {"model_in": args.model, "data": str(args.data)}
    result = sft_stage(model, tokenizer, examples, config, args.out, info=info, progress=not args.quiet)
    nll = " -> ".join(f"{x:.3f}" for x in result.epoch_nll)
    print(
        f"SFT on {result.examples} completions, {result.steps} steps: NLL by epoch {nll}; model: {args.out}"
    )
    return 0


def _say(text: str) -> None:
    print(f"rlvr: {text}", file=sys.stderr, flush=True)
