"""Every built-in environment registration, in one place.

Entry points are "module:Class" strings: nothing heavy is imported until `make`. Dataset-backed environments
load their hub dataset at a pinned revision by default; pass `data_path=` (or `rlvr envs ... --data PATH`) to use a
local file in the same format. They read the dataset's training split by default (the catalog's `split`);
benchmark suites pass the test split.
"""

from __future__ import annotations

from rlvr.envs.registry import register

FORMAT = ("rlvr.envs.wrappers:FormatReward", {"weight": 0.1})
"""Math answers earn a small format component for one closed \\boxed{} (weight 0.1)."""

MATH_DATASETS = {
    "gsm8k": "GSM8K grade-school word problems (train 7473, test 1319)",
    "math": "MATH competition problems (Hendrycks et al.), all subjects; train without the MATH-500 problems",
    "math500": "MATH-500, the 500-problem MATH test subset of PRM800K",
    "aime24": "AIME 2024 (30 problems, integer answers)",
    "aime25": "AIME 2025 (30 problems, integer answers)",
    "amc23": "AMC 2023 (40 problems)",
    "minerva": "Minerva quantitative reasoning (MIT OCW, 272 problems)",
    "olympiadbench": "OlympiadBench, English text-only open-ended math (675)",
}

CODE_DATASETS = {
    "humaneval": "HumanEval: complete a Python function (164, assert tests)",
    "mbpp": "MBPP sanitized: write a Python function (train 120, test 257; assert tests)",
    "lcb": "LiveCodeBench code_generation_lite release_v1 (400; stdin and functional tests)",
}

# reasoning-gym 0.1.x generators; tests/envs compare this list with the installed package's. Not registered:
# `composite` (a mixer that needs a config; use a Suite), `game_of_life_halting` (its scorer gives 1.0 to any
# non-empty answer), `boxnet` and `rush_hour` (no reference answer, so their scorers cannot be checked).
REASONING_GYM_EXCLUDED = ("boxnet", "composite", "game_of_life_halting", "rush_hour")
REASONING_GYM_TASKS = (
    "ab", "acre", "advanced_geometry", "aiw", "arc_1d", "arc_agi", "base_conversion", "basic_arithmetic", "bf",
    "binary_alternation", "binary_matrix", "bitwise_arithmetic", "caesar_cipher", "calendar_arithmetic",
    "chain_sum", "circuit_logic", "codeio", "coin_flip", "color_cube_rotation", "complex_arithmetic",
    "count_bits", "count_primes", "countdown", "course_schedule", "cryptarithm", "decimal_arithmetic",
    "decimal_chain_sum", "dice", "emoji_mystery", "family_relationships", "figlet_font", "fraction_simplification",
    "futoshiki", "game_of_life", "gcd", "graph_color", "group_anagrams", "gsm_symbolic",
    "intermediate_integration", "isomorphic_strings", "jugs", "kakurasu", "knight_swap", "knights_knaves",
    "largest_island", "lcm", "leg_counting", "letter_counting", "letter_jumble", "list_functions", "mahjong_puzzle",
    "manipulate_matrix", "maze", "mini_sudoku", "modulo_grid", "n_queens", "needle_haystack", "number_filtering",
    "number_format", "number_sequence", "number_sorting", "palindrome_generation", "palindrome_partitioning",
    "path_star", "polynomial_equations", "polynomial_multiplication", "pool_matrix", "power_function",
    "prime_factorization", "products", "propositional_logic", "puzzle24", "quantum_lock", "ransom_note", "rearc",
    "rectangle_count", "rotate_matrix", "rotten_oranges", "rubiks_cube", "self_reference",
    "sentence_reordering", "shortest_path", "simple_equations", "simple_geometry", "simple_integration", "sokoban",
    "spell_backward", "spiral_matrix", "string_insertion", "string_manipulation", "string_splitting",
    "string_synthesis", "sudoku", "survo", "syllogism", "time_intervals", "tower_of_hanoi", "tsumego", "word_ladder",
    "word_sequence_reversal", "word_sorting", "zebra_puzzles",
)  # fmt: skip


def rg_id(name: str) -> str:
    """The rlvr id of a reasoning-gym generator ("basic_arithmetic" -> "rlvr/rg-basic-arithmetic-v0")."""
    return f"rlvr/rg-{name.replace('_', '-')}-v0"


