"""docs/ENVIRONMENTS.md's walk-through of a user environment in its own module, run as written: the module is
saved to a fresh folder and each documented command runs there with the installed `rlvr` (the embedded model)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "ENVIRONMENTS.md"
SECTION = (
    DOC.read_text(encoding="utf-8").split("## Your environment in its own module", 1)[1].split("\n## ")[0]
)


def documented_module() -> tuple[str, str]:
    """(file name, source) of the python block that starts with `# <name>.py`."""
    block = re.findall(r"```python\n(.*?)```", SECTION, flags=re.DOTALL)[0]
    name = block.splitlines()[0].removeprefix("# ").strip()
    return name, block


def documented_commands() -> list[list[str]]:
    block = re.findall(r"```bash\n(.*?)```", SECTION, flags=re.DOTALL)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_the_walkthrough_covers_check_show_train_and_eval():
    verbs = [
        command[1] + " " + command[2] if command[1] == "envs" else command[1]
        for command in documented_commands()
    ]
    assert verbs == ["envs check", "envs show", "envs list", "train", "eval"]
    assert documented_module()[0] == "mylab_envs.py"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_walkthrough_runs_as_written(tmp_path):
    name, source = documented_module()
    (tmp_path / name).write_text(source, encoding="utf-8")
    rlvr = Path(sys.executable).parent / "rlvr"  # the console script: the folder is not on sys.path by itself
    outputs = {}
    for command in documented_commands():
        assert command[0] == "rlvr"
        result = subprocess.run(
            [str(rlvr), *command[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, (
            f"{shlex.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
        outputs[shlex.join(command[1:])] = result.stdout

    def output(prefix: str) -> str:
        return next(text for command, text in outputs.items() if command.startswith(prefix))

    assert output("envs check mylab_envs:mylab/revword-v0").strip().endswith("PASSED")
    assert "tasks:       12" in output("envs show mylab_envs:mylab/revword-v0")
    assert "mylab/revword-v0" in output("envs list --import").split()
    metrics = [
        json.loads(line) for line in (tmp_path / "runs/revword/metrics.jsonl").read_text().splitlines()
    ]
    assert [m["step"] for m in metrics] == [1, 2]
    assert any(key.startswith("env/mylab/revword-v0/") for key in metrics[0])  # it was trained on
    assert "held-out greedy accuracy on 4 tasks of mylab/revword-v0" in output("train ")
    summaries = list((tmp_path / "eval/revword").rglob("summary.json"))
    assert summaries, "rlvr eval wrote no summary.json"
