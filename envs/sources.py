"""Task sources: indexable collections of Tasks (`len(source)`, `source[i]`).

- `ListSource`: tasks already in memory.
- `DatasetSource`: rows of a Hugging Face hub dataset or of a local file (.jsonl, .jsonl.gz, .json, .parquet),
  each turned into a Task by a row converter (`to_task(row, index) -> Task`, e.g. a `FieldMap`), optionally
  kept only when `keep(task)` says so (a split filter). Rows are converted when the source is built, so a
  malformed file fails at construction with a `DataError` naming the file and line (or row), never in the middle
  of training.
- `ProceduralSource`: task `i` is `generate(random.Random(seed + i), i)`, deterministic by index.
- `Subset`: some indices of another source (the evaluator's `limit`).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from rlvr.envs.base import TaskSource
from rlvr.envs.types import Task
from rlvr.errors import ConfigError, DataError
from rlvr.verifiers.extract import find_boxed

logger = logging.getLogger(__name__)

RowConverter = Callable[[Mapping[str, Any], int], Task]
"""Turns one row (and its index in the file) into a Task; raises KeyError/ValueError/TypeError for a bad row."""
TaskFilter = Callable[[Task], bool]
"""Whether a converted task belongs to the split being read (e.g. MBPP's task-id ranges)."""

ON_BAD_ROW = ("raise", "skip")
LOCAL_FORMATS = (".jsonl", ".jsonl.gz", ".json", ".parquet")


class ListSource(TaskSource):
    """Tasks held in memory."""

    def __init__(self, tasks: Iterable[Task]) -> None:
        self._tasks = tuple(tasks)
        for index, task in enumerate(self._tasks):
            if not isinstance(task, Task):
                raise TypeError(f"ListSource item {index} is a {type(task).__name__}, not a Task")

    def __len__(self) -> int:
        return len(self._tasks)

    @overload
    def __getitem__(self, index: int) -> Task: ...
    @overload
    def __getitem__(self, index: slice) -> ListSource: ...
    def __getitem__(self, index: int | slice) -> Task | ListSource:
        if isinstance(index, slice):
            return ListSource(self._tasks[index])
        return self._tasks[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} tasks)"


class Subset(TaskSource):
    """The tasks of `source` at `indices`, in that order."""

    def __init__(self, source: Sequence[Task], indices: Iterable[int]) -> None:
        self.source = source
        self.indices = tuple(indices)
        for index in self.indices:
            if not -len(source) <= index < len(source):
                raise IndexError(f"index {index} is outside the source's {len(source)} tasks")

    @classmethod
    def first(cls, source: Sequence[Task], limit: int | None) -> Sequence[Task]:
        """The first `limit` tasks of `source` (all of them when `limit` is None or not smaller)."""
        if limit is None or limit >= len(source):
            return source
        return cls(source, range(check_limit(limit)))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Task:  # type: ignore[override]
        return self.source[self.indices[index]]


class ProceduralSource(TaskSource):
    """Generated tasks: item `i` is `generate(random.Random(seed + i), i)`, so it depends only on its index."""

    def __init__(self, generate: Callable[[random.Random, int], Task], size: int, seed: int = 0) -> None:
        if not isinstance(size, int) or size < 1:
            raise ConfigError(f"a procedural source needs size >= 1, got {size!r}")
        if not isinstance(seed, int):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.generate = generate
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Task:  # type: ignore[override]
        if not isinstance(index, int):
            raise TypeError(f"a procedural source is indexed by int, got {type(index).__name__}")
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"task index {index} is outside [0, {self.size})")
        task = self.generate(random.Random(self.seed + index), index)
        if not isinstance(task, Task):
            raise TypeError(f"the generator returned a {type(task).__name__} for index {index}, not a Task")
        return task


# -- field maps ------------------------------------------------------------------------------------------------


def _names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _present(row: Mapping[str, Any], name: str) -> bool:
    value = row.get(name)
    return value is not None and not (isinstance(value, str) and not value.strip())


def scalar_text(value: Any, field_name: str) -> str:
    """A text or numeric field as text (`27.0` -> "27"); TypeError for lists, dicts and booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"field {field_name!r} is a {type(value).__name__}, expected text or a number")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{}` (or `\\fbox{}`) in `text`, or None."""
    boxes = [box.strip() for box in find_boxed(text)]
    boxes = [box for box in boxes if box]
    return boxes[-1] if boxes else None


