"""Train and test stay apart: environments default to the training split, suites evaluate on test, training on a
benchmark's split warns, `rlvr envs show` prints the split and its row count. On the real files in shared/data."""

from __future__ import annotations

import json

import envdata
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlvr.envs import catalog, make
from rlvr.envs.catalog import CATALOG, DATA_DIR_ENV, MBPP_TASK_IDS, get_spec, load_tasks
from rlvr.envs.math500_problems import MATH500_FINGERPRINTS, problem_fingerprint
from rlvr.envs.splits import benchmark_overlap, env_split, warn_benchmark_overlap
from rlvr.envs.suite import SuiteEntry
from rlvr.errors import DataError

# dataset -> (default split: training reads it, test split: benchmark suite of the same row evaluates on it)
SPLITS = {
    "gsm8k": ("train", "test", "gsm8k"),
    "math": ("train", "test", "math500"),
    "mbpp": ("train", "test", "mbpp"),
    "math500": ("test", "test", "math500"),
    "amc23": ("test", "test", "amc23"),
    "minerva": ("test", "test", "minerva"),
    "humaneval": ("test", "test", "humaneval"),
    "lcb": ("test", "test", "lcb"),
    "aime24": ("train", "train", "aime24"),  # the hub's only split is called train
    "aime25": ("train", "train", "aime25"),
    "olympiadbench": ("train", "train", "olympiadbench"),
}


@pytest.fixture
def data_dir(monkeypatch):
    """`$RLVR_DATA_DIR` = shared/data, and no network: a split without a local file fails fast."""
    monkeypatch.setenv(DATA_DIR_ENV, str(envdata.shared_file("MANIFEST.md").parent))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    catalog.clear_cache()
    yield
    catalog.clear_cache()


