"""DAPO dynamic sampling (ALGORITHMS.md section 6.2): keep only informative groups, refill the batch.

A group whose accuracies are all equal (all 0 or all 1) has zero advantage under every group baseline, so it
carries no gradient; drop it and draw more generation batches until the training batch is full, at most
``max_gen_batches`` times.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rlvr.errors import ConfigError

G = TypeVar("G")


def informative_groups(group_ids: Sequence[Hashable], accuracies: Sequence[float]) -> set:
    """Ids of the groups whose accuracies are not all equal (use accuracy, not the shaped reward)."""
    if len(group_ids) != len(accuracies):
        raise ConfigError(
            f"{len(group_ids)} group ids but {len(accuracies)} accuracies; pass one accuracy per sample"
        )
    lo: dict = {}
    hi: dict = {}
    for gid, acc in zip(group_ids, accuracies, strict=True):
        acc = float(acc)
        lo[gid] = min(lo.get(gid, acc), acc)
        hi[gid] = max(hi.get(gid, acc), acc)
    return {gid for gid in lo if lo[gid] != hi[gid]}


@dataclass(frozen=True)
class FillStats:
    """What one fill_batch call did (log it: the draw count is DAPO's extra generation cost)."""

    batches_drawn: int  # generation batches drawn
    groups_drawn: int  # groups in those batches
    groups_kept: int  # groups that passed `keep`, before truncation to target_groups
    filled: bool  # whether target_groups were reached


def fill_batch(
    draw: Callable[[], list[G]],
    target_groups: int,
    max_gen_batches: int,
    keep: Callable[[G], bool],
) -> tuple[list[G], FillStats]:
    """Draw generation batches until `target_groups` groups pass `keep`, or `max_gen_batches` draws.

    Returns the kept groups in draw order, truncated to `target_groups` (possibly fewer when the draw limit
    is reached), and the stats.
    """
    if max_gen_batches < 1:
        raise ConfigError(f"max_gen_batches={max_gen_batches} must be >= 1 (DAPO uses e.g. 10)")
    if target_groups < 1:
        raise ConfigError(f"target_groups={target_groups} must be >= 1: the training batch's prompt count")
    kept: list[G] = []
    batches = groups = 0
    while len(kept) < target_groups and batches < max_gen_batches:
        batch = draw()
        batches += 1
        groups += len(batch)
        kept.extend(g for g in batch if keep(g))
    stats = FillStats(
        batches_drawn=batches,
        groups_drawn=groups,
        groups_kept=len(kept),
        filled=len(kept) >= target_groups,
    )
    return kept[:target_groups], stats
