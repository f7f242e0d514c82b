"""Engine/trainer mismatch correction (ALGORITHMS.md 7d): importance weights pi_old / pi_engine.

The engine (vLLM) samples from pi_engine, which differs from the trainer's pi_old (kernels, precision), so the
batch is slightly off-policy for the loss. Per policy token t of sequence i:

    log w_t = log pi_old(y_t) - log pi_engine(y_t)          level "token"
    log w_i = sum_t log w_t  (w_i = prod_t w_t)              level "sequence": every token of i gets w_i
    tis: weight = min(w, C)                                   truncated IS (TRL, verl `rollout_is`)
    mis: weight = w if 1/C <= w <= C else 0                   masked IS (verl `rollout_rs` + `rollout_is`)

The weights are detached and multiply each token's policy loss before aggregation; the aggregation's
denominators are unchanged, so a masked token still counts there (TRL's choice; see docs/TRAINING.md).
Overflow: the sequence log-ratio is summed in log space and never exponentiated above log C (tis takes
exp(min(log w, log C)), mis decides |log w| <= log C before exp), so a weight is at most C; the logged mean
ratio clamps |log w| at 20 first, as the policy ratio does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from rlvr.errors import ConfigError
from rlvr.trainer.losses import LOG_RATIO_LIMIT


def _none(log_w: Tensor, log_cap: float) -> Tensor:
    return torch.ones_like(log_w)


def _truncated(log_w: Tensor, log_cap: float) -> Tensor:
    # min(w, C) = exp(min(log w, log C)): exact, and never above C
    return log_w.clamp(max=log_cap).exp()


def _masked(log_w: Tensor, log_cap: float) -> Tensor:
    # w where 1/C <= w <= C (decided in log space), else 0
    keep = log_w.abs() <= log_cap
    return torch.where(keep, log_w.clamp(-log_cap, log_cap).exp(), torch.zeros_like(log_w))


CORRECTIONS: dict[str, Callable[[Tensor, float], Tensor]] = {"none": _none, "tis": _truncated, "mis": _masked}
LEVELS = ("token", "sequence")


def default_correction(engine: str) -> str:
    """`tis` for an engine with its own copy of the weights (vllm), `none` for hf (it samples with the trainer's)."""
    return "none" if engine == "hf" else "tis"


def correction_weights(
    old_logprobs: Tensor,
    engine_logprobs: Tensor,
    mask: Tensor,
    *,
    mode: str,
    cap: float,
    level: str = "token",
) -> tuple[Tensor, dict[str, Tensor]]:
    """Detached weights (B, T) for the token losses (0 off the policy tokens), and metrics over policy tokens.

    ``old_logprobs`` are the trainer's log-probs of the policy that generated the batch, ``engine_logprobs``
    the engine's sampling log-probs of the same tokens, ``mask`` (B, T) is 1 on policy tokens. Metrics (0-dim):
    ``ratio_mean`` (w before truncation or masking; sequence level: each token carries its sequence's w),
    ``truncated_frac`` (tis: w > C), ``masked_frac`` (mis: w outside [1/C, C]), both fractions of policy
    tokens, and ``kl``, the k3 estimate of KL(engine || trainer) per token: with r = pi_old / pi_engine and
    tokens drawn from the engine, E[r - 1 - log r] = KL(pi_engine || pi_old).
    """
    if mode not in CORRECTIONS:
        raise ConfigError(f"unknown engine_correction {mode!r}; valid: {', '.join(CORRECTIONS)}")
    if level not in LEVELS:
        raise ConfigError(f"unknown engine_correction_level {level!r}; valid: {', '.join(LEVELS)}")
    if not cap > 1:
        raise ConfigError(f"engine_correction_cap = {cap!r} must be > 1 (e.g. 2.0)")
    with torch.no_grad():
        policy = mask > 0
        zero = torch.zeros_like(old_logprobs)
        token_log_w = torch.where(policy, old_logprobs - engine_logprobs, zero)  # (B, T); padding may be -inf
        log_w = token_log_w
        if level == "sequence":
            log_w = torch.where(policy, token_log_w.sum(dim=1, keepdim=True).expand_as(token_log_w), zero)
        log_cap = math.log(cap)
        # a nan log w (a sequence with both an impossible and a certain token, inf - inf) gets weight 0
        weights = torch.where(policy, CORRECTIONS[mode](log_w, log_cap).nan_to_num(nan=0.0), zero)  # (B, T)
        m = policy.double()  # metrics in float64: k3 of a float32 gap of 1e-5 is ~5e-11
        count = m.sum().clamp(min=1)
        log_w, token_log_w = log_w.double(), token_log_w.double()
        x = token_log_w.clamp(max=LOG_RATIO_LIMIT)  # log r; k3 = r - 1 - log r >= 0
        not_applied = m.new_zeros(())
        metrics = {
            "ratio_mean": (log_w.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT).exp() * m).sum() / count,
            "truncated_frac": ((log_w > log_cap) * m).sum() / count if mode == "tis" else not_applied,
            "masked_frac": ((log_w.abs() > log_cap) * m).sum() / count if mode == "mis" else not_applied,
            "kl": ((torch.expm1(x) - x) * m).sum() / count,
        }
    return weights, metrics