def _register_math() -> None:
    for name, what in MATH_DATASETS.items():
        source = f"dataset {name!r} (rlvr.envs.catalog; hub at a pinned revision, or data_path=)"
        register(
            f"rlvr/math-{name}-v0",
            "rlvr.envs.math_env:MathEnv",
            kwargs={"dataset": name},
            wrappers=[FORMAT],
            description=f"Math, single turn, boxed answer: {what}",
            data_source=source,
            tags=("math",),
        )
        register(
            f"rlvr/math-{name}-retry-v0",
            "rlvr.envs.math_env:MathRetryEnv",
            kwargs={"dataset": name, "max_turns": 3},
            wrappers=[FORMAT],
            description=f"Math, up to 3 tries; told when an answer is wrong: {what}",
            data_source=source,
            tags=("math", "multi-turn"),
        )


def _register_code() -> None:
    for name, what in CODE_DATASETS.items():
        source = f"dataset {name!r} (rlvr.envs.catalog; hub at a pinned revision, or data_path=)"
        register(
            f"rlvr/code-{name}-v0",
            "rlvr.envs.code_env:CodeEnv",
            kwargs={"dataset": name},
            description=f"Code, single turn, reward 1 when every test passes in the sandbox: {what}",
            data_source=source,
            tags=("code",),
        )
        register(
            f"rlvr/code-{name}-repair-v0",
            "rlvr.envs.code_env:CodeRepairEnv",
            kwargs={"dataset": name, "max_turns": 3},
            description=f"Code, up to 3 tries; shown the first failing test: {what}",
            data_source=source,
            tags=("code", "multi-turn"),
        )


def _register_procedural() -> None:
    procedural = "procedural, offline, deterministic by index (Random(seed + index))"
    register(
        "rlvr/arithmetic-v0",
        "rlvr.envs.procedural.arithmetic:ArithmeticEnv",
        description="Integer arithmetic with difficulty levels (digits, operations, chain length)",
        data_source=procedural,
        tags=("procedural", "math"),
    )
    register(
        "rlvr/countdown-v0",
        "rlvr.envs.procedural.countdown:CountdownEnv",
        kwargs={"mode": "countdown"},
        description="Countdown: reach the target with the given numbers and + - * /",
        data_source=procedural,
        tags=("procedural",),
    )
    register(
        "rlvr/game24-v0",
        "rlvr.envs.procedural.countdown:CountdownEnv",
        kwargs={"mode": "24"},
        description="The 24 game: use all four numbers once with + - * / to make 24",
        data_source=procedural,
        tags=("procedural",),
    )


def _register_interactive() -> None:
    register(
        "rlvr/guess-number-v0",
        "rlvr.envs.games.guess_number:GuessNumberEnv",
        description="Guess the secret number with higher/lower feedback",
        data_source="procedural secret per task index",
        tags=("game", "multi-turn"),
    )
    register(
        "rlvr/wordle-v0",
        "rlvr.envs.games.wordle:WordleEnv",
        description="Wordle: guess the 5-letter word in 6 tries with per-letter feedback",
        data_source="embedded word list, secret per task index",
        tags=("game", "multi-turn"),
    )
    register(
        "rlvr/tools-arithmetic-v0",
        "rlvr.envs.tools.tool_env:ToolEnv",
        description="Tool use (python, calculator, submit) on procedural arithmetic",
        data_source="procedural arithmetic tasks",
        tags=("tools", "multi-turn"),
    )
    register(
        "rlvr/tools-gsm8k-v0",
        "rlvr.envs.tools.tool_env:ToolEnv",
        kwargs={"dataset": "gsm8k"},
        description="Tool use (python, calculator, submit) on GSM8K",
        data_source="dataset 'gsm8k' (rlvr.envs.catalog; hub at a pinned revision, or data_path=)",
        tags=("tools", "multi-turn", "math"),
    )


def _register_reasoning_gym() -> None:
    for name in REASONING_GYM_TASKS:
        register(
            rg_id(name),
            "rlvr.envs.reasoning_gym_env:ReasoningGymEnv",
            kwargs={"name": name},
            description=f"reasoning-gym {name!r}: answer in <answer> tags, scored by its own scorer",
            data_source=f"reasoning-gym generator {name!r} (procedural, seed + index)",
            tags=("reasoning-gym",),
        )


_register_math()
_register_code()
_register_procedural()
_register_interactive()
_register_reasoning_gym()
