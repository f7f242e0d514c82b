"""docs/EVALUATION.md documents every `rlvr eval`/`rlvr compare` option, every built-in suite and every sample field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rlvr.benchmarks.records import SampleRecord
from rlvr.benchmarks.suites import BUILTIN_SUITES, BenchmarkSuite
from rlvr.cli import _build_parser

DOC = (Path(__file__).resolve().parents[2] / "docs" / "EVALUATION.md").read_text(encoding="utf-8")


def _subcommand(name: str):
    parser = _build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return commands.choices[name]


@pytest.mark.parametrize("command", ["eval", "compare"])
def test_every_option_is_documented(command):
    options = [o for a in _subcommand(command)._actions for o in a.option_strings if o.startswith("--")]
    missing = [o for o in options if o != "--help" and f"`{o}" not in DOC]
    assert not missing, f"docs/EVALUATION.md does not mention {missing}"


def test_every_suite_and_field_is_documented():
    assert not [s.name for s in BUILTIN_SUITES if f"| `{s.name}` |" not in DOC]
    assert not [f.name for f in dataclasses.fields(SampleRecord) if f"`{f.name}`" not in DOC]
    assert not [f.name for f in dataclasses.fields(BenchmarkSuite) if f"`{f.name}`" not in DOC]


def test_every_documented_option_exists():
    import re

    real = {o for name in ("eval", "compare") for a in _subcommand(name)._actions for o in a.option_strings}
    documented = set(re.findall(r"`(--[a-z][a-z-]*)", DOC)) - {"--served-model-name"}  # vllm serve's
    assert not documented - real, f"docs/EVALUATION.md names options that do not exist: {documented - real}"
