"""The suite registry: built-in suites load the real files with the right counts; users add suites; env ids."""

from __future__ import annotations

import envdata
import pytest

from rlvr.benchmarks import BenchmarkSuite, get_suite, register_suite, suite_names
from rlvr.benchmarks.evaluator import env_overrides, settings_for
from rlvr.benchmarks.suites import BUILTIN_SUITES, DEFAULT_ENV_LIMIT, MATH_TEMPLATE
from rlvr.envs import make
from rlvr.errors import ConfigError

EXPECTED_COUNTS = {
    "aime24": 30,
    "aime25": 30,
    "amc23": 40,
    "math500": 500,
    "gsm8k": 1319,
    "minerva": 272,
    "olympiadbench": 675,
    "humaneval": 164,
    "mbpp": 427,
    "lcb": 400,
}


def test_the_issue_suites_are_registered():
    assert set(EXPECTED_COUNTS) <= set(suite_names())
    assert {suite.name for suite in BUILTIN_SUITES} == set(EXPECTED_COUNTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_suite_loads_its_real_file_with_the_right_count(name):
    suite = get_suite(name)
    path = envdata.shared_file(envdata.DATASET_FILES[suite.dataset])
    settings = settings_for(suite, data_path=str(path))
    env = make(suite.env_id, **env_overrides(suite, settings))
    tasks = env.unwrapped.tasks
    assert len(tasks) == EXPECTED_COUNTS[name]
    messages, _ = env.reset(options={"task_index": 0})
    if suite.prompt_template is not None:
        assert messages[-1]["content"] == suite.prompt_template.replace("{problem}", tasks[0].prompt)
    for field in suite.breakdowns:  # every task can be broken down by the suite's fields
        labels = {tasks[i].metadata.get(field) for i in range(len(tasks))}
        assert None not in labels, f"{name}: some tasks lack metadata {field!r}"
        assert len(labels) > 1
    env.close()


def test_suites_name_the_test_split_not_the_environment_default(monkeypatch):
    """Environments default to the training split; every suite over a dataset evaluates its test split."""
    from rlvr.envs import catalog
    from rlvr.envs.catalog import CATALOG, DATA_DIR_ENV, get_spec

    for suite in BUILTIN_SUITES:
        spec = get_spec(suite.dataset)
        assert suite.split == spec.test_split and spec.benchmark == suite.name, suite.name
        assert env_overrides(suite, settings_for(suite))["split"] == suite.split
    for spec in CATALOG.values():  # the suite each dataset's test split belongs to is registered
        assert get_suite(spec.benchmark).split == spec.test_split
    assert [get_suite(name).split for name in ("gsm8k", "math500", "mbpp", "humaneval", "aime24")] == [
        "test", "test", "test", "test", "train",  # AIME's only hub split is called train
    ]  # fmt: skip
    assert (
        get_suite("rlvr/math-gsm8k-v0").split == "test"
        and get_suite("rlvr/code-mbpp-repair-v0").split == "test"
    )
    assert get_suite("rlvr/arithmetic-v0").split is None
    assert BenchmarkSuite("x", env_id="rlvr/math-gsm8k-v0", dataset="gsm8k").split == "test"
    assert BenchmarkSuite(
        "x", env_id="rlvr/math-gsm8k-v0", dataset="gsm8k", env_kwargs={"split": "train"}
    ).split == ("train")

    monkeypatch.setenv(DATA_DIR_ENV, str(envdata.shared_file("MANIFEST.md").parent))
    catalog.clear_cache()
    try:
        for name, train, test in (("gsm8k", 7473, 1319), ("mbpp", 120, 257)):
            suite = get_suite(name)
            assert len(make(suite.env_id).unwrapped.tasks) == train
            evaluated = make(suite.env_id, **env_overrides(suite, settings_for(suite)))
            assert len(evaluated.unwrapped.tasks) == test
    finally:
        catalog.clear_cache()


def test_suite_defaults_and_validation():
    aime = get_suite("aime24")
    assert (aime.n, aime.temperature, aime.top_p, aime.k) == (32, 0.6, 0.95, (1, 4, 8, 16, 32))
    assert aime.prompt_template == MATH_TEMPLATE and aime.vote == "math"
    humaneval = get_suite("humaneval")
    assert "maj" not in humaneval.metrics and humaneval.vote is None
    with pytest.raises(ConfigError, match="maj@k needs a vote rule"):
        BenchmarkSuite("x", env_id="rlvr/code-mbpp-v0", vote=None)
    with pytest.raises(ConfigError, match="problem"):
        BenchmarkSuite("x", env_id="rlvr/math-gsm8k-v0", prompt_template="no placeholder")
    with pytest.raises(ConfigError, match="unknown metrics"):
        BenchmarkSuite("x", env_id="rlvr/math-gsm8k-v0", metrics=("pass", "best"))


def test_settings_take_the_suite_defaults_and_the_overrides():
    suite = get_suite("aime24")
    settings = settings_for(suite, n=8, temperature=1.0)
    assert (settings.n, settings.ks, settings.temperature, settings.top_p) == (8, (1, 4, 8), 1.0, 0.95)
    assert settings_for(suite, n=8, ks=[2, 1]).ks == (1, 2)
    with pytest.raises(ConfigError, match="larger than n"):
        settings_for(suite, n=4, ks=[1, 16])
    with pytest.raises(ConfigError, match="top_p"):
        settings_for(suite, top_p=2.0)
    with pytest.raises(ConfigError, match="max_tokens"):
        settings_for(suite, max_tokens=0)


def test_a_user_suite_in_a_few_lines(tmp_path):
    suite = register_suite(
        BenchmarkSuite("test-gsm8k-short", env_id="rlvr/math-gsm8k-v0", dataset="gsm8k", n=8, max_tokens=256)
    )
    try:
        assert get_suite("test-gsm8k-short") is suite
        assert "test-gsm8k-short" in suite_names()
        with pytest.raises(ConfigError, match="already registered"):
            register_suite(BenchmarkSuite("test-gsm8k-short", env_id="rlvr/math-gsm8k-v0"))
        register_suite(BenchmarkSuite("test-gsm8k-short", env_id="rlvr/math-gsm8k-v0", n=2), replace=True)
        assert get_suite("test-gsm8k-short").n == 2
    finally:
        from rlvr.benchmarks import suites

        suites._SUITES.pop("test-gsm8k-short", None)


def test_any_environment_id_is_a_suite():
    arithmetic = get_suite("rlvr/arithmetic-v0")
    assert arithmetic.env_id == "rlvr/arithmetic-v0" and arithmetic.dataset is None
    assert arithmetic.limit == DEFAULT_ENV_LIMIT and arithmetic.vote == "math"
    wordle = get_suite("rlvr/wordle-v0")
    assert wordle.metrics == ("avg", "pass") and wordle.vote is None
    retry = get_suite("rlvr/math-gsm8k-retry-v0")
    assert retry.dataset == "gsm8k" and retry.limit is None


def test_unknown_suite_names_close_ones():
    with pytest.raises(ConfigError, match="did you mean math500"):
        get_suite("math50")


def test_suites_from_a_file_on_the_command_line(tmp_path, capsys):
    from rlvr.benchmarks import suites
    from rlvr.cli import main

    module = tmp_path / "my_suites.py"
    module.write_text(
        "from rlvr.benchmarks import BenchmarkSuite, register_suite\n"
        "register_suite(BenchmarkSuite('test-file-suite', env_id='rlvr/math-gsm8k-v0', dataset='gsm8k', n=8,\n"
        "                              k=(1, 8), description='from a file'))\n",
        encoding="utf-8",
    )
    try:
        assert main(["eval", "--suites-from", str(module), "--list-suites"]) == 0
        assert "test-file-suite" in capsys.readouterr().out
        assert main(["eval", "--suites-from", str(tmp_path / "absent.py"), "--list-suites"]) == 2
        assert "no such file" in capsys.readouterr().err
    finally:
        suites._SUITES.pop("test-file-suite", None)
