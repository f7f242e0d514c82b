"""Math equivalence by Math-Verify, run inside a worker process of the verifier pool.

Math-Verify's own `signal.alarm` timeouts are switched off here: the pool enforces the deadline by killing the
worker, which works from any thread of the caller. Direction matters: `verify(gold, prediction)`.

Before Math-Verify, two answers that render to the same text are equal: `\\text{4:30 p.m.}` and
`4:30 \\text{ p.m.}` differ only in where the text box starts, which Math-Verify cannot see (it reads the first as
one symbol and the second as the ratio 4:30 = 2/15).
"""

from __future__ import annotations

import functools
import logging
import re

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from sympy import Expr, Float

from rlvr.verifiers.types import BAD_GOLD, CORRECT, UNPARSEABLE, WRONG

logging.getLogger("math_verify").setLevel(logging.ERROR)

_EXTRACTION = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
_TEXT_BOX = re.compile(r"\\(?:text|textrm|mbox|mathrm)\s*\{([^{}]*)\}")
_UPRIGHT_CONSTANT = re.compile(r"\\(?:mathrm|text|textrm|operatorname)\s*\{\s*([ei])\s*\}")
_SCALES = {
    "hundred": "100",
    "thousand": "1000",
    "million": "10^{6}",
    "billion": "10^{9}",
    "trillion": "10^{12}",
}
_SCALE_HINT = re.compile(r"hundred|thousand|illion", re.IGNORECASE)
_SCALE_WORD = re.compile(
    r"\s*(?:\\(?:text|mbox|textrm|mathrm)\s*\{\s*)?\b(hundred|thousand|million|billion|trillion)s?\b\s*\}?",
    re.IGNORECASE,
)
_SPACE = re.compile(r"(?:\s|\\[,;:! ])+")


def _rendering(answer: str) -> str:
    """The text an answer shows: text boxes opened, each run of spacing made one space."""
    return _SPACE.sub(" ", _TEXT_BOX.sub(r"\1", answer)).strip()


def _parse_answer(answer: str) -> list:
    """Parse an already-extracted answer; boxing it makes Math-Verify read exactly this span.

    `\\mathrm{e}` / `\\text{i}` are written as plain `e` / `i`, and scale words (`5 \\text{ thousand}`,
    `2 million`) as factors, first: Math-Verify would drop them as text units, reading `2\\mathrm{e}` as 2.
    """
    answer = _UPRIGHT_CONSTANT.sub(r"\1", answer)
    if _SCALE_HINT.search(answer):  # "5 thousand": a scale word multiplies, it is not a unit to drop
        answer = _SCALE_WORD.sub(lambda m: " \\cdot " + _SCALES[m.group(1).lower()], answer)
    return parse("\\boxed{" + answer + "}", extraction_config=_EXTRACTION, parsing_timeout=None)


# Each distinct string is parsed once per worker: golds repeat across a group's samples, answers across samples
# and steps, and a parse is most of a check's cost (ANTLR's full-context prediction, 2-60 ms on tuples and
# intervals, is not cached by the parser itself). Math-Verify's `verify` does not modify what it is given.
_parse = functools.lru_cache(maxsize=8192)(_parse_answer)


def judge(gold: str, answer: str, float_rounding: int, allow_set_relation_comp: bool = False) -> str:
    """Decide one (gold, extracted answer) pair; returns a reason from `rlvr.verifiers.types`."""
    gold_parsed = _parse(gold)
    if not gold_parsed:
        return BAD_GOLD
    rendering = _rendering(gold)
    if rendering and rendering == _rendering(answer):
        return CORRECT
    answer_parsed = _parse(answer)
    if not answer_parsed:
        return UNPARSEABLE
    equal = verify(
        gold_parsed,
        answer_parsed,
        float_rounding=float_rounding,
        allow_set_relation_comp=allow_set_relation_comp,
        timeout_seconds=None,
    )
    if equal and not _exactly_equal(gold_parsed[0], answer_parsed[0]):
        return WRONG
    return CORRECT if equal else WRONG


def _exactly_equal(gold: object, answer: object) -> bool:
    """Re-check an equality Math-Verify found between two exact constants (no decimal, no variable).

    Math-Verify calls `(a - b).evalf(chop=True) == 0`, and chopping makes every tiny difference zero
    (`\\sqrt{2}/2^{99}` equals `\\sqrt{2}/2^{98}` to it). Here the difference must be zero relative to the values,
    at 60 digits. Anything that is not two such constants (sets, relations, decimals, symbols) passes unchanged.
    """
    if not (isinstance(gold, Expr) and isinstance(answer, Expr)):
        return True
    if gold.free_symbols or answer.free_symbols or gold.atoms(Float) or answer.atoms(Float):
        return True
    try:
        a, b = gold.evalf(60), answer.evalf(60)
        difference, scale = abs(a - b), max(abs(a), abs(b))
        if not (difference.is_number and scale.is_number) or scale == 0:
            return True
        return bool(difference <= scale * Float("1e-40", 60))
    except Exception:  # a value sympy cannot evaluate numerically: keep Math-Verify's answer
        return True


def judge_task(task: tuple[str, str, int, bool]) -> str:
    """Pool entry point: one picklable tuple (gold, answer, float_rounding, allow_set_relation_comp) in, one
    reason out."""
    return judge(*task)


# Typical answer shapes; judging them once fills Math-Verify's parser caches (ANTLR prediction tables) so the
# first real checks in a new worker are not several times slower than later ones.
_WARM_UP_PAIRS = (
    ("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt3}{2}"),
    ("x^2 + 2x + 1", "(x+1)^2"),
    ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("[-2, 7)", "[-2,7)"),
    ("\\{1, 2\\}", "\\{2, 1\\}"),
    ("x = 5", "5"),
    ("2 \\pm \\sqrt{5}", "2 - \\sqrt5, 2 + \\sqrt5"),
    ("3 + 4i", "4i + 3"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("10\\%", "0.1"),
    ("30^\\circ", "\\frac{\\pi}{6}"),
    ("\\text{east}", "\\text{East}"),
    ("1011_2", "1011_{2}"),
    ("\\log_2 8", "3"),
    ("\\sin x \\cos x", "\\frac{1}{2} \\sin 2x"),
)


def warm_up() -> None:
    """Judge a fixed set of typical pairs; called once in each worker before it takes work."""
    for gold, answer in _WARM_UP_PAIRS:
        judge(gold, answer, 6)
