"""`rlvr eval` (benchmark a model on suites, resumable) and `rlvr compare` (a table and a plot across runs)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError

DEFAULT_BATCH = {"hf": 64, "vllm": 256, "openai": 256}
"""Conversations per `generate` call by engine (the hf engine decodes up to its own max_batch_size at once)."""


def add_eval_commands(commands: Any) -> None:
    evaluate = commands.add_parser(
        "eval",
        help="benchmark a model: pass@k, maj@k, avg@n on suites (resumable)",
        description="Sample --n completions per problem of each suite, score them with the suite's environment "
        "and write per-sample JSONL, summary.json (with provenance) and summary.md to --out. Rerunning the same "
        "command resumes: finished samples are kept. Suites: see --list-suites; any environment id also works.",
    )
    evaluate.add_argument(
        "--model",
        help="a model folder, a hub id in the local cache, an embedded model name, "
        "or the served model's id (--engine openai)",
    )
    evaluate.add_argument("--suite", help="comma-separated suites, e.g. aime24,math500 or rlvr/arithmetic-v0")
    evaluate.add_argument("--n", type=int, help="samples per problem (default: each suite's)")
    evaluate.add_argument(
        "--k", help="comma-separated k for pass@k and maj@k, each <= n (default: the suite's)"
    )
    evaluate.add_argument("--engine", choices=("hf", "vllm", "openai"), default="hf", help="default: hf")
    evaluate.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="[SUITE=]PATH",
        help="a local data file in the dataset's format instead of the hub; SUITE=PATH when several suites",
    )
    evaluate.add_argument("--limit", type=int, help="evaluate the first N problems of each suite")
    evaluate.add_argument("--out", type=Path, help="output directory (default: eval/<model name>)")
    evaluate.add_argument("--temperature", type=float, help="default: each suite's")
    evaluate.add_argument("--top-p", type=float, help="default: each suite's")
    evaluate.add_argument("--max-tokens", type=int, help="default: each suite's")
    evaluate.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    evaluate.add_argument(
        "--batch-size", type=int, help="conversations per generate call (default: by engine)"
    )
    evaluate.add_argument("--dtype", help="hf: float32 (default) | bfloat16 | float16; vllm: auto (default)")
    evaluate.add_argument("--device", help="hf: cpu or cuda (default: cuda when available)")
    evaluate.add_argument(
        "--base-url", default="http://localhost:8000/v1", help="openai: the server's /v1 URL"
    )
    evaluate.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the API key"
    )
    evaluate.add_argument("--max-concurrency", type=int, default=32, help="openai: requests in flight")
    evaluate.add_argument(
        "--gpu-memory-utilization", type=float, default=0.85, help="vllm: GPU memory share (default: 0.85)"
    )
    evaluate.add_argument("--max-model-len", type=int, help="vllm: context length (default: the model's)")
    evaluate.add_argument(
        "--suites-from",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module or .py file that registers more suites (register_suite)",
    )
    evaluate.add_argument("--overwrite", action="store_true", help="discard samples already in --out")
    evaluate.add_argument("--list-suites", action="store_true", help="list the registered suites and exit")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(run=_run_eval)

    compare = commands.add_parser(
        "compare",
        help="compare evaluation directories: a Markdown table and a pass@k plot",
        description="Read summary.json from each DIR (outputs of `rlvr eval`) and write compare.md and "
        "compare.png (pass@k against k, one line per run, one panel per suite) to --out.",
    )
    compare.add_argument("dirs", nargs="+", type=Path, help="evaluation output directories")
    compare.add_argument(
        "--out", type=Path, default=Path("."), help="where to write compare.md/.png (default: .)"
    )
    compare.add_argument("--names", help="comma-separated labels for the runs (default: directory names)")
    compare.set_defaults(run=_run_compare)


def _run_eval(args: argparse.Namespace) -> int:
    from rlvr.benchmarks.suites import get_suite, suite_names

    for source in args.suites_from:
        load_suites_from(source)
    if args.list_suites:
        for name in suite_names():
            suite = get_suite(name)
            print(f"{name:15} n={suite.n:<3} k={','.join(map(str, suite.k)):12} {suite.description}")
        print("(any registered environment id is a suite too: `rlvr envs list`)")
        return 0
    if not args.model or not args.suite:
        raise ConfigError("rlvr eval needs --model and --suite (or --list-suites)")
    suites = [get_suite(name.strip()) for name in args.suite.split(",") if name.strip()]
    if not suites:
        raise ConfigError(f"--suite {args.suite!r} names no suite; see rlvr eval --list-suites")
    data = data_paths(args.data, [suite.name for suite in suites])
    ks = parse_ks(args.k)
    out = args.out or Path("eval") / model_label(args.model)
    batch_size = args.batch_size or DEFAULT_BATCH[args.engine]
    # Every suite's settings are checked before the model loads, so bad input fails at once.
    settings = [_settings(suite, args, ks, data.get(suite.name)) for suite in suites]

    from rlvr.benchmarks.evaluator import evaluate_suite, write_reports
    from rlvr.benchmarks.provenance import model_provenance

    model = model_provenance(args.model, args.engine)
    engine = build_engine(args)
    summaries = []
    try:
        for suite, suite_settings in zip(suites, settings, strict=True):
            summary = evaluate_suite(
                engine,
                suite,
                suite_settings,
                out,
                model=model,
                batch_size=batch_size,
                overwrite=args.overwrite,
                progress=not args.quiet,
            )
            summaries.append(summary)
            report = write_reports(out, [summary])  # each finished suite is in the report at once
    finally:
        engine.close()
    from rlvr.benchmarks.report import markdown_report

    print(markdown_report({**report, "suites": {s["suite"]: s for s in summaries}}).split("\n\n## ")[0])
    print(f"reports: {out / 'summary.md'}, {out / 'summary.json'}; samples: {out}/<suite>/samples.jsonl")
    return 0


def _settings(suite: Any, args: argparse.Namespace, ks: tuple[int, ...] | None, data_path: str | None) -> Any:
    from rlvr.benchmarks.evaluator import settings_for

    if data_path is not None and not Path(data_path).expanduser().is_file():
        raise ConfigError(
            f"--data {data_path}: no such file; pass a local copy of {suite.dataset} ({suite.name})"
        )
    return settings_for(
        suite,
        n=args.n,
        ks=ks,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        limit=args.limit,
        data_path=data_path,
    )


def build_engine(args: argparse.Namespace) -> Any:
    from rlvr.trainer.engines import make_engine

    if args.engine == "hf":
        options: dict[str, Any] = {"dtype": args.dtype or "float32", "device": args.device}
        options["max_batch_size"] = args.batch_size or DEFAULT_BATCH["hf"]
        return make_engine("hf", args.model, **options)
    if args.engine == "vllm":
        return make_engine(
            "vllm",
            args.model,
            dtype=args.dtype or "auto",
            seed=args.seed,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
        )
    return make_engine(
        "openai",
        args.model,
        base_url=args.base_url,
        api_key=os.environ.get(args.api_key_env),
        max_concurrency=args.max_concurrency,
    )


def parse_ks(text: str | None) -> tuple[int, ...] | None:
    """ "1,4,16" -> (1, 4, 16); ConfigError for anything but positive integers."""
    if text is None:
        return None
    try:
        ks = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--k takes comma-separated integers such as 1,4,16, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise ConfigError(f"--k values must be >= 1, got {text!r}")
    return ks


def data_paths(values: list[str], suites: list[str]) -> dict[str, str]:
    """--data values -> {suite: path}; a bare PATH is allowed only with one suite."""
    paths: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or name not in suites:  # a bare PATH (which may hold "=" itself)
            if len(suites) != 1:
                raise ConfigError(
                    f"--data {value}: with several suites, write SUITE=PATH (suites: {', '.join(suites)})"
                )
            name, path = suites[0], value
        paths[name] = path
    return paths


def model_label(model: str) -> str:
    """A directory name for a model: the last path part (hub ids: owner__name)."""
    text = str(model).rstrip("/")
    if Path(text).expanduser().exists():
        return Path(text).name
    return text.replace("/", "__")


def load_suites_from(source: str) -> None:
    """Import a module by name, or a .py file by path, for the suites it registers."""
    path = Path(source)
    if path.suffix == ".py":
        if not path.is_file():
            raise ConfigError(f"--suites-from {source}: no such file")
        spec = importlib.util.spec_from_file_location(f"rlvr_user_suites_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return
    try:
        importlib.import_module(source)
    except ImportError as exc:
        raise ConfigError(f"--suites-from {source}: cannot import it ({exc})") from exc


def _run_compare(args: argparse.Namespace) -> int:
    from rlvr.benchmarks.compare import compare_runs

    names = args.names.split(",") if args.names else None
    table, files = compare_runs(args.dirs, args.out, names)
    print(table)
    print("written: " + ", ".join(str(f) for f in files), file=sys.stderr)
    return 0
