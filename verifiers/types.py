"""Typed records that verifiers return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Why a verdict came out as it did. A verifier never raises into its caller: every outcome is one of these.
CORRECT = "correct"
WRONG = "wrong"
NO_ANSWER = "no_answer"  # nothing that looks like a final answer was found
UNPARSEABLE = "unparseable"  # an answer was found but could not be read as mathematics
MULTIPLE_ANSWERS = "multiple_answers"  # several different boxed answers, not all equivalent to the gold
HEDGED = "hedged"  # "either 3 or 4" when the gold is a single value
TIMEOUT = "timeout"  # the check passed its deadline; its worker was killed and replaced
BAD_GOLD = "bad_gold"  # the gold answer itself is empty or could not be read
ERROR = "error"  # the worker crashed or the verifier hit an internal error

REASONS = (CORRECT, WRONG, NO_ANSWER, UNPARSEABLE, MULTIPLE_ANSWERS, HEDGED, TIMEOUT, BAD_GOLD, ERROR)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one verification.

    `score` is the reward-ready value (1.0 correct, 0.0 otherwise for math), `reason` one of `REASONS`,
    `details` what a person needs to audit the call (extracted answer, extraction method, decision path, latency).
    """

    score: float
    correct: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def extracted(self) -> str | None:
        """The final answer found in the prediction, or None."""
        return self.details.get("extracted")

    def to_dict(self) -> dict[str, Any]:
        return {
            "correct": self.correct,
            "score": self.score,
            "reason": self.reason,
            "extracted": self.extracted,
            "details": self.details,
        }
