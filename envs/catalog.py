"""The dataset catalog: one `DatasetSpec` per benchmark or training set, and `load_tasks` to read one.

Each spec pins a Hugging Face hub repository at a commit (`revision`) and says how a row becomes a Task: math
tasks carry the gold answer string that `MathVerifier.verify(gold, completion)` takes; code tasks carry a
`CodeTests`. The row converters accept both the hub schema and the schema of the usual local copy where they
differ (AIME 2024 on the hub vs the Qwen2.5-Math harness copy, for instance).

Splits: a spec's default `split` is the one training reads, the dataset's training split where it has one
(GSM8K train, MATH train without the MATH-500 problems, MBPP train); `test_split` is the one benchmark suites
evaluate on, and `benchmark` names the suite, so `rlvr.envs.splits` can warn when training reads it.

Where the data comes from, first match wins: an explicit `path` (a .jsonl / .jsonl.gz / .json / .parquet file,
read as it is, whatever the split); else `data_dir` (default: the `RLVR_DATA_DIR` environment variable) when the
spec names a local file for the split (the layout of `shared/data/`: `math/gsm8k_train.jsonl`,
`code/humaneval.jsonl`, ...); else the hub. A split's filter (`split_filters`) applies to the last two.
Loaded sources are cached per process (files by path, size and modification time), so many environments over
one dataset share one copy.
"""

from __future__ import annotations

import base64
import difflib
import functools
import io
import json
import os
import pickle
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rlvr.envs.math500_problems import MATH500_FINGERPRINTS, problem_fingerprint
from rlvr.envs.sources import DatasetSource, FieldMap, RowConverter, TaskFilter, check_limit, scalar_text
from rlvr.envs.types import Task
from rlvr.errors import ConfigError, DataError
from rlvr.verifiers.code_tests import CodeTests

DATA_DIR_ENV = "RLVR_DATA_DIR"


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """One dataset: where it lives on the hub (pinned), how a row becomes a Task, and its usual local copies."""

    name: str
    kind: str
    """Either "math" (the answer is a gold string) or "code" (the answer is a CodeTests)."""
    hub_id: str
    to_task: RowConverter
    """The row converter: a `FieldMap` for most math sets, a function where rows need more work."""
    config: str | None = None
    split: str = "train"
    """The split read by default, the one training reads: the training split where the dataset has one."""
    test_split: str = "test"
    """The split benchmark suites evaluate on (the same as `split` where the dataset has only one)."""
    benchmark: str = ""
    """The built-in benchmark suite (`rlvr.benchmarks.suites`) that evaluates on `test_split`'s problems; training
    on that split prints a warning naming it (`rlvr.envs.splits`)."""
    split_filters: Mapping[str, TaskFilter] = field(default_factory=dict)
    """split -> which tasks of the hub split or data-directory file belong to it (MBPP's task-id ranges, MATH
    train without the MATH-500 problems); not applied to an explicit `path`."""
    revision: str | None = None
    """The hub commit sha the data is read at; None only where no verified revision was found (see `pinned`)."""
    hub_files: Mapping[str, str] = field(default_factory=dict)
    """split -> JSON-lines file in the repository, for repositories that only ship a loading script."""
    local_files: Mapping[str, str] = field(default_factory=dict)
    """split -> the usual local copy, relative to a data directory (the `shared/data/` layout)."""
    local_format: str = ""
    """What a local copy looks like (format and fields)."""
    description: str = ""

    @property
    def pinned(self) -> bool:
        """Whether the hub data is read at a fixed commit; unpinned specs say so in `revision_note`."""
        return self.revision is not None

    @property
    def revision_note(self) -> str:
        return self.revision or "unpinned: no verified revision found"


# -- answer formats and row converters -------------------------------------------------------------------------


def gsm8k_gold(value: Any) -> str:
    """GSM8K's final answer: the text after "#### ", without thousands separators ("1,000" -> "1000")."""
    if not isinstance(value, str):
        raise TypeError(f"field 'answer' is a {type(value).__name__}, expected the worked solution text")
    if "####" not in value:
        raise ValueError("field 'answer' has no '#### <final answer>' line")
    return value.rsplit("####", 1)[1].strip().replace(",", "")


_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


def olympiad_gold(value: Any) -> str:
    """OlympiadBench's `final_answer` (a list of strings, usually one, sometimes "$69$,$84$"): the parts without
    `$` delimiters, joined with ", "."""
    parts = value if isinstance(value, (list, tuple)) else [value]
    texts = [_UNESCAPED_DOLLAR.sub("", scalar_text(part, "final_answer")).strip() for part in parts]
    return ", ".join(text for text in texts if text)


