"""Math equivalence by Math-Verify, run inside a worker process of the verifier pool.

Math-Verify's own `signal.alarm` timeouts are switched off here: the pool enforces the deadline by killing the
worker, which works from any thread of the caller. Direction matters: `verify(gold, prediction)`.
"""

from __future__ import annotations

import functools
import logging

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from rlvr.verifiers.types import BAD_GOLD, CORRECT, UNPARSEABLE, WRONG

logging.getLogger("math_verify").setLevel(logging.ERROR)

_EXTRACTION = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())


def _parse_answer(answer: str) -> list:
    """Parse an already-extracted answer; boxing it makes Math-Verify read exactly this span."""
    return parse("\\boxed{" + answer + "}", extraction_config=_EXTRACTION, parsing_timeout=None)


_parse_gold = functools.lru_cache(maxsize=4096)(_parse_answer)  # golds repeat across a group's samples


def judge(gold: str, answer: str, float_rounding: int) -> str:
    """Decide one (gold, extracted answer) pair; returns a reason from `rlvr.verifiers.types`."""
    gold_parsed = _parse_gold(gold)
    if not gold_parsed:
        return BAD_GOLD
    answer_parsed = _parse_answer(answer)
    if not answer_parsed:
        return UNPARSEABLE
    equal = verify(gold_parsed, answer_parsed, float_rounding=float_rounding, timeout_seconds=None)
    return CORRECT if equal else WRONG


def judge_task(task: tuple[str, str, int]) -> str:
    """Pool entry point: one picklable tuple in, one reason out."""
    gold, answer, float_rounding = task
    return judge(gold, answer, float_rounding)
