"""Data scheduling (issue 16 items 1-3): task history, history resampling, curricula, knapsack allocation."""

from __future__ import annotations

import itertools
import json
import random
import time
import warnings

import numpy as np
import pytest

from rlvr.envs.suite import Suite, SuiteEntry
from rlvr.errors import ConfigError
from rlvr.trainer.knapsack import allocate, candidate_count, group_offsets, total_value, value
from rlvr.trainer.scheduling import LevelCurriculum, TaskSampler, epoch_steps, kth_free
from rlvr.trainer.task_history import ALL_CORRECT, ALL_WRONG, MIXED, TaskHistory

ARITH = "rlvr/arithmetic-v0"


def _suite(size: int, seed: int = 0, **overrides: object) -> Suite:
    return Suite([SuiteEntry(ARITH, 1.0, {"size": size, **overrides})], seed=seed)


# --- task history -------------------------------------------------------------------------------------------


def test_history_records_groups_and_last_outcome() -> None:
    h = TaskHistory()
    assert h.observe((ARITH, 3), [1.0, 1.0], step=1) == ALL_CORRECT
    assert h.observe((ARITH, 4), [0.0, 0.0, 0.0], step=1) == ALL_WRONG
    assert h.observe((ARITH, 3), [1.0, 0.0], step=2) == MIXED
    r = h.record((ARITH, 3))
    assert (r.groups, r.samples, r.solved, r.last_samples, r.last_solved, r.last_step) == (
        2,
        4,
        3.0,
        2,
        1.0,
        2,
    )
    assert h.outcome_counts() == {ALL_CORRECT: 0, ALL_WRONG: 1, MIXED: 1}
    assert h.all_correct(ARITH) == {} and len(h) == 2
    with pytest.raises(ConfigError):
        h.observe((ARITH, 5), [], step=1)
    with pytest.raises(ConfigError):
        h.observe((ARITH, 5), [1.5], step=1)


def test_pass_rate_is_the_beta_posterior_of_the_last_group() -> None:
    h = TaskHistory(prior_strength=2.0)
    assert h.pass_rate((ARITH, 0)) == 0.5  # Beta(1, 1) before anything is seen
    h.observe((ARITH, 1), [0.0] * 4, step=1)
    # m = (1 + 0) / (2 + 4) = 1/6, a = 1/3, b = 5/3: p = (1/3 + 0) / (2 + 4) = 1/18
    assert h.pass_rate((ARITH, 1)) == pytest.approx(1 / 18)
    assert h.pass_rate((ARITH, 9)) == pytest.approx(1 / 6)
    h.observe((ARITH, 2), [0.0, 0.0], step=1)
    h.observe((ARITH, 2), [1.0] * 4, step=2)  # replaces task 2's last group in the pooled mean
    # m = (1 + 4) / (2 + 8) = 1/2, a = b = 1: p1 = 1 / 6, p2 = 5 / 6
    assert h.pass_rates([(ARITH, 1), (ARITH, 2), (ARITH, 7)]) == pytest.approx([1 / 6, 5 / 6, 1 / 2])
    assert h.pass_rate(("other-v0", 0)) == 0.5  # priors are per environment


def test_history_state_survives_json_exactly() -> None:
    h = TaskHistory(prior_strength=3.0)
    rng = random.Random(0)
    for step in range(1, 30):
        h.observe(("a-v0", rng.randrange(20)), [rng.random() for _ in range(rng.randint(1, 6))], step)
        h.observe(("b-v0", rng.randrange(5)), [float(rng.random() < 0.5)] * 3, step)
    restored = TaskHistory()
    restored.load_state_dict(json.loads(json.dumps(h.state_dict())))
    keys = [(e, i) for e in ("a-v0", "b-v0", "c-v0") for i in range(25)]
    assert restored.pass_rates(keys) == h.pass_rates(keys)  # bit for bit
    assert restored.state_dict() == h.state_dict()
    assert restored.all_correct("b-v0") == h.all_correct("b-v0")
    for history in (h, restored):
        history.observe(("a-v0", 1), [0.25, 1.0], 30)
    assert restored.pass_rates(keys) == h.pass_rates(keys)


