"""Interactive games: guess-the-number and Wordle, their feedback rules and their scripted optimal players."""

from __future__ import annotations

import collections

import pytest
from gymnasium.utils.env_checker import check_env

from rlvr.envs.check import play
from rlvr.envs.games.guess_number import GuessNumberEnv, read_guess, secret_task
from rlvr.envs.games.wordle import OPENING, WordleEnv, best_guess, read_word, score_guess, word_task
from rlvr.envs.games.words import WORDS
from rlvr.errors import ConfigError

ENVS = {
    "guess-number": lambda: GuessNumberEnv(),
    "guess-number-wide": lambda: GuessNumberEnv(low=-50, high=1000),
    "wordle": lambda: WordleEnv(),
}


def play_out(env, action=None):
    """Step until the episode ends; the reference player by default. Returns (rewards, turns, last step)."""
    rewards, last = [], None
    while last is None or not (last[2] or last[3]):
        last = env.step(action or env.unwrapped.reference_action())
        rewards.append(last[1])
    return rewards, len(rewards), last


@pytest.mark.parametrize("name", sorted(ENVS))
def test_check_env(name):
    check_env(ENVS[name](), skip_render_check=True)


@pytest.mark.parametrize("name", sorted(ENVS))
def test_reference_player_wins_and_wrong_player_does_not(name):
    env = ENVS[name]()
    for index in range(20):
        reference, wrong = play(env, index, "reference"), play(env, index, "wrong")
        assert reference.ok and reference.episode_return == 1.0 and reference.terminated, reference
        assert wrong.ok and wrong.episode_return == 0.0 and wrong.truncated, wrong
        assert wrong.turns == env.max_turns


@pytest.mark.parametrize("name", sorted(ENVS))
def test_tasks_are_deterministic_by_index_and_seed(name):
    env = ENVS[name]()
    other = type(env)(seed=1, **({"low": env.low, "high": env.high} if hasattr(env, "low") else {}))
    answers = [env.tasks[i].answer for i in range(30)]
    assert answers == [ENVS[name]().tasks[i].answer for i in range(30)]
    assert answers != [other.tasks[i].answer for i in range(30)]
    assert env.reset(seed=5) == env.reset(seed=5)
    assert len({env.reset(seed=s)[1]["task_id"] for s in range(10)}) > 1


# -- guess the number ------------------------------------------------------------------------------------------


def test_binary_search_wins_every_game_in_range():
    env = GuessNumberEnv()
    assert env.max_turns == 8  # 100 numbers: 7 guesses at most, plus one spare
    worst = 0
    for secret in range(1, 101):
        env.reset(options={"task": secret_task(secret, 1, 100)})
        rewards, turns, (_, _, terminated, _, info) = play_out(env)
        assert terminated and info["solved"] and rewards == [0.0] * (turns - 1) + [1.0], secret
        worst = max(worst, turns)
    assert worst == 7