@pytest.fixture
def no_data_dir(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    catalog.clear_cache()
    yield
    catalog.clear_cache()


def test_every_dataset_defaults_to_its_training_split():
    assert set(SPLITS) == set(CATALOG)
    for name, (split, test_split, suite) in SPLITS.items():
        spec = get_spec(name)
        assert (spec.split, spec.test_split, spec.benchmark) == (split, test_split, suite), name


def test_gsm8k_environments_read_train_and_suites_read_test(data_dir):
    env = make("rlvr/math-gsm8k-v0")
    assert len(env.unwrapped.tasks) == 7473
    assert env.unwrapped.tasks[0].answer == "72"  # train line 1 (Natalia's clips), not test's "18"
    assert len(make("rlvr/math-gsm8k-v0", split="test").unwrapped.tasks) == 1319
    assert len(make("rlvr/tools-gsm8k-v0").unwrapped.tasks) == 7473
    train_questions = {task.prompt for task in load_tasks("gsm8k")}
    test_questions = {task.prompt for task in load_tasks("gsm8k", split="test")}
    assert len(train_questions) == 7473 and len(test_questions) == 1319
    assert not train_questions & test_questions


def test_mbpp_splits_by_task_id_from_the_data_dir(data_dir):
    counts = {"train": 120, "test": 257, "validation": 43, "prompt": 7}  # the hub's sanitized splits
    ids = {split: {task.id for task in load_tasks("mbpp", split=split)} for split in MBPP_TASK_IDS}
    assert {split: len(found) for split, found in ids.items()} == counts
    assert set.union(*ids.values()) == {
        task.id for task in load_tasks("mbpp", path=envdata.shared_file("code/mbpp.jsonl"))
    }
    assert sum(map(len, ids.values())) == 427  # disjoint
    assert min(int(task_id.split("/")[1]) for task_id in ids["train"]) >= 601
    env = make("rlvr/code-mbpp-v0")
    assert {task.id for task in env.unwrapped.tasks} == ids["train"]
    assert load_tasks("mbpp").excluded == 427 - 120


def test_math500_fingerprints_match_the_real_file():
    rows = _rows("math/math500.jsonl")
    assert {problem_fingerprint(row["problem"]) for row in rows} == MATH500_FINGERPRINTS
    assert len(MATH500_FINGERPRINTS) == 500
    text = rows[0]["problem"]
    assert problem_fingerprint(f"  {text.replace(' ', '   ')}\n") == problem_fingerprint(text)
    assert problem_fingerprint(text + " x") != problem_fingerprint(text)


def test_math_train_leaves_out_exactly_the_math500_problems(tmp_path, monkeypatch, no_data_dir):
    """A local copy of the MATH-lighteval repository whose train split holds the 100 MATH problems of the
    Qwen2.5-Math sample file (5 of them are MATH-500 problems), one of those with its whitespace changed, and 3
    MATH-500 rows: the train split keeps the other 95, the test split keeps all 103."""
    for name, value in {
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }.items():
        monkeypatch.setenv(name, value)
    math500 = _rows("math/math500.jsonl")
    math500_problems = {row["problem"] for row in math500}
    rows = [
        {"problem": r["question"], "solution": r["solution"], "level": r["level"], "type": "?"}
        for r in _rows("math/qwen25math_math_cot_100_samples.jsonl")
    ]
    overlapping = [i for i, row in enumerate(rows) if row["problem"] in math500_problems]
    assert len(overlapping) == 5
    rows[overlapping[0]]["problem"] = rows[overlapping[0]]["problem"].replace(" ", "  ") + "\n"
    rows += [
        {
            "problem": r["problem"],
            "solution": r["solution"],
            "level": f"Level {r['level']}",
            "type": r["subject"],
        }
        for r in math500[:3]
    ]
    repo = tmp_path / "MATH-lighteval"
    (repo / "data").mkdir(parents=True)
    for split in ("train", "test"):
        pq.write_table(pa.Table.from_pylist(rows), repo / "data" / f"{split}-00000-of-00001.parquet")

    train = load_tasks("math", hub_id=str(repo), cache_dir=tmp_path / "cache")
    assert len(train) == 95 and train.excluded == 8
    assert not {task.prompt for task in train} & math500_problems
    kept = {" ".join(task.prompt.split()) for task in train}
    assert kept == {
        " ".join(row["problem"].split()) for i, row in enumerate(rows[:100]) if i not in overlapping
    }
    test = load_tasks("math", split="test", hub_id=str(repo), cache_dir=tmp_path / "cache")
    assert len(test) == 103 and test.excluded == 0
    # an explicit path is read as it is, whatever the split
    assert len(load_tasks("math", path=envdata.shared_file("math/math500.jsonl"))) == 500


def test_a_split_with_nothing_left_says_so(tmp_path, monkeypatch, no_data_dir):
    for name, value in {
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }.items():
        monkeypatch.setenv(name, value)
    repo = tmp_path / "MATH-lighteval"
    (repo / "data").mkdir(parents=True)
    rows = [{"problem": r["problem"], "solution": r["solution"]} for r in _rows("math/math500.jsonl")[:4]]
    pq.write_table(pa.Table.from_pylist(rows), repo / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(DataError, match=r"no tasks in the data \(4 tasks belong to another split\)"):
        load_tasks("math", hub_id=str(repo), cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    ("env_id", "overrides", "names"),
    [
        ("rlvr/math-gsm8k-v0", {"split": "test"}, ("gsm8k test", "rlvr/math-gsm8k-v0 split=test", "`gsm8k`")),
        ("rlvr/math-gsm8k-retry-v0", {"split": "test"}, ("gsm8k test", "`gsm8k`")),
        ("rlvr/tools-gsm8k-v0", {"split": "test"}, ("gsm8k test", "`gsm8k`")),
        (
            "rlvr/math-gsm8k-v0",
            {"data_path": "/data/math/gsm8k_test.jsonl"},
            ("gsm8k test", "gsm8k_test.jsonl"),
        ),
        ("rlvr/math-math-v0", {"split": "test"}, ("math test", "`math500`")),
        ("rlvr/math-math500-v0", {}, ("math500 test", "`math500`", "no other split")),
        ("rlvr/math-aime24-v0", {}, ("aime24 train", "`aime24`")),
        ("rlvr/code-mbpp-v0", {"split": "test"}, ("mbpp test", "`mbpp`")),
        ("rlvr/code-mbpp-v0", {"data_path": "mbpp.jsonl"}, ("mbpp test", "`mbpp`")),  # all 427, test included
        ("rlvr/code-humaneval-v0", {}, ("humaneval test", "`humaneval`")),
    ],
)
def test_training_on_a_benchmark_split_warns(env_id, overrides, names):
    message = benchmark_overlap(env_id, overrides)
    assert message is not None and message.startswith("rlvr: warning: training on ")
    for name in names:
        assert name in message


@pytest.mark.parametrize(
    ("env_id", "overrides"),
    [
        ("rlvr/math-gsm8k-v0", {}),
        ("rlvr/math-gsm8k-v0", {"split": "train"}),
        ("rlvr/math-gsm8k-retry-v0", {}),
        ("rlvr/tools-gsm8k-v0", {}),
        ("rlvr/math-gsm8k-v0", {"data_path": "/data/math/gsm8k_train.jsonl"}),
        ("rlvr/math-gsm8k-v0", {"data_path": "my_problems.jsonl", "split": "test"}),  # the user's own file
        ("rlvr/math-math-v0", {}),
        ("rlvr/code-mbpp-v0", {}),
        ("rlvr/arithmetic-v0", {"split": "test"}),  # procedural: no benchmark suite
        ("rlvr/guess-number-v0", {}),
        ("rlvr/math-gsm8k-v0", {"tasks": []}),
    ],
)
def test_training_on_a_training_split_does_not_warn(env_id, overrides):
    assert benchmark_overlap(env_id, overrides) is None


def test_the_warning_is_printed_once_per_environment(capsys):
    entries = [
        SuiteEntry("rlvr/math-gsm8k-v0", 1.0, {"split": "test"}),
        SuiteEntry("rlvr/arithmetic-v0", 1.0, {"split": "test"}),
        SuiteEntry("rlvr/math-gsm8k-retry-v0", 1.0, {}),
    ]
    warnings = warn_benchmark_overlap(entries)
    err = capsys.readouterr().err
    assert err.splitlines() == warnings and len(warnings) == 1
    assert "gsm8k test (rlvr/math-gsm8k-v0 split=test)" in err and "benchmark suite `gsm8k`" in err
    assert warn_benchmark_overlap(entries, show=False) == warnings and capsys.readouterr().err == ""
    assert warn_benchmark_overlap(entries[1:]) == [] and capsys.readouterr().err == ""


def test_env_split_reads_the_registered_kwargs_and_overrides():
    assert env_split("rlvr/math-gsm8k-v0").split == "train"
    assert env_split("rlvr/math-gsm8k-v0", {"split": "test"}).split == "test"
    assert env_split("rlvr/code-lcb-repair-v0").split == "test"
    assert env_split("rlvr/arithmetic-v0") is None


def test_envs_show_prints_the_split_and_its_row_count(data_dir, capsys):
    from rlvr.cli import main

    assert main(["envs", "show", "rlvr/math-gsm8k-v0"]) == 0
    assert "split:       train, 7473 rows from " in capsys.readouterr().out
    assert main(["envs", "show", "rlvr/math-gsm8k-v0", "--set", "split=test"]) == 0
    out = capsys.readouterr().out
    assert "split:       test, 1319 rows from " in out and "gsm8k_test.jsonl" in out
    assert main(["envs", "show", "rlvr/code-mbpp-v0"]) == 0
    assert "split:       train, 120 rows" in capsys.readouterr().out
    assert (
        main(
            [
                "envs",
                "show",
                "rlvr/math-gsm8k-v0",
                "--data",
                str(envdata.shared_file("math/gsm8k_test.jsonl")),
            ]
        )
        == 0
    )
    assert "split:       test (by the file's name), 1319 rows" in capsys.readouterr().out
    assert main(["envs", "show", "rlvr/arithmetic-v0"]) == 0
    assert "split:       train, " in capsys.readouterr().out


def test_envs_show_without_the_data_says_the_count_is_unknown(tmp_path, monkeypatch, capsys):
    from rlvr.cli import main

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))  # an empty data directory
    catalog.clear_cache()
    assert main(["envs", "show", "rlvr/math-gsm8k-v0"]) == 0
    out = capsys.readouterr().out
    assert "split:       train, rows unknown" in out and "math/gsm8k_train.jsonl does not exist" in out


def _rows(relative: str) -> list[dict]:
    return [
        json.loads(line) for line in envdata.shared_file(relative).read_text().splitlines() if line.strip()
    ]
