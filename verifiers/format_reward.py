"""Format reward: does a completion have the shape the prompt asked for?

Each enabled check is pass/fail; the component score is the fraction passed, or, with `all_or_nothing`,
1.0 only when every check passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rlvr.verifiers.extract import find_boxed

_BOX_START = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


@dataclass(frozen=True)
class FormatConfig:
    """Which format checks apply."""

    think: bool = True
    """Reasoning inside `<think>...</think>`, then a non-empty answer after `</think>`."""
    think_opened_in_prompt: bool = False
    """The chat template already opened `<think>`: the completion must not open it again, only close it once."""
    single_boxed: bool = True
    """Exactly one `\\boxed{}` (or `\\fbox{}`) in the answer part, and it is closed."""
    required_tags: tuple[str, ...] = ()
    """Tags such as ("answer",) that must each appear exactly once as `<tag>...</tag>`, in this order."""
    all_or_nothing: bool = False
    """Score 1.0 only when every check passes, else 0.0 (default: the fraction of checks passed)."""


@dataclass(frozen=True)
class FormatResult:
    """The component score and the outcome of each check, by name."""

    score: float
    checks: dict[str, bool] = field(default_factory=dict)


def format_reward(completion: str, config: FormatConfig = FormatConfig()) -> FormatResult:
    """Score the shape of `completion` under `config`."""
    checks: dict[str, bool] = {}
    answer_part = completion
    if config.think:
        checks["think"], answer_part = _check_think(completion, config.think_opened_in_prompt)
    if config.single_boxed:
        checks["single_boxed"] = (
            len(_BOX_START.findall(answer_part)) == 1 and len(find_boxed(answer_part)) == 1
        )
    if config.required_tags:
        checks["tags_in_order"] = _check_tags(completion, config.required_tags)
    if not checks:
        return FormatResult(1.0, checks)
    passed = sum(checks.values())
    if config.all_or_nothing:
        return FormatResult(1.0 if passed == len(checks) else 0.0, checks)
    return FormatResult(passed / len(checks), checks)


def _check_think(completion: str, opened_in_prompt: bool) -> tuple[bool, str]:
    """(passed, text after the reasoning)."""
    opens, closes = completion.count("<think>"), completion.count("</think>")
    if closes != 1:
        return False, completion
    reasoning, answer = completion.split("</think>", 1)
    if opened_in_prompt:
        ok = opens == 0
    else:
        ok = opens == 1 and reasoning.lstrip().startswith("<think>")
    return ok and bool(answer.strip()), answer


def _check_tags(completion: str, tags: tuple[str, ...]) -> bool:
    position = 0
    for tag in tags:
        open_tag, close_tag = f"<{tag}>", f"</{tag}>"
        if completion.count(open_tag) != 1 or completion.count(close_tag) != 1:
            return False
        start = completion.find(open_tag)
        end = completion.find(close_tag)
        if start < position or end < start:
            return False
        position = end + len(close_tag)
    return True
