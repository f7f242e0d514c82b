"""The examples of docs/ENVIRONMENTS.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "ENVIRONMENTS.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_doc_has_the_worked_examples():
    assert len(BLOCKS) >= 4
    assert any("rlvr.register(" in block and "check_environment" in block for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_example_runs(index):
    exec(
        compile(BLOCKS[index], f"{DOC.name} example {index + 1}", "exec"),
        {"__name__": f"doc_example_{index}"},
    )
