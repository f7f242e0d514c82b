"""Reward composition: named components with weights give a total and its breakdown.

    total = sum_k weight_k * score_k(sample)

Components score whole batches, so correctness goes through the batch verifier once per batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rlvr.verifiers.format_reward import FormatConfig, format_reward
from rlvr.verifiers.length import OverlongConfig, overlong_penalty
from rlvr.verifiers.math_verifier import MathVerifier, default_verifier


@dataclass(frozen=True)
class RewardSample:
    """One completion to score; `num_tokens` and `finish_reason` are needed by length shaping only."""

    completion: str
    gold: str | None = None
    num_tokens: int | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class RewardBreakdown:
    """`components` holds each weighted contribution (they sum to `total`); `raw` the unweighted scores."""

    total: float
    components: dict[str, float] = field(default_factory=dict)
    raw: dict[str, float] = field(default_factory=dict)


class RewardComponent(Protocol):
    """Anything with a `name` that scores a batch of samples."""

    name: str

    def score_batch(self, samples: Sequence[RewardSample]) -> list[float]: ...


@dataclass
class MathCorrectness:
    """1.0 when the completion's final answer is equivalent to the gold, else 0.0."""

    verifier: MathVerifier | None = None
    name: str = "correct"

    def score_batch(self, samples: Sequence[RewardSample]) -> list[float]:
        for index, sample in enumerate(samples):
            if sample.gold is None:
                raise ValueError(
                    f"sample {index} has no gold answer; MathCorrectness needs RewardSample.gold"
                )
        verifier = self.verifier or default_verifier()
        verdicts = verifier.verify_batch([s.gold for s in samples], [s.completion for s in samples])
        return [verdict.score for verdict in verdicts]


@dataclass
class FormatComponent:
    """The format reward of `format_reward.py`."""

    config: FormatConfig = field(default_factory=FormatConfig)
    name: str = "format"

    def score_batch(self, samples: Sequence[RewardSample]) -> list[float]:
        return [format_reward(sample.completion, self.config).score for sample in samples]


@dataclass
class OverlongComponent:
    """DAPO soft overlong punishment from each sample's token count."""

    config: OverlongConfig
    name: str = "overlong"

    def score_batch(self, samples: Sequence[RewardSample]) -> list[float]:
        scores = []
        for index, sample in enumerate(samples):
            if sample.num_tokens is None:
                raise ValueError(
                    f"sample {index} has no num_tokens; overlong shaping needs the completion's length"
                )
            scores.append(overlong_penalty(sample.num_tokens, self.config))
        return scores


@dataclass
class FunctionComponent:
    """A custom component from a per-sample function."""

    name: str
    function: Callable[[RewardSample], float]

    def score_batch(self, samples: Sequence[RewardSample]) -> list[float]:
        return [float(self.function(sample)) for sample in samples]


class CompositeReward:
    """A weighted sum of named components: `CompositeReward([(MathCorrectness(), 1.0), (FormatComponent(), 0.1)])`."""

    def __init__(self, components: Sequence[tuple[RewardComponent, float]]) -> None:
        if not components:
            raise ValueError("CompositeReward needs at least one (component, weight) pair")
        names = [component.name for component, _ in components]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"reward component names must be unique; repeated: {duplicates}")
        for component, weight in components:
            if not math.isfinite(weight):
                raise ValueError(f"weight of component {component.name!r} must be finite, got {weight}")
        self.components = list(components)

    def score_batch(self, samples: Sequence[RewardSample]) -> list[RewardBreakdown]:
        raw_by_name = {component.name: component.score_batch(samples) for component, _ in self.components}
        breakdowns = []
        for index in range(len(samples)):
            raw = {name: scores[index] for name, scores in raw_by_name.items()}
            weighted = {component.name: weight * raw[component.name] for component, weight in self.components}
            breakdowns.append(RewardBreakdown(sum(weighted.values()), weighted, raw))
        return breakdowns

    def score(self, sample: RewardSample) -> RewardBreakdown:
        return self.score_batch([sample])[0]