def test_pass_rate_histogram_and_forget() -> None:
    h = TaskHistory()
    h.observe((ARITH, 0), [0.0, 0.0], 1)
    h.observe((ARITH, 1), [1.0, 0.0], 1)
    h.observe((ARITH, 2), [1.0, 1.0], 1)
    h.observe(("x-v0", 0), [1.0, 1.0, 1.0, 0.0], 1)
    assert h.pass_rates_histogram(4) == [1, 0, 1, 2]  # 0, 0.5, 1.0 (last bin), 0.75
    h.forget(ARITH)
    assert h.pass_rates_histogram(2) == [0, 1] and h.pass_rate((ARITH, 0)) == 0.5


# --- history resampling -------------------------------------------------------------------------------------


def test_sampler_with_no_option_is_suite_sample() -> None:
    history = TaskHistory()
    history.observe((ARITH, 2), [1.0, 1.0], 1)  # an all-correct task: not skipped when resampling is off
    mixed = Suite.parse(f"{ARITH},rlvr/countdown-v0:2", seed=7)
    plain = Suite.parse(f"{ARITH},rlvr/countdown-v0:2", seed=7)
    assert TaskSampler(mixed, history).sample(40, step=2) == plain.sample(40)


def test_kth_free_matches_enumeration() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        taken = np.unique(rng.integers(0, 30, size=int(rng.integers(0, 20))))
        free = [i for i in range(60) if i not in set(taken.tolist())]
        assert [kth_free(k, taken) for k in range(20)] == free[:20]


def test_retired_tasks_are_not_drawn_and_all_wrong_ones_stay() -> None:
    suite, history = _suite(10), TaskHistory()
    for i in range(7):
        history.observe((ARITH, i), [1.0] * 4, step=1)
    history.observe((ARITH, 7), [0.0] * 4, step=1)
    history.observe((ARITH, 8), [1.0, 0.0], step=1)
    sampler = TaskSampler(suite, history, history_resampling=True)
    drawn = {d.task_index for d in sampler.sample(300, step=2)}
    assert drawn == {7, 8, 9}
    assert sampler.metrics(2)["scheduling/retired"] == 7.0
    history.observe(
        (ARITH, 0), [1.0, 0.0], step=2
    )  # drawn again (e.g. a fallback) and no longer solved: back
    assert 0 not in sampler.retired(ARITH, 3).tolist()


def test_retire_epochs_bring_tasks_back_after_an_epoch_of_steps() -> None:
    suite, history = _suite(10), TaskHistory()
    assert epoch_steps(10, 5, 1.0) == 2 and epoch_steps(7473, 64, 0.25) == 468
    sampler = TaskSampler(suite, history, history_resampling=True, retire_epochs=2, draws_per_step=5)
    history.observe((ARITH, 0), [1.0, 1.0], step=3)  # retired for 2 epochs = 4 steps: steps 4..7
    assert [0 in sampler.retired(ARITH, s).tolist() for s in (4, 7, 8)] == [True, True, False]
    forever = TaskSampler(suite, history, history_resampling=True, retire_epochs=0)
    assert forever.retired(ARITH, 10**6).tolist() == [0]


