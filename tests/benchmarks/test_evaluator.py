"""The evaluator end to end: exact metrics through the real environment and verifier, resume after an
interruption, refused mixed settings, torn lines, atomic reports, bad data, and `rlvr eval` / `rlvr compare`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rlvr.benchmarks import BenchmarkSuite
from rlvr.benchmarks.compare import compare_runs
from rlvr.benchmarks.evaluator import (
    SAMPLES_FILE,
    SUMMARY_FILE,
    evaluate_suite,
    settings_for,
    suite_folder,
    write_reports,
)
from rlvr.benchmarks.records import read_records
from rlvr.benchmarks.suites import MATH_TEMPLATE
from rlvr.cli import main
from rlvr.envs.types import Completion
from rlvr.errors import ConfigError

MATH500_ROWS = [
    {"problem": "What is 2 + 3?", "solution": "\\boxed{5}", "answer": "5", "subject": "Algebra", "level": 1},
    {"problem": "Half of 1?", "solution": "\\boxed{0.5}", "answer": "0.5", "subject": "Algebra", "level": 2},
    {
        "problem": "What is 3 * 4?",
        "solution": "\\boxed{12}",
        "answer": "12",
        "subject": "Prealgebra",
        "level": 2,
    },
]
SCRIPT = {  # problem -> its 4 samples
    "What is 2 + 3?": ["\\boxed{5}", "So it is \\boxed{5.0}.", "\\boxed{6}", "I am not sure."],
    "Half of 1?": ["\\boxed{1/2}", "\\boxed{3}", "\\boxed{3}", "\\boxed{\\frac{1}{2}}"],
    "What is 3 * 4?": ["\\boxed{7}"] * 4,
}


class ScriptedPolicy:
    """Answers each problem with its scripted samples, in order within a generate call (a stand-in model)."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.calls = 0

    def describe(self) -> dict:
        return {"engine": "scripted", "version": "test"}

    def generate(self, conversations, sampling=None, **_) -> list[Completion]:
        self.calls += 1
        seen: Counter[str] = Counter()
        out = []
        for conversation in conversations:
            problem = next(p for p in self.script if conversation[-1]["content"].startswith(p))
            out.append(Completion(text=self.script[problem][seen[problem]]))
            seen[problem] += 1
        return out


@pytest.fixture
def math500_file(tmp_path):
    path = tmp_path / "math500.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in MATH500_ROWS), encoding="utf-8")
    return path


def scripted_suite() -> BenchmarkSuite:
    return BenchmarkSuite(
        "scripted-math",
        env_id="rlvr/math-math500-v0",
        dataset="math500",
        n=4,
        k=(1, 2, 4),
        breakdowns=("level",),
    )


