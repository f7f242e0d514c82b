"""Adapters that let other trainers use rlvr's math verifier today.

- TRL `GRPOTrainer`: `reward_funcs=[trl_math_reward(answer_field="solution")]`. The function receives
  `(prompts, completions, **columns)`; completions may be strings or chat messages.
- verl: `custom_reward_function.path=<this file>` with `name=compute_score`, or call `compute_score` yourself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rlvr.verifiers.math_verifier import MathVerifier, default_verifier


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as is; for chat messages, the last assistant message's content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        if assistant:
            return _content_text(assistant[-1].get("content"))
        return ""
    raise TypeError(
        f"a completion must be a string or a list of chat messages, got {type(completion).__name__}"
    )


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: [{"type": "text", "text": ...}, ...]
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def trl_math_reward(
    answer_field: str = "answer", verifier: MathVerifier | None = None
) -> Callable[..., list[float]]:
    """A TRL reward function: 1.0 for a correct final answer, else 0.0; the gold is read from `answer_field`."""

    def rlvr_math_correct(
        prompts: Any = None, completions: Sequence[Any] = (), **columns: Any
    ) -> list[float]:
        if answer_field not in columns:
            available = sorted(k for k in columns if not k.startswith("completion_"))
            raise KeyError(
                f"the dataset has no column {answer_field!r} holding gold answers (columns passed: {available}); "
                f"pass trl_math_reward(answer_field=...)"
            )
        golds = [str(gold) for gold in columns[answer_field]]
        texts = [completion_text(c) for c in completions]
        active = verifier or default_verifier()
        return [verdict.score for verdict in active.verify_batch(golds, texts)]

    return rlvr_math_correct


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None
) -> dict[str, Any]:
    """verl's reward-function signature. `ground_truth` may be one answer or a list of acceptable answers.

    Returns {"score": 1.0 or 0.0, "acc": bool, "pred": extracted answer}; verl logs the extra keys.
    """
    golds = [str(g) for g in ground_truth] if isinstance(ground_truth, (list, tuple)) else [str(ground_truth)]
    verifier = default_verifier()
    verdicts = verifier.verify_batch(golds, [solution_str] * len(golds))
    best = max(verdicts, key=lambda verdict: verdict.score)
    return {"score": best.score, "acc": best.correct, "pred": best.extracted or ""}
