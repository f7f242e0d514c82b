"""Every ```python block of README.md and docs/*.md runs as written, as a user's clone would run it.

Each block runs in a fresh interpreter (this environment's python) in an empty temporary folder, so it cannot
read `../shared` or files of this checkout, with `RLVR_DATA_DIR` unset and the Hugging Face hub offline. A
comment on a `print(...)` line is the output it documents: the test checks that stdout contains it. A block whose
first line is `# NAME.py` is a file the reader saves: it runs as that file, and the document's later blocks run
beside it (they may import it).

A block that cannot run everywhere says so on its first line, `# needs: WHAT — why`, with WHAT one of
`REQUIREMENTS`; it runs where WHAT is available here and is skipped, with its reason, where it is not.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^#\s*needs:\s*(?P<what>[a-z]+)\s*(?:[—–-]+\s*(?P<why>.*))?$")
PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s+#\s*(?P<output>.+?)\s*$")
FILE_NAME = re.compile(r"^#\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*\.py)\s*$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    """The line of the opening fence."""
    source: str

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def first_line(self) -> str:
        return self.source.strip().splitlines()[0].strip() if self.source.strip() else ""

    @property
    def marker(self) -> re.Match | None:
        return MARKER.match(self.first_line)

    @property
    def file_name(self) -> str | None:
        named = FILE_NAME.match(self.first_line)
        return named["name"] if named else None


def python_blocks(doc: Path) -> list[Block]:
    blocks, body, start, indent = [], None, 0, ""
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
        if body is None and line.strip() == "```python":
            body, start, indent = [], number, line[: len(line) - len(line.lstrip())]
        elif body is not None and line.strip() == "```":
            blocks.append(Block(doc, start, textwrap.dedent("\n".join(body)) + "\n"))
            body = None
        elif body is not None:
            body.append(line.removeprefix(indent))
    assert body is None, f"{doc.name}:{start}: a ```python block is never closed"
    return blocks


BLOCKS = [block for doc in DOCS for block in python_blocks(doc)]


@cache
def docker_with_image() -> str | None:
    """None when a Docker engine answers and holds the sandbox image, else why not."""
    from rlvr.sandbox import DEFAULT_IMAGE, doctor

    report = doctor(measure=False)
    if not report["engine"]:
        return f"no Docker engine answers ({report.get('engine_error')})"
    if not report["image_present"]:
        return f"the Docker engine has no image {DEFAULT_IMAGE} (bash scripts/setup_sandbox.sh builds it)"
    return None


@cache
def cuda() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU here"


REQUIREMENTS = {
    "docker": docker_with_image,
    "gpu": cuda,
    "trl": lambda: None if importlib.util.find_spec("trl") else "TRL is not installed (pip install trl)",
    "network": lambda: "the tests run offline",
    "minutes": lambda: "takes minutes; run it by hand",
}


def test_docs_have_python_examples():
    assert len(BLOCKS) >= 8 and any(b.doc.name == "README.md" for b in BLOCKS)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.marker], ids=lambda b: b.id)
def test_a_marker_names_a_known_need_and_says_why(block):
    marker = block.marker
    assert marker["what"] in REQUIREMENTS, (
        f"{block.id}: `# needs: {marker['what']}` is not one of {list(REQUIREMENTS)}"
    )
    why = (marker["why"] or "").strip()
    assert len(why.split()) >= 3, (
        f"{block.id}: the marker must say why, e.g. `# needs: docker — starts containers`"
    )


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_python_example_runs(block, tmp_path):
    if block.marker:
        missing = REQUIREMENTS.get(block.marker["what"], lambda: None)()
        if missing:
            pytest.skip(f"{block.marker.group(0)} ({missing})")
    env = {k: v for k, v in os.environ.items() if k not in ("RLVR_DATA_DIR", "PYTHONPATH")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    for earlier in BLOCKS[: BLOCKS.index(block)]:
        if earlier.doc == block.doc and earlier.file_name:
            (tmp_path / earlier.file_name).write_text(earlier.source, encoding="utf-8")
    script = tmp_path / (block.file_name or "doc_example.py")
    script.write_text(block.source, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    for line in block.source.splitlines():
        documented = PRINT_COMMENT.match(line)
        if documented:
            assert documented["output"] in done.stdout, (
                f"{block.id}: the comment on `{line.strip()}` documents output that did not appear; "
                f"stdout was:\n{done.stdout[-2000:]}"
            )


def test_every_environment_variable_is_documented():
    """Every `RLVR_*` variable the package reads is in README.md's table of environment variables."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    folders = ("rlvr", "verifiers", "envs", "trainer", "sandbox", "benchmarks")
    names = {
        name
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        for name in re.findall(r"[\"'](RLVR_[A-Z_]+)[\"']", path.read_text(encoding="utf-8"))
    }
    assert {"RLVR_SANDBOX", "RLVR_DATA_DIR"} <= names
    assert not [name for name in sorted(names) if f"| `{name}` |" not in readme]
