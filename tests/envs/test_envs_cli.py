"""`rlvr envs list | show | check`, run as a user runs them (the installed entry point), plus a failing check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import envdata

import rlvr
from rlvr.cli import main
from rlvr.envs import SingleTurnEnv, Task

RLVR = shutil.which("rlvr", path=str(Path(sys.executable).parent)) or "rlvr"


def run(*args):
    return subprocess.run([RLVR, "envs", *args], capture_output=True, text=True, timeout=300)


def test_list_prints_one_id_per_line():
    result = run("list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    builtin = [i for i in rlvr.list_ids() if i.startswith("rlvr/")]  # this process may hold test ids too
    assert lines == sorted(lines) and len(lines) == len(builtin)
    assert "rlvr/math-gsm8k-v0" in lines and all(line.startswith("rlvr/") for line in lines)
    games = run("list", "--tag", "game").stdout.split()
    assert games == ["rlvr/guess-number-v0", "rlvr/wordle-v0"]


def test_show_describes_the_environment():
    result = run("show", "rlvr/math-gsm8k-v0", "--data", str(envdata.shared_file("math/gsm8k_test.jsonl")))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "GSM8K" in out and "tasks:       1319" in out
    assert "rewards:     correct, format (max episode return 1.1)" in out
    assert "Janet" in out  # the example prompt: gsm8k test task 0


def test_check_passes_with_exit_code_zero():
    result = run("check", "rlvr/countdown-v0", "--tasks", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check_env: ok" in result.stdout and result.stdout.strip().endswith("PASSED")


def test_check_fails_with_exit_code_one_on_a_bad_reference(capsys):
    class WrongReference(SingleTurnEnv):
        def __init__(self):
            super().__init__([Task("t0", "Say yes.", "yes")])

        def score(self, task, completion):
            return {"correct": float(completion.text == task.answer)}, None

        def reference_action(self):
            return "no"

    rlvr.register("testing/wrong-reference-v0", WrongReference)
    assert main(["envs", "check", "testing/wrong-reference-v0"]) == 1
    out = capsys.readouterr().out
    assert "reference task 0: return 0 / 1" in out and out.strip().endswith("FAILED")


def test_unknown_id_and_bad_override_are_clear_errors():
    result = run("show", "rlvr/math-gsm9k-v0")
    assert result.returncode != 0 and "rlvr/math-gsm8k-v0" in result.stderr
    result = run("check", "rlvr/countdown-v0", "--set", "novalue")
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr
