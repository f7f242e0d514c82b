"""Procedural environments: arithmetic, countdown and the 24 game, and the safe expression checker."""

from __future__ import annotations

import itertools
import time

import pytest
from gymnasium.utils.env_checker import check_env

from rlvr.envs.check import play
from rlvr.envs.procedural.arithmetic import LEVELS, ArithmeticEnv, arithmetic_tasks, check_integer
from rlvr.envs.procedural.countdown import CountdownEnv, countdown_tasks, solve
from rlvr.envs.procedural.expression import (
    MAX_CHARS,
    ExpressionError,
    check_countdown,
    extract_expression,
    parse_expression,
)
from rlvr.errors import ConfigError

ENVS = {
    "arithmetic": lambda: ArithmeticEnv(),
    "arithmetic-boxed-level5": lambda: ArithmeticEnv(level=5, answer_format="boxed"),
    "countdown": lambda: CountdownEnv(),
    "countdown-6": lambda: CountdownEnv(num_numbers=6, max_number=100),
    "game24": lambda: CountdownEnv(mode="24"),
}


@pytest.mark.parametrize("name", sorted(ENVS))
def test_check_env(name):
    check_env(ENVS[name](), skip_render_check=True)


@pytest.mark.parametrize("name", sorted(ENVS))
def test_reference_earns_full_reward_and_wrong_does_not(name):
    env = ENVS[name]()
    for index in range(20):
        reference, wrong = play(env, index, "reference"), play(env, index, "wrong")
        assert reference.ok and reference.episode_return == 1.0, reference
        assert wrong.ok and wrong.episode_return == 0.0, wrong


@pytest.mark.parametrize("name", sorted(ENVS))
def test_step_info_names_components_verdict_and_solved(name):
    env = ENVS[name]()
    env.reset(options={"task_index": 3})
    _, reward, terminated, truncated, info = env.step(env.unwrapped.reference_action())
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["rewards"] == {"correct": 1.0} and info["solved"] is True
    assert info["verdict"].correct and info["verdict"].reason == "correct"


# -- determinism and splits ------------------------------------------------------------------------------------

SOURCES = {
    "arithmetic": lambda **kw: arithmetic_tasks(level=4, **kw),
    "countdown": lambda **kw: countdown_tasks(**kw),
    "game24": lambda **kw: countdown_tasks(mode="24", **kw),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_tasks_are_deterministic_by_index_and_differ_by_seed_and_split(name):
    make = SOURCES[name]
    first, again = make(seed=0, size=50), make(seed=0, size=50)
    assert [first[i] for i in range(50)] == [again[i] for i in range(50)]
    assert first[17] == again[17] and first[17] != first[18]
    prompts = [first[i].prompt for i in range(50)]
    assert prompts != [make(seed=1, size=50)[i].prompt for i in range(50)]
    assert prompts != [make(seed=0, size=50, split="test")[i].prompt for i in range(50)]
    assert len({first[i].id for i in range(50)}) == 50


def test_env_reset_seed_picks_the_same_task():
    env = ArithmeticEnv()
    assert env.reset(seed=11)[0] == env.reset(seed=11)[0]
    assert len({env.reset(seed=s)[1]["task_id"] for s in range(10)}) > 1


def test_test_split_uses_disjoint_seeds():
    train = arithmetic_tasks(level=5, size=1000)
    test = arithmetic_tasks(level=5, size=1000, split="test")
    overlap = {train[i].prompt for i in range(1000)} & {test[i].prompt for i in range(1000)}
    assert not overlap  # level 5 has ~10^11 questions: a collision would mean shared seeds
    assert "-test-" in test[0].id and "-train-" in train[0].id


# -- arithmetic ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_each_level_has_its_shape_and_exact_integer_answers(level):
    digits, operations, terms = LEVELS[level]
    source = arithmetic_tasks(level=level, size=300)
    for index in range(300):
        task = source[index]
        tokens = task.metadata["expression"].split()
        operands, ops = tokens[::2], tokens[1::2]
        assert len(operands) == terms and all(len(n) == digits for n in operands), task
        assert set(ops) <= set(operations)
        assert isinstance(task.answer, int)
        assert _evaluate_exactly(task.metadata["expression"]) == task.answer, task
    if "/" in operations:
        assert any("/" in source[i].prompt for i in range(300))


def _evaluate_exactly(expression: str):
    value = parse_expression(expression).value
    assert value.denominator == 1, f"{expression} is not an integer"
    return int(value)


def test_explicit_kwargs_override_the_level():
    task = arithmetic_tasks(level=1, digits=3, size=5)[0]
    operands = task.metadata["expression"].split()[::2]
    assert len(operands) == 2 and all(len(n) == 3 for n in operands)
    assert "+" in task.metadata["expression"]
    only_division = arithmetic_tasks(operations="/", digits=2, terms=2, size=200)
    assert sum("/" in only_division[i].prompt for i in range(200)) > 100


def test_a_list_of_levels_mixes_them_by_index():
    mixed = arithmetic_tasks(level=[1, 4, 3], size=60)
    for index in range(60):
        level = [1, 4, 3][index % 3]
        task, alone = mixed[index], arithmetic_tasks(level=level, size=60)[index]
        assert task.metadata["level"] == level
        # the same stream as the level alone
        assert (task.prompt, task.answer) == (alone.prompt, alone.answer)
    assert mixed[0].id != arithmetic_tasks(level=[1, 4, 3], size=60, split="test")[0].id
    env = ArithmeticEnv(level=[1, 2], size=4, split="test")
    assert [t.metadata["level"] for t in env.tasks] == [1, 2, 1, 2]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"level": 6},
        {"level": []},
        {"level": [1, 6]},
        {"digits": 0},
        {"operations": "+^"},
        {"operations": ""},
        {"terms": 1},
        {"split": "validation"},
        {"size": 0},
        {"answer_format": "json"},
    ],
)
def test_bad_arithmetic_config_is_a_config_error(kwargs):
    with pytest.raises(ConfigError):
        ArithmeticEnv(**kwargs)


@pytest.mark.parametrize(
    ("reply", "reason", "extracted"),
    [
        ("7 + 5 = 12", "correct", "12"),
        ("The answer is 12.", "correct", "12"),
        ("12.0", "correct", "12.0"),
        ("I think \\boxed{12} because 7 + 5 = 12, step 2", "correct", "12"),
        ("<answer>12</answer> (after 3 tries)", "correct", "12"),
        ("<answer>7 + 5 = 12</answer> done in 1 step", "correct", "12"),
        ("7 + 5 = 13", "wrong", "13"),
        ("12 is the sum of 7 and 5", "wrong", "5"),
        ("twelve", "no_answer", None),
        ("\\boxed{twelve}", "unparseable", "twelve"),
        ("", "no_answer", None),
    ],
)
def test_last_number_check(reply, reason, extracted):
    verdict = check_integer(12, reply)
    assert (verdict.reason, verdict.extracted) == (reason, extracted)
    assert verdict.correct == (reason == "correct") and verdict.score == float(reason == "correct")


def test_negative_and_large_answers_are_read_exactly():
    assert check_integer(-17, "59 - 15 - 61 = -17").correct
    assert check_integer(354479, "The result is 354,479").correct
    assert not check_integer(354479, "354479.5").correct


def test_boxed_format_is_strict():
    env = ArithmeticEnv(level=1, answer_format="boxed")
    env.reset(options={"task_index": 0})
    gold = env.unwrapped.task.answer
    assert "\\boxed{}" in env.unwrapped.conversation[-1]["content"]
    _, reward, *_ = env.step(f"The sum is {gold}")  # no box: the strict verifier finds no final answer
    assert reward == 0.0
    env.reset(options={"task_index": 0})
    _, reward, _, _, info = env.step(f"\\boxed{{{gold}}}")
    assert reward == 1.0 and info["verdict"].reason == "correct"


def test_last_number_is_the_default_and_prompted():
    env = ArithmeticEnv(level=1)
    messages, _ = env.reset(options={"task_index": 0})
    assert (
        messages[-1]["content"].startswith("What is ")
        and "at the end of your reply" in messages[-1]["content"]
    )
    gold = env.unwrapped.task.answer
    _, reward, _, _, info = env.step(f"{env.unwrapped.task.metadata['expression']} = {gold}")
    assert reward == 1.0 and info["verdict"].details["method"] == "last_number"


# -- countdown / 24 --------------------------------------------------------------------------------------------


def test_countdown_instances_have_a_checked_solution_and_respect_limits():
    source = countdown_tasks(num_numbers=5, max_number=30, size=200)
    for index in range(200):
        task = source[index]
        numbers, target = task.answer["numbers"], task.answer["target"]
        assert len(numbers) == 5 and all(1 <= n <= 30 for n in numbers)
        assert isinstance(target, int) and target >= 1
        assert check_countdown(f"\\boxed{{{task.metadata['solution']}}}", numbers, target).correct, task


def test_24_instances_are_all_solvable_with_all_four_numbers():
    source = countdown_tasks(mode="24", size=100)
    for index in range(100):
        task = source[index]
        numbers = task.answer["numbers"]
        assert task.answer["target"] == 24 and len(numbers) == 4 and all(1 <= n <= 13 for n in numbers)
        expression = parse_expression(task.metadata["solution"])
        assert expression.value == 24 and sorted(expression.numbers) == sorted(numbers), task


@pytest.mark.parametrize(
    ("numbers", "solvable"),
    [
        ([3, 3, 8, 8], True),
        ([1, 5, 5, 5], True),
        ([4, 4, 7, 7], True),
        ([1, 1, 1, 1], False),
        ([1, 1, 1, 2], False),
    ],
)
def test_solver_finds_fractional_solutions_and_refuses_impossible_sets(numbers, solvable):
    solution = solve(numbers, 24)
    assert (solution is not None) == solvable
    if solvable:
        assert check_countdown(solution, numbers, 24, use_all=True).correct


