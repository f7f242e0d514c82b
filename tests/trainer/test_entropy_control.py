"""Entropy control (ALGORITHMS.md 7c): Clip-Cov and KL-Cov against verl on identical tensors, the entropy bonus,
and the token covariance statistics against hand-computed values.

The verl reference is transcribed from volcengine/verl, verl/trainer/ppo/core_algos.py at commit
012be9d9dcb7c38499f23616142870d2682757fc (the v0.5 line: ActorConfig / PolicyLossConfig, GSPO and GMPO present),
with `verl_F.masked_mean` and `agg_loss` of the same line. Each transcription also returns its token-loss
matrix (`pg_losses`), which verl keeps local, so the token losses can be compared before aggregation.

Clip-Cov's random draw is aligned as follows: verl calls `torch.randperm(n)` on torch's global CPU generator;
rlvr calls `torch.randperm(n, generator=generator)` over the same row-major candidate list. Seeding the global
generator with s before verl's call and passing `torch.Generator().manual_seed(s)` to rlvr (or reseeding the
global one and passing None) gives both the same permutation, hence the same tokens.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from rlvr.errors import ConfigError
from rlvr.trainer.losses import (
    CovSettings,
    aggregate,
    entropy_bonus,
    entropy_from_logits,
    policy_loss,
    token_covariance,
)

F64 = torch.float64


# ---------------------------------------------------------------------------------------------------------
# verl, transcribed (see the module docstring for the version)


def verl_masked_mean(values, mask, axis=None):
    """verl_F.masked_mean: masked_sum (a where, so garbage under the mask stays out) / (mask count + 1e-8)."""
    valid = torch.where(mask.bool(), values, 0.0)
    return (valid * mask).sum(axis=axis) / (mask.sum(axis=axis) + 1e-8)


def verl_agg_loss(loss_mat, loss_mask, loss_agg_mode):
    """core_algos.agg_loss, the two modes rlvr shares."""
    if loss_agg_mode == "token-mean":
        return verl_masked_mean(loss_mat, loss_mask)
    if loss_agg_mode == "seq-mean-token-mean":
        seq_losses = torch.sum(loss_mat * loss_mask, dim=-1) / torch.sum(loss_mask, dim=-1)
        return torch.mean(seq_losses)
    raise ValueError(loss_agg_mode)


def verl_policy_loss_clip_cov(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config):
    """core_algos.compute_policy_loss_clip_cov (returns pg_losses as a fifth value)."""
    clip_cov_ratio = config.policy_loss.clip_cov_ratio
    cliprange = config.clip_ratio
    cliprange_low = config.clip_ratio_low if config.clip_ratio_low is not None else cliprange
    cliprange_high = config.clip_ratio_high if config.clip_ratio_high is not None else cliprange
    clip_cov_ub = config.policy_loss.clip_cov_ub
    clip_cov_lb = config.policy_loss.clip_cov_lb
    assert clip_cov_ratio > 0

    negative_approx_kl = log_prob - old_log_prob
    ratio = torch.exp(negative_approx_kl)
    ppo_kl = verl_masked_mean(-negative_approx_kl, response_mask)
    pg_losses1 = -advantages * ratio
    corr = torch.ones_like(advantages)
    pg_losses2 = -advantages * torch.clamp(ratio, 1 - cliprange_low, 1 + cliprange_high)
    clip_by_origin = (pg_losses2 > pg_losses1) & (response_mask > 0)

    cov_all = (advantages - verl_masked_mean(advantages, response_mask)) * (
        log_prob - verl_masked_mean(log_prob.detach(), response_mask)
    )
    cov_all[response_mask == 0] = -torch.inf
    cov_all[clip_by_origin] = -torch.inf

    clip_num = max(int(clip_cov_ratio * response_mask.sum().item()), 1)
    top_k_idx = (cov_all < clip_cov_ub) & (cov_all > clip_cov_lb) & (response_mask > 0)
    top_k_idx = torch.nonzero(top_k_idx)
    if len(top_k_idx) > 0:
        perm = torch.randperm(len(top_k_idx))
        top_k_idx = top_k_idx[perm[: min(clip_num, len(top_k_idx))]]
    else:
        top_k_idx = torch.empty((0, 2), device=cov_all.device, dtype=torch.long)
    corr[top_k_idx[:, 0], top_k_idx[:, 1]] = 0

    pg_clipfrac = verl_masked_mean((corr == 0).float(), response_mask)
    pg_losses = torch.maximum(pg_losses1, pg_losses2) * corr
    pg_loss = verl_agg_loss(loss_mat=pg_losses, loss_mask=response_mask, loss_agg_mode=loss_agg_mode)
    return pg_loss, pg_clipfrac, ppo_kl, torch.tensor(0.0), pg_losses


def verl_policy_loss_kl_cov(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config):
    """core_algos.compute_policy_loss_kl_cov (returns pg_losses as a fifth value)."""
    kl_cov_ratio = config.policy_loss.kl_cov_ratio
    ppo_kl_coef = config.policy_loss.ppo_kl_coef
    assert kl_cov_ratio > 0

    negative_approx_kl = log_prob - old_log_prob
    abs_kl = negative_approx_kl.abs()
    ratio = torch.exp(negative_approx_kl)
    ppo_kl_abs = verl_masked_mean(negative_approx_kl.abs(), response_mask)
    pg_losses1 = -advantages * ratio
    pg_losses_kl = -advantages * ratio + ppo_kl_coef * abs_kl
    pg_losses = pg_losses1

    all_valid = response_mask > 0
    all_valid_idx = torch.nonzero(all_valid.reshape(-1), as_tuple=True)[0]
    all_valid_adv = advantages[all_valid].detach().reshape(-1).cpu()
    all_valid_logp = log_prob[all_valid].detach().reshape(-1).cpu()
    k = min(kl_cov_ratio, len(all_valid_adv))
    if k != 0:
        cov_lst_all = (all_valid_adv - all_valid_adv.mean()) * (all_valid_logp - all_valid_logp.mean())
        k_percent_nums = max(1, int(len(cov_lst_all) * kl_cov_ratio))
        large_cov_idxs = torch.topk(cov_lst_all, k_percent_nums, largest=True).indices
        if len(large_cov_idxs) != 0:
            large_cov_idxs = all_valid_idx[large_cov_idxs]
            rows, cols = large_cov_idxs // advantages.shape[1], large_cov_idxs % advantages.shape[1]
            pg_losses[rows, cols] = pg_losses_kl[rows, cols]

    pg_loss = verl_agg_loss(loss_mat=pg_losses, loss_mask=response_mask, loss_agg_mode=loss_agg_mode)
    return pg_loss, torch.tensor(0.0), ppo_kl_abs, torch.tensor(0.0), pg_losses


def verl_config(cov: CovSettings, clip_low: float, clip_high: float) -> SimpleNamespace:
    """verl's actor config, the fields the two losses read, from rlvr's settings."""
    policy_loss = SimpleNamespace(
        clip_cov_ratio=cov.clip_ratio,
        clip_cov_lb=cov.clip_lb,
        clip_cov_ub=cov.clip_ub,
        kl_cov_ratio=cov.kl_ratio,
        ppo_kl_coef=cov.kl_coef,
    )
    return SimpleNamespace(
        clip_ratio=0.2, clip_ratio_low=clip_low, clip_ratio_high=clip_high, policy_loss=policy_loss
    )


# ---------------------------------------------------------------------------------------------------------
# Equality with verl on identical tensors


def _inputs(seed: int, token_advantages: bool):
    """(logprobs leaf, old, advantages (B,) or (B, T), mask) for B=8, T=16: ragged rows, a gap, garbage under the mask."""
    gen = torch.Generator().manual_seed(seed)
    B, T = 8, 16
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    lengths[0] = lengths[1] = T
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(F64)  # (B, T)
    mask[1, 3:6] = 0  # a gap (environment tokens of a multi-turn row)
    logp = -torch.rand(B, T, generator=gen, dtype=F64) * 4
    old = logp + 0.3 * torch.randn(B, T, generator=gen, dtype=F64)  # some ratios outside [0.8, 1.28]
    logp = torch.where(
        mask > 0, logp, torch.full_like(logp, 2.5)
    ).requires_grad_()  # finite garbage: verl has no where
    old = torch.where(mask > 0, old, torch.full_like(old, -7.0))
    shape = (B, T) if token_advantages else (B,)
    adv = 2 * torch.randn(*shape, generator=gen, dtype=F64)
    return logp, old, adv, mask


def _tokens(adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """verl's advantages: (B, T), 0 under the mask."""
    return (adv[:, None] if adv.dim() == 1 else adv).expand_as(mask) * mask


