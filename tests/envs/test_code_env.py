"""`CodeEnv` and `CodeRepairEnv` on the real HumanEval, MBPP and LiveCodeBench files, in the real sandbox
(`shared_sandbox()`: Docker when an engine answers, else bubblewrap). The tasks are built here from the rows
with `CodeTests.from_*`, so these tests do not depend on `rlvr.envs.catalog`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import envdata
import pytest
from gymnasium.utils.env_checker import check_env

from rlvr.envs.code_env import CodeEnv, CodeRepairEnv, load_references, python_block
from rlvr.envs.resources import shared_sandbox
from rlvr.envs.types import Task
from rlvr.errors import ConfigError, DataError
from rlvr.verifiers.code_tests import CodeTests

QWEN_SOLUTIONS = "code/lcb_solutions_qwen3-coder-plus_mavencoder.jsonl"
LCB_STDIN, LCB_FUNCTIONAL = (
    "1873_A",
    "2727",
)  # the first stdin row and the first LeetCode row of lcb_style.jsonl


@cache
def rows(name: str) -> tuple[dict[str, Any], ...]:
    with envdata.shared_file(f"code/{name}").open(encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle if line.strip())


def humaneval_tasks(count: int) -> list[Task]:
    return [
        Task(
            row["task_id"],
            row["prompt"],
            CodeTests.from_humaneval(row),
            {"canonical_solution": row["canonical_solution"]},
        )
        for row in rows("humaneval.jsonl")[:count]
    ]


def mbpp_tasks(count: int) -> list[Task]:
    return [
        Task(
            f"mbpp/{row['task_id']}",
            row["prompt"],
            CodeTests.from_mbpp(row),
            {"canonical_solution": row["code"]},
        )
        for row in rows("mbpp.jsonl")[:count]
    ]


def lcb_task(question_id: str) -> Task:
    row = next(row for row in rows("lcb_style.jsonl") if row["question_id"] == question_id)
    # The id differs from the row's question_id on purpose: references are found by the tests' task_id too.
    return Task(f"lcb/{question_id}", row["question_content"], CodeTests.from_lcb(row))


@cache
def qwen_references() -> dict[str, str]:
    return load_references(envdata.shared_file(QWEN_SOLUTIONS))


def first_task(kind: str) -> Task:
    return {"humaneval": lambda: humaneval_tasks(1)[0], "stdin": lambda: lcb_task(LCB_STDIN)}.get(
        kind, lambda: lcb_task(LCB_FUNCTIONAL)
    )()


@pytest.fixture(scope="module")
def sandbox() -> Any:
    return shared_sandbox()


def play(env: Any, actions: list[str], **options: Any) -> list[tuple[Any, ...]]:
    env.reset(seed=0, options={"task_index": 0, **options})
    return [env.step(action) for action in actions]


# -- the Gymnasium contract --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["humaneval", "stdin", "functional"])
@pytest.mark.parametrize("env_class", [CodeEnv, CodeRepairEnv])
def test_check_env_passes(env_class: type, kind: str, sandbox: Any) -> None:
    env = env_class(tasks=[first_task(kind)], references=qwen_references())
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert info["task_id"] == env.task.id and obs[-1]["role"] == "user"
    _, reward, terminated, truncated, info = env.step(env.wrong_action())
    assert reward == 0.0 and not truncated and terminated == (env_class is CodeEnv)
    assert info["rewards"] == {"correct": 0.0} and info["solved"] is False
    assert "wall_s" not in info["verdict"].details and all(t.time_s is None for t in info["verdict"].tests)


def test_prompts_say_what_to_write() -> None:
    humaneval = CodeEnv(tasks=humaneval_tasks(1)).format_prompt(humaneval_tasks(1)[0])
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in humaneval
    assert "```python\nfrom typing import List" in humaneval and "single ```python code block" in humaneval
    stdin = CodeEnv(tasks=[lcb_task(LCB_STDIN)]).format_prompt(lcb_task(LCB_STDIN))
    assert stdin.startswith("There are three cards") and "standard input" in stdin
    functional = CodeEnv(tasks=[lcb_task(LCB_FUNCTIONAL)]).format_prompt(lcb_task(LCB_FUNCTIONAL))
    assert "class Solution:\n    def countSeniors(self, details: List[str]) -> int:" in functional
    mbpp = mbpp_tasks(1)[0]
    text = CodeEnv(tasks=[mbpp]).format_prompt(mbpp)
    assert all(case.input in text for case in mbpp.answer.cases) and text.startswith(mbpp.prompt)


# -- rewards -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["humaneval", "mbpp"])
def test_canonical_solutions_earn_one_and_the_wrong_action_zero(source: str, sandbox: Any) -> None:
    tasks = humaneval_tasks(5) if source == "humaneval" else mbpp_tasks(5)
    env = CodeEnv(tasks=tasks)
    for index, task in enumerate(tasks):
        env.reset(options={"task_index": index})
        reference = env.reference_action()
        assert reference.startswith("```python\n") and reference.endswith("\n```")
        _, reward, terminated, _, info = env.step(reference)
        assert (reward, terminated, info["solved"]) == (1.0, True, True), (task.id, info["verdict"])
        assert info["tests_passed"] == info["tests_total"] == len(task.answer.cases)
        env.reset(options={"task_index": index})
        _, reward, _, _, info = env.step(env.wrong_action())
        # The program runs: its None fails an assert (wrong_answer) or breaks the test's arithmetic (runtime_error).
        assert reward == 0.0 and info["tests_passed"] == 0, task.id
        assert info["verdict"].reason in ("wrong_answer", "runtime_error"), info["verdict"]


def test_humaneval_reference_is_the_full_function() -> None:
    env = CodeEnv(tasks=humaneval_tasks(1))
    env.reset(options={"task_index": 0})
    row = rows("humaneval.jsonl")[0]
    assert env.reference_action() == python_block(row["prompt"] + row["canonical_solution"])


@pytest.mark.parametrize("question_id", [LCB_STDIN, LCB_FUNCTIONAL])
def test_lcb_reference_from_the_qwen_file_earns_one(question_id: str, sandbox: Any) -> None:
    assert question_id in qwen_references()
    env = CodeEnv(tasks=[lcb_task(question_id)], references=envdata.shared_file(QWEN_SOLUTIONS))
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.reference_action())
    assert reward == 1.0 and info["solved"], info["verdict"]
    env.reset(options={"task_index": 0})
    assert env.step(env.wrong_action())[1] == 0.0


def test_lcb_without_a_reference_says_how_to_give_one() -> None:
    env = CodeEnv(tasks=[lcb_task(LCB_STDIN)])
    env.reset(seed=0)
    with pytest.raises(NotImplementedError, match="references="):
        env.reference_action()


def test_reference_file_skips_rows_that_fail_their_public_tests() -> None:
    solutions = rows(QWEN_SOLUTIONS.removeprefix("code/"))
    references = qwen_references()
    assert set(references) == {row["task_id"] for row in solutions if row["passing_public_tests"]}
    assert len(references) == 387  # MANIFEST.md: 387 True / 13 False


def test_fraction_mode_scores_a_partly_right_program(sandbox: Any) -> None:
    # countSeniors has two public tests, expecting 2 and 0: a constant 2 passes the first only.
    program = python_block("class Solution:\n    def countSeniors(self, details):\n        return 2\n")
    fraction = CodeEnv(tasks=[lcb_task(LCB_FUNCTIONAL)], score="fraction")
    ((_, reward, _, _, info),) = play(fraction, [program])
    assert 0.0 < reward < 1.0 and reward == 0.5
    assert (info["tests_passed"], info["tests_total"], info["solved"]) == (1, 2, False)
    ((_, reward, _, _, _),) = play(CodeEnv(tasks=[lcb_task(LCB_FUNCTIONAL)]), [program])
    assert reward == 0.0


def test_hostile_programs_earn_nothing_and_the_env_keeps_working(sandbox: Any, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("still here", encoding="utf-8")
    env = CodeEnv(tasks=humaneval_tasks(1), test_timeout_s=1.0, total_timeout_s=3.0)
    loop = python_block("def has_close_elements(numbers, threshold):\n    while True:\n        pass\n")
    wipe = python_block(
        f"import os, shutil\nos.system('rm -rf {canary}')\nshutil.rmtree({str(canary)!r}, ignore_errors=True)\n"
        "def has_close_elements(numbers, threshold):\n    return os.system('rm -rf /') == 0\n"
    )
    for program, reason in ((loop, "timeout"), (wipe, "wrong_answer")):
        env.reset(options={"task_index": 0})
        _, reward, terminated, _, info = env.step(program)
        assert reward == 0.0 and terminated and not info["solved"]
        assert info["verdict"].reason == reason, info["verdict"]
    assert (canary / "keep.txt").read_text(encoding="utf-8") == "still here"
    env.reset(options={"task_index": 0})
    assert env.step(env.reference_action())[1] == 1.0


# -- the repair environment --------------------------------------------------------------------------------------


def test_repair_wrong_then_right_terminates_on_turn_two(sandbox: Any) -> None:
    env = CodeRepairEnv(tasks=[lcb_task(LCB_STDIN)], references=qwen_references())
    env.reset(seed=0)
    wrong, right = env.wrong_action(), env.reference_action()
    (reply, r1, term1, trunc1, info1), (last, r2, term2, trunc2, info2) = play(env, [wrong, right])
    assert [r1, r2] == [0.0, 1.0] and [info1["turn"], info2["turn"]] == [1, 2]
    assert (term1, trunc1, term2, trunc2) == (False, False, True, False)
    assert info1["rewards"] == {"correct": 0.0} and info2["solved"] and not info1["solved"]
    assert last == [] and len(reply) == 1 and reply[0]["role"] == "user"
    text = reply[0]["content"]
    assert "Test 1 failed: wrong answer" in text
    assert "Input:\n6\nabc\nacb\nbac" in text and "Expected:\nYES\nYES\nYES\nNO" in text
    assert "Got:\nrlvr: not an answer" in text and "complete corrected program" in text
    assert env.conversation[-2]["content"] == text  # the reply entered the conversation before turn 2


def test_repair_feedback_names_the_failing_value(sandbox: Any) -> None:
    env = CodeRepairEnv(tasks=humaneval_tasks(1))
    ((reply, *_),) = play(
        env, [python_block("def has_close_elements(numbers, threshold):\n    return False\n")]
    )
    assert "Expected:\nTrue" in reply[0]["content"] and "Got:\nFalse" in reply[0]["content"]
    ((reply, *_),) = play(env, ["no code here, sorry"])
    assert "could not be run: no code found" in reply[0]["content"]


def test_repair_all_wrong_is_truncated_at_max_turns(sandbox: Any) -> None:
    env = CodeRepairEnv(tasks=humaneval_tasks(1), max_turns=3)
    env.reset(seed=0)
    wrong = env.wrong_action()
    steps = play(env, [wrong] * 3)
    assert [step[1] for step in steps] == [0.0, 0.0, 0.0]
    assert [(step[2], step[3]) for step in steps] == [(False, False), (False, False), (False, True)]
    assert steps[-1][0] == [] and len(env.conversation) == 1 + 3 + 2  # the prompt, 3 answers, 2 replies
    with pytest.raises(Exception, match="reset"):
        env.step(wrong)


def test_repair_fraction_mode_runs_every_test(sandbox: Any) -> None:
    program = python_block("class Solution:\n    def countSeniors(self, details):\n        return 2\n")
    env = CodeRepairEnv(tasks=[lcb_task(LCB_FUNCTIONAL)], score="fraction")
    assert env.grader.config.stop_at_first_failure is False
    assert CodeRepairEnv(tasks=[lcb_task(LCB_FUNCTIONAL)]).grader.config.stop_at_first_failure is True
    ((reply, reward, *_),) = play(env, [program])
    assert reward == 0.5 and "Test 2 failed" in reply[0]["content"] and "Expected:\n0" in reply[0]["content"]


# -- configuration -----------------------------------------------------------------------------------------------


def test_bad_configuration_says_how_to_fix() -> None:
    tasks = humaneval_tasks(1)
    with pytest.raises(ConfigError, match="fields of CodeConfig"):
        CodeEnv(tasks=tasks, test_timeout=2)
    with pytest.raises(ConfigError, match="'all' or 'fraction'"):
        CodeRepairEnv(tasks=tasks, score="most")
    with pytest.raises(ConfigError, match="tasks="):
        CodeEnv()
    with pytest.raises(ConfigError, match="not both"):
        CodeEnv(tasks=tasks, dataset="humaneval")
    env = CodeEnv(tasks=tasks, extract={"block": "first"}, result_types=[])
    assert env.grader.config.extract.block == "first" and env.grader.config.result_types == ()
    with pytest.raises(DataError, match="CodeTests"):
        CodeEnv(tasks=[Task("t", "2+2?", "4")]).reset(seed=0)


@pytest.mark.parametrize(
    ("dataset", "file", "references"),
    [
        ("humaneval", "humaneval.jsonl", None),
        ("mbpp", "mbpp.jsonl", None),
        ("lcb", "lcb_style.jsonl", QWEN_SOLUTIONS),
    ],
)
@pytest.mark.parametrize("kind", ["", "-repair"])
def test_registered_code_envs_pass_the_reference_check(
    dataset: str, file: str, references: str | None, kind: str, sandbox: Any
) -> None:
    pytest.importorskip("rlvr.envs.catalog", reason="envs/catalog.py is not written yet")
    from rlvr.envs.check import check_environment

    options: dict[str, Any] = {"data_path": str(envdata.shared_file(f"code/{file}")), "limit": 3}
    if references:
        options["references"] = str(envdata.shared_file(references))
    report = check_environment(f"rlvr/code-{dataset}{kind}-v0", num_tasks=3, **options)
    assert report.ok, report
