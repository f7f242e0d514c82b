"""The dataset catalog on the real benchmark files, on corrupted copies, and through `datasets.load_dataset`."""

from __future__ import annotations

import base64
import json
import os
import pickle
import re
import warnings
import zlib

import envdata
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlvr.envs import catalog
from rlvr.envs.catalog import CATALOG, DATA_DIR_ENV, decode_private_tests, get_spec, load_tasks
from rlvr.errors import ConfigError, DataError
from rlvr.verifiers.code_tests import CodeTests
from rlvr.verifiers.math_verifier import default_verifier

COUNTS = [
    ("gsm8k", "math/gsm8k_test.jsonl", 1319),
    ("gsm8k", "math/gsm8k_train.jsonl", 7473),
    ("math500", "math/math500.jsonl", 500),
    ("aime24", "math/aime24.jsonl", 30),
    ("aime25", "math/aime25.jsonl", 30),
    ("amc23", "math/amc23.jsonl", 40),
    ("minerva", "math/minerva_math.jsonl", 272),
    ("olympiadbench", "math/olympiadbench.jsonl", 675),
    ("humaneval", "code/humaneval.jsonl", 164),
    ("humaneval", "code/HumanEval.jsonl.gz", 164),
    ("mbpp", "code/mbpp.jsonl", 427),
    ("mbpp", "code/mbpp_sanitized.json", 427),
    ("lcb", "code/lcb_style.jsonl", 400),
]
MATH_SETS = ["gsm8k", "math500", "aime24", "aime25", "amc23", "minerva", "olympiadbench"]


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    catalog.clear_cache()
    yield
    catalog.clear_cache()


def local(name: str, split: str | None = None):
    spec = get_spec(name)
    return load_tasks(name, path=envdata.shared_file(spec.local_files[split or spec.split]))


@pytest.mark.parametrize(("name", "relative", "count"), COUNTS, ids=[c[1] for c in COUNTS])
def test_real_files_load_with_their_counts(name, relative, count):
    source = load_tasks(name, path=envdata.shared_file(relative))
    assert len(source) == count
    assert source.skipped == []
    assert len({task.id for task in source}) == count
    kind = get_spec(name).kind
    for task in source:
        assert task.prompt.strip()
        assert isinstance(task.answer, str if kind == "math" else CodeTests)


def test_specs_are_pinned_to_commits():
    assert set(CATALOG) == {
        "gsm8k", "math", "math500", "aime24", "aime25", "amc23", "minerva", "olympiadbench", "humaneval", "mbpp",
        "lcb",
    }  # fmt: skip
    for spec in CATALOG.values():
        assert spec.pinned and re.fullmatch(r"[0-9a-f]{40}", spec.revision), spec.name
        assert spec.kind in ("math", "code")
        assert spec.split in spec.local_files or not spec.local_files, spec.name
        assert spec.test_split in spec.local_files or not spec.local_files, spec.name
        assert spec.benchmark, spec.name


def test_gsm8k_golds_are_numbers():
    for split in ("test", "train"):
        for task in local("gsm8k", split):
            assert re.fullmatch(r"-?\d+(\.\d+)?", task.answer), (task.id, task.answer)
    assert local("gsm8k", "test")[0].answer == "18"
    assert local("gsm8k")[0].answer == "72"  # the default split is train: Natalia's clips


def test_math_golds_verify_against_their_boxed_form():
    golds = [task.answer for name in MATH_SETS[1:] for task in local(name)]
    verdicts = default_verifier().verify_batch(
        golds, [f"So the answer is $\\boxed{{{gold}}}$." for gold in golds]
    )
    wrong = [(gold, v.reason) for gold, v in zip(golds, verdicts, strict=True) if not v.correct]
    assert wrong == []


def test_math_mappings_read_answers_and_metadata():
    math500 = local("math500")[0]
    assert math500.id == "math500/test/precalculus/807.json"
    assert math500.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert math500.metadata["subject"] == "Precalculus" and math500.metadata["level"] == 2
    assert "solution" in math500.metadata
    assert local("amc23")[0].answer == "27"  # stored as the float 27.0
    assert local("aime24")[0].id == "aime24/60"
    minerva = local("minerva")[0]  # the local copy has no answer field: last \boxed{} of the solution
    assert minerva.answer == "1.6" and minerva.metadata["type"].startswith("Introduction to Astronomy")
    olympiad = {task.id: task for task in local("olympiadbench")}
    assert olympiad["olympiadbench/1606"].answer == "2"
    assert "69,84" in {task.answer for task in olympiad.values()}  # "$69$,$84$" without its delimiters