AGG = [("token_mean", "token-mean"), ("seq_mean_token_mean", "seq-mean-token-mean")]
CLIP_COV = [CovSettings(), CovSettings(clip_ratio=0.05, clip_lb=0.3, clip_ub=3.0)]
KL_COV = [CovSettings(), CovSettings(kl_ratio=0.1, kl_coef=0.5)]


def _compare(variant, cov, seed, token_advantages, ours, theirs, reference):
    """Our token losses, loss, gradient and cov_frac against verl's; returns the number of tokens acted on."""
    logp, old, adv, mask = _inputs(seed, token_advantages)
    torch.manual_seed(seed)  # verl's draw (Clip-Cov) uses the global CPU generator
    their_loss, their_frac, _, _, their_tokens = reference(
        old, logp, _tokens(adv, mask), mask, theirs, verl_config(cov, 0.2, 0.28)
    )
    generator = torch.Generator().manual_seed(seed)  # the same permutation for rlvr
    tokens, stats = policy_loss(
        logp, old, adv, mask, clip_low=0.2, clip_high=0.28, variant=variant, cov=cov, generator=generator
    )
    loss = aggregate(tokens, mask, ours, num_sequences=mask.shape[0], num_tokens=float(mask.sum()))
    torch.testing.assert_close(tokens, torch.where(mask > 0, their_tokens, 0.0), rtol=0, atol=1e-12)
    assert torch.all(tokens[mask == 0] == 0)
    torch.testing.assert_close(loss, their_loss, rtol=1e-8, atol=1e-12)  # verl's masked_mean adds 1e-8
    (grad,) = torch.autograd.grad(loss, logp)
    (their_grad,) = torch.autograd.grad(their_loss, logp)
    torch.testing.assert_close(grad, their_grad, rtol=1e-8, atol=1e-12)
    if variant == "clip_cov":  # verl's pg_clipfrac is the detached fraction
        assert stats["cov_frac"].item() == pytest.approx(their_frac.item(), rel=1e-6)
    return round(stats["cov_frac"].item() * float(mask.sum()))