_GSM8K_FIELDS = FieldMap(
    prompt="question", answer="answer", answer_format=gsm8k_gold, id="idx", id_prefix="gsm8k/"
)


def gsm8k_task(row: Mapping[str, Any], index: int) -> Task:
    """A GSM8K row ({question, answer}); the worked answer text is kept as metadata["solution"]."""
    task = _GSM8K_FIELDS(row, index)
    return replace(task, metadata={**task.metadata, "solution": row["answer"]})


def _math_fields(name: str, **overrides: Any) -> FieldMap:
    """A competition-math map: problem text, gold answer (or the last box of the solution), usual metadata."""
    options: dict[str, Any] = {
        "prompt": ("problem", "question", "Problem"),
        "answer": ("answer", "Answer"),
        "boxed_answer": ("solution", "Solution"),
        "id": ("unique_id", "id", "ID", "idx"),
        "id_prefix": f"{name}/",
        "metadata": ("subject", "type", "level", "year", "url", "unique_id", "solution"),
    }
    options.update(overrides)
    return FieldMap(**options)


def humaneval_task(row: Mapping[str, Any], index: int) -> Task:
    """A HumanEval row: the prompt is the function stub with its docstring, the model completes it."""
    prompt = _text(row, "prompt")
    metadata: dict[str, Any] = {"entry_point": _text(row, "entry_point")}
    if isinstance(row.get("canonical_solution"), str):
        metadata["canonical_solution"] = prompt + row["canonical_solution"]
    return Task(
        id=_text(row, "task_id"), prompt=prompt, answer=CodeTests.from_humaneval(row), metadata=metadata
    )


def mbpp_task(row: Mapping[str, Any], index: int) -> Task:
    """An MBPP row (sanitized: `prompt`, `test_imports`; full: `text`, `test_setup_code`): the description and the
    first test as an example of the expected function's name and signature."""
    text = row.get("prompt") or row.get("text")
    if not isinstance(text, str):
        raise KeyError(f"missing field 'prompt' or 'text' (fields present: {', '.join(map(str, row))})")
    tests = row["test_list"]
    if not isinstance(tests, (list, tuple)) or not tests or not all(isinstance(t, str) for t in tests):
        raise TypeError(f"field 'test_list' must be a non-empty list of assert strings, got {tests!r:.80}")
    if not row.get("test_imports") and row.get("test_setup_code"):
        row = {**row, "test_imports": [row["test_setup_code"]]}
    metadata: dict[str, Any] = {}
    if isinstance(row.get("code"), str):
        metadata["canonical_solution"] = row["code"]
    return Task(
        id=f"mbpp/{scalar_text(row['task_id'], 'task_id')}",
        prompt=f"{text.strip()}\n\nYour code should pass this test:\n{tests[0]}",
        answer=CodeTests.from_mbpp(row),
        metadata=metadata,
    )


_LCB_STARTER = (
    "Write the solution using the following starter code, and give your complete code in a single "
    "```python code block:\n```python\n{starter}\n```"
)
_LCB_STDIN = (
    "Read the input from standard input and write the answer to standard output. Give your complete program "
    "in a single ```python code block."
)
_MAX_PRIVATE_TESTS_BYTES = 1 << 30


