"""Wordle: find a secret five-letter word in `max_turns` (6) guesses from per-letter feedback.

Each turn the model names one word: the content of its last `\\boxed{}` / `<answer>` if it has one, else the
reply itself when it is one word, else the last five-letter word of the reply. A guess must be in the embedded
list (`words.WORDS`, which the secrets come from); anything else gets a message and still counts as a turn.
Feedback marks every letter: `G` right letter in the right spot, `Y` in the word but elsewhere, `-` not in the
word. Repeated letters follow the game's rules: greens are marked first, then yellows left to right while the
secret has unmatched copies of the letter left: `score_guess("speed", "abide") == "--Y-Y"` (one `e` in the
secret, so only the first `e` of the guess is yellow).

Reward component `correct` = 1.0 on the turn that finds the word (then `terminated`); every other turn 0.0.
The scripted player (`reference_action`) guesses, among the words consistent with all feedback so far, the one
whose feedback splits those candidates into the smallest expected remainder (sum of squared bucket sizes; ties
to the earlier word). It solves every word of the list within 6 guesses (at most 6 for 2 words, 5 or fewer
for the rest; tested over the whole list). The secret of task `i` is drawn from `random.Random(seed + i)`.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache, partial
from typing import Any

from rlvr.envs.base import RlvrEnv
from rlvr.envs.games.words import WORDS
from rlvr.envs.sources import ProceduralSource
from rlvr.envs.types import Completion, Feedback, Task
from rlvr.errors import ConfigError
from rlvr.verifiers.extract import find_answer_tag, find_boxed
from rlvr.verifiers.types import CORRECT, NO_ANSWER, WRONG, Verdict

OPENING = "trace"
"""The scripted player's first guess: what its rule picks over the whole list (precomputed; a test recomputes it)."""
SOLVED = "GGGGG"
_WORD_SET = frozenset(WORDS)
_LETTERS = re.compile(r"[A-Za-z]+")
_MAX_SCAN_CHARS = 10_000
_RULES = (
    "After each guess I show one mark per letter: G = right letter in the right spot, "
    "Y = the letter is in the word but in another spot, - = the letter is not in the word "
    "(or not as many more times)."
)


def score_guess(guess: str, secret: str) -> str:
    """The feedback marks for `guess` against `secret` (both lowercase, same length): greens first, then
    yellows left to right, each consuming one unmatched copy of the letter in the secret."""
    unmatched = [s for g, s in zip(guess, secret, strict=True) if g != s]
    marks = []
    for g, s in zip(guess, secret, strict=True):
        if g == s:
            marks.append("G")
        elif g in unmatched:
            unmatched.remove(g)
            marks.append("Y")
        else:
            marks.append("-")
    return "".join(marks)


def consistent(history: Iterable[tuple[str, str]], words: Iterable[str] = WORDS) -> list[str]:
    """The words that would have produced every (guess, marks) pair of `history`."""
    history = list(history)
    return [word for word in words if all(score_guess(guess, word) == marks for guess, marks in history)]


def best_guess(candidates: list[str]) -> str:
    """The candidate that minimises the expected number left: sum of squared feedback-bucket sizes."""
    if len(candidates) <= 2:
        return candidates[0]
    best, best_cost = candidates[0], None
    for guess in candidates:
        buckets = Counter(score_guess(guess, secret) for secret in candidates)
        cost = sum(size * size for size in buckets.values())
        if best_cost is None or cost < best_cost:
            best, best_cost = guess, cost
    return best


@lru_cache(maxsize=4096)
def scripted_guess(history: tuple[tuple[str, str], ...]) -> str:
    """The scripted player's guess after `history` ((guess, marks) pairs): `OPENING` first, then `best_guess`
    over the consistent words. Cached: many games share their first few states."""
    return best_guess(consistent(history)) if history else OPENING