@pytest.mark.parametrize(("ours", "theirs"), AGG)
@pytest.mark.parametrize("cov", CLIP_COV)
@pytest.mark.parametrize("token_advantages", [False, True])
def test_clip_cov_matches_verl(ours, theirs, cov, token_advantages):
    for seed in range(4):
        acted = _compare("clip_cov", cov, seed, token_advantages, ours, theirs, verl_policy_loss_clip_cov)
        _, _, _, mask = _inputs(seed, token_advantages)
        assert 1 <= acted <= max(1, int(cov.clip_ratio * float(mask.sum())))  # the case exercises the draw


@pytest.mark.parametrize(("ours", "theirs"), AGG)
@pytest.mark.parametrize("cov", KL_COV)
@pytest.mark.parametrize("token_advantages", [False, True])
def test_kl_cov_matches_verl(ours, theirs, cov, token_advantages):
    for seed in range(4):
        acted = _compare("kl_cov", cov, seed, token_advantages, ours, theirs, verl_policy_loss_kl_cov)
        _, _, _, mask = _inputs(seed, token_advantages)
        assert acted == max(1, int(float(mask.sum()) * cov.kl_ratio))  # k = max(1, int(N r)) tokens


def test_clip_cov_draw_follows_the_generator():
    # more candidates than the int(0.05 N) drawn: the seed picks which; the global generator (None) as verl does
    cov = CovSettings(clip_ratio=0.05, clip_lb=0.3, clip_ub=3.0)
    logp, old, adv, mask = _inputs(0, False)

    def detached(generator):
        tokens, _ = policy_loss(
            logp,
            old,
            adv,
            mask,
            clip_low=0.2,
            clip_high=0.28,
            variant="clip_cov",
            cov=cov,
            generator=generator,
        )
        full, _ = policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.28)
        return frozenset(map(tuple, torch.nonzero((tokens == 0) & (full != 0)).tolist()))

    picks = {detached(torch.Generator().manual_seed(seed)) for seed in range(6)}
    count = int(0.05 * float(mask.sum()))
    assert count > 1 and len(picks) > 1 and all(len(p) == count for p in picks)
    torch.manual_seed(3)
    assert detached(None) == detached(torch.Generator().manual_seed(3))


