"""Suites: weighted sampling of environments, pooled environment objects, per-environment metrics."""

from __future__ import annotations

import pytest

from rlvr.envs.rollout import ReplayPolicy, rollout
from rlvr.envs.suite import Draw, Suite, SuiteEntry, suite_metrics
from rlvr.errors import ConfigError

GCD, LCM = "rlvr/rg-gcd-v0", "rlvr/rg-lcm-v0"


def test_sampling_follows_the_weights_and_is_reproducible():
    suite = Suite([(GCD, 3.0), (LCM, 1.0)], seed=1)
    draws = suite.sample(4000)
    share = sum(d.env_id == GCD for d in draws) / len(draws)
    assert 0.72 < share < 0.78  # expected 0.75; 4000 draws give a standard error of ~0.007
    assert Suite([(GCD, 3.0), (LCM, 1.0)], seed=1).sample(50) == draws[:50]
    assert Suite([(GCD, 3.0), (LCM, 1.0)], seed=2).sample(50) != draws[:50]
    assert all(0 <= d.task_index < 10_000 for d in draws)


def test_parse_and_validation():
    suite = Suite.parse(f"{GCD}:2, {LCM}")
    assert [(e.id, e.weight) for e in suite.entries] == [(GCD, 2.0), (LCM, 1.0)]
    with pytest.raises(ConfigError, match="positive"):
        SuiteEntry(GCD, 0.0)
    with pytest.raises(ConfigError, match="repeated"):
        Suite([GCD, GCD])
    with pytest.raises(ConfigError, match="at least one"):
        Suite([])


def test_episodes_reuse_a_pool_of_distinct_env_objects_and_overrides_apply():
    suite = Suite([SuiteEntry(GCD, 1.0, {"size": 50}), (LCM, 1.0)])
    draws = [Draw(GCD, 1), Draw(GCD, 2), Draw(LCM, 3)]
    envs, options = suite.episodes(draws)
    assert len({id(e) for e in envs}) == 3 and options[2] == {"task_index": 3}
    assert suite.num_tasks(GCD) == 50
    again, _ = suite.episodes(draws)
    assert {id(e) for e in again} == {id(e) for e in envs}


def test_per_environment_metrics_from_a_rollout():
    suite = Suite([GCD, LCM])
    draws = [Draw(GCD, 0), Draw(GCD, 1), Draw(LCM, 0)]
    envs, options = suite.episodes(draws)
    references = []
    for env, option in zip(envs, options, strict=True):
        env.reset(options=option)
        references.append([env.unwrapped.reference_action()])
    references[1] = ["<answer>-1</answer>"]
    metrics = suite_metrics(rollout(envs, ReplayPolicy(references), options=options))
    assert metrics[f"{GCD}/count"] == 2 and metrics[f"{GCD}/solved"] == 0.5
    assert metrics[f"{LCM}/reward"] == 1.0 and metrics[f"{LCM}/rewards/correct"] == 1.0
    assert metrics["all/count"] == 3 and metrics["all/solved"] == pytest.approx(2 / 3)
    suite.close()