def test_everything_retired_falls_back_to_uniform_with_one_warning() -> None:
    suite, history = _suite(4), TaskHistory()
    for i in range(4):
        history.observe((ARITH, i), [1.0], step=1)
    for curriculum in ("none", "pass_rate"):
        sampler = TaskSampler(suite, history, history_resampling=True, curriculum=curriculum)
        with pytest.warns(RuntimeWarning, match="every task of rlvr/arithmetic-v0 is retired"):
            first = sampler.sample(20, step=2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            second = sampler.sample(20, step=3)
        assert {d.task_index for d in first + second} == {0, 1, 2, 3} and sampler.fallbacks == 40


# --- pass-rate curriculum -----------------------------------------------------------------------------------


def test_curriculum_draws_in_proportion_to_f_of_the_pass_rate() -> None:
    suite, history = _suite(6, seed=3), TaskHistory()
    history.observe((ARITH, 0), [1.0] * 4, 1)  # retired under resampling
    history.observe((ARITH, 1), [0.0] * 4, 1)
    history.observe((ARITH, 2), [1.0, 0.0, 1.0, 0.0], 1)
    sampler = TaskSampler(suite, history, history_resampling=True, curriculum="pass_rate", weight="variance")
    p = np.array(history.pass_rates([(ARITH, i) for i in range(6)]))  # tasks 3-5 unseen: the prior mean
    w = p * (1 - p)
    w[0] = 0.0
    counts = np.bincount([d.task_index for d in sampler.sample(6000, step=2)], minlength=6)
    assert counts / 6000 == pytest.approx(w / w.sum(), abs=0.02)
    kimi = TaskSampler(_suite(6, seed=3), history, curriculum="pass_rate", weight="kimi")
    counts = np.bincount([d.task_index for d in kimi.sample(6000, step=2)], minlength=6)
    assert counts / 6000 == pytest.approx((1 - p) / (1 - p).sum(), abs=0.02)


def test_curriculum_on_a_suite_of_gsm8k_size_never_lists_unseen_tasks() -> None:
    """7,473 tasks (GSM8K's train split), 3,000 seen (half all wrong, half 4/8): draws follow the weights."""
    suite, history = _suite(7473, seed=1), TaskHistory()
    rng = np.random.default_rng(0)
    seen = rng.choice(7473, size=3000, replace=False)
    wrong, half = seen[:1500], seen[1500:]
    for i in wrong:
        history.observe((ARITH, int(i)), [0.0] * 8, 1)
    for i in half:
        history.observe((ARITH, int(i)), [1.0, 0.0] * 4, 1)
    sampler = TaskSampler(suite, history, curriculum="pass_rate")
    start = time.perf_counter()
    draws = np.array([d.task_index for d in sampler.sample(3000, step=2)])
    assert time.perf_counter() - start < 2.0
    a, b = history.prior(ARITH)  # mean (1 + 6000) / (2 + 24000) ~ 0.25
    p = np.array([a / (a + b + 8), (a + 4) / (a + b + 8), a / (a + b)])  # all wrong, half, unseen
    w = np.maximum(p * (1 - p), 1e-3) * [1500, 1500, 4473]
    got = [np.isin(draws, wrong).mean(), np.isin(draws, half).mean(), 1 - np.isin(draws, seen).mean()]
    assert got == pytest.approx(w / w.sum(), abs=0.03)
    assert draws.min() >= 0 and draws.max() < 7473


def test_sampler_rejects_bad_settings() -> None:
    suite = _suite(5)
    for kwargs in ({"curriculum": "kimi"}, {"weight": "cosine"}, {"retire_epochs": -1}, {"eps": 0.0}):
        with pytest.raises(ConfigError):
            TaskSampler(suite, TaskHistory(), **kwargs)


# --- level curriculum ---------------------------------------------------------------------------------------


def test_level_curriculum_moves_up_on_the_rolling_accuracy() -> None:
    c = LevelCurriculum(levels=(1, 2, 3), window=4, threshold=0.75)
    assert not c.observe([1.0, 1.0, 0.0]) and c.level == 1  # window not full yet
    assert c.observe(1.0) and c.level == 2  # [1, 1, 0, 1]: 0.75
    assert not c.observe([1.0, 1.0, 1.0]) and c.level == 2  # the window restarted at the new level
    assert not c.observe([0.0, 0.0]) and c.level == 2  # rolling: the last 4 are [1, 1, 0, 0]
    restored = LevelCurriculum(levels=(1, 2, 3), window=4, threshold=0.75)
    restored.load_state_dict(json.loads(json.dumps(c.state_dict())))
    assert restored.level == c.level == 2
    for expected in (False, False, True):  # the last 4: [1, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 1]
        assert restored.observe(1.0) is c.observe(1.0) is expected
    assert c.level == 3 and not c.observe([1.0] * 8) and c.level == 3  # the last level stays
    with pytest.raises(ConfigError):
        LevelCurriculum(window=0)


def test_suite_set_overrides_remakes_the_environment() -> None:
    suite = Suite([SuiteEntry(ARITH, 2.0, {"level": 1})])
    before = suite.envs(ARITH, 1)[0]
    suite.set_overrides(ARITH, {"level": 4})
    after = suite.envs(ARITH, 1)[0]
    assert after is not before and suite.entries[0] == SuiteEntry(ARITH, 2.0, {"level": 4})
    with pytest.raises(ConfigError):
        suite.set_overrides(ARITH, {"colour": "red"})
    with pytest.raises(ConfigError):
        suite.set_overrides("rlvr/countdown-v0", {})


# --- knapsack allocation ------------------------------------------------------------------------------------


def test_value_formula() -> None:
    assert value(2, 0.5) == pytest.approx((1 - 0.25 - 0.25) * 0.5 * 0.25)
    assert value(0, 0.3) == 0.0 and value(1, 0.3) == pytest.approx(0.0)  # no pair, no gradient
    assert value(50, 0.0) == 0.0 and value(50, 1.0) == 0.0


def _brute_force(p: list[float], budget: int, low: int, high: int) -> float:
    best = -1.0
    for sizes in itertools.product(range(low, high + 1), repeat=len(p)):
        if sum(sizes) == budget:
            best = max(best, total_value(p, sizes))
    return best


def test_allocate_equals_brute_force_on_small_cases() -> None:
    rng = random.Random(0)
    for _ in range(150):
        k, low = rng.randint(1, 4), rng.randint(0, 2)
        high = rng.randint(max(low, 1), 6)
        budget = rng.randint(k * low, k * high)
        p = [
            rng.choice([0.0, 1.0, round(rng.random(), 3)]) if rng.random() < 0.2 else rng.random()
            for _ in range(k)
        ]
        sizes = allocate(p, budget, low, high)
        assert sum(sizes) == budget and all(low <= n <= high for n in sizes)
        assert total_value(p, sizes) == pytest.approx(
            _brute_force(p, budget, low, high), rel=1e-12, abs=1e-15
        )
        assert allocate(p, budget, low, high) == sizes  # deterministic


def test_allocate_favours_hard_but_solvable_tasks() -> None:
    sizes = allocate([0.9, 0.1, 0.0, 1.0, 0.5], budget=40, min_group=2, max_group=24)
    easy, hard, impossible, solved, middle = sizes
    assert hard > middle > easy and hard > impossible == 2 and solved == 2
    assert allocate([0.3] * 6, budget=48, min_group=2, max_group=20) == [8] * 6  # equal p: the uniform split


def test_allocate_rejects_infeasible_budgets() -> None:
    for args in (([0.5] * 4, 7, 2, 8), ([0.5] * 4, 33, 2, 8), ([0.5], 4, 3, 2), ([1.5], 4, 1, 8)):
        with pytest.raises(ConfigError) as error:
            allocate(*args)
        assert "\n" not in str(error.value)


def test_candidate_count_and_offsets() -> None:
    assert candidate_count(8, 8, 2, 32) == 8  # the paper's setting: same prompts, budget moved between them
    assert candidate_count(8, 8, 0, 32, overprovision=1.5) == 12
    assert candidate_count(8, 8, 4, 32, overprovision=4.0) == 16  # <= B / min_group = 64 / 4
    assert candidate_count(8, 8, 1, 4) == 16  # >= B / max_group
    with pytest.raises(ConfigError):
        candidate_count(8, 8, 2, 32, overprovision=0.5)
    assert group_offsets([3, 0, 2]) == [0, 3, 3, 5]


def test_resumed_sampler_draws_the_same_tasks() -> None:
    """History state + the suite's generator state (both in the checkpoint): the same draws after resume."""
    suite, history = _suite(50, seed=4), TaskHistory()
    sampler = TaskSampler(suite, history, history_resampling=True, retire_epochs=1, curriculum="pass_rate")
    for step in range(1, 6):
        for d in sampler.sample(8, step):
            history.observe((d.env_id, d.task_index), [float((d.task_index * step) % 3 == 0)] * 4, step)
    restored_history, restored_suite = TaskHistory(), _suite(50, seed=99)
    restored_history.load_state_dict(json.loads(json.dumps(history.state_dict())))
    restored_suite.rng.bit_generator.state = suite.rng.bit_generator.state
    restored = TaskSampler(
        restored_suite, restored_history, history_resampling=True, retire_epochs=1, curriculum="pass_rate"
    )
    assert restored.sample(30, step=6) == sampler.sample(30, step=6)