# ---------------------------------------------------------------------------------------------------------
# Hand cases: one row, 4 tokens, A per token [2, -0.5, -0.75, -0.75] (mean 0), log pi [0, -2, -1, -1] (mean -1)
# -> Cov = [1 * 2, -1 * -0.5, 0, 0] = [2, 0.5, 0, 0]: token 0 is the only one in (1, 5) and the top one.

HAND_LOGP = [[0.0, -2.0, -1.0, -1.0]]
HAND_ADV = torch.tensor([[2.0, -0.5, -0.75, -0.75]], dtype=F64)
HAND_MASK = torch.ones(1, 4, dtype=F64)


def test_clip_cov_hand_case():
    # rho = 1: L = -A = [-2, 0.5, 0.75, 0.75]; token 0 detached -> [0, 0.5, 0.75, 0.75], grad -A rho likewise
    logp = torch.tensor(HAND_LOGP, dtype=F64, requires_grad=True)
    loss, stats = policy_loss(
        logp, logp.detach(), HAND_ADV, HAND_MASK, clip_low=0.2, clip_high=0.2, variant="clip_cov"
    )
    expected = torch.tensor([[0.0, 0.5, 0.75, 0.75]], dtype=F64)
    torch.testing.assert_close(loss, expected)
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, expected)
    assert stats["cov_frac"].item() == pytest.approx(1 / 4)
    # rho_0 = e^0.5 > 1.2 with A > 0: the PPO clip already stops token 0, so it is no candidate; nothing detached
    old = torch.tensor([[-0.5, -2.0, -1.0, -1.0]], dtype=F64)
    loss, stats = policy_loss(logp, old, HAND_ADV, HAND_MASK, clip_low=0.2, clip_high=0.2, variant="clip_cov")
    torch.testing.assert_close(loss, torch.tensor([[-2 * 1.2, 0.5, 0.75, 0.75]], dtype=F64))
    assert stats["cov_frac"].item() == 0.0 and stats["clip_frac_high"].item() == pytest.approx(1 / 4)


def test_kl_cov_hand_case():
    # log rho = [0.5, 0, 0, 0], kl_ratio 0.25 -> k = 1: token 0. No clip: L = -A rho, + beta |log rho| on token 0.
    # L_0 = -2 e^0.5 + 1 * 0.5; dL_0/dlogp_0 = -2 e^0.5 + beta sign(0.5); other tokens -A (rho 1)
    logp = torch.tensor(HAND_LOGP, dtype=F64, requires_grad=True)
    old = torch.tensor([[-0.5, -2.0, -1.0, -1.0]], dtype=F64)
    cov = CovSettings(kl_ratio=0.25, kl_coef=1.0)
    loss, stats = policy_loss(
        logp, old, HAND_ADV, HAND_MASK, clip_low=0.2, clip_high=0.2, variant="kl_cov", cov=cov
    )
    e = math.exp(0.5)
    torch.testing.assert_close(loss, torch.tensor([[-2 * e + 0.5, 0.5, 0.75, 0.75]], dtype=F64))
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-2 * e + 1, 0.5, 0.75, 0.75]], dtype=F64))
    assert stats["cov_frac"].item() == pytest.approx(1 / 4)
    assert stats["clip_frac_high"].item() == 0.0  # rho_0 = 1.65 is not clipped: KL-Cov has no clip


