"""Policy loss pieces (ALGORITHMS.md sections 3-5, 7c): clipped surrogate, Clip-Cov / KL-Cov, aggregation,
KL estimators, entropy and its bonus, token covariance statistics.

Token losses are to be minimised (minus the surrogate) and exactly 0 where mask == 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
# and the boolean masks of the tokens each rule acted on ("low", "high", "dual": the clip bounds; "cov": the
# tokens Clip-Cov detached or KL-Cov penalised). Every variant gets the same keywords: `old_logprobs` and `mask`
# (B, T) with masked positions zeroed, the clip settings, the `CovSettings` and the random generator.
# Against verl's Clip-Cov / KL-Cov, the one difference is rlvr's |log rho| <= LOG_RATIO_LIMIT clamp (verl has none).


@dataclass(frozen=True)
class CovSettings:
    """Clip-Cov / KL-Cov settings (Cui et al. 2025, arXiv 2505.22617); the names of verl's `policy_loss` config.

    Config fields: algorithm.clip_cov_ratio, clip_cov_lb, clip_cov_ub, kl_cov_ratio, kl_cov_coef.
    """

    clip_ratio: float = 0.0002
    """Clip-Cov: fraction r of the policy tokens whose gradient is detached (verl `clip_cov_ratio`)."""
    clip_lb: float = 1.0
    """Clip-Cov: a token is a candidate when clip_lb < Cov_t < clip_ub (verl `clip_cov_lb`)."""
    clip_ub: float = 5.0
    """Clip-Cov: upper covariance bound of the candidates (verl `clip_cov_ub`)."""
    kl_ratio: float = 0.0002
    """KL-Cov: fraction r of the policy tokens, those of largest Cov_t, that get the penalty (verl `kl_cov_ratio`)."""
    kl_coef: float = 1.0
    """KL-Cov: beta of the penalty beta * |log pi - log pi_old| (verl `ppo_kl_coef`)."""

    def __post_init__(self) -> None:
        for name, value in (("clip_cov_ratio", self.clip_ratio), ("kl_cov_ratio", self.kl_ratio)):
            if not 0 < value <= 1:
                raise ConfigError(
                    f"algorithm.{name}={value} must be in (0, 1] (a fraction of tokens, e.g. 0.0002)"
                )
        if not self.clip_lb < self.clip_ub:
            raise ConfigError(
                f"algorithm.clip_cov_lb={self.clip_lb} must be < clip_cov_ub={self.clip_ub} (e.g. 1.0 and 5.0)"
            )
        if self.kl_coef < 0:
            raise ConfigError(f"algorithm.kl_cov_coef={self.kl_coef} must be >= 0 (e.g. 1.0)")


def _clipped_terms(
    ratio: Tensor, adv: Tensor, clip_low: float, clip_high: float
) -> tuple[Tensor, Tensor, dict]:
    """-rho A and -clip(rho, 1 - clip_low, 1 + clip_high) A, and the tokens each bound acts on."""
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1 - clip_low, 1 + clip_high)
    acted = {"low": (ratio < 1 - clip_low) & (adv < 0), "high": (ratio > 1 + clip_high) & (adv > 0)}
    return unclipped, clipped, acted


def _clip_surrogate(
    ratio: Tensor,
    logprobs: Tensor,
    adv: Tensor,
    *,
    old_logprobs: Tensor,
    mask: Tensor,
    clip_low: float,
    clip_high: float,
    clip_ratio_c: float | None,
    cov: CovSettings,
    generator: torch.Generator | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    # PPO/GRPO: L = -min(rho A, clip(rho, 1 - clip_low, 1 + clip_high) A); dual clip: L = min(L, -c A) for A < 0
    unclipped, clipped, acted = _clipped_terms(ratio, adv, clip_low, clip_high)
    loss = torch.maximum(unclipped, clipped)
    dual = torch.zeros_like(adv, dtype=torch.bool)
    if clip_ratio_c is not None:
        bound = -adv * clip_ratio_c  # surrogate >= clip_ratio_c * A when A < 0
        dual = (adv < 0) & (loss > bound)
        loss = torch.where(dual, bound, loss)
    return loss, {**acted, "dual": dual, "cov": torch.zeros_like(dual)}


def _gpg(
    ratio: Tensor,
    logprobs: Tensor,
    adv: Tensor,
    *,
    old_logprobs: Tensor,
    mask: Tensor,
    clip_low: float,
    clip_high: float,
    clip_ratio_c: float | None,
    cov: CovSettings,
    generator: torch.Generator | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    # GPG (arXiv 2504.02546): L = -A log pi_theta; no ratio, no clip (the clip settings are unused)
    none = torch.zeros_like(adv, dtype=torch.bool)
    return -adv * logprobs, {"low": none, "high": none, "dual": none, "cov": none}


def _policy_token_cov(logprobs: Tensor, adv: Tensor, policy: Tensor) -> Tensor:
    # Cov_t = (log pi_t - mean(log pi)) * (A_t - mean(A)), means over the policy tokens given; (N,), row-major, detached
    lp = logprobs.detach()[policy]
    a = adv.detach()[policy]
    return (lp - lp.mean()) * (a - a.mean())


def _at_policy_positions(policy: Tensor, positions: Tensor) -> Tensor:
    """(B, T) bool, True at the given indices into the row-major list of policy tokens."""
    flat = torch.nonzero(policy.flatten()).squeeze(1)  # (N,)
    out = torch.zeros(policy.numel(), dtype=torch.bool, device=policy.device)
    out[flat[positions]] = True
    return out.view_as(policy)


def _clip_cov(
    ratio: Tensor,
    logprobs: Tensor,
    adv: Tensor,
    *,
    old_logprobs: Tensor,
    mask: Tensor,
    clip_low: float,
    clip_high: float,
    clip_ratio_c: float | None,
    cov: CovSettings,
    generator: torch.Generator | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    # Clip-Cov as verl's compute_policy_loss_clip_cov: L = -min(rho A, clip(rho) A) (no dual clip), and L = 0 (value
    # and gradient) on n = max(1, int(r * N)) tokens drawn uniformly from the candidates clip_lb < Cov_t < clip_ub.
    # verl's quirks, followed: candidates exclude the tokens the PPO clip already stopped (clipped > unclipped);
    # Cov_t and N are those of this call (the micro-batch), and n >= 1 even when r * N < 1; the draw is
    # torch.randperm over the candidates in row-major order, on `generator` (None: torch's global CPU generator).
    unclipped, clipped, acted = _clipped_terms(ratio, adv, clip_low, clip_high)
    policy = mask > 0
    by_clip = (clipped > unclipped) & policy  # verl's clip_by_origin
    cov_t = _policy_token_cov(logprobs, adv, policy)  # (N,)
    free = ~by_clip[policy] & (cov_t > cov.clip_lb) & (cov_t < cov.clip_ub)
    candidates = torch.nonzero(free).squeeze(1)  # indices into the N policy tokens
    count = max(int(cov.clip_ratio * float(mask.sum())), 1)
    if len(candidates) > 0:  # verl draws nothing when there is no candidate
        order = torch.randperm(len(candidates), generator=generator)
        candidates = candidates[order[:count].to(candidates.device)]
    detached = _at_policy_positions(policy, candidates)  # (B, T)
    loss = torch.where(detached, torch.zeros_like(unclipped), torch.maximum(unclipped, clipped))
    return loss, {**acted, "dual": torch.zeros_like(detached), "cov": detached}


def _kl_cov(
    ratio: Tensor,
    logprobs: Tensor,
    adv: Tensor,
    *,
    old_logprobs: Tensor,
    mask: Tensor,
    clip_low: float,
    clip_high: float,
    clip_ratio_c: float | None,
    cov: CovSettings,
    generator: torch.Generator | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    # KL-Cov as verl's compute_policy_loss_kl_cov: L = -A rho on every token, and L = -A rho + beta |log pi - log pi_old|
    # on the k = max(1, int(N * r)) policy tokens of largest Cov_t (torch.topk).
    # verl's quirks, followed: no PPO clip at all (clip_low / clip_high / clip_ratio_c unused); Cov_t and N are
    # those of this call (the micro-batch); k >= 1, and the top k may include tokens of negative Cov_t;
    # d|x|/dx = sign(x), so the penalty has no gradient where log pi == log pi_old exactly (one step per batch).
    none = torch.zeros_like(adv, dtype=torch.bool)
    policy = mask > 0
    loss = -adv * ratio
    cov_t = _policy_token_cov(logprobs, adv, policy)  # (N,)
    if len(cov_t) == 0:
        return loss, {"low": none, "high": none, "dual": none, "cov": none}
    top = torch.topk(cov_t, max(1, int(len(cov_t) * cov.kl_ratio)), largest=True).indices
    penalised = _at_policy_positions(policy, top)  # (B, T)
    abs_log_ratio = (logprobs - old_logprobs).abs()  # |log rho|: verl's KL estimate
    loss = torch.where(penalised, loss + cov.kl_coef * abs_log_ratio, loss)
    return loss, {"low": none, "high": none, "dual": none, "cov": penalised}


POLICY_LOSSES: dict[str, Callable[..., tuple[Tensor, dict[str, Tensor]]]] = {
    "clip": _clip_surrogate,
    "pg": _gpg,  # the plain policy gradient -A log pi: REINFORCE, and RAFT's NLL with A = 1
    "gpg": _gpg,
    "clip_cov": _clip_cov,
    "kl_cov": _kl_cov,
}
COV_LOSSES = ("clip_cov", "kl_cov")  # the token-level covariance-based variants (algorithm.cov_mode)


def _check_loss_settings(
    variant: str, ratio_level: str, clip_low: float, clip_high: float, clip_ratio_c: float | None
) -> None:
    _check_name("policy loss", variant, POLICY_LOSSES)
    _check_name("ratio_level", ratio_level, RATIO_LEVELS)
    if clip_low < 0 or clip_high < 0:
        raise ConfigError(f"clip_low={clip_low} and clip_high={clip_high} must be >= 0 (e.g. 0.2 and 0.28)")
    if clip_ratio_c is not None and clip_ratio_c <= 1:
        raise ConfigError(f"clip_ratio_c={clip_ratio_c} must be > 1 (e.g. 3.0), or None to disable dual clip")
    if variant in COV_LOSSES and ratio_level != "token":
        raise ConfigError(
            f"policy loss {variant!r} is token-level: set ratio_level='token' (got {ratio_level!r})"
        )
    if variant in COV_LOSSES and clip_ratio_c is not None:
        raise ConfigError(
            f"policy loss {variant!r} has no dual clip (as verl): set clip_ratio_c=None, not {clip_ratio_c}"
        )


def _token_advantages(advantages: Tensor, m: Tensor) -> Tensor:
    # (B,) broadcast to the tokens, or (B, T) as is; in the log-probs' dtype
    return (advantages[:, None] if advantages.dim() == 1 else advantages).to(m.dtype).expand_as(m)


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
    cov: CovSettings | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Token losses (B, T) of the named policy-loss variant, and detached stats (means over policy tokens).

    ``clip``: L = -min(rho * A, clip(rho, 1 - clip_low, 1 + clip_high) * A); with dual clip, for A < 0,
    L = min(L, -clip_ratio_c * A). ``gpg``: L = -A * log pi (GPG: no ratio, no clip; rho is only logged).
    ``clip_cov`` / ``kl_cov``: Clip-Cov / KL-Cov with the settings ``cov`` (default ``CovSettings()``), as verl;
    the covariance is over the tokens of this call, and Clip-Cov draws on ``generator`` (None: torch's global
    CPU generator). ``advantages`` is (B,) (broadcast to tokens) or (B, T). ``ratio_level="sequence"`` is GSPO:
    rho is the length-normalised sequence ratio s_i. Stat ``cov_frac``: the fraction of tokens Clip-Cov detached
    or KL-Cov penalised (0 for the other variants).
    """
    _check_loss_settings(variant, ratio_level, clip_low, clip_high, clip_ratio_c)
    m = mask.to(logprobs.dtype)  # (B, T)
    policy = m > 0
    adv = _token_advantages(advantages, m)
    log_ratio = RATIO_LEVELS[ratio_level](logprobs, old_logprobs, m)
    # masked positions may hold garbage (-inf padding): zero them before exp so neither value nor grad is nan
    log_ratio = torch.where(policy, log_ratio, torch.zeros_like(log_ratio))
    ratio = log_ratio.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT).exp()  # (B, T)
    safe_logprobs = torch.where(policy, logprobs, torch.zeros_like(logprobs))
    safe_old = torch.where(policy, old_logprobs, torch.zeros_like(old_logprobs))
    loss, acted = POLICY_LOSSES[variant](
        ratio,
        safe_logprobs,
        adv,
        old_logprobs=safe_old,
        mask=m,
        clip_low=clip_low,
        clip_high=clip_high,
        clip_ratio_c=clip_ratio_c,
        cov=CovSettings() if cov is None else cov,
        generator=generator,
    )
    loss = torch.where(policy, loss, torch.zeros_like(loss))

    with torch.no_grad():
        stats = {
            "clip_frac_low": _masked_mean(acted["low"].to(m.dtype), m),
            "clip_frac_high": _masked_mean(acted["high"].to(m.dtype), m),
            "dual_clip_frac": _masked_mean(acted["dual"].to(m.dtype), m),
            "cov_frac": _masked_mean(acted["cov"].to(m.dtype), m),
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


def entropy_bonus(entropy: Tensor, mask: Tensor, *, coef: float, num_tokens: int | float) -> Tensor:
    """The entropy bonus, to SUBTRACT from the loss (``loss = loss - entropy_bonus(...)``, ALGORITHMS.md 7c).

    bonus = coef * sum_{i,t} H_{i,t} / num_tokens over policy tokens: a token mean whatever loss_agg is, and, as in
    `aggregate`, num_tokens counts the whole minibatch (all micro-batches, all ranks), so partial sums add up.
    ``entropy`` (B, T) must carry gradient; minimising ``loss - bonus`` raises the entropy when coef > 0.
    """
    if coef < 0:
        raise ConfigError(f"algorithm.entropy_coef={coef} must be >= 0 (e.g. 0.001; 0 disables the bonus)")
    if num_tokens <= 0:
        raise ConfigError(f"num_tokens={num_tokens} must be > 0: pass the whole batch's policy-token count")
    m = mask.to(entropy.dtype)
    H = torch.where(m > 0, entropy, torch.zeros_like(entropy))  # a nan under the mask stays out
    return coef * (H * m).sum() / num_tokens  # coef * sum_{i,t} m H / num_tokens


# ---------------------------------------------------------------------------------------------------------
# Token covariance statistics (Cui et al. 2025): Cov_t = (log pi_t - mean(log pi)) * (A_t - mean(A)) over the
# policy tokens. Entropy falls when it is positive (confident tokens with high advantage are pushed up).

COV_TOP_FRACTIONS = (0.0002, 0.002, 0.02, 0.2)  # 0.0002 is the default Clip-Cov / KL-Cov ratio


def token_covariance(
    logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    top_fractions: tuple[float, ...] = COV_TOP_FRACTIONS,
) -> dict[str, Tensor]:
    """Detached statistics of Cov_t over the policy tokens given (means over this call's tokens, as Clip-Cov).

    ``entropy/cov_mean`` (the covariance of log pi and A), ``entropy/cov_max``, and for each fraction f
    ``entropy/cov_top_{f:g}_mean``: the mean of the max(1, int(f * N)) largest Cov_t (the tokens KL-Cov with
    kl_cov_ratio = f would penalise). All 0 when no token is a policy token.
    """
    m = mask.to(logprobs.dtype)
    policy = m > 0
    cov_t = _policy_token_cov(logprobs, _token_advantages(advantages, m), policy)  # (N,)
    keys = ["entropy/cov_mean", "entropy/cov_max"] + [f"entropy/cov_top_{f:g}_mean" for f in top_fractions]
    if len(cov_t) == 0:
        return {key: logprobs.new_zeros(()) for key in keys}
    ordered = cov_t.sort(descending=True).values
    tops = [ordered[: max(1, int(f * len(cov_t)))].mean() for f in top_fractions]
    return dict(zip(keys, [cov_t.mean(), ordered[0], *tops], strict=True))
