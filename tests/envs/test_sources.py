"""Task sources: in-memory, procedural, and dataset rows read from every local format."""

from __future__ import annotations

import gzip
import json
import logging
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlvr.envs.sources import DatasetSource, FieldMap, ListSource, ProceduralSource, Subset, read_rows
from rlvr.envs.types import Task
from rlvr.errors import ConfigError, DataError

ROWS = [
    {"question": "1 + 1?", "answer": "2", "level": 1},
    {"question": "2 + 2?", "answer": 4, "level": 2},
    {"question": "3 + 3?", "solution": "so it is $\\boxed{6}$", "level": None},
]
FIELDS = FieldMap(
    prompt="question", answer="answer", boxed_answer="solution", id_prefix="t/", metadata="level"
)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def task(i: int) -> Task:
    return Task(id=str(i), prompt=f"p{i}", answer=str(i))


def test_list_source_indexes_and_slices():
    source = ListSource(task(i) for i in range(5))
    assert len(source) == 5
    assert source[-1].id == "4"
    assert [t.id for t in source[1:3]] == ["1", "2"]
    assert [t.id for t in source] == ["0", "1", "2", "3", "4"]
    with pytest.raises(TypeError, match="not a Task"):
        ListSource([task(0), {"id": "x"}])


def test_procedural_source_is_deterministic_by_index():
    def generate(rng: random.Random, index: int) -> Task:
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        return Task(id=f"add/{index}", prompt=f"{a} + {b}", answer=str(a + b))

    first, again = ProceduralSource(generate, size=50, seed=7), ProceduralSource(generate, size=50, seed=7)
    assert len(first) == 50
    assert first[13] == again[13]
    assert [t.prompt for t in first] == [t.prompt for t in again]  # iteration stops at size
    assert first[-1] == first[49]
    assert ProceduralSource(generate, size=50, seed=8)[13] != first[13]
    assert first[13].prompt == generate(random.Random(7 + 13), 13).prompt
    with pytest.raises(IndexError):
        first[50]
    with pytest.raises(ConfigError):
        ProceduralSource(generate, size=0)
    with pytest.raises(TypeError, match="not a Task"):
        ProceduralSource(lambda rng, i: "task", size=3)[0]


def test_subset_first():
    source = ListSource(task(i) for i in range(10))
    assert Subset.first(source, None) is source
    assert Subset.first(source, 20) is source
    head = Subset.first(source, 3)
    assert [t.id for t in head] == ["0", "1", "2"]
    assert Subset(source, [7, 2])[0].id == "7"
    with pytest.raises(IndexError):
        Subset(source, [10])
    with pytest.raises(ConfigError):
        Subset.first(source, 0)


def test_field_map_alternatives_first_present_wins():
    fields = FieldMap(
        prompt=("problem", "question"), answer=("answer", "Answer"), boxed_answer="solution", id=("id", "idx")
    )
    hub = fields({"problem": "P", "Answer": 7, "id": 60}, 0)
    assert (hub.id, hub.prompt, hub.answer) == ("60", "P", "7")
    local = fields({"question": "Q", "answer": "", "solution": "x \\boxed{\\frac{1}{2}} y", "idx": 3}, 5)
    assert (local.id, local.prompt, local.answer) == ("3", "Q", "\\frac{1}{2}")  # blank answer falls back
    assert fields({"problem": "P", "answer": 27.0}, 9).answer == "27"
    assert fields({"problem": "P", "answer": 0.5}, 9).id == "9"  # no id field: the row index