@dataclass(frozen=True)
class FieldMap:
    """Which row fields make a Task; usable as a row converter (`field_map(row, index) -> Task`).

    Each role names alternatives, and the first field present (not missing, None or blank) wins, so one map
    reads several schemas of the same dataset (a hub copy and a harness copy).
    """

    prompt: str | tuple[str, ...]
    """The problem text."""
    answer: str | tuple[str, ...] = ()
    """The gold answer; `answer_format` turns its raw value into the answer (default: text or number as text)."""
    boxed_answer: str | tuple[str, ...] = ()
    """Fallback: fields (a worked solution) whose last `\\boxed{}` is the answer when no `answer` field is present."""
    answer_format: Callable[[Any], str] | None = None
    """Raw answer value -> gold string; raises ValueError/TypeError for a value it cannot read."""
    id: str | tuple[str, ...] = ()
    """The task id's field; the row index when none is present."""
    id_prefix: str = ""
    """Put before every id (e.g. "aime24/")."""
    metadata: str | tuple[str, ...] = ()
    """Fields copied into `Task.metadata` when present (subject, level, solution, ...)."""
    context: str | tuple[str, ...] = ()
    """Fields whose text, when present, comes before the prompt (OlympiadBench's `context`)."""

    def __post_init__(self) -> None:
        for role in ("prompt", "answer", "boxed_answer", "id", "metadata", "context"):
            object.__setattr__(self, role, _names(getattr(self, role)))
        if not self.prompt:
            raise ConfigError("a FieldMap needs at least one prompt field")
        if not (self.answer or self.boxed_answer):
            raise ConfigError("a FieldMap needs an answer field or a boxed_answer field")

    def __call__(self, row: Mapping[str, Any], index: int) -> Task:
        prompt_field = self._first(row, self.prompt)
        prompt = row[prompt_field]
        if not isinstance(prompt, str):
            raise TypeError(f"field {prompt_field!r} is a {type(prompt).__name__}, expected text")
        contexts = [str(row[name]).strip() for name in self.context if _present(row, name)]
        if contexts:
            prompt = "\n\n".join([*contexts, prompt])
        return Task(
            id=f"{self.id_prefix}{self._id(row, index)}",
            prompt=prompt,
            answer=self._answer(row),
            metadata={name: row[name] for name in self.metadata if row.get(name) is not None},
        )

    def _answer(self, row: Mapping[str, Any]) -> str:
        for name in self.answer:
            if _present(row, name):
                raw = row[name]
                answer = self.answer_format(raw) if self.answer_format else scalar_text(raw, name)
                if not answer.strip():
                    raise ValueError(f"field {name!r} gives an empty answer ({raw!r})")
                return answer.strip()
        for name in self.boxed_answer:
            if _present(row, name):
                text = row[name]
                if not isinstance(text, str):
                    raise TypeError(f"field {name!r} is a {type(text).__name__}, expected text")
                boxed = last_boxed(text)
                if boxed is None:
                    raise ValueError(f"field {name!r} has no \\boxed{{}} final answer")
                return boxed
        wanted = " or ".join(repr(name) for name in (*self.answer, *self.boxed_answer))
        raise KeyError(f"missing field {wanted} (fields present: {_field_list(row)})")

    def _id(self, row: Mapping[str, Any], index: int) -> str:
        for name in self.id:
            if row.get(name) is not None:
                return scalar_text(row[name], name)
        return str(index)

    @staticmethod
    def _first(row: Mapping[str, Any], names: tuple[str, ...]) -> str:
        for name in names:
            if _present(row, name):
                return name
        wanted = " or ".join(repr(name) for name in names)
        raise KeyError(f"missing field {wanted} (fields present: {_field_list(row)})")


def _field_list(row: Mapping[str, Any]) -> str:
    return ", ".join(str(key) for key in row) or "none"


# -- reading rows ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRow:
    """One row as read: where it is ("gsm8k_test.jsonl line 17"), and the row or why it could not be read."""

    location: str
    row: Mapping[str, Any] | None
    error: str = ""