class _NoClassesUnpickler(pickle.Unpickler):
    """Unpickles plain strings only: every class or function lookup is refused, so no code can run."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: private tests must be a pickled str")


def decode_private_tests(value: Any) -> list[Any]:
    """LiveCodeBench's `private_test_cases`: JSON text, or base64(zlib(pickle(JSON text))) as the hub stores
    it. The pickle is read by an unpickler that refuses every class, so only a plain str can come out."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise TypeError(f"field 'private_test_cases' is a {type(value).__name__}, expected text")
    text = value.strip()
    if not text.startswith("["):
        try:
            packed = zlib.decompressobj()
            raw = packed.decompress(base64.b64decode(text, validate=True), _MAX_PRIVATE_TESTS_BYTES)
            if packed.unconsumed_tail:
                raise ValueError(f"private tests larger than {_MAX_PRIVATE_TESTS_BYTES} bytes")
            decoded = _NoClassesUnpickler(io.BytesIO(raw)).load()
        except (ValueError, zlib.error, pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(f"field 'private_test_cases' is not readable: {exc}") from exc
        if not isinstance(decoded, str):
            raise ValueError(f"field 'private_test_cases' unpickled to a {type(decoded).__name__}, not a str")
        text = decoded
    cases = json.loads(text)
    if not isinstance(cases, list):
        raise ValueError(
            f"field 'private_test_cases' holds a {type(cases).__name__}, expected a list of tests"
        )
    return cases


def lcb_task(row: Mapping[str, Any], index: int) -> Task:
    """A LiveCodeBench `code_generation_lite` row: public tests, plus the private ones when the row has them."""
    content = _text(row, "question_content")
    starter = row.get("starter_code") or ""
    if not isinstance(starter, str):
        raise TypeError(f"field 'starter_code' is a {type(starter).__name__}, expected text")
    tests = CodeTests.from_lcb(row)
    private = row.get("private_test_cases")
    if private:
        hidden = CodeTests.from_lcb(
            {**row, "private_test_cases": decode_private_tests(private)}, field_name="private_test_cases"
        )
        if hidden.cases and hidden.kind != tests.kind:
            raise ValueError(f"private tests are {hidden.kind} but public tests are {tests.kind}")
        tests = replace(tests, cases=tests.cases + hidden.cases)
    note = _LCB_STARTER.format(starter=starter.rstrip()) if starter.strip() else _LCB_STDIN
    keep = ("question_title", "question_id", "platform", "difficulty", "contest_id", "contest_date")
    return Task(
        id=f"lcb/{_text(row, 'question_id')}",
        prompt=f"{content.strip()}\n\n{note}",
        answer=tests,
        metadata={name: row[name] for name in keep if row.get(name) is not None},
    )


def not_math500(task: Task) -> bool:
    """Whether a MATH task is not one of the 500 problems of MATH-500 (matched by its problem text)."""
    return problem_fingerprint(task.prompt) not in MATH500_FINGERPRINTS


MBPP_TASK_IDS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
"""MBPP's splits by task id (its README; the sanitized set keeps 7, 257, 43 and 120 of them)."""


def mbpp_split(split: str) -> TaskFilter:
    """The tasks of one MBPP split, by task id ("mbpp/601" is in train)."""
    low, high = MBPP_TASK_IDS[split]
    return lambda task: low <= int(task.id.rpartition("/")[2]) <= high


def _text(row: Mapping[str, Any], name: str) -> str:
    value = row[name]
    if not isinstance(value, str):
        raise TypeError(f"field {name!r} is a {type(value).__name__}, expected text")
    return value


# -- the catalog -----------------------------------------------------------------------------------------------

_SPECS = (
    DatasetSpec(
        name="gsm8k",
        kind="math",
        hub_id="openai/gsm8k",
        config="main",
        split="train",
        benchmark="gsm8k",
        revision="cc7b047b6e5bb11b4f1af84efc572db110a51b3c",
        to_task=gsm8k_task,
        local_files={"test": "math/gsm8k_test.jsonl", "train": "math/gsm8k_train.jsonl"},
        local_format="jsonl {question, answer} (openai/grade-school-math test.jsonl / train.jsonl)",
        description="Grade-school math word problems (7473 train, 1319 test); gold = the number after '####'.",
    ),
    DatasetSpec(
        name="math",
        kind="math",
        hub_id="DigitalLearningGmbH/MATH-lighteval",
        config="default",
        split="train",
        benchmark="math500",
        split_filters={"train": not_math500},
        revision="f06834690385b29df31ccc717250746a3ba0322b",
        to_task=_math_fields("math"),
        local_format="jsonl/parquet {problem, solution, level, type}; gold = last \\boxed{} of the solution",
        description="Hendrycks MATH, all 7 subjects (7500 train, 5000 test). The train split leaves out any "
        "MATH-500 problem (matched by problem text); MATH-500 is part of the test split. A few solutions lack "
        "a boxed answer: pass on_bad_row='skip' to leave them out.",
    ),
    DatasetSpec(
        name="math500",
        kind="math",
        hub_id="HuggingFaceH4/MATH-500",
        split="test",
        benchmark="math500",
        revision="6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be",
        to_task=_math_fields("math500"),
        local_files={"test": "math/math500.jsonl"},
        local_format="jsonl {problem, solution, answer, subject, level, unique_id}",
        description="The 500-problem MATH test subset of 'Let's Verify Step by Step'.",
    ),
    DatasetSpec(
        name="aime24",
        kind="math",
        hub_id="HuggingFaceH4/aime_2024",
        split="train",
        test_split="train",
        benchmark="aime24",
        revision="2fe88a2f1091d5048c0f36abc874fb997b3dd99a",
        to_task=_math_fields("aime24"),
        local_files={"train": "math/aime24.jsonl"},
        local_format="jsonl {id, problem, solution, answer, url} (Qwen2.5-Math evaluation harness copy)",
        description="AIME 2024 I and II (30 problems; the hub calls its only split 'train').",
    ),
    DatasetSpec(
        name="aime25",
        kind="math",
        hub_id="yentinglin/aime_2025",
        split="train",
        test_split="train",
        benchmark="aime25",
        revision="6f71d77b0b89b9dabe07ab466c51df33f514df7f",
        to_task=_math_fields("aime25"),
        local_files={"train": "math/aime25.jsonl"},
        local_format="jsonl {problem, answer}",
        description="AIME 2025 I and II (30 problems).",
    ),
    DatasetSpec(
        name="amc23",
        kind="math",
        hub_id="math-ai/amc23",
        split="test",
        benchmark="amc23",
        revision="80815d37005feb82cd7f8fbc6901d5d3eff43057",
        to_task=_math_fields("amc23"),
        local_files={"test": "math/amc23.jsonl"},
        local_format="jsonl {id, problem, question, answer (a float such as 27.0), url}",
        description="AMC 2023 (40 problems).",
    ),
    DatasetSpec(
        name="minerva",
        kind="math",
        hub_id="math-ai/minervamath",
        split="test",
        benchmark="minerva",
        revision="ee46ddc498933b1977577953250ca5c66be64f96",
        to_task=_math_fields("minerva"),
        local_files={"test": "math/minerva_math.jsonl"},
        local_format="jsonl {problem, solution, type, idx}; gold = last \\boxed{} of the solution "
        "(the hub copy has {question, answer})",
        description="Minerva's MIT OpenCourseWare STEM problems (272).",
    ),
    DatasetSpec(
        name="olympiadbench",
        kind="math",
        hub_id="Hothan/OlympiadBench",
        config="OE_TO_maths_en_COMP",
        split="train",
        test_split="train",
        benchmark="olympiadbench",
        revision="91184b52131e7fc9455fef848035173aea8cc01a",
        to_task=_math_fields(
            "olympiadbench",
            prompt="question",
            context="context",
            answer=("final_answer", "answer"),
            answer_format=olympiad_gold,
            boxed_answer=(),
            id="id",
            metadata=("subfield", "subject", "answer_type", "unit", "is_multiple_answer", "solution"),
        ),
        local_files={"train": "math/olympiadbench.jsonl"},
        local_format="jsonl {id, question, context, solution, final_answer (list), unit, answer_type, ...}",
        description="OlympiadBench, English text-only open-ended competition math (675 rows locally).",
    ),
    DatasetSpec(
        name="humaneval",
        kind="code",
        hub_id="openai/openai_humaneval",
        split="test",
        benchmark="humaneval",
        revision="7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544",
        to_task=humaneval_task,
        local_files={"test": "code/humaneval.jsonl"},
        local_format="jsonl or jsonl.gz {task_id, prompt, entry_point, canonical_solution, test}",
        description="HumanEval: 164 Python functions to complete, checked by their unit tests.",
    ),
    DatasetSpec(
        name="mbpp",
        kind="code",
        hub_id="google-research-datasets/mbpp",
        config="sanitized",
        split="train",
        benchmark="mbpp",
        split_filters={split: mbpp_split(split) for split in MBPP_TASK_IDS},
        revision="4bb6404fdc6cacfda99d4ac4205087b89d32030c",
        to_task=mbpp_task,
        local_files={split: "code/mbpp.jsonl" for split in MBPP_TASK_IDS},
        local_format="jsonl or a .json array {source_file, task_id, prompt, code, test_imports, test_list}; "
        "the local sanitized file holds all 427 problems, read from the data directory by task id: train 120, "
        "test 257, validation 43, prompt 7 (as the hub's splits); an explicit path reads all 427",
        description="MBPP (sanitized): basic Python problems checked by three asserts each.",
    ),
    DatasetSpec(
        name="lcb",
        kind="code",
        hub_id="livecodebench/code_generation_lite",
        split="test",
        benchmark="lcb",
        revision="0fe84c3912ea0c4d4a78037083943e8f0c4dd505",
        hub_files={"test": "test.jsonl"},
        to_task=lcb_task,
        local_files={"test": "code/lcb_style.jsonl"},
        local_format="jsonl LiveCodeBench rows {question_content, starter_code, public_test_cases (JSON text), "
        "private_test_cases (optional), metadata, platform, difficulty, ...}",
        description="LiveCodeBench code generation, release_v1 (400 problems, May 2023 - Mar 2024).",
    ),
)

CATALOG: Mapping[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def dataset_names() -> list[str]:
    """The catalog's dataset names, sorted."""
    return sorted(CATALOG)


def get_spec(name: str) -> DatasetSpec:
    """The spec of a catalog dataset; ConfigError (with close names) for an unknown one."""
    try:
        return CATALOG[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(CATALOG), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown dataset {name!r}{hint}; known: {', '.join(dataset_names())}") from None


def load_tasks(
    name: str,
    *,
    path: str | Path | None = None,
    split: str | None = None,
    revision: str | None = None,
    on_bad_row: str = "raise",
    limit: int | None = None,
    data_dir: str | Path | None = None,
    hub_id: str | None = None,
    cache_dir: str | Path | None = None,
) -> DatasetSource:
    """The tasks of catalog dataset `name`, from `path`, from `data_dir` (default `$RLVR_DATA_DIR`), or the hub.

    `split`/`revision` override the spec's default (training) split and pinned commit; `hub_id` reads another
    repository (a mirror, or a local folder laid out like the repository) and then the spec's pin does not apply.
    A `path` is read as it is; from the data directory or the hub, the split's filter keeps only its tasks.
    """
    spec = get_spec(name)
    split = split or spec.split
    check_limit(limit)
    if path is not None:
        hint = (
            f"pass the path of a local copy of {spec.name} ({spec.local_format}), or leave the path unset to "
            f"read {spec.hub_id} from the Hugging Face hub"
        )
        return _file_source(spec.name, Path(path).expanduser(), on_bad_row, limit, hint, None)
    data_dir = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if data_dir is not None and split in spec.local_files:
        local = Path(data_dir).expanduser() / spec.local_files[split]
        hint = (
            f"the data directory {data_dir} (from data_dir or ${DATA_DIR_ENV}) should hold "
            f"{spec.local_files[split]}; put a copy there, pass path=..., or unset {DATA_DIR_ENV} to use the hub"
        )
        return _file_source(spec.name, local, on_bad_row, limit, hint, split)
    if spec.hub_files and split not in spec.hub_files:
        raise ConfigError(f"{spec.name} has no hub split {split!r}; splits: {', '.join(spec.hub_files)}")
    repo = hub_id or spec.hub_id
    if revision is None and hub_id is None:
        revision = spec.revision
    # A local folder standing in for the repository can change between calls, so it is not cached.
    load = _hub_source.__wrapped__ if Path(repo).is_dir() else _hub_source
    return load(
        spec.name,
        repo,
        spec.config,
        split,
        revision,
        spec.hub_files.get(split),
        _str(cache_dir),
        on_bad_row,
        limit,
    )


def _file_source(
    name: str, path: Path, on_bad_row: str, limit: int | None, hint: str, split: str | None
) -> DatasetSource:
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; {hint}")
    stat = path.stat()
    return _cached_file_source(
        name, str(path.resolve()), stat.st_size, stat.st_mtime_ns, on_bad_row, limit, split
    )


@functools.lru_cache(maxsize=32)
def _cached_file_source(
    name: str, path: str, size: int, mtime_ns: int, on_bad_row: str, limit: int | None, split: str | None
) -> DatasetSource:
    """The tasks of a file; with a `split` (a data-directory file), only those its filter keeps."""
    del size, mtime_ns  # part of the cache key only: a changed file is read again
    spec = get_spec(name)
    keep = spec.split_filters.get(split) if split is not None else None
    return DatasetSource.from_file(path, spec.to_task, on_bad_row=on_bad_row, limit=limit, keep=keep)


@functools.lru_cache(maxsize=16)
def _hub_source(
    name: str,
    hub_id: str,
    config: str | None,
    split: str,
    revision: str | None,
    data_files: str | None,
    cache_dir: str | None,
    on_bad_row: str,
    limit: int | None,
) -> DatasetSource:
    spec = get_spec(name)
    return DatasetSource.from_hub(
        hub_id,
        spec.to_task,
        config=config,
        split=split,
        revision=revision,
        data_files=data_files,
        cache_dir=cache_dir,
        on_bad_row=on_bad_row,
        limit=limit,
        keep=spec.split_filters.get(split),
    )


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)


def clear_cache() -> None:
    """Forget the sources loaded so far (the next `load_tasks` reads the data again)."""
    _cached_file_source.cache_clear()
    _hub_source.cache_clear()
