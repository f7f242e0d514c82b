"""Per-sample results: one JSON line per (task, sample), appended as batches finish, read back on resume.

A line is only ever appended whole and followed by flush + fsync, so an interrupted run loses at most the batch
in progress. A torn last line (the process died mid-write) is cut off before the next append.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlvr.errors import DataError


@dataclass
class SampleRecord:
    """One sample of one task: what was asked, what came back, and how it was scored."""

    suite: str
    task_index: int
    task_id: str
    sample: int
    """Which of the task's n samples (0..n-1)."""
    prompt: list[dict[str, Any]]
    """The messages the model saw first (system prompt, user message)."""
    completion: str
    """The model's last turn."""
    gold: str | None
    """The reference answer (math), or None (code: the tests decide)."""
    extracted: str | None
    """The final answer the verifier read (math), the program it ran (code), or None."""
    correct: bool
    score: float
    reason: str
    """The verdict's reason: correct, wrong, no_answer, timeout, ... (code: passed, failed, syntax_error, ...)."""
    reward: float
    rewards: dict[str, float]
    """The reward components of the environment's pipeline (correct, format, ...)."""
    finish_reason: str | None
    num_tokens: int
    """Tokens the model generated, over all turns."""
    turns: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    """The task metadata fields the suite breaks its metrics down by."""
    verdict: dict[str, Any] = field(default_factory=dict)
    """Extra verdict details (code: `passed` of `total` tests)."""

    @property
    def key(self) -> tuple[int, int]:
        return self.task_index, self.sample

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> SampleRecord:
        return cls(**row)


def read_records(path: Path) -> list[SampleRecord]:
    """The records of a samples file (empty when it does not exist); a torn last line is ignored.

    DataError for a malformed line before the last: the file was edited or is not a samples file.
    """
    if not path.exists():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(SampleRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            if number == len(lines):  # the last line has no newline: a write that was cut off
                break
            raise DataError(
                f"{path}:{number} is not a sample record ({exc}); move the file away or pass --overwrite"
            ) from exc
    return records


def repair_tail(path: Path) -> None:
    """Cut a torn last line (no trailing newline) so the next append starts on a fresh line."""
    if not path.exists():
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def append_records(path: Path, records: Iterable[SampleRecord]) -> None:
    """Append records as whole lines, then flush and fsync (a finished batch survives a crash)."""
    text = "".join(record.to_json() + "\n" for record in records)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def by_task(records: Iterable[SampleRecord]) -> dict[int, list[SampleRecord]]:
    """Records grouped by task index, each group in sample order (a duplicate key keeps the first record)."""
    groups: dict[int, dict[int, SampleRecord]] = {}
    for record in records:
        groups.setdefault(record.task_index, {}).setdefault(record.sample, record)
    return {index: [group[s] for s in sorted(group)] for index, group in sorted(groups.items())}
