"""The `rlvr` command-line tool: one entry point, subcommands, `--help` everywhere."""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rlvr.cli_envs import add_envs_commands
from rlvr.cli_eval import add_eval_commands
from rlvr.cli_rft import add_rft_command
from rlvr.cli_train import add_train_command
from rlvr.errors import DataError, RlvrError
from rlvr.version import __version__

_CHUNK_ROWS = 512  # rows verified per batch in file mode; bounds memory and paces the progress bar


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except RlvrError as exc:
        print(f"rlvr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlvr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rlvr envs list | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlvr", description="Reinforcement learning with verifiable rewards."
    )
    parser.add_argument("--version", action="version", version=f"rlvr {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    verify = commands.add_parser("verify", help="score completions against gold answers")
    verify.set_defaults(run=lambda _args: _print_help(verify))
    verifiers = verify.add_subparsers(title="verifiers", metavar="VERIFIER")
    math_parser = verifiers.add_parser(
        "math",
        help="math answers: one --gold/--pred pair, or a JSONL --file",
        description="Verify math answers. One pair: --gold G --pred P. A file: --file F.jsonl with "
        "--gold-field and --pred-field; per-row verdicts go to --out.",
    )
    math_parser.add_argument("--gold", help="the gold answer, e.g. '\\frac{1}{2}'")
    math_parser.add_argument("--pred", help="the model's completion or answer")
    math_parser.add_argument(
        "--file", type=Path, help="a JSONL file (.jsonl or .jsonl.gz), one row per completion"
    )
    math_parser.add_argument(
        "--gold-field", default="answer", help="gold answer field in --file (default: answer)"
    )
    math_parser.add_argument(
        "--pred-field", default="completion", help="completion field in --file (default: completion)"
    )
    math_parser.add_argument("--out", type=Path, help="write per-row verdicts to this JSONL file (file mode)")
    math_parser.add_argument(
        "--skip-bad-rows", action="store_true", help="skip and count malformed rows instead of stopping"
    )
    _add_verifier_options(math_parser)
    math_parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    math_parser.set_defaults(run=_run_verify_math)

    _add_sandbox_commands(commands)
    add_envs_commands(commands)
    add_train_command(commands)
    add_eval_commands(commands)
    add_rft_command(commands)

    demo = commands.add_parser(
        "demo",
        help="verify the embedded example completions and show each verdict",
        description="Runs the math verifier on embedded example completions (formats, units, hedging, "
        "listing answers, a pathological answer that hits its deadline) and checks each verdict.",
    )
    demo.add_argument("--timeout", type=float, default=2.0, help="per-check deadline in seconds (default: 2)")
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.set_defaults(run=_run_demo)
    return parser


def _add_sandbox_commands(commands: Any) -> None:
    sandbox = commands.add_parser("sandbox", help="run untrusted programs: build the image, check, run")
    sandbox.set_defaults(run=lambda _args: _print_help(sandbox))
    actions = sandbox.add_subparsers(title="actions", metavar="ACTION")

    build = actions.add_parser(
        "build-image",
        help="build the sandbox image from Debian packages (debootstrap + docker import)",
        description="Build the Docker image the sandbox runs jobs in, from Debian packages only.",
    )
    build.add_argument("--tag", default=None, help="image name (default: the versioned default image)")
    build.add_argument(
        "--packages", default="", help="extra Debian packages, comma-separated (e.g. python3-numpy)"
    )
    build.set_defaults(run=_run_sandbox_build)

    doctor = actions.add_parser(
        "doctor", help="show what is available (engine, image, bubblewrap, seccomp) and measure latency"
    )
    doctor.add_argument("--image", default=None, help="image to check (default: the default image)")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(run=_run_sandbox_doctor)

    run = actions.add_parser("run", help="run one Python program in the sandbox")
    run.add_argument("file", type=Path, help="the program, a .py file")
    run.add_argument("--stdin", type=Path, help="a file to give the program as its stdin")
    run.add_argument("--backend", choices=("auto", "docker", "local"), default="auto")
    run.add_argument(
        "--timeout", type=float, default=10.0, help="wall and CPU time limit, seconds (default: 10)"
    )
    run.add_argument("--memory-mb", type=int, default=512, help="memory limit, MiB (default: 512)")
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.set_defaults(run=_run_sandbox_run)


def _run_sandbox_build(args: argparse.Namespace) -> int:
    import subprocess

    from rlvr.sandbox import DEFAULT_IMAGE

    script = resources.files("rlvr.sandbox").joinpath("build_image.sh")
    tag = args.tag or DEFAULT_IMAGE
    return subprocess.run(["bash", str(script), tag, args.packages], check=False).returncode


def _run_sandbox_doctor(args: argparse.Namespace) -> int:
    from rlvr.sandbox import DEFAULT_IMAGE, doctor

    report = doctor(image=args.image or DEFAULT_IMAGE)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:16} {value}")
    return 0 if "measure_error" not in report else 1


