"""The `rlvr` command-line tool, run as a user runs it: the installed entry point in a subprocess."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RLVR = shutil.which("rlvr", path=str(Path(sys.executable).parent)) or "rlvr"


def run(*args, check=True):
    result = subprocess.run([RLVR, *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"rlvr {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


@pytest.mark.parametrize("command", [[], ["verify"], ["verify", "math"], ["demo"]])
def test_help_everywhere(command):
    result = run(*command, "--help")
    assert "usage: rlvr" in result.stdout


def test_verify_pair_json():
    result = run("verify", "math", "--gold", "\\frac{1}{2}", "--pred", "so it is \\boxed{0.5}", "--json")
    verdict = json.loads(result.stdout)
    assert verdict["correct"] is True and verdict["score"] == 1.0
    assert verdict["reason"] == "correct" and verdict["extracted"] == "0.5"


def test_verify_pair_text_wrong():
    result = run("verify", "math", "--gold", "3", "--pred", "The answer is 4.")
    assert result.stdout.startswith("INCORRECT") and "reason=wrong" in result.stdout


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_verify_file_writes_verdicts_and_summary(tmp_path):
    rows = [
        {"answer": "12", "completion": "\\boxed{12}"},
        {"answer": "12", "completion": "\\boxed{13}"},
        {"answer": "x^2", "completion": "The final answer is $x \\cdot x$."},
        {"answer": "5", "completion": [{"role": "assistant", "content": "#### 5"}]},
        {"answer": "7", "completion": "no idea"},
    ]
    source, out = tmp_path / "rows.jsonl", tmp_path / "verdicts.jsonl"
    write_jsonl(source, rows)
    result = run("verify", "math", "--file", str(source), "--out", str(out), "--json")
    summary = json.loads(result.stdout)
    assert summary["rows"] == 5 and summary["correct"] == 3
    assert summary["accuracy"] == pytest.approx(0.6)
    assert summary["reasons"] == {"correct": 3, "wrong": 1, "no_answer": 1}
    assert summary["verifications_per_s"] > 0
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [v["correct"] for v in verdicts] == [True, False, True, True, False]
    assert [v["line"] for v in verdicts] == [1, 2, 3, 4, 5]
    assert not (tmp_path / "verdicts.jsonl.tmp").exists()


def test_verify_file_custom_fields_and_text_summary(tmp_path):
    source = tmp_path / "rows.jsonl"
    write_jsonl(source, [{"gt": "2", "response": "\\boxed{2}"}])
    result = run("verify", "math", "--file", str(source), "--gold-field", "gt", "--pred-field", "response")
    assert "accuracy: 1.0000 (1/1)" in result.stdout and "verifications/s" in result.stdout


def test_bad_inputs_give_clear_errors(tmp_path):
    missing = run("verify", "math", "--file", str(tmp_path / "nope.jsonl"), check=False)
    assert missing.returncode == 2 and "no such file" in missing.stderr

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"answer": "1", "completion": "\\\\boxed{1}"}\n{not json\n', encoding="utf-8")
    result = run("verify", "math", "--file", str(broken), check=False)
    assert (
        result.returncode == 2
        and "line 2: not valid JSON" in result.stderr
        and "--skip-bad-rows" in result.stderr
    )

    skipped = run("verify", "math", "--file", str(broken), "--skip-bad-rows", "--json")
    summary = json.loads(skipped.stdout)
    assert summary["rows"] == 1 and summary["skipped_rows"] == 1

    wrong_field = tmp_path / "fields.jsonl"
    write_jsonl(wrong_field, [{"question": "q", "solution": "1"}])
    result = run("verify", "math", "--file", str(wrong_field), check=False)
    assert result.returncode == 2 and "missing field(s) ['answer', 'completion']" in result.stderr

    both = run("verify", "math", "--gold", "1", "--pred", "1", "--file", str(broken), check=False)
    assert both.returncode == 2 and "either --gold and --pred" in both.stderr
    bad_timeout = run("verify", "math", "--gold", "1", "--pred", "1", "--timeout", "0", check=False)
    assert (
        bad_timeout.returncode == 2
        and "timeout_s must be a finite number of seconds > 0" in bad_timeout.stderr
    )


def test_demo_verdicts_all_as_expected():
    result = run("demo", "--json", "--timeout", "1")
    report = json.loads(result.stdout)
    assert report["total"] >= 15
    assert report["as_expected"] == report["total"]
    assert {r["reason"] for r in report["results"]} >= {
        "correct",
        "wrong",
        "timeout",
        "hedged",
        "multiple_answers",
    }


def assert_one_line_error(result, *fragments):
    """Bad input: exit 2 and exactly one `rlvr: error:` line on stderr, naming the problem; no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlvr: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def test_sandbox_run_bad_files_are_one_line_errors(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("print(input())\n", encoding="utf-8")
    picture = tmp_path / "x.png"
    picture.write_bytes(PNG_BYTES)
    missing = run("sandbox", "run", str(program), "--stdin", str(tmp_path / "missing.txt"), check=False)
    assert_one_line_error(missing, "no such --stdin file", "missing.txt")
    binary_stdin = run("sandbox", "run", str(program), "--stdin", str(picture), check=False)
    assert_one_line_error(binary_stdin, "x.png is not UTF-8 text")
    binary_program = run("sandbox", "run", str(picture), check=False)
    assert_one_line_error(binary_program, "x.png is not UTF-8 text")
    no_program = run("sandbox", "run", str(tmp_path / "nope.py"), check=False)
    assert_one_line_error(no_program, "no such program")


def test_verify_file_reads_gzip_and_refuses_binary_files(tmp_path):
    import gzip

    rows = [{"answer": "12", "completion": "\\boxed{12}"}, {"answer": "3", "completion": "\\boxed{4}"}]
    packed = tmp_path / "rows.jsonl.gz"
    packed.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    summary = json.loads(run("verify", "math", "--file", str(packed), "--json").stdout)
    assert summary["rows"] == 2 and summary["correct"] == 1

    picture = tmp_path / "x.png"
    picture.write_bytes(PNG_BYTES)
    out = tmp_path / "verdicts.jsonl"
    for extra in ([], ["--skip-bad-rows"], ["--out", str(out)]):
        result = run("verify", "math", "--file", str(picture), *extra, check=False)
        assert_one_line_error(result, "x.png: line 1 is not UTF-8 text", ".jsonl.gz")
    assert not out.exists() and not (tmp_path / "verdicts.jsonl.tmp").exists()

    broken_gzip = tmp_path / "x.gz"
    broken_gzip.write_bytes(gzip.compress(b'{"answer": "1"}\n' * 50)[:20])
    assert_one_line_error(run("verify", "math", "--file", str(broken_gzip), check=False), "cannot read")
    gzipped_picture = tmp_path / "x.png.gz"
    gzipped_picture.write_bytes(gzip.compress(PNG_BYTES))
    result = run("verify", "math", "--file", str(gzipped_picture), check=False)
    assert_one_line_error(result, "line 1 is not UTF-8 text")

    nowhere = tmp_path / "no" / "folder" / "v.jsonl"
    result = run("verify", "math", "--file", str(packed), "--out", str(nowhere), check=False)
    assert_one_line_error(result, "cannot write", str(nowhere))


# -- rlvr train: bad input fails before the model loads --------------------------------------------------------

NO_MODEL = "model.name=/nonexistent/model"  # loading it would fail: an error about anything else came first


def test_train_into_a_file_is_a_one_line_error(tmp_path):
    afile = tmp_path / "run.txt"
    afile.write_text("mine")
    result = run("train", NO_MODEL, f"run.output_dir={afile}", check=False)
    assert_one_line_error(result, f"{afile} is a file", "run.output_dir")
    assert afile.read_text() == "mine"
    below = run("train", NO_MODEL, f"run.output_dir={afile / 'run'}", check=False)
    assert_one_line_error(below, f"{afile} is a file")


def test_train_checks_resume_and_environments_before_the_model(tmp_path):
    out = tmp_path / "run"
    resume = run("train", NO_MODEL, f"run.output_dir={out}", "--resume", check=False)
    assert_one_line_error(resume, "--resume: no checkpoint in", "start without --resume")
    assert not out.exists()
    unknown = run("train", NO_MODEL, "env.suite=rlvr/nope-v0", f"run.output_dir={out}", check=False)
    assert_one_line_error(unknown, "rlvr/nope-v0")
    assert not (out / "config.json").exists()


def test_train_options_may_follow_overrides():
    result = run("train", "run.steps=2", "--print-config", "run.seed=3", "--resume")
    config = json.loads(result.stdout)
    assert config["run"]["steps"] == 2 and config["run"]["seed"] == 3
    misplaced = run("train", "run.steps=2", "--print-config", "configs/x.yaml", check=False)
    assert misplaced.returncode == 2 and "the config file comes first" in misplaced.stderr


def test_train_interrupted_before_a_checkpoint_says_how_to_start_again(tmp_path, monkeypatch, capsys):
    import rlvr.trainer.loop
    from rlvr.cli import main

    def interrupted(config, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rlvr.trainer.loop, "train", interrupted)
    out = tmp_path / "run"
    assert main(["train", f"run.output_dir={out}", "run.steps=3"]) == 130
    expected = (
        f"rlvr: interrupted; nothing was saved; start again with: rlvr train run.output_dir={out} run.steps=3"
    )
    assert capsys.readouterr().err.strip() == expected
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    assert main(["train", f"run.output_dir={out}", "run.steps=3"]) == 130
    assert capsys.readouterr().err.strip().endswith(f"run.output_dir={out} run.steps=3 --overwrite")
    (out / "checkpoints" / "step-000001").mkdir(parents=True)
    (out / "checkpoints" / "step-000001" / "state.pt").write_bytes(b"")
    (out / "checkpoints" / "latest").write_text("step-000001")
    assert main(["train", f"run.output_dir={out}", "--overwrite"]) == 130  # stopped before replacing the run
    assert capsys.readouterr().err.strip() == (
        f"rlvr: interrupted; the run in {out} was not replaced yet; start again with: "
        f"rlvr train run.output_dir={out} --overwrite"
    )


def test_a_closed_pipe_is_no_traceback():
    """`rlvr envs list | true`: the reader is gone before rlvr writes; rlvr stops without a traceback."""
    rlvr = Path(sys.executable).parent / "rlvr"
    pipeline = subprocess.run(
        f"'{rlvr}' envs list | true", shell=True, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in pipeline.stderr and "BrokenPipeError" not in pipeline.stderr, pipeline.stderr