def test_hub_schemas_map_like_local_ones():
    """Rows shaped like the hub copies, where they differ from the local files."""
    aime24 = get_spec("aime24").to_task(
        {"id": 60, "problem": "P", "solution": "...", "answer": "204", "url": "u", "year": "2024"}, 0
    )
    assert (aime24.id, aime24.prompt, aime24.answer) == ("aime24/60", "P", "204")
    minerva = get_spec("minerva").to_task({"question": "Q", "answer": "1.6"}, 3)
    assert (minerva.id, minerva.prompt, minerva.answer) == ("minerva/3", "Q", "1.6")
    amc = get_spec("amc23").to_task({"id": 0, "question": "Q", "answer": 27.0, "url": "u"}, 0)
    assert (amc.prompt, amc.answer) == ("Q", "27")
    math = get_spec("math").to_task(
        {"problem": "P", "solution": "so $\\boxed{\\frac{1}{2}}$.", "type": "Algebra"}, 4
    )
    assert (math.id, math.answer, math.metadata["type"]) == ("math/4", "\\frac{1}{2}", "Algebra")
    olympiad = get_spec("olympiadbench").to_task(
        {
            "id": 1,
            "question": "Q",
            "context": "C",
            "final_answer": ["$x=1$", "$x=2$"],
            "modality": "Text-only",
        },
        0,
    )
    assert (olympiad.prompt, olympiad.answer) == ("C\n\nQ", "x=1, x=2")
    mbpp_full = get_spec("mbpp").to_task(
        {
            "task_id": 1,
            "text": "T",
            "code": "c",
            "test_list": ["assert f(1)"],
            "test_setup_code": "import math",
        },
        0,
    )
    assert mbpp_full.answer.setup == "import math" and mbpp_full.prompt.startswith("T\n")


def test_code_tasks():
    humaneval = local("humaneval")
    gz = load_tasks("humaneval", path=envdata.shared_file("code/HumanEval.jsonl.gz"))
    assert [t.prompt for t in humaneval] == [t.prompt for t in gz]
    first = humaneval[0]
    assert first.id == "HumanEval/0" and first.prompt.startswith("from typing import List")
    assert first.answer.kind == "assert" and first.answer.entry_points == ("has_close_elements",)
    for task in humaneval:  # the canonical program is a whole, valid module
        _compiles(task.metadata["canonical_solution"] + "\n" + task.answer.setup, task.id)

    mbpp = local("mbpp")
    assert [t.id for t in mbpp] == [
        t.id for t in load_tasks("mbpp", path=envdata.shared_file("code/mbpp_sanitized.json"))
    ]
    assert mbpp[0].id == "mbpp/2" and mbpp[0].prompt.endswith(mbpp[0].answer.cases[0].input)
    for task in mbpp:
        _compiles(task.metadata["canonical_solution"], task.id)
        assert len(task.answer.cases) >= 1

    lcb = local("lcb")
    kinds = [task.answer.kind for task in lcb]
    assert (kinds.count("stdin"), kinds.count("functional")) == (219, 181)
    assert sum(len(task.answer) for task in lcb) == 604 + 439
    functional = next(task for task in lcb if task.answer.kind == "functional")
    assert functional.answer.fn_name and functional.answer.starter_code.strip() in functional.prompt
    assert {"platform", "difficulty", "question_title"} <= set(lcb[0].metadata)


def _compiles(source: str, name: str) -> None:
    with warnings.catch_warnings():  # old escapes such as "\w" in a few MBPP solutions
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        compile(source, name, "exec")


def _packed(value) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(value))).decode()


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_lcb_private_tests_are_decoded_without_running_code(tmp_path):
    private = [{"input": "3\n", "output": "9\n", "testtype": "stdin"}]
    assert decode_private_tests(_packed(json.dumps(private))) == private
    assert decode_private_tests(json.dumps(private)) == private
    marker = tmp_path / "pwned"
    with pytest.raises(ValueError, match="refusing to load"):
        decode_private_tests(_packed(_Exploit(str(marker))))
    assert not marker.exists()
    with pytest.raises(ValueError, match="unpickled to a list"):
        decode_private_tests(_packed(["not", "a", "str"]))
    with pytest.raises(ValueError, match="not readable"):
        decode_private_tests("bm90IHpsaWI=")

    row = json.loads(envdata.shared_file("code/lcb_style.jsonl").read_text().splitlines()[0])
    task = get_spec("lcb").to_task({**row, "private_test_cases": _packed(json.dumps(private))}, 0)
    assert [case.input for case in task.answer.cases][-1] == "3\n"
    assert len(task.answer) == len(CodeTests.from_lcb(row)) + 1