@pytest.mark.parametrize(("low", "high"), [(1, 1), (1, 2), (0, 7), (-3, 12), (1, 1000)])
def test_default_turn_limit_lets_binary_search_win_any_range(low, high):
    env = GuessNumberEnv(low=low, high=high)
    assert env.max_turns >= 2
    for secret in {low, high, (low + high) // 2, low + (high - low) // 3}:
        env.reset(options={"task": secret_task(secret, low, high)})
        _, turns, (_, reward, terminated, _, _) = play_out(env)
        assert terminated and reward == 1.0 and turns <= env.max_turns - 1


def test_guess_number_feedback_and_invalid_replies():
    env = GuessNumberEnv()
    env.reset(options={"task": secret_task(37, 1, 100)})
    reply, reward, terminated, truncated, info = env.step("My guess is 50.")
    assert "lower than 50" in reply[0]["content"] and "7 guesses left" in reply[0]["content"]
    assert (reward, terminated, truncated, info["solved"]) == (0.0, False, False, False)
    assert info["verdict"].details["hint"] == "lower"
    reply, *_ = env.step("\\boxed{20}")
    assert "higher than 20" in reply[0]["content"]
    assert env.unwrapped.reference_action() == str((21 + 49) // 2)
    reply, reward, *_, info = env.step("I am not sure")
    assert (
        reward == 0.0 and info["verdict"].reason == "no_answer" and "between 1 and 100" in reply[0]["content"]
    )
    reply, reward, *_, info = env.step("101")
    assert reward == 0.0 and info["verdict"].reason == "wrong" and "between 1 and 100" in reply[0]["content"]
    reply, reward, terminated, truncated, info = env.step("<answer>37</answer>")
    assert (reply, reward, terminated, truncated, info["solved"]) == ([], 1.0, True, False, True)
    assert info["rewards"] == {"correct": 1.0} and info["turn"] == 5


def test_guess_number_truncates_at_the_limit():
    env = GuessNumberEnv(max_turns=3)
    env.reset(options={"task": secret_task(37, 1, 100)})
    for turn in range(3):
        _, reward, terminated, truncated, info = env.step("90")
        assert reward == 0.0 and not terminated and truncated == (turn == 2)
    assert info["solved"] is False


@pytest.mark.parametrize(
    ("text", "guess"),
    [
        ("50", 50),
        ("I guess 25, no, 30", 30),
        ("\\boxed{42} since 1 < 42", 42),
        ("<answer>-7</answer> ok 3", -7),
        ("", None),
    ],
)
def test_read_guess(text, guess):
    assert read_guess(text) == guess


def test_guess_number_config_errors():
    with pytest.raises(ConfigError):
        GuessNumberEnv(low=10, high=1)
    with pytest.raises(ConfigError):
        GuessNumberEnv(max_turns=1)


# -- wordle ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guess", "secret", "marks"),
    [
        ("crane", "crane", "GGGGG"),
        ("crane", "plumb", "-----"),
        ("speed", "abide", "--Y-Y"),  # one e in the secret: only the first e of the guess is yellow
        ("eerie", "there", "Y-Y-G"),  # the green e takes one copy, the first e takes the other
        ("llama", "label", "GYY--"),  # second l yellow (one l unmatched), a yellow, the second a grey
        ("robot", "floor", "YY-G-"),  # o: position 4 green, then the first o yellow from the remaining one
        ("geese", "those", "---GG"),  # both greens; the secret has no other e or s
        ("geese", "eerie", "-GY-G"),  # two greens take two e's; the third e of the secret makes one yellow
        ("sheep", "speed", "G-GGY"),
        ("apple", "paper", "YYG-Y"),  # one p green, the secret's other p makes the first p yellow
        ("mamma", "maxim", "GGY--"),  # the secret's second m: yellow for the first spare m, grey after
        ("array", "rearm", "YYY--"),  # two r's in the secret: both r's yellow; one a: the second a grey
    ],
)
def test_wordle_feedback_follows_the_duplicate_letter_rules(guess, secret, marks):
    assert score_guess(guess, secret) == marks


def test_word_list_is_sorted_unique_lowercase_five_letters():
    assert len(WORDS) >= 300
    assert list(WORDS) == sorted(set(WORDS))
    assert all(len(w) == 5 and w.isalpha() and w.islower() for w in WORDS)


def test_scripted_player_solves_every_word_of_the_list_within_six():
    env = WordleEnv()
    turns_needed = collections.Counter()
    for secret in WORDS:
        env.reset(options={"task": word_task(secret)})
        rewards, turns, (_, _, terminated, _, info) = play_out(env)
        assert terminated and info["solved"] and rewards[-1] == 1.0 and sum(rewards) == 1.0, secret
        turns_needed[turns] += 1
    assert max(turns_needed) <= 6 == env.max_turns


def test_opening_is_what_the_rule_picks_over_the_whole_list():
    assert best_guess(list(WORDS)) == OPENING


def test_wordle_turns_invalid_guesses_and_board():
    env = WordleEnv()
    messages, _ = env.reset(options={"task": word_task("speed")})
    assert (
        "G = right letter in the right spot" in messages[-1]["content"]
        and "6 guesses" in messages[-1]["content"]
    )
    reply, reward, terminated, truncated, info = env.step("dress")
    assert reply[0]["content"] == "D R E S S\nY - G Y -\n(5 guesses left)"
    assert info["verdict"].details == {"guess": "dress", "marks": "Y-GY-"}
    assert (reward, terminated, truncated, info["solved"]) == (0.0, False, False, False)
    reply, reward, *_, info = env.step("xyzzy")
    assert reward == 0.0 and "not a five-letter word in my list" in reply[0]["content"]
    assert info["verdict"].reason == "wrong" and info["turn"] == 2
    reply, reward, *_, info = env.step("Hmm, let me see...")
    assert info["verdict"].reason == "no_answer" and "(3 guesses left)" in reply[0]["content"]
    assert env.unwrapped.history == [("dress", "Y-GY-")]
    _, reward, terminated, _, info = env.step("My guess: \\boxed{SPEED}")
    assert (reward, terminated, info["solved"]) == (1.0, True, True)


def test_scripted_guesses_stay_consistent_after_a_model_guess():
    env = WordleEnv()
    env.reset(options={"task": word_task("grape")})
    env.step("plant")
    guess = env.unwrapped.reference_action()
    assert score_guess("plant", guess) == score_guess("plant", "grape")
    assert env.unwrapped.wrong_action() != "grape"
    assert score_guess("plant", env.unwrapped.wrong_action()) != score_guess("plant", "grape")


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("crane", "crane"),
        ("CRANE", "crane"),
        ("My guess is crane.", "crane"),
        ("I'll try \\boxed{slate} next, since it has vowels", "slate"),
        ("<answer>Audio</answer>", "audio"),
        ("no", "no"),
        ("", None),
        ("12345", None),
    ],
)
def test_read_word(text, word):
    assert read_word(text) == word


def test_wordle_config_errors():
    with pytest.raises(ConfigError):
        WordleEnv(max_turns=1)
    with pytest.raises(ConfigError):
        word_task("zzzzz")
