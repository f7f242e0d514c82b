"""Loaders for the real benchmark files in `../shared/data/math/` (read-only, never copied into the project).

Every loader calls `pytest.skip` with the missing path when the shared data folder is absent, so the suites that
use them skip cleanly on a checkout without the data.

The gold answers are read with code of their own here (not with `rlvr.verifiers.find_boxed`), so a bug in the
verifier's extraction cannot also hide in the golds it is tested against.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "math"
CODE_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "code"


def data_path(name: str, folder: Path = DATA_DIR) -> Path:
    """The path of one shared data file; skips the calling test when it is absent."""
    path = folder / name
    if not path.is_file():
        pytest.skip(f"real benchmark file {path} is absent (shared data folder not mounted next to the repo)")
    return path


@cache
def read_jsonl(name: str) -> tuple[dict[str, Any], ...]:
    with data_path(name).open(encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle if line.strip())


def read_code_rows(name: str) -> list[dict[str, Any]]:
    """The rows of a JSONL file in the shared code data folder."""
    with data_path(name, CODE_DATA).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def literal(value: Any) -> Any:
    """A list or dict field that some copies store as a python-literal string (`"[True, False]"`) and others
    as JSON. Only for container fields: a gold such as `(2,4)` must go through `literal_text` instead."""
    if isinstance(value, str) and value[:1] in "[{":
        return ast.literal_eval(value)
    return value


def literal_text(value: Any) -> str:
    """A text field that some copies store quoted as a python literal (`"'420'"`) and others as plain JSON text."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return str(ast.literal_eval(value))
    return str(value)


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` in `text`, braces matched; None when there is none."""
    start = text.rfind("\\boxed")
    while start >= 0:
        i = start + len("\\boxed")
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j]
                j += 1
        start = text.rfind("\\boxed", 0, start)
    return None


def gsm8k_gold(answer_field: str) -> str:
    """GSM8K's gold: the text after the last `#### `, thousands commas removed."""
    return answer_field.rsplit("####", 1)[1].strip().replace(",", "")


def _number_text(value: Any) -> str:
    """AMC23 stores answers as floats (27.0); write integers without the `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _strip_dollars(text: str) -> str:
    text = text.strip()
    if text.startswith("$$") and text.endswith("$$") and len(text) > 4:
        return text[2:-2].strip()
    if text.startswith("$") and text.endswith("$") and len(text) > 2:
        return text[1:-1].strip()
    return text


def math500_golds() -> list[str]:
    return [str(row["answer"]) for row in read_jsonl("math500.jsonl")]


def aime24_golds() -> list[str]:
    return [str(row["answer"]) for row in read_jsonl("aime24.jsonl")]


def amc23_golds() -> list[str]:
    return [_number_text(row["answer"]) for row in read_jsonl("amc23.jsonl")]


def gsm8k_golds() -> list[str]:
    return [gsm8k_gold(row["answer"]) for row in read_jsonl("gsm8k_test.jsonl")]


def minerva_golds() -> list[str]:
    """Minerva-Math has no answer field: the gold is the last `\\boxed{}` of the reference solution."""
    golds = []
    for row in read_jsonl("minerva_math.jsonl"):
        gold = last_boxed(row["solution"])
        assert gold is not None, f"minerva_math row {row.get('idx')} has no boxed answer"
        golds.append(gold.strip())
    return golds


def olympiad_answer(answer: str) -> str:
    """One `final_answer` string without its math delimiters: `$69$,$84$` -> `69, 84`, `$x=5$.` -> `x=5`."""
    text = answer.strip()
    if text.endswith("$."):
        text = text[:-1]
    text = re.sub(r"\$\s*,\s*\$", ", ", text)
    return _strip_dollars(text)


def olympiadbench_golds() -> list[str]:
    """OlympiadBench's `final_answer` is a list of `$...$` strings (one in all 675 rows, some with several answers
    inside as `$a$,$b$`); several strings would be joined with `, `."""
    return [
        ", ".join(olympiad_answer(answer) for answer in literal(row["final_answer"]))
        for row in read_jsonl("olympiadbench.jsonl")
    ]


def gsm8k_gold_by_question() -> dict[str, str]:
    return {row["question"]: gsm8k_gold(row["answer"]) for row in read_jsonl("gsm8k_test.jsonl")}


REPORT_LINES: list[str] = []


def report(line: str) -> None:
    """Record a measured figure; `conftest.py` prints all of them in the test run's summary."""
    REPORT_LINES.append(line.strip("\n"))