def _run_sandbox_run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rlvr.sandbox import Job, Limits, SandboxUnavailable, make_sandbox

    source = _read_text(args.file, "program", "pass the path of a Python file")
    stdin = (
        _read_text(args.stdin, "--stdin file", "pass a text file, or leave --stdin out") if args.stdin else ""
    )
    try:
        limits = Limits(wall_s=args.timeout, cpu_s=args.timeout, memory_mb=args.memory_mb)
        with make_sandbox(args.backend, size=1) as sandbox:
            result = sandbox.run(Job(source, stdin=stdin, limits=limits))
    except (SandboxUnavailable, ValueError) as exc:
        raise RlvrError(str(exc)) from exc
    if args.json:
        print(json.dumps({**asdict(result), "backend": sandbox.backend}))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        print(
            f"[{sandbox.backend}] status={result.status} exit_code={result.exit_code} "
            f"wall={result.wall_s:.3f}s{' (output truncated)' if result.truncated else ''}",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def _read_text(path: Path, what: str, fix: str) -> str:
    """The UTF-8 text of a file the user named; a DataError that says what is wrong otherwise."""
    if not path.is_file():
        raise DataError(f"no such {what}: {path}; {fix}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {path} is not UTF-8 text (byte {exc.start}); {fix}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}; {fix}") from exc


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_verifier_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="per-check deadline in seconds (default: 5)"
    )
    parser.add_argument("--workers", type=int, help="verifier worker processes (default: one per core)")
    parser.add_argument(
        "--extraction",
        choices=("strict", "last_number", "math_verify"),
        default=None,
        help="how the final answer is found: strict (default: box, <answer>, 'answer is', ####), last_number "
        "(strict, else the last number), math_verify (strict, else the last LaTeX span or a bare answer)",
    )
    parser.add_argument("--lenient", action="store_true", help="alias of --extraction last_number")


def _make_verifier(args: argparse.Namespace) -> Any:
    from rlvr.verifiers import MathVerifier, MathVerifyConfig

    try:
        if args.lenient and args.extraction not in (None, "last_number"):
            raise ValueError(
                f"--lenient means --extraction last_number; it cannot go with --extraction {args.extraction}"
            )
        extraction = args.extraction or ("last_number" if args.lenient else "strict")
        config = MathVerifyConfig(timeout_s=args.timeout, workers=args.workers, extraction=extraction)
    except ValueError as exc:
        raise RlvrError(str(exc)) from exc
    return MathVerifier(config)


# -- rlvr verify math ----------------------------------------------------------------------------------------


def _run_verify_math(args: argparse.Namespace) -> int:
    single = args.gold is not None or args.pred is not None
    if single == (args.file is not None):
        raise RlvrError(
            "give either --gold and --pred (one pair) or --file (a JSONL file), not both or neither"
        )
    if single:
        if args.gold is None or args.pred is None:
            raise RlvrError("one-pair mode needs both --gold and --pred")
        return _verify_pair(args)
    return _verify_file(args)