def test_cov_variants_reduce_to_their_base_when_inert():
    # no candidate in (100, 200): Clip-Cov is the PPO clip; beta = 0: KL-Cov is -A rho
    logp, old, adv, mask = _inputs(1, True)
    kwargs = {"clip_low": 0.2, "clip_high": 0.28}
    clip, _ = policy_loss(logp, old, adv, mask, **kwargs)
    inert = CovSettings(clip_lb=100.0, clip_ub=200.0, kl_coef=0.0)
    clip_cov, stats = policy_loss(logp, old, adv, mask, variant="clip_cov", cov=inert, **kwargs)
    assert torch.equal(clip, clip_cov) and stats["cov_frac"] == 0
    kl_cov, stats = policy_loss(logp, old, adv, mask, variant="kl_cov", cov=inert, **kwargs)
    ratio = torch.where(mask > 0, logp - old, 0.0).exp()
    torch.testing.assert_close(kl_cov, torch.where(mask > 0, -adv * ratio, 0.0), rtol=0, atol=0)
    assert stats["cov_frac"].item() == pytest.approx(1 / float(mask.sum()))  # selected, with a zero penalty


def test_cov_variants_on_an_all_masked_batch():
    logp, old, adv, _ = _inputs(0, False)
    mask = torch.zeros_like(logp)
    for variant in ("clip_cov", "kl_cov"):
        loss, stats = policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.2, variant=variant)
        assert torch.all(loss == 0) and stats["cov_frac"] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clip_ratio": 0.0}, "clip_cov_ratio"),
        ({"kl_ratio": 1.5}, "kl_cov_ratio"),
        ({"clip_lb": 5.0, "clip_ub": 1.0}, "clip_cov_lb"),
        ({"kl_coef": -1.0}, "kl_cov_coef"),
    ],
)
def test_bad_cov_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CovSettings(**kwargs)


def test_cov_variants_are_token_level_without_dual_clip():
    logp, old, adv, mask = _inputs(0, False)
    with pytest.raises(ConfigError, match="ratio_level='token'"):
        policy_loss(
            logp, old, adv, mask, clip_low=0.2, clip_high=0.2, variant="kl_cov", ratio_level="sequence"
        )
    with pytest.raises(ConfigError, match="clip_ratio_c=None"):
        policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.2, clip_ratio_c=3.0, variant="clip_cov")


# ---------------------------------------------------------------------------------------------------------
# Token covariance statistics


def test_token_covariance_hand_case():
    # row 0: log pi [-0.5, -3], A +1; row 1: log pi [-2, -2, masked -inf], A -1. Over the 4 policy tokens:
    # mean log pi = -7.5 / 4 = -1.875 -> deviations [1.375, -1.125, -0.125, -0.125]; mean A = 0 -> [1, 1, -1, -1]
    # Cov = [1.375, -1.125, 0.125, 0.125]: mean 0.5 / 4 = 0.125, max 1.375, top 1/4 (1 token) 1.375,
    # top 1/2 (2 tokens) (1.375 + 0.125) / 2 = 0.75
    logp = torch.tensor([[-0.5, -3.0, 0.0], [-2.0, -2.0, -math.inf]], dtype=F64, requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    stats = token_covariance(logp, torch.tensor([1.0, -1.0]), mask, top_fractions=(0.25, 0.5))
    assert set(stats) == {
        "entropy/cov_mean",
        "entropy/cov_max",
        "entropy/cov_top_0.25_mean",
        "entropy/cov_top_0.5_mean",
    }
    expected = {"mean": 0.125, "max": 1.375, "top_0.25_mean": 1.375, "top_0.5_mean": 0.75}
    for key, value in expected.items():
        assert stats[f"entropy/cov_{key}"].item() == pytest.approx(value)
    assert not any(v.requires_grad for v in stats.values())
    # the default fractions: 4 tokens, so each top mean is that of the single largest Cov
    default = token_covariance(logp, torch.tensor([1.0, -1.0]), mask)
    assert default["entropy/cov_top_0.0002_mean"].item() == pytest.approx(1.375)
    assert set(default) >= {
        "entropy/cov_top_0.002_mean",
        "entropy/cov_top_0.02_mean",
        "entropy/cov_top_0.2_mean",
    }
    empty = token_covariance(logp, torch.tensor([1.0, -1.0]), torch.zeros_like(mask))
    assert all(v.item() == 0 for v in empty.values())


# ---------------------------------------------------------------------------------------------------------
# Entropy bonus


def _logits():
    gen = torch.Generator().manual_seed(0)
    logits = (2 * torch.randn(3, 4, 5, generator=gen, dtype=F64)).requires_grad_()
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 0]], dtype=F64)
    return logits, mask