def _file_format(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(LOCAL_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise DataError(
        f"cannot read {path}: unknown file type; use one of {', '.join(LOCAL_FORMATS)} "
        "(a .json file holds a JSON array of rows)"
    )


def read_rows(path: str | Path) -> Iterator[RawRow]:
    """The rows of a local .jsonl / .jsonl.gz / .json / .parquet file, in order."""
    path = Path(path)
    fmt = _file_format(path)
    if not path.is_file():
        raise DataError(
            f"data file {path} does not exist; check the path (formats: {', '.join(LOCAL_FORMATS)})"
        )
    if fmt == ".jsonl":
        with path.open("rb") as handle:
            yield from _jsonl_rows(handle, path.name)
    elif fmt == ".jsonl.gz":
        with gzip.open(path, "rb") as handle:
            try:
                yield from _jsonl_rows(handle, path.name)
            except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
                raise DataError(
                    f"{path}: not a readable gzip file ({exc}); re-download or gunzip it"
                ) from exc
    elif fmt == ".json":
        yield from _json_rows(path)
    else:
        yield from _parquet_rows(path)


def _jsonl_rows(lines: Iterable[bytes], name: str) -> Iterator[RawRow]:
    for number, raw in enumerate(lines, 1):
        location = f"{name} line {number}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRow(location, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
            continue
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            reason = "truncated line" if exc.pos >= len(text.rstrip()) else exc.msg
            yield RawRow(location, None, f"invalid JSON ({reason} at column {exc.colno})")
            continue
        if not isinstance(row, dict):
            yield RawRow(location, None, f"expected a JSON object, got a {type(row).__name__}")
            continue
        yield RawRow(location, row)


def _json_rows(path: Path) -> Iterator[RawRow]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path.name} line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if isinstance(data, dict):
        lists = [key for key, value in data.items() if isinstance(value, list)]
        if len(lists) != 1:
            raise DataError(
                f"{path}: a .json data file holds a JSON array of rows, or an object with exactly one list "
                f"of rows; this object has {len(lists)} lists (keys: {', '.join(map(str, data)) or 'none'})"
            )
        data = data[lists[0]]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of rows, got a {type(data).__name__}")
    for index, row in enumerate(data):
        location = f"{path.name} row {index}"
        if isinstance(row, dict):
            yield RawRow(location, row)
        else:
            yield RawRow(location, None, f"expected a JSON object, got a {type(row).__name__}")


def _parquet_rows(path: Path) -> Iterator[RawRow]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    for index, row in enumerate(table.to_pylist()):
        yield RawRow(f"{path.name} row {index}", row)


def hub_rows(
    hub_id: str,
    *,
    config: str | None = None,
    split: str = "test",
    revision: str | None = None,
    data_files: str | Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
) -> Iterator[RawRow]:
    """The rows of a Hugging Face hub dataset (`datasets.load_dataset`), or of a local folder laid out like one.

    With `data_files` (paths inside the repository), the repository's JSON-lines files are read with the
    `json` builder instead: for repositories that only ship a loading script, which `datasets` no longer runs.
    """
    import datasets  # imported here: it is slow to import and most runs read local files

    try:
        if data_files is None:
            dataset = datasets.load_dataset(
                hub_id, name=config, revision=revision, split=split, cache_dir=_str(cache_dir)
            )
        else:
            dataset = datasets.load_dataset(
                "json",
                data_files=[_repo_file(hub_id, revision, name) for name in _names(data_files)],
                split="train",
                cache_dir=_str(cache_dir),
            )
    except Exception as exc:  # datasets raises many unrelated types (network, missing config, bad files)
        what = f"{hub_id!r} (config={config!r}, split={split!r}, revision={revision!r})"
        raise DataError(
            f"could not load {what} from the Hugging Face hub: {type(exc).__name__}: {exc}. Without network "
            "access pass a local copy instead (a .jsonl/.json/.parquet file)"
        ) from exc
    for index, row in enumerate(dataset):
        yield RawRow(f"{hub_id} [{split}] row {index}", row)


def _repo_file(hub_id: str, revision: str | None, name: str) -> str:
    if Path(hub_id).is_dir():  # a local snapshot of the repository
        return str(Path(hub_id) / name)
    return f"hf://datasets/{hub_id}@{revision or 'main'}/{name}"


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)


# -- the dataset source ----------------------------------------------------------------------------------------


def check_limit(limit: int | None) -> int | None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")
    return limit


