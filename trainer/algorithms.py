"""Algorithm presets: each is a set of values for the pluggable pieces (ALGORITHMS.md), not a class.

A preset fills the `AlgorithmConfig` fields left unset; anything set explicitly wins, so `dapo` with
`clip_high=0.3` is DAPO with a wider upper clip.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlvr.errors import ConfigError
from rlvr.trainer.advantages import ADVANTAGE_NAMES
from rlvr.trainer.engine_correction import CORRECTIONS, LEVELS, default_correction
from rlvr.trainer.losses import AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, RATIO_LEVELS

COV_MODES = ("none", "clip_cov", "kl_cov")
BASE_LOSSES = tuple(name for name in POLICY_LOSSES if name not in COV_MODES)  # clip, pg, gpg

_BASE: dict[str, Any] = {
    "advantage": "grpo",
    "policy_loss": "clip",
    "clip_low": 0.2,
    "clip_high": 0.2,
    "clip_ratio_c": None,
    "ratio_level": "token",
    "loss_agg": "seq_mean_token_mean",
    "kl_coef": 0.0,
    "kl_estimator": "k3",
    "kl_in_reward": False,
    "filter_groups": False,
    "max_gen_batches": 1,
    "mask_truncated": False,
    "overlong_buffer": 0,
    "overlong_penalty": 1.0,
    "num_iterations": 1,
    "minibatches": 1,
    "gamma": 1.0,
    "lam": 1.0,
    "lam_critic": -1.0,
    "lam_alpha": 0.0,
    "positive_nll_coef": 0.0,
    "raft_keep": 0,
    "entropy_coef": 0.0,
}

PRESETS: dict[str, dict[str, Any]] = {
    # DeepSeekMath GRPO: group-normalised advantage, PPO clip 0.2, per-sequence mean, k3 KL in the loss.
    "grpo": {"kl_coef": 0.04},
    # DAPO: clip-higher, dynamic sampling, token-level loss, soft overlong punishment, no KL.
    "dapo": {
        "clip_high": 0.28,
        "loss_agg": "token_mean",
        "filter_groups": True,
        "max_gen_batches": 3,
        "overlong_buffer": -1,  # -1: a quarter of rollout.max_tokens (resolved by the trainer)
    },
    # Dr. GRPO: no std division, sum over tokens normalised by a constant length.
    "dr_grpo": {"advantage": "dr_grpo", "loss_agg": "seq_mean_token_sum_norm"},
    # GSPO: sequence-level, length-normalised ratio with tiny clip ranges.
    "gspo": {"ratio_level": "sequence", "clip_low": 3e-4, "clip_high": 4e-4},
    # RLOO: leave-one-out baseline.
    "rloo": {"advantage": "rloo", "loss_agg": "token_mean"},
    # REINFORCE++: per-token KL penalty in the reward, return-to-go, batch-normalised advantage.
    "reinforce_pp": {
        "advantage": "reinforce_pp",
        "kl_coef": 0.01,
        "kl_estimator": "k1",
        "kl_in_reward": True,
        "loss_agg": "token_mean",
    },
    # ReMax: baseline = reward of the greedy completion of the same prompt.
    "remax": {"advantage": "remax"},
    # GPG (arXiv 2504.02546): alpha * (r - mean) with alpha = B / B_valid, loss -A log pi (no ratio, no clip),
    # no KL, token-mean (verl's default for its gpg loss).
    "gpg": {"advantage": "gpg", "policy_loss": "gpg", "loss_agg": "token_mean", "kl_coef": 0.0},
    # REINFORCE (Williams 1992): A = r, no baseline, loss -A log pi (no ratio, no clip), token-mean.
    "reinforce": {"advantage": "reinforce", "policy_loss": "pg", "loss_agg": "token_mean"},
    # PPO with a learned critic: GAE (gamma 1, lam 0.95) over policy tokens, whitened; clip 0.2; token-mean.
    "ppo": {"advantage": "gae", "lam": 0.95, "loss_agg": "token_mean"},
    # VAPO (arXiv 2504.05118): PPO with decoupled GAE (critic lam 1: Monte-Carlo targets), length-adaptive policy
    # lam (alpha 0.05), clip-higher 0.2/0.28, token-mean, positive-example NLL (mu 0.1); value pretraining is
    # critic.warmup_steps (see CRITIC_PRESETS); group sampling is rollout.group_size.
    "vapo": {
        "advantage": "gae",
        "lam": 0.95,
        "lam_critic": 1.0,
        "lam_alpha": 0.05,
        "clip_high": 0.28,
        "loss_agg": "token_mean",
        "positive_nll_coef": 0.1,
    },
    # RAFT: online rejection-sampling fine-tuning; the solved samples of each group, their NLL (A = 1, no ratio).
    "raft": {"advantage": "raft", "policy_loss": "pg", "loss_agg": "token_mean"},
    # RAFT++ (arXiv 2504.11343): the same selection, the clipped importance ratio on it (A = 1), token-mean.
    "raft_pp": {"advantage": "raft", "loss_agg": "token_mean"},
}

CRITIC_PRESETS: dict[str, dict[str, Any]] = {
    # value pretraining before the policy moves (the paper: 50 steps of a run of thousands; CPU runs are ~20)
    "vapo": {"warmup_steps": 2},
}


def preset_values(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown algorithm preset {name!r}; choose one of {', '.join(PRESETS)}")
    return {**_BASE, **PRESETS[name]}


def resolve_algorithm(config: Any, *, engine: str = "hf") -> Any:
    """The config with unset fields taken from its preset (`engine_correction: auto` from `engine`), validated."""
    values = preset_values(config.preset)
    resolved = dataclasses.replace(config, **{k: v for k, v in values.items() if getattr(config, k) is None})
    if resolved.engine_correction == "auto":
        resolved = dataclasses.replace(resolved, engine_correction=default_correction(engine))
    _validate(resolved)
    return resolved


def resolve_critic(critic: Any, preset: str) -> Any:
    """The critic section with unset fields from the preset (`warmup_steps`: vapo 2, otherwise 0), validated."""
    values = {"warmup_steps": 0, **CRITIC_PRESETS.get(preset, {})}
    resolved = dataclasses.replace(critic, **{k: v for k, v in values.items() if getattr(critic, k) is None})
    checks = [
        (resolved.lr > 0, "lr", "> 0"),
        (resolved.warmup_steps >= 0, "warmup_steps", ">= 0"),
        (resolved.value_clip >= 0, "value_clip", ">= 0 (0: no value clipping)"),
        (resolved.micro_batch_size >= 0, "micro_batch_size", ">= 0 (0: optim.micro_batch_size)"),
        (resolved.max_grad_norm >= 0, "max_grad_norm", ">= 0"),
    ]
    for ok, name, expected in checks:
        if not ok:
            raise ConfigError(f"critic.{name} = {getattr(resolved, name)!r} is invalid: expected {expected}")
    return resolved


def _validate(a: Any) -> None:
    checks = [
        (a.advantage in ADVANTAGE_NAMES, "advantage", f"one of {', '.join(ADVANTAGE_NAMES)}"),
        (a.policy_loss in BASE_LOSSES, "policy_loss", f"one of {', '.join(BASE_LOSSES)} (and see cov_mode)"),
        (a.ratio_level in RATIO_LEVELS, "ratio_level", f"one of {', '.join(RATIO_LEVELS)}"),
        (
            a.policy_loss == "clip" or a.ratio_level == "token",
            "ratio_level",
            f"token with policy_loss={a.policy_loss} (it has no ratio; use policy_loss=clip for GSPO)",
        ),
        (a.loss_agg in AGGREGATIONS, "loss_agg", f"one of {', '.join(AGGREGATIONS)}"),
        (a.kl_estimator in KL_ESTIMATORS, "kl_estimator", f"one of {', '.join(KL_ESTIMATORS)}"),
        (a.clip_low >= 0 and a.clip_high >= 0, "clip_low/clip_high", ">= 0"),
        (a.clip_ratio_c is None or a.clip_ratio_c > 1, "clip_ratio_c", "> 1 or null"),
        (a.kl_coef >= 0, "kl_coef", ">= 0"),
        (a.max_gen_batches >= 1, "max_gen_batches", ">= 1"),
        (a.overlong_buffer >= -1, "overlong_buffer", ">= 0 tokens, or -1 for max_tokens / 4"),
        (a.num_iterations >= 1, "num_iterations", ">= 1"),
        (a.minibatches >= 1, "minibatches", ">= 1"),
        (0 < a.gamma <= 1, "gamma", "in (0, 1]"),
        (0 <= a.lam <= 1, "lam", "in [0, 1]"),
        (a.lam_critic == -1 or 0 <= a.lam_critic <= 1, "lam_critic", "in [0, 1], or -1 for lam"),
        (a.lam_alpha >= 0, "lam_alpha", ">= 0 (0: fixed lam; VAPO: 0.05)"),
        (a.positive_nll_coef >= 0, "positive_nll_coef", ">= 0"),
        (a.raft_keep >= 0, "raft_keep", ">= 0 (0: every solved sample)"),
        (a.entropy_coef >= 0, "entropy_coef", ">= 0 (a bonus; 0: off)"),
        (a.cov_mode in COV_MODES, "cov_mode", f"one of {', '.join(COV_MODES)}"),
        (a.cov_mode == "none" or a.policy_loss == "clip", "cov_mode", "none unless policy_loss=clip"),
        (
            a.cov_mode == "none" or (a.ratio_level == "token" and a.clip_ratio_c is None),
            "cov_mode",
            "none with ratio_level=sequence or clip_ratio_c (Clip-Cov/KL-Cov are token-level, no dual clip)",
        ),
        (
            a.cov_mode != "kl_cov" or a.num_iterations * a.minibatches > 1,
            "cov_mode",
            "clip_cov, or kl_cov with num_iterations or minibatches > 1 (with one optimiser step pi_old is "
            "pi itself and the KL-Cov penalty abs(log pi - log pi_old) is 0)",
        ),
        (0 < a.clip_cov_ratio <= 1 and 0 < a.kl_cov_ratio <= 1, "clip_cov_ratio/kl_cov_ratio", "in (0, 1]"),
        (a.clip_cov_lb <= a.clip_cov_ub, "clip_cov_lb", "<= clip_cov_ub"),
        (a.kl_cov_coef >= 0, "kl_cov_coef", ">= 0"),
        (a.engine_correction in CORRECTIONS, "engine_correction", f"one of {', '.join(CORRECTIONS)} or auto"),
        (a.engine_correction_cap > 1, "engine_correction_cap", "> 1 (e.g. 2.0)"),
        (a.engine_correction_level in LEVELS, "engine_correction_level", f"one of {', '.join(LEVELS)}"),
    ]
    for ok, name, expected in checks:
        if not ok:
            raise ConfigError(
                f"algorithm.{name} = {getattr(a, name.split('/')[0])!r} is invalid: expected {expected}"
            )