def read_word(text: str) -> str | None:
    """The word a reply guesses (module docstring), lowercased; None when it names no word."""
    text = text[-_MAX_SCAN_CHARS:]
    tag = find_answer_tag(text)
    boxes = find_boxed(tag if tag is not None else text)
    scope = boxes[-1] if boxes else (tag if tag is not None else text)
    words = _LETTERS.findall(scope)
    if len(words) == 1:
        return words[0].lower()
    five = [word for word in words if len(word) == 5]
    if five:
        return five[-1].lower()
    return None


def generate_word(rng: random.Random, index: int, *, tag: str) -> Task:
    """Task `index`: a secret drawn from the word list."""
    return word_task(rng.choice(WORDS), task_id=f"wordle-{tag}-{index}")


def word_task(secret: str, task_id: str | None = None) -> Task:
    """The task of one given secret word (for playing a chosen game: `reset(options={"task": ...})`)."""
    if secret not in _WORD_SET:
        raise ConfigError(f"{secret!r} is not in the Wordle word list (rlvr.envs.games.words.WORDS)")
    prompt = (
        "Let's play Wordle. Guess my secret five-letter English word. " + _RULES + " Guesses must be common "
        "English words. Reply with one word per turn."
    )
    return Task(task_id or f"wordle-{secret}", prompt, {"secret": secret})


class WordleEnv(RlvrEnv):
    """Wordle over the embedded word list; reward component `correct` = 1.0 on the solving turn."""

    description = "Wordle: guess the 5-letter word in 6 tries with per-letter feedback"
    reward_components = ("correct",)

    def __init__(
        self, *, max_turns: int = 6, seed: int = 0, size: int = 10_000, system_prompt: str | None = None
    ) -> None:
        if not isinstance(max_turns, int) or max_turns < 2:
            raise ConfigError(f"max_turns must be an integer >= 2, got {max_turns!r}")
        if not isinstance(seed, int):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        tasks = ProceduralSource(partial(generate_word, tag=f"s{seed}"), size=size, seed=seed)
        super().__init__(tasks, system_prompt=system_prompt, max_turns=max_turns)
        self.history: list[tuple[str, str]] = []

    def start_episode(self, task: Task) -> None:
        self.history = []

    def format_prompt(self, task: Task) -> str:
        return f"{task.prompt} You have {self.max_turns} guesses."

    def evaluate(self, completion: Completion) -> Feedback:
        secret = self.task.answer["secret"]
        guess = read_word(completion.text)
        left = self.max_turns - self.turn
        if guess is None or guess not in _WORD_SET:
            problem = "no word found" if guess is None else f'"{guess}" is not a five-letter word in my list'
            verdict = Verdict(
                0.0, False, NO_ANSWER if guess is None else WRONG, {"guess": guess, "error": problem}
            )
            message = f"Please guess one common five-letter English word ({problem}). ({_guesses(left)} left)"
            return self._feedback(message, verdict, solved=False)
        marks = score_guess(guess, secret)
        self.history.append((guess, marks))
        solved = marks == SOLVED
        verdict = Verdict(
            float(solved), solved, CORRECT if solved else WRONG, {"guess": guess, "marks": marks}
        )
        board = f"{' '.join(guess.upper())}\n{' '.join(marks)}"
        message = f"Correct! The word is {secret}." if solved else f"{board}\n({_guesses(left)} left)"
        return self._feedback(message, verdict, solved=solved)

    def _feedback(self, message: str, verdict: Verdict, *, solved: bool) -> Feedback:
        info: dict[str, Any] = {"solved": solved}
        reply = [{"role": "user", "content": message}]
        return Feedback(reply, {"correct": verdict.score}, done=solved, verdict=verdict, info=info)

    def reference_action(self) -> str:
        """The scripted player's guess from the feedback so far."""
        return scripted_guess(tuple(self.history))

    def wrong_action(self) -> str:
        """A listed word the feedback already rules out, or any other word at the start (never the secret)."""
        secret = self.task.answer["secret"]
        ruled_out = _WORD_SET.difference(consistent(self.history))
        return next((w for w in WORDS if w in ruled_out), next(w for w in WORDS if w != secret))


def _guesses(count: int) -> str:
    return f"{count} guess{'es' if count != 1 else ''}"