@pytest.mark.slow
def test_solver_agrees_with_the_known_count_of_solvable_24_sets():
    sets = list(itertools.combinations_with_replacement(range(1, 14), 4))
    assert len(sets) == 1820
    assert sum(solve(list(s), 24) is not None for s in sets) == 1362


@pytest.mark.parametrize(
    ("reply", "reason", "error_part"),
    [
        ("\\boxed{(3 + 5) * 3}", "correct", None),
        ("<answer>(3 + 5) * 3 = 24</answer>", "correct", None),
        ("\\boxed{24 = 3 \\times (5 + 3)}", "correct", None),
        ("So the expression is:\n**(3 + 5) × 3 = 24**", "correct", None),
        ("\\boxed{\\frac{(3 + 5) \\cdot 3}{1}}", "wrong", "wrong numbers"),
        ("\\boxed{3 * 5 + 3}", "wrong", "value 18"),
        ("\\boxed{(3 + 5) * 3 + 9}", "wrong", "wrong numbers"),
        ("\\boxed{(5 + 5) * 3 - 8}", "wrong", "wrong numbers"),
        ("\\boxed{3 * 8}", "correct", None),
        ("\\boxed{-(-3) * (5 + 3)}", "unparseable", "unary"),
        ("\\boxed{3 ** 2 + 5 * 3}", "unparseable", "Pow"),
        ("I cannot do it.", "no_answer", None),
        ("", "no_answer", None),
    ],
)
def test_countdown_replies(reply, reason, error_part):
    verdict = check_countdown(reply, [3, 3, 5, 8], 24)
    assert verdict.reason == reason, verdict
    if error_part is not None:
        assert error_part in verdict.details["error"]


def test_24_mode_needs_every_number_exactly_once():
    assert not check_countdown("\\boxed{(3 + 5) * 3}", [3, 3, 5, 8], 24, use_all=True).correct
    assert check_countdown("\\boxed{8 / (3 - 8 / 3)}", [3, 3, 8, 8], 24, use_all=True).correct
    verdict = check_countdown("\\boxed{(3 - 3) * 8 * 8}", [3, 3, 8, 8], 24, use_all=True)
    assert verdict.reason == "wrong" and "value 0" in verdict.details["error"]


def test_division_by_zero_is_wrong_not_an_error():
    verdict = check_countdown("\\boxed{5 / (3 - 3) + 8}", [3, 3, 5, 8], 24)
    assert verdict.reason == "wrong" and verdict.details["error"] == "division by zero"


def test_extraction_picks_the_side_with_the_operation():
    assert extract_expression("24 = (3 + 5) * 3") == ("(3 + 5) * 3", "last_line")
    assert extract_expression("Step 2: 8 * 3 = 24\nAnswer: (3 + 5) * 3 = 24") == ("(3 + 5) * 3", "last_line")
    assert extract_expression("\\boxed{(1+2)*8} is my answer\nthanks") == ("(1+2)*8", "boxed")
    assert extract_expression("\n \n") == (None, "none")


HOSTILE = [
    "__import__('os').system('echo pwned')",
    "2**99999999",
    "9**9**9**9",
    "(1).__class__",
    "x + 1",
    "[1, 2][0]",
    "1 if 1 else 2",
    "lambda: 1",
    "7 // 2",
    "1.5 * 16",
    "0x18",
    "1_000",
    "(" * 100 + "1" + ")" * 100,
    "-" * 200 + "1",
    "+".join(["1"] * 50),
    "9" * 50,
    "1" * 10**6,
    "(" * 10**6,
    "*" * 10**6,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_parser_refuses_hostile_input_quickly(text):
    start = time.perf_counter()
    with pytest.raises(ExpressionError):
        parse_expression(text)
    for wrapped in (f"\\boxed{{{text}}}", f"<answer>{text}</answer>", text):
        verdict = check_countdown(wrapped, [1, 2, 3, 4], 24)
        assert not verdict.correct and verdict.reason in ("unparseable", "wrong", "no_answer")
    assert time.perf_counter() - start < 0.5


def test_parser_limits_are_what_refuses_long_input():
    with pytest.raises(ExpressionError, match=f"longer than {MAX_CHARS}"):
        parse_expression("1 + " * 100 + "1")
    with pytest.raises(ExpressionError, match="nested deeper"):
        parse_expression("(" * 30 + "1" + ")" * 30)
    assert parse_expression("((1 + 2)) * ((3))").value == 9


def test_bad_countdown_config_is_a_config_error():
    with pytest.raises(ConfigError):
        CountdownEnv(mode="25")
    with pytest.raises(ConfigError):
        CountdownEnv(num_numbers=7)
    with pytest.raises(ConfigError):
        CountdownEnv(mode="24", num_numbers=5)