def test_entropy_bonus_gradient_equals_the_formula():
    # bonus = coef * sum_{i,t} m H / N with H = -sum_v p log p: value and gradient through the logits
    logits, mask = _logits()
    n = float(mask.sum())
    bonus = entropy_bonus(entropy_from_logits(logits), mask, coef=0.01, num_tokens=n)
    p, logp = torch.softmax(logits, -1), torch.log_softmax(logits, -1)
    formula = 0.01 * (-(p * logp).sum(-1) * mask).sum() / n
    torch.testing.assert_close(bonus, formula, rtol=1e-12, atol=0)
    (grad,) = torch.autograd.grad(bonus, logits)
    (expected,) = torch.autograd.grad(formula, logits)
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-14)
    assert torch.all(grad[mask == 0] == 0) and grad.abs().sum() > 0
    # and against finite differences (fast mode: one random direction)
    assert torch.autograd.gradcheck(
        lambda z: entropy_bonus(entropy_from_logits(z), mask, coef=0.01, num_tokens=n),
        (logits,),
        fast_mode=True,
    )


def test_minimising_minus_the_bonus_raises_entropy():
    # the sign: loss = policy_loss - bonus; a gradient step on the loss raises the mean entropy of policy tokens
    logits, mask = _logits()
    n = float(mask.sum())
    entropy = entropy_from_logits(logits)
    bonus = entropy_bonus(entropy, mask, coef=0.5, num_tokens=n)
    assert bonus.item() == pytest.approx(0.5 * ((entropy * mask).sum() / n).item()) and bonus.item() > 0
    (grad,) = torch.autograd.grad(-bonus, logits)
    with torch.no_grad():
        stepped = entropy_from_logits(logits - 0.5 * grad)
    assert ((stepped - entropy) * mask).sum() > 0
    assert torch.all((stepped - entropy)[mask > 0] > 0)  # each token's entropy rises (the steps are separate)


def test_entropy_bonus_partial_sums_and_errors():
    logits, mask = _logits()
    entropy = entropy_from_logits(logits).detach()
    entropy[2, 0] = math.nan  # garbage under the mask stays out
    n = float(mask.sum())
    whole = entropy_bonus(entropy, mask, coef=0.1, num_tokens=n)
    parts = entropy_bonus(entropy[:1], mask[:1], coef=0.1, num_tokens=n) + entropy_bonus(
        entropy[1:], mask[1:], coef=0.1, num_tokens=n
    )
    torch.testing.assert_close(parts, whole)
    assert torch.isfinite(whole)
    assert entropy_bonus(entropy, mask, coef=0.0, num_tokens=n).item() == 0.0
    with pytest.raises(ConfigError, match="entropy_coef"):
        entropy_bonus(entropy, mask, coef=-0.1, num_tokens=n)
    with pytest.raises(ConfigError, match="num_tokens"):
        entropy_bonus(entropy, mask, coef=0.1, num_tokens=0)