class DatasetSource(ListSource):
    """Tasks converted from dataset rows when the source is built.

    A row the converter rejects (KeyError/ValueError/TypeError), an unreadable line, or a repeated task id
    raises a DataError naming the row; with `on_bad_row="skip"` the row is left out instead and recorded in
    `skipped` as (row index, reason), with one logged warning giving the count. Tasks that `keep` rejects (a split
    filter) are left out silently and counted in `excluded`. `limit` keeps the first N tasks.
    """

    def __init__(
        self,
        rows: Iterable[RawRow],
        to_task: RowConverter,
        *,
        name: str,
        on_bad_row: str = "raise",
        limit: int | None = None,
        keep: TaskFilter | None = None,
    ) -> None:
        if on_bad_row not in ON_BAD_ROW:
            raise ConfigError(f"on_bad_row must be one of {ON_BAD_ROW}, got {on_bad_row!r}")
        self.name = name
        self.limit = check_limit(limit)
        self.skipped: list[tuple[int, str]] = []
        self.excluded = 0
        tasks: list[Task] = []
        first_seen: dict[str, str] = {}
        for index, raw in enumerate(rows):
            if limit is not None and len(tasks) >= limit:
                break
            task, reason = _convert(raw, index, to_task)
            if task is not None and keep is not None and not keep(task):
                self.excluded += 1
                continue
            if task is not None and task.id in first_seen:
                task, reason = None, f"duplicate task id {task.id!r} (first at {first_seen[task.id]})"
            if task is None:
                if on_bad_row == "raise":
                    raise DataError(f"{raw.location}: {reason}; fix the row or pass on_bad_row='skip'")
                self.skipped.append((index, f"{raw.location}: {reason}"))
                continue
            first_seen[task.id] = raw.location
            tasks.append(task)
        if self.skipped:
            logger.warning(
                "%s: skipped %d bad row(s); first: %s", name, len(self.skipped), self.skipped[0][1]
            )
        if not tasks:
            detail = f" ({len(self.skipped)} bad rows skipped)" if self.skipped else ""
            if self.excluded:
                detail += f" ({self.excluded} tasks belong to another split)"
            raise DataError(f"{name}: no tasks in the data{detail}")
        self._tasks = tuple(tasks)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        to_task: RowConverter,
        *,
        on_bad_row: str = "raise",
        limit: int | None = None,
        missing_hint: str = "",
        keep: TaskFilter | None = None,
    ) -> DatasetSource:
        """Tasks from a local .jsonl / .jsonl.gz / .json / .parquet file (those `keep` accepts, when given)."""
        path = Path(path).expanduser()
        _file_format(path)  # an unknown file type is reported before a missing file
        if not path.is_file():
            hint = missing_hint or f"check the path (formats: {', '.join(LOCAL_FORMATS)})"
            raise DataError(f"data file {path} does not exist; {hint}")
        return cls(read_rows(path), to_task, name=str(path), on_bad_row=on_bad_row, limit=limit, keep=keep)

    @classmethod
    def from_hub(
        cls,
        hub_id: str,
        to_task: RowConverter,
        *,
        config: str | None = None,
        split: str = "test",
        revision: str | None = None,
        data_files: str | Sequence[str] | None = None,
        cache_dir: str | Path | None = None,
        on_bad_row: str = "raise",
        limit: int | None = None,
        keep: TaskFilter | None = None,
    ) -> DatasetSource:
        """Tasks from a Hugging Face hub dataset (see `hub_rows`); those `keep` accepts, when given."""
        rows = hub_rows(
            hub_id, config=config, split=split, revision=revision, data_files=data_files, cache_dir=cache_dir
        )
        at = f"@{revision}" if revision else ""
        name = f"{hub_id}{at} [{split}]"
        return cls(rows, to_task, name=name, on_bad_row=on_bad_row, limit=limit, keep=keep)

    def __repr__(self) -> str:
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        excluded = f", {self.excluded} of another split" if self.excluded else ""
        return f"{type(self).__name__}({self.name!r}, {len(self)} tasks{skipped}{excluded})"


def _convert(raw: RawRow, index: int, to_task: RowConverter) -> tuple[Task | None, str]:
    """(task, "") for a good row, (None, why) for a bad one."""
    if raw.row is None:
        return None, raw.error or "unreadable row"
    try:
        task = to_task(raw.row, index)
    except KeyError as exc:
        message = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
        if " " not in message:  # a bare key from row[name]
            message = f"missing field {message!r} (fields present: {_field_list(raw.row)})"
        return None, message
    except (ValueError, TypeError) as exc:
        return None, str(exc) or type(exc).__name__
    if not isinstance(task, Task):
        return None, f"the row converter returned a {type(task).__name__}, not a Task"
    return task, ""