def test_metrics_through_the_real_pipeline(tmp_path, math500_file):
    suite = scripted_suite()
    summary = evaluate_suite(
        ScriptedPolicy(SCRIPT),
        suite,
        settings_for(suite, data_path=str(math500_file)),
        tmp_path / "out",
        model={"model": "scripted"},
        progress=False,
    )
    metrics = {name: value["value"] for name, value in summary["metrics"].items()}
    # Per problem: c = 2, 2, 0 of 4. maj@4: {5, 5.0} wins; {1/2, \frac12} ties {3, 3} -> 1/2; all 7 -> 0.
    assert metrics["avg@4"] == pytest.approx(1 / 3)
    assert summary["metrics"]["avg@4"]["std_error"] == pytest.approx(1 / 6)
    assert metrics["pass@1"] == pytest.approx(1 / 3)
    assert metrics["pass@4"] == pytest.approx(2 / 3)
    assert metrics["maj@4"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["maj@1"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    # maj@2 of problem 1: 4 of 6 pairs tie 1-1 (1/2), one pair is both right (1), one both 3 (0) -> 1/2.
    # Problem 0: pairs from {5, 5.0, 6, none}: (5,5.0)=1, (5,6)=.5, (5,-)=1, (5.0,6)=.5, (5.0,-)=1, (6,-)=0 -> 4/6.
    assert metrics["maj@2"] == pytest.approx((4 / 6 + 0.5 + 0) / 3)
    assert summary["maj_estimate"] == "exact"
    assert summary["breakdowns"]["level"]["1"]["problems"] == 1
    assert summary["breakdowns"]["level"]["2"]["metrics"]["pass@4"]["value"] == pytest.approx(0.5)
    records = read_records(suite_folder(tmp_path / "out", suite) / SAMPLES_FILE)
    assert len(records) == 12
    first = records[1]
    assert (first.task_id, first.sample, first.gold, first.extracted) == ("math500/0", 1, "5", "5.0")
    assert first.correct and first.rewards == {"correct": 1.0, "format": 0.1}
    assert records[3].reason == "no_answer" and records[3].extracted is None
    assert summary["samples"]["reasons"] == {"correct": 4, "wrong": 7, "no_answer": 1}
    provenance = summary["provenance"]
    assert provenance["data"]["path"] == str(math500_file.resolve())
    assert len(provenance["data"]["sha256"]) == 64
    assert provenance["prompt_template"] == MATH_TEMPLATE  # the environment's default
    assert provenance["sampling"]["temperature"] == 0.6 and provenance["sampling"]["seed"] == 0
    assert provenance["engine"] == {"engine": "scripted", "version": "test"}
    assert provenance["rlvr_version"] and provenance["date"]


class InterruptingEngine:
    """The real engine, interrupted (as by Ctrl-C) on generate call number `stop_at`."""

    def __init__(self, engine, stop_at: int | None = None) -> None:
        self.engine = engine
        self.stop_at = stop_at
        self.calls = 0

    def describe(self) -> dict:
        return self.engine.describe()

    def generate(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.engine.generate(*args, **kwargs)


def arithmetic_suite() -> BenchmarkSuite:
    return BenchmarkSuite("arith", env_id="rlvr/arithmetic-v0", n=2, k=(1, 2), max_tokens=6, temperature=1.0)


def _run(engine, out, **options):
    suite = arithmetic_suite()
    settings = settings_for(suite, limit=6, **options)
    return evaluate_suite(engine, suite, settings, out, model={"model": "tiny"}, batch_size=4, progress=False)


def _completions(out) -> dict:
    records = read_records(suite_folder(out, arithmetic_suite()) / SAMPLES_FILE)
    assert len({r.key for r in records}) == len(records)  # no sample twice
    return {r.key: r.completion for r in records}


def test_resume_after_an_interruption_loses_nothing_and_redoes_nothing(tmp_path, tiny_engine):
    straight = _run(InterruptingEngine(tiny_engine), tmp_path / "straight")
    interrupted = InterruptingEngine(tiny_engine, stop_at=2)  # 3 chunks of 2 tasks x 2 samples
    with pytest.raises(KeyboardInterrupt):
        _run(interrupted, tmp_path / "resumed")
    assert len(_completions(tmp_path / "resumed")) == 4  # the first chunk was kept
    resumed_engine = InterruptingEngine(tiny_engine)
    resumed = _run(resumed_engine, tmp_path / "resumed")
    assert resumed_engine.calls == 2  # only the two missing chunks
    assert _completions(tmp_path / "resumed") == _completions(tmp_path / "straight")  # seeded per chunk
    assert resumed["metrics"] == straight["metrics"]
    again = InterruptingEngine(tiny_engine)
    rescored = _run(again, tmp_path / "resumed")
    assert rescored["metrics"] == straight["metrics"]
    assert again.calls == 0  # complete: nothing generated
    assert rescored["timing"]["new_samples"] == 8  # the timing of the invocation that sampled is kept
    assert "only rescored" in rescored["timing"]["note"]


def test_other_settings_are_refused_until_overwrite(tmp_path, tiny_engine):
    _run(tiny_engine, tmp_path)
    with pytest.raises(ConfigError, match=r"differing: sampling.*--overwrite"):
        _run(tiny_engine, tmp_path, temperature=0.5)
    suite = arithmetic_suite()
    settings = settings_for(suite, limit=6, temperature=0.5)
    summary = evaluate_suite(
        tiny_engine,
        suite,
        settings,
        tmp_path,
        model={"model": "tiny"},
        overwrite=True,
        batch_size=4,
        progress=False,
    )
    assert summary["provenance"]["sampling"]["temperature"] == 0.5
    assert summary["samples"]["samples"] == 12


def test_a_torn_last_line_is_cut_and_redone(tmp_path, tiny_engine):
    _run(tiny_engine, tmp_path)
    path = suite_folder(tmp_path, arithmetic_suite()) / SAMPLES_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:40], encoding="utf-8")  # the write of the last one died
    summary = _run(tiny_engine, tmp_path)
    assert summary["timing"]["new_samples"] == 1
    assert len(_completions(tmp_path)) == 12
    assert path.read_text(encoding="utf-8").endswith("\n")


def test_reports_are_replaced_atomically(tmp_path, monkeypatch, tiny_engine):
    summary = _run(tiny_engine, tmp_path)
    write_reports(tmp_path, [summary])
    before = (tmp_path / SUMMARY_FILE).read_text(encoding="utf-8")

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr("rlvr.atomic.os.replace", crash)
    changed = {**summary, "problems": 999}
    with pytest.raises(OSError, match="disk full"):
        write_reports(tmp_path, [changed])
    assert (tmp_path / SUMMARY_FILE).read_text(encoding="utf-8") == before  # the old report, whole
    assert json.loads(before)["suites"]["arith"]["problems"] == 6


def test_bad_data_file_gives_a_clear_error(tmp_path, capsys, tiny_model_folder):
    missing = tmp_path / "nope.jsonl"
    code = main(["eval", "--model", tiny_model_folder, "--suite", "gsm8k", "--data", str(missing), "--quiet"])
    assert code == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "#### 2"}\n{"question": "2+2?"}\n', encoding="utf-8")
    args = [
        "eval",
        "--model",
        tiny_model_folder,
        "--suite",
        "gsm8k",
        "--data",
        str(bad),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "line 2" in err and "answer" in err
    assert main(["eval", "--model", tiny_model_folder, "--suite", "gsm8k,math500", "--data", str(bad)]) == 2
    assert "SUITE=PATH" in capsys.readouterr().err


def test_cli_eval_and_compare(tmp_path, capsys, tiny_model_folder):
    common = [
        "eval",
        "--model",
        tiny_model_folder,
        "--suite",
        "rlvr/arithmetic-v0",
        "--limit",
        "3",
        "--n",
        "2",
        "--k",
        "1,2",
        "--max-tokens",
        "4",
        "--quiet",
    ]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--temperature", "1.0"]) == 0
    out = capsys.readouterr().out
    assert "| rlvr/arithmetic-v0 | 3 |" in out
    report = json.loads((tmp_path / "a" / SUMMARY_FILE).read_text(encoding="utf-8"))
    summary = report["suites"]["rlvr/arithmetic-v0"]
    assert set(summary["metrics"]) == {"avg@2", "pass@1", "pass@2", "maj@1", "maj@2"}
    model = summary["provenance"]["model"]
    assert model["path"] == str(Path(tiny_model_folder).resolve())
    assert len(model["weights_sha256"]["model.safetensors"]) == 64
    assert summary["provenance"]["engine"]["engine"] == "hf"
    assert "transformers" in summary["provenance"]["engine"]["version"]
    assert (tmp_path / "a" / "summary.md").read_text(encoding="utf-8").startswith("# Evaluation")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert "| a |" in table and "| b |" in table and "pass@2" in table
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", str(tmp_path / "missing")]) == 2
    assert "rlvr eval --out" in capsys.readouterr().err


def test_compare_runs_with_names(tmp_path, math500_file):
    suite = scripted_suite()
    for name, script in (("one", SCRIPT), ("two", {p: ["\\boxed{5}"] * 4 for p in SCRIPT})):
        summary = evaluate_suite(
            ScriptedPolicy(script),
            suite,
            settings_for(suite, data_path=str(math500_file)),
            tmp_path / name,
            model={"model": name},
            progress=False,
        )
        write_reports(tmp_path / name, [summary])
    table, files = compare_runs([tmp_path / "one", tmp_path / "two"], tmp_path / "cmp", ["base", "tuned"])
    assert "| base | one | 3 | 33.3 ± 16.7 |" in table
    assert "| tuned | two | 3 | 33.3 ± 33.3 |" in table  # only problem 0's gold is 5
    assert [f.name for f in files] == ["compare.md", "compare.png"]


class ServedModel(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible server: every chat completion answers \\boxed{4}; /v1/models names the model."""

    def do_GET(self):
        self._send({"data": [{"id": "served", "root": "/models/served-checkpoint"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        choices = [
            {"index": j, "message": {"role": "assistant", "content": "\\boxed{4}"}, "finish_reason": "stop"}
            for j in range(body.get("n", 1))
        ]
        self._send({"choices": choices, "usage": {"completion_tokens": 3}})

    def _send(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


def test_benchmark_a_served_model(tmp_path, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ServedModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        args = ["eval", "--engine", "openai", "--base-url", url, "--model", "served", "--suite", "rlvr/arithmetic-v0",
                "--limit", "20", "--n", "2", "--out", str(tmp_path), "--quiet"]  # fmt: skip
        assert main(args) == 0
    finally:
        server.shutdown()
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text(encoding="utf-8"))["suites"][
        "rlvr/arithmetic-v0"
    ]
    records = read_records(tmp_path / "rlvr__arithmetic-v0" / SAMPLES_FILE)
    fours = {r.task_index for r in records if r.gold == "4"}
    assert summary["metrics"]["avg@2"]["value"] == pytest.approx(len(fours) / 20)
    assert all(r.correct == (r.gold == "4") for r in records)
    assert summary["provenance"]["engine"]["engine"] == "openai"
    assert summary["provenance"]["engine"]["base_url"] == url
    assert summary["provenance"]["model"] == {"model": "served"}


def test_seeded_batches_cut_at_gaps_and_at_the_batch_size():
    from rlvr.benchmarks.evaluator import seeded_batches

    keys = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]  # n = 3; (0, 3)... and (1, 1) are done
    assert seeded_batches(keys, 3, 3) == [[(0, 0), (0, 1), (0, 2)], [(1, 0)], [(1, 2), (2, 0), (2, 1)]]
    assert seeded_batches(keys, 3, 2) == [[(0, 0), (0, 1)], [(0, 2), (1, 0)], [(1, 2), (2, 0)], [(2, 1)]]


def test_sigkill_loses_at_most_the_batch_in_progress(tmp_path, tiny_model_folder):
    command = [sys.executable, "-m", "rlvr.cli", "eval", "--model", tiny_model_folder, "--suite",
               "rlvr/arithmetic-v0", "--limit", "60", "--n", "2", "--batch-size", "4", "--max-tokens", "4",
               "--out", str(tmp_path), "--quiet"]  # fmt: skip
    samples = tmp_path / "rlvr__arithmetic-v0" / SAMPLES_FILE
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not samples.exists() or samples.stat().st_size < 4000):
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = read_records(samples)
    assert 0 < len(kept) < 120, "the run was killed before it started or after it ended; nothing was tested"
    assert subprocess.run(command, timeout=300, capture_output=True).returncode == 0
    records = read_records(samples)
    assert sorted(r.key for r in records) == [(i, j) for i in range(60) for j in range(2)]  # none twice
    assert [r.completion for r in records[: len(kept)]] == [r.completion for r in kept]  # kept as they were