@pytest.mark.parametrize(
    ("line", "damage", "message"),
    [
        ("truncate", lambda text: text[: len(text) // 2], "invalid JSON"),
        ("invalid", lambda text: text.replace('"answer":', '"answer"'), "invalid JSON"),
        (
            "missing",
            lambda text: json.dumps({"question": json.loads(text)["question"]}),
            "missing field 'answer'",
        ),
        ("wrong type", lambda text: json.dumps({**json.loads(text), "question": 17}), "'question' is a int"),
        ("no final", lambda text: json.dumps({**json.loads(text), "answer": "no marker"}), "no '#### "),
    ],
)
def test_corrupted_copy_names_the_row(tmp_path, line, damage, message):
    lines = envdata.shared_file("math/gsm8k_test.jsonl").read_text().splitlines()
    lines[16] = damage(lines[16])
    copy = tmp_path / "gsm8k_test.jsonl"
    copy.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"gsm8k_test\.jsonl line 17: .*{re.escape(message)}"):
        load_tasks("gsm8k", path=copy)
    skipping = load_tasks("gsm8k", path=copy, on_bad_row="skip")
    assert len(skipping) == 1318
    assert [index for index, _ in skipping.skipped] == [16]
    assert "gsm8k/16" not in {task.id for task in skipping}


def test_missing_files_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(
        DataError, match=r"nowhere\.jsonl does not exist; pass the path of a local copy of gsm8k"
    ):
        load_tasks("gsm8k", path=tmp_path / "nowhere.jsonl")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(DataError, match=rf"math/aime24\.jsonl does not exist; .*{DATA_DIR_ENV}"):
        load_tasks("aime24")
    with pytest.raises(ConfigError, match="did you mean gsm8k"):
        load_tasks("gsm8")
    with pytest.raises(ConfigError, match="no hub split"):
        load_tasks("lcb", split="validation", data_dir=tmp_path)


def test_data_dir_and_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(envdata.shared_file("MANIFEST.md").parent))
    aime = load_tasks("aime24")
    assert len(aime) == 30 and load_tasks("aime24") is aime  # one copy per process
    assert len(load_tasks("gsm8k", split="train", limit=5)) == 5

    copy = tmp_path / "amc.jsonl"
    copy.write_bytes(envdata.shared_file("math/amc23.jsonl").read_bytes())
    first = load_tasks("amc23", path=copy)
    copy.write_text("\n".join(copy.read_text().splitlines()[:3]) + "\n")
    assert len(load_tasks("amc23", path=copy)) == 3 and len(first) == 40  # a changed file is read again


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """No network: `datasets` reads folders laid out like hub repositories, caching under tmp_path."""
    for name, value in {
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "hf-cache"


def test_hub_loader_runs_datasets_on_a_local_repository(tmp_path, offline_hub):
    rows = [
        json.loads(line) for line in envdata.shared_file("math/math500.jsonl").read_text().splitlines()[:20]
    ]
    repo = tmp_path / "MATH-500"
    (repo / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), repo / "data" / "test-00000-of-00001.parquet")
    source = load_tasks("math500", hub_id=str(repo), cache_dir=offline_hub)
    assert len(source) == 20
    assert [(t.id, t.answer, t.metadata["level"]) for t in source] == [
        (t.id, t.answer, t.metadata["level"]) for t in local("math500")[:20]
    ]
    with pytest.raises(DataError, match=r"could not load .* from the Hugging Face hub"):
        load_tasks("math500", hub_id=str(repo), split="train", cache_dir=offline_hub)


def test_hub_loader_reads_script_repositories_through_their_files(tmp_path, offline_hub):
    """LiveCodeBench ships a loading script, which `datasets` no longer runs: its JSON-lines file is read."""
    lines = envdata.shared_file("code/lcb_style.jsonl").read_text().splitlines()[:5]
    private = [{"input": "1\n", "output": "1\n", "testtype": "stdin"}]
    repo = tmp_path / "code_generation_lite"
    repo.mkdir()
    (repo / "code_generation_lite.py").write_text("raise SystemExit('a loading script must not run')\n")
    rows = [{**json.loads(line), "private_test_cases": _packed(json.dumps(private))} for line in lines]
    (repo / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    source = load_tasks("lcb", hub_id=str(repo), cache_dir=offline_hub)
    assert [t.id for t in source] == [t.id for t in local("lcb")[:5]]
    stdin = [t for t in source if t.answer.kind == "stdin"]
    assert stdin and all(t.answer.cases[-1].input == "1\n" for t in stdin)