def _verify_pair(args: argparse.Namespace) -> int:
    with _make_verifier(args) as verifier:
        verdict = verifier.verify(args.gold, args.pred)
    if args.json:
        print(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        label = "CORRECT" if verdict.correct else "INCORRECT"
        print(f"{label}  reason={verdict.reason}  extracted={verdict.extracted!r}  score={verdict.score}")
    return 0


def _read_rows(
    path: Path, gold_field: str, pred_field: str, skip_bad: bool, bad: list[str]
) -> Iterator[tuple]:
    """Yield (line number, gold, completion); raise DataError on a malformed row unless `skip_bad`."""
    for line_number, line in _jsonl_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = f"line {line_number}: not valid JSON ({exc.msg})"
        else:
            missing = [f for f in (gold_field, pred_field) if f not in row] if isinstance(row, dict) else []
            if not isinstance(row, dict):
                problem = f"line {line_number}: expected a JSON object, got {type(row).__name__}"
            elif missing:
                problem = (
                    f"line {line_number}: missing field(s) {missing}; the row has {sorted(row)}; "
                    "choose fields with --gold-field/--pred-field"
                )
            else:
                yield line_number, str(row[gold_field]), _as_text(row[pred_field])
                continue
        if not skip_bad:
            raise DataError(f"{path}: {problem} (or pass --skip-bad-rows to skip such rows)")
        bad.append(problem)


def _jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a JSON-lines file, gzip-compressed or not."""
    fix = "--file takes a JSON-lines file (.jsonl, or .jsonl.gz)"
    if not path.is_file():
        raise DataError(f"no such file: {path}; {fix}")
    try:
        with path.open("rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gzipped else path.open("rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{path}: line {line_number} is not UTF-8 text (byte {exc.start}); {fix}"
                    ) from exc
                if line.strip():
                    yield line_number, line
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; EOFError: a truncated .gz
        raise DataError(f"cannot read {path}: {exc}; {fix}") from exc


def _as_text(value: Any) -> str:
    from rlvr.verifiers.adapters import completion_text

    return completion_text(value) if isinstance(value, (list, dict)) else str(value)


def _verify_file(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bad: list[str] = []
    rows = _read_rows(args.file, args.gold_field, args.pred_field, args.skip_bad_rows, bad)
    reasons: Counter[str] = Counter()
    total = correct = 0
    out_tmp = args.out.with_name(args.out.name + ".tmp") if args.out else None
    chunks = _chunks(rows, _CHUNK_ROWS)
    first = next(chunks, [])  # read (and check) the first rows before workers and a progress bar start
    out_handle = _open_for_writing(out_tmp, args.out) if out_tmp else None
    start = time.perf_counter()
    try:
        with _make_verifier(args) as verifier, tqdm(unit="row", desc="verifying", file=sys.stderr) as bar:
            for chunk in itertools.chain([first] if first else [], chunks):
                verdicts = verifier.verify_batch([g for _, g, _ in chunk], [c for _, _, c in chunk])
                for (line_number, _, _), verdict in zip(chunk, verdicts, strict=True):
                    total += 1
                    correct += verdict.correct
                    reasons[verdict.reason] += 1
                    if out_handle:
                        record = {"line": line_number, **verdict.to_dict()}
                        out_handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                bar.update(len(chunk))
        if out_handle:
            out_handle.close()
            os.replace(out_tmp, args.out)  # atomic: a reader never sees a half-written verdict file
    finally:
        if out_handle and not out_handle.closed:  # stopped early: leave no partial verdict file
            out_handle.close()
            out_tmp.unlink(missing_ok=True)
    elapsed = time.perf_counter() - start
    summary = {
        "rows": total,
        "correct": correct,
        "accuracy": correct / total if total else 0.0,
        "reasons": dict(reasons.most_common()),
        "skipped_rows": len(bad),
        "seconds": round(elapsed, 3),
        "verifications_per_s": round(total / elapsed, 1) if elapsed > 0 else None,
        "out": str(args.out) if args.out else None,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"rows: {total}  accuracy: {summary['accuracy']:.4f} ({correct}/{total})")
        print("reasons: " + ", ".join(f"{k}={v}" for k, v in reasons.most_common()))
        print(f"throughput: {summary['verifications_per_s']} verifications/s ({elapsed:.2f} s)")
        if bad:
            print(f"skipped {len(bad)} malformed rows, first: {bad[0]}")
        if args.out:
            print(f"verdicts: {args.out}")
    return 0


def _open_for_writing(path: Path, shown: Path) -> Any:
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise DataError(
            f"cannot write {shown}: {exc.strerror or exc}; pass --out a path in an existing, writable folder"
        ) from exc


def _chunks(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- rlvr demo -------------------------------------------------------------------------------------------------


def _run_demo(args: argparse.Namespace) -> int:
    from rlvr.verifiers import MathVerifier, MathVerifyConfig

    text = resources.files("rlvr").joinpath("data/demo_completions.jsonl").read_text(encoding="utf-8")
    examples = [json.loads(line) for line in text.splitlines() if line.strip()]
    start = time.perf_counter()
    with MathVerifier(MathVerifyConfig(timeout_s=args.timeout)) as verifier:
        verdicts = verifier.verify_batch([e["gold"] for e in examples], [e["completion"] for e in examples])
    elapsed = time.perf_counter() - start
    results = [
        {"gold": e["gold"], "extracted": v.extracted, "reason": v.reason, "expected": e["expected"]}
        for e, v in zip(examples, verdicts, strict=True)
    ]
    matches = sum(r["reason"] == r["expected"] for r in results)
    if args.json:
        print(
            json.dumps(
                {"results": results, "as_expected": matches, "total": len(results)}, ensure_ascii=False
            )
        )
    else:
        print(f"{'gold':<22} {'extracted answer':<28} {'verdict':<17} expected")
        for r in results:
            mark = "" if r["reason"] == r["expected"] else "   <-- differs"
            extracted = _clip(r["extracted"] or "-", 28)
            print(f"{_clip(r['gold'], 22):<22} {extracted:<28} {r['reason']:<17} {r['expected']}{mark}")
        print(
            f"\n{matches}/{len(results)} verdicts as expected, in {elapsed:.1f} s "
            f"(one check hits its {args.timeout:g} s deadline on purpose)"
        )
    return 0 if matches == len(results) else 1


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