def test_field_map_rejects_bad_rows_with_reasons():
    with pytest.raises(KeyError, match=r"missing field 'answer' or 'solution' \(fields present: question\)"):
        FIELDS({"question": "q"}, 0)
    with pytest.raises(TypeError, match="'question' is a int"):
        FIELDS({"question": 5, "answer": "1"}, 0)
    with pytest.raises(TypeError, match="'answer' is a list"):
        FIELDS({"question": "q", "answer": [1, 2]}, 0)
    with pytest.raises(ValueError, match="no \\\\boxed"):
        FIELDS({"question": "q", "solution": "no box here"}, 0)
    with pytest.raises(ConfigError):
        FieldMap(prompt="question")


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".json", ".json-object", ".parquet"])
def test_dataset_source_reads_every_format(tmp_path, suffix):
    if suffix == ".jsonl":
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    elif suffix == ".jsonl.gz":
        path = tmp_path / "d.jsonl.gz"
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    elif suffix == ".json":
        path = tmp_path / "d.json"
        path.write_text(json.dumps(ROWS, indent=2))
    elif suffix == ".json-object":
        path = tmp_path / "d.json"
        path.write_text(json.dumps({"version": 1, "rows": ROWS}))
    else:
        path = tmp_path / "d.parquet"
        columns = {"question": None, "answer": None, "solution": None, "level": None}
        rows = [{**columns, **r, "answer": None if "answer" not in r else str(r["answer"])} for r in ROWS]
        pq.write_table(pa.Table.from_pylist(rows), path)
    source = DatasetSource.from_file(path, FIELDS)
    assert [t.answer for t in source] == ["2", "4", "6"]
    assert [t.id for t in source] == ["t/0", "t/1", "t/2"]
    assert source[0].metadata == {"level": 1}
    assert source[2].metadata == {}  # None values are not kept
    assert source.skipped == []


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + '{"question": "x", "answ' + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl line 3: invalid JSON \(truncated line"):
        DatasetSource.from_file(path, FIELDS)
    path.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n")
    with pytest.raises(DataError, match=r"line 2: expected a JSON object, got a list"):
        DatasetSource.from_file(path, FIELDS)
    path.write_bytes(b'{"question": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(DataError, match=r"line 1: not UTF-8"):
        DatasetSource.from_file(path, FIELDS)


def test_converter_errors_name_the_row_and_skip_counts(tmp_path, caplog):
    rows = [*ROWS, {"question": "no answer"}, {"question": ["not", "text"], "answer": "1"}, ROWS[0]]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(DataError, match=r"mixed\.jsonl line 4: missing field 'answer' or 'solution'"):
        DatasetSource.from_file(path, FIELDS)
    with caplog.at_level(logging.WARNING, logger="rlvr.envs.sources"):
        source = DatasetSource.from_file(path, FIELDS, on_bad_row="skip")
    assert [t.id for t in source] == ["t/0", "t/1", "t/2", "t/5"]  # ids keep the rows' indices
    assert [index for index, _ in source.skipped] == [3, 4]
    assert "line 5: field 'question' is a list" in source.skipped[1][1]
    assert "skipped 2 bad row(s)" in caplog.text


def test_duplicate_ids_are_bad_rows(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [{**ROWS[0], "id": "a"}, {**ROWS[1], "id": "a"}])
    fields = FieldMap(prompt="question", answer="answer", id="id")
    with pytest.raises(DataError, match=r"line 2: duplicate task id 'a' \(first at dup\.jsonl line 1\)"):
        DatasetSource.from_file(path, fields)
    assert len(DatasetSource.from_file(path, fields, on_bad_row="skip")) == 1


def test_plain_converters_get_missing_field_messages(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "x"}])

    def convert(row, index):
        return Task(id=str(index), prompt=row["q"], answer=row["gold"])

    with pytest.raises(DataError, match=r"line 1: missing field 'gold' \(fields present: q\)"):
        DatasetSource.from_file(path, convert)


def test_limit_keeps_the_first_tasks(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [*ROWS, {"broken": True}])
    source = DatasetSource.from_file(path, FIELDS, limit=2)
    assert [t.answer for t in source] == ["2", "4"]  # the bad 4th row is never read
    with pytest.raises(ConfigError):
        DatasetSource.from_file(path, FIELDS, limit=0)


def test_file_level_errors(tmp_path):
    with pytest.raises(DataError, match=r"missing\.jsonl does not exist"):
        DatasetSource.from_file(tmp_path / "missing.jsonl", FIELDS)
    with pytest.raises(DataError, match="unknown file type"):
        DatasetSource.from_file(tmp_path / "rows.csv", FIELDS)
    (tmp_path / "two.json").write_text(json.dumps({"a": [], "b": []}))
    with pytest.raises(DataError, match="exactly one list"):
        DatasetSource.from_file(tmp_path / "two.json", FIELDS)
    (tmp_path / "bad.json").write_text('[{"question": "x",\n "answer": }]')
    with pytest.raises(DataError, match=r"bad\.json line 2: invalid JSON"):
        DatasetSource.from_file(tmp_path / "bad.json", FIELDS)
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"question": "x", "answer": "1"}\n' * 50)[:40])
    with pytest.raises(DataError, match="not a readable gzip file"):
        DatasetSource.from_file(tmp_path / "cut.jsonl.gz", FIELDS)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        DatasetSource.from_file(tmp_path / "junk.parquet", FIELDS)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no tasks"):
        DatasetSource.from_file(tmp_path / "empty.jsonl", FIELDS)
    with pytest.raises(ConfigError, match="on_bad_row"):
        DatasetSource.from_file(write_jsonl(tmp_path / "ok.jsonl", ROWS), FIELDS, on_bad_row="ignore")


def test_read_rows_locations(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    assert [raw.location for raw in read_rows(path)] == ["d.jsonl line 1", "d.jsonl line 2", "d.jsonl line 3"]
