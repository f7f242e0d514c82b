"""Policy loss pieces (ALGORITHMS.md sections 3-5): clipped surrogate, aggregation, KL estimators, entropy.

Token losses are to be minimised (minus the surrogate) and exactly 0 where mask == 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rlvr.errors import ConfigError

LOG_RATIO_LIMIT = (
    20.0  # |log rho| is clamped here before exp (as verl does), so a stale token cannot overflow
)


def _check_name(kind: str, name: str, table: dict) -> None:
    if name not in table:
        raise ConfigError(f"unknown {kind} {name!r}; valid: {sorted(table)}")


def _masked_mean(x: Tensor, m: Tensor) -> Tensor:
    return (x * m).sum() / m.sum().clamp(min=1)


# ---------------------------------------------------------------------------------------------------------
# Importance ratio: log rho per token, (B, T)


def _token_log_ratio(logprobs: Tensor, old_logprobs: Tensor, m: Tensor) -> Tensor:
    # log rho_{i,t} = log pi_theta - log pi_old
    return logprobs - old_logprobs


def _sequence_log_ratio(logprobs: Tensor, old_logprobs: Tensor, m: Tensor) -> Tensor:
    # GSPO: log s_i = (1/|o_i|) sum_t log rho_{i,t}; per token sg[log s_i] + log pi - sg[log pi]
    # (value s_i on every token, gradient s_i * grad log pi_{i,t}: the GSPO-token form)
    lengths = m.sum(dim=1).clamp(min=1)  # (B,)
    log_rho = torch.where(m > 0, logprobs - old_logprobs, torch.zeros_like(logprobs))  # padding may be -inf
    log_s = log_rho.sum(dim=1) / lengths  # (B,)
    return log_s.detach()[:, None] + logprobs - logprobs.detach()  # (B, T)


RATIO_LEVELS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "token": _token_log_ratio,
    "sequence": _sequence_log_ratio,
}


# ---------------------------------------------------------------------------------------------------------
# Policy-loss variants: token losses (B, T) from the ratio rho, the log-probs and the advantages (all (B, T)),
# and the boolean masks of the tokens each bound acted on ("low", "high", "dual").


def _clip_surrogate(
    ratio: Tensor,
    logprobs: Tensor,
    adv: Tensor,
    *,
    clip_low: float,
    clip_high: float,
    clip_ratio_c: float | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    # PPO/GRPO: L = -min(rho A, clip(rho, 1 - clip_low, 1 + clip_high) A); dual clip: L = min(L, -c A) for A < 0
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1 - clip_low, 1 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    dual = torch.zeros_like(adv, dtype=torch.bool)
    if clip_ratio_c is not None:
        bound = -adv * clip_ratio_c  # surrogate >= clip_ratio_c * A when A < 0
        dual = (adv < 0) & (loss > bound)
        loss = torch.where(dual, bound, loss)
    acted = {
        "low": (ratio < 1 - clip_low) & (adv < 0),
        "high": (ratio > 1 + clip_high) & (adv > 0),
        "dual": dual,
    }
    return loss, acted


def _gpg(
    ratio: Tensor,
    logprobs: Tensor,
    adv: Tensor,
    *,
    clip_low: float,
    clip_high: float,
    clip_ratio_c: float | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    # GPG (arXiv 2504.02546): L = -A log pi_theta; no ratio, no clip (the clip settings are unused)
    none = torch.zeros_like(adv, dtype=torch.bool)
    return -adv * logprobs, {"low": none, "high": none, "dual": none}


POLICY_LOSSES: dict[str, Callable[..., tuple[Tensor, dict[str, Tensor]]]] = {
    "clip": _clip_surrogate,
    "gpg": _gpg,
}


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float,
    clip_high: float,
    clip_ratio_c: float | None = None,
    ratio_level: str = "token",
    variant: str = "clip",
) -> tuple[Tensor, dict[str, Tensor]]:
    """Token losses (B, T) of the named policy-loss variant, and detached stats (means over policy tokens).

    ``clip``: L = -min(rho * A, clip(rho, 1 - clip_low, 1 + clip_high) * A); with dual clip, for A < 0,
    L = min(L, -clip_ratio_c * A). ``gpg``: L = -A * log pi (GPG: no ratio, no clip; rho is only logged).
    ``advantages`` is (B,) (broadcast to tokens) or (B, T). ``ratio_level="sequence"`` is GSPO: rho is the
    length-normalised sequence ratio s_i.
    """
    _check_name("policy loss", variant, POLICY_LOSSES)
    _check_name("ratio_level", ratio_level, RATIO_LEVELS)
    if clip_low < 0 or clip_high < 0:
        raise ConfigError(f"clip_low={clip_low} and clip_high={clip_high} must be >= 0 (e.g. 0.2 and 0.28)")
    if clip_ratio_c is not None and clip_ratio_c <= 1:
        raise ConfigError(f"clip_ratio_c={clip_ratio_c} must be > 1 (e.g. 3.0), or None to disable dual clip")
    m = mask.to(logprobs.dtype)  # (B, T)
    policy = m > 0
    adv = (advantages[:, None] if advantages.dim() == 1 else advantages).to(logprobs.dtype).expand_as(m)
    log_ratio = RATIO_LEVELS[ratio_level](logprobs, old_logprobs, m)
    # masked positions may hold garbage (-inf padding): zero them before exp so neither value nor grad is nan
    log_ratio = torch.where(policy, log_ratio, torch.zeros_like(log_ratio))
    ratio = log_ratio.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT).exp()  # (B, T)
    safe_logprobs = torch.where(policy, logprobs, torch.zeros_like(logprobs))
    loss, acted = POLICY_LOSSES[variant](
        ratio, safe_logprobs, adv, clip_low=clip_low, clip_high=clip_high, clip_ratio_c=clip_ratio_c
    )
    loss = torch.where(policy, loss, torch.zeros_like(loss))

    with torch.no_grad():
        stats = {
            "clip_frac_low": _masked_mean(acted["low"].to(m.dtype), m),
            "clip_frac_high": _masked_mean(acted["high"].to(m.dtype), m),
            "dual_clip_frac": _masked_mean(acted["dual"].to(m.dtype), m),
            "ratio_mean": _masked_mean(ratio, m),
        }
    return loss, stats


# ---------------------------------------------------------------------------------------------------------
# Aggregation. num_sequences / num_tokens count the WHOLE batch (all micro-batches, all ranks): each call
# returns a partial sum, and the partial sums add up to the whole-batch loss.


def _token_mean(L: Tensor, m: Tensor, num_sequences: float, num_tokens: float, max_length: int | None):
    # sum_{i,t} L_{i,t} / sum_i |o_i|
    return (L * m).sum() / num_tokens


def _seq_mean_token_mean(
    L: Tensor, m: Tensor, num_sequences: float, num_tokens: float, max_length: int | None
):
    # mean_i (1/|o_i|) sum_t L_{i,t}
    return ((L * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)).sum() / num_sequences


def _seq_mean_token_sum_norm(
    L: Tensor, m: Tensor, num_sequences: float, num_tokens: float, max_length: int | None
):
    # Dr. GRPO: sum_{i,t} L_{i,t} / (G * L_max), L_max a constant
    if max_length is None or max_length < 1:
        raise ConfigError(
            f"loss_agg='seq_mean_token_sum_norm' needs max_length >= 1 (got {max_length}); "
            "pass the maximum completion length"
        )
    return (L * m).sum() / (num_sequences * max_length)


AGGREGATIONS: dict[str, Callable[..., Tensor]] = {
    "token_mean": _token_mean,
    "seq_mean_token_mean": _seq_mean_token_mean,
    "seq_mean_token_sum_norm": _seq_mean_token_sum_norm,
}


def aggregate(
    token_losses: Tensor,
    mask: Tensor,
    mode: str,
    *,
    num_sequences: int | float,
    num_tokens: int | float,
    max_length: int | None = None,
) -> Tensor:
    """Scalar loss of these token losses (B, T); counts are over the whole (global) batch, see above."""
    _check_name("loss_agg", mode, AGGREGATIONS)
    if num_sequences <= 0 or num_tokens <= 0:
        raise ConfigError(
            f"num_sequences={num_sequences} and num_tokens={num_tokens} must be > 0: "
            "pass the whole batch's sequence and policy-token counts"
        )
    m = mask.to(token_losses.dtype)
    L = torch.where(m > 0, token_losses, torch.zeros_like(token_losses))  # a nan under the mask stays out
    return AGGREGATIONS[mode](L, m, num_sequences, num_tokens, max_length)


# ---------------------------------------------------------------------------------------------------------
# KL against the reference policy, per token, x = log pi_ref - log pi_theta


KL_ESTIMATORS: dict[str, Callable[[Tensor], Tensor]] = {
    "k1": lambda x: -x,
    "k2": lambda x: x**2 / 2,
    "k3": lambda x: torch.expm1(x) - x,  # exp(x) - x - 1 >= 0, unbiased (GRPO)
}


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, estimator: str) -> Tensor:
    """Per-token KL estimate (B, T) of pi_theta from pi_ref with the named estimator (k1, k2, k3)."""
    _check_name("kl_estimator", estimator, KL_ESTIMATORS)
    return KL_ESTIMATORS[estimator](ref_logprobs - logprobs)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy (B, T) of softmax(logits) over the last axis: H = logsumexp(z) - sum_v p_v z_v."""
    z = logits - logits.amax(dim=-1, keepdim=True).detach()  # shift-invariant; keeps both terms small
    p = torch.softmax(z, dim=-1)
    pz = p * torch.where(p > 0, z, torch.zeros_like(z))  # p * z := 0 where p = 0 (masked vocab, z = -inf)
    return torch.logsumexp(z, dim=-1) - pz.sum(dim=-1)
