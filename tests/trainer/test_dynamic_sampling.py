"""DAPO dynamic sampling: informative groups and batch refill (ALGORITHMS.md section 6.2)."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError
from rlvr.trainer.dynamic_sampling import FillStats, fill_batch, informative_groups


def test_informative_groups_drop_all_right_and_all_wrong():
    ids = ["a", "b", "a", "b", "c", "c", "c", "d"]
    acc = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.5, 0.0]
    # a: {1, 0} kept; b: all 1 dropped; c: {0, 0, 0.5} kept; d: a lone 0 dropped
    assert informative_groups(ids, acc) == {"a", "c"}
    assert informative_groups([3, 3, 9, 9], [0, 0, 1, 1]) == set()


def test_informative_groups_length_mismatch():
    with pytest.raises(ConfigError, match="accuracies"):
        informative_groups(["a", "a"], [1.0])


def _script(*batches):
    """draw() returning the given batches in order; a draw past the script fails the test."""
    it = iter(batches)

    def draw():
        batch = next(it, None)
        assert batch is not None, "fill_batch drew more batches than needed"
        return list(batch)

    return draw


# Groups are (name, informative) pairs; batches with 1, 0 and 3 informative groups.
SCRIPT = (
    [("g1", True), ("g2", False)],
    [("g3", False)],
    [("g4", True), ("g5", True), ("g6", True), ("g7", False)],
)


def keep(group):
    return group[1]


def test_refill_until_target_then_truncate():
    kept, stats = fill_batch(_script(*SCRIPT), target_groups=3, max_gen_batches=10, keep=keep)
    assert [g[0] for g in kept] == ["g1", "g4", "g5"]
    # 3 draws, 2 + 1 + 4 groups, 4 passed the filter (one truncated), batch full
    assert stats == FillStats(batches_drawn=3, groups_drawn=7, groups_kept=4, filled=True)


def test_draw_limit_returns_what_was_kept():
    kept, stats = fill_batch(_script(*SCRIPT), target_groups=3, max_gen_batches=2, keep=keep)
    assert [g[0] for g in kept] == ["g1"]
    assert stats == FillStats(batches_drawn=2, groups_drawn=3, groups_kept=1, filled=False)


def test_one_draw_when_the_first_batch_suffices():
    kept, stats = fill_batch(_script(SCRIPT[2]), target_groups=2, max_gen_batches=5, keep=keep)
    assert [g[0] for g in kept] == ["g4", "g5"]
    assert stats == FillStats(batches_drawn=1, groups_drawn=4, groups_kept=3, filled=True)


@pytest.mark.parametrize(("target", "limit", "field"), [(3, 0, "max_gen_batches"), (0, 1, "target_groups")])
def test_invalid_limits(target, limit, field):
    with pytest.raises(ConfigError, match=field):
        fill_batch(_script(), target_groups=target, max_gen_batches=limit, keep=keep)
