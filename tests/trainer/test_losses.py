"""Clipped surrogate, aggregation, KL estimators and entropy against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.errors import ConfigError
from rlvr.trainer.losses import (
    AGGREGATIONS,
    POLICY_LOSSES,
    aggregate,
    entropy_from_logits,
    kl_penalty,
    policy_loss,
)

OLD = -1.0  # old log-prob of every token in the hand cases


def _tokens(ratios, advantages, mask=None):
    """(logprobs with grad, old, advantages, mask), each (1, T), from per-token rho and A."""
    logp = torch.tensor([[OLD + math.log(r) for r in ratios]], dtype=torch.float64, requires_grad=True)
    old = torch.full_like(logp, OLD).detach()
    adv = torch.tensor([advantages], dtype=torch.float64)
    m = torch.ones_like(adv) if mask is None else torch.tensor([mask], dtype=torch.float64)
    return logp, old, adv, m


def test_token_clip_low_high_values_gradients_and_stats():
    # clip_low 0.2, clip_high 0.28 -> clip(rho) in [0.8, 1.28]. Loss = -min(rho A, clip(rho) A);
    # d loss / d logp = -A rho where the unclipped term is chosen, 0 where the clipped one is.
    # t0 rho 1.5, A +1: min(1.5, 1.28) = 1.28 -> loss -1.28, grad 0        (high clip)
    # t1 rho 0.5, A +1: min(0.5, 0.8)  = 0.5  -> loss -0.5,  grad -0.5
    # t2 rho 0.5, A -1: min(-0.5, -0.8) = -0.8 -> loss 0.8,  grad 0        (low clip)
    # t3 rho 1.5, A -1: min(-1.5, -1.28) = -1.5 -> loss 1.5, grad 1.5
    # t4 rho 1.0, A +2: loss -2, grad -2
    # t5 masked, logp = -inf (padding garbage): loss exactly 0, grad 0, no nan
    logp, old, adv, m = _tokens([1.5, 0.5, 0.5, 1.5, 1.0, 1.0], [1, 1, -1, -1, 2, 1], [1, 1, 1, 1, 1, 0])
    with torch.no_grad():
        logp[0, 5] = -math.inf
    loss, stats = policy_loss(logp, old, adv, m, clip_low=0.2, clip_high=0.28)
    torch.testing.assert_close(loss, torch.tensor([[-1.28, -0.5, 0.8, 1.5, -2.0, 0.0]], dtype=torch.float64))
    assert loss[0, 5].item() == 0.0
    loss.sum().backward()
    torch.testing.assert_close(
        logp.grad, torch.tensor([[0.0, -0.5, 0.0, 1.5, -2.0, 0.0]], dtype=torch.float64)
    )
    # 5 policy tokens: one high-clipped, one low-clipped; ratio mean (1.5 + 0.5 + 0.5 + 1.5 + 1) / 5 = 1
    assert stats["clip_frac_high"].item() == pytest.approx(1 / 5)
    assert stats["clip_frac_low"].item() == pytest.approx(1 / 5)
    assert stats["dual_clip_frac"].item() == 0.0
    assert stats["ratio_mean"].item() == pytest.approx(1.0)
    assert stats["cov_frac"].item() == 0.0  # only Clip-Cov / KL-Cov act on tokens by covariance


def test_dual_clip_bounds_negative_advantage_losses():
    # clip 0.2 / 0.28, clip_ratio_c 3:
    # t0 rho 4, A -1: max(4, 1.28) = 4 -> min(4, 3) = 3, grad 0            (dual clip)
    # t1 rho 2, A -1: loss 2 < 3, unchanged, grad -A rho = 2
    # t2 rho 4, A +1: high clip, loss -1.28; dual clip never applies to A > 0, grad 0
    # t3 rho 0.5, A -2: max(1.0, 1.6) = 1.6 < 6, grad 0 (low clip)
    logp, old, adv, m = _tokens([4.0, 2.0, 4.0, 0.5], [-1, -1, 1, -2])
    loss, stats = policy_loss(logp, old, adv, m, clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0)
    torch.testing.assert_close(loss, torch.tensor([[3.0, 2.0, -1.28, 1.6]], dtype=torch.float64))
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, 2.0, 0.0, 0.0]], dtype=torch.float64))
    assert stats["dual_clip_frac"].item() == pytest.approx(1 / 4)
    assert stats["clip_frac_low"].item() == pytest.approx(1 / 4)
    assert stats["clip_frac_high"].item() == pytest.approx(1 / 4)


@pytest.mark.parametrize("c", [1.0, 0.5])
def test_dual_clip_constant_must_exceed_one(c):
    logp, old, adv, m = _tokens([1.0], [1])
    with pytest.raises(ConfigError, match="clip_ratio_c"):
        policy_loss(logp, old, adv, m, clip_low=0.2, clip_high=0.2, clip_ratio_c=c)


def test_sequence_advantages_broadcast_to_tokens():
    logp = torch.log(torch.tensor([[0.5, 0.2, 0.9], [0.3, 0.3, 0.1]]))
    old = torch.log(torch.tensor([[0.4, 0.3, 0.9], [0.3, 0.2, 0.1]]))
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv = torch.tensor([0.7, -1.3])
    a, _ = policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.28)
    b, _ = policy_loss(logp, old, adv[:, None].expand(2, 3), mask, clip_low=0.2, clip_high=0.28)
    assert torch.equal(a, b)
    assert a[1, 2].item() == 0.0


def test_gspo_sequence_ratio_values_and_gradient():
    # Row 0: log rho [0.3, -0.1, 0.1], mask all 1 -> log s = 0.3 / 3 = 0.1, s = e^0.1 = 1.10517 (inside
    #   [0.8, 1.2]); A = +1 -> each token loss -s. Under seq_mean_token_mean the row's loss is -A s, and
    #   d(-A s)/d logp_t = -A s / |o| = -e^0.1 / 3 (the GSPO gradient: s A mean_t grad log pi).
    # Row 1: log rho [0.5, 0.3, garbage], mask [1, 1, 0] -> log s = 0.4, s = e^0.4 = 1.49182 > 1.2;
    #   A = +1 -> clipped: loss -1.2 on both tokens, 0 on the masked one, grad 0.
    old = torch.full((2, 3), OLD, dtype=torch.float64)
    logp = (old + torch.tensor([[0.3, -0.1, 0.1], [0.5, 0.3, 7.0]], dtype=torch.float64)).requires_grad_()
    old[1, 2] = -math.inf  # padding garbage in the old log-probs
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    adv = torch.tensor([1.0, 1.0], dtype=torch.float64)
    loss, stats = policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.2, ratio_level="sequence")
    s0, s1 = math.exp(0.1), math.exp(0.4)
    torch.testing.assert_close(
        loss, torch.tensor([[-s0, -s0, -s0], [-1.2, -1.2, 0.0]], dtype=torch.float64), atol=1e-12, rtol=0
    )
    aggregate(loss, mask, "seq_mean_token_mean", num_sequences=1, num_tokens=5).backward()
    expected_grad = torch.tensor([[-s0 / 3] * 3, [0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(logp.grad, expected_grad)
    assert stats["clip_frac_high"].item() == pytest.approx(2 / 5)
    assert stats["ratio_mean"].item() == pytest.approx((3 * s0 + 2 * s1) / 5)


def test_unknown_ratio_level():
    logp, old, adv, m = _tokens([1.0], [1])
    with pytest.raises(ConfigError, match="sequence"):
        policy_loss(logp, old, adv, m, clip_low=0.2, clip_high=0.2, ratio_level="seq")


def verl_agg_loss(loss_mat, loss_mask, loss_agg_mode):
    """verl's `agg_loss` (core_algos.py), transcribed for one process and the whole batch in one call."""
    if loss_agg_mode == "token-mean":
        return (loss_mat * loss_mask).sum() / loss_mask.sum()
    if loss_agg_mode == "seq-mean-token-mean":
        tokens = loss_mask.sum(dim=-1)
        seq_losses = (loss_mat * loss_mask).sum(dim=-1) / (tokens + 1e-8)
        seq_mask = (tokens > 0).to(loss_mat.dtype)  # fully masked sequences are left out of the mean
        return (seq_losses * seq_mask).sum() / seq_mask.sum()
    raise ValueError(loss_agg_mode)


def verl_policy_loss_gpg(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode="token-mean"):
    """verl's `compute_policy_loss_gpg`, transcribed: -A * log pi per token (old_log_prob unused), aggregated."""
    return verl_agg_loss(-log_prob * advantages, response_mask, loss_agg_mode)


def _gpg_inputs():
    gen = torch.Generator().manual_seed(0)
    logp = (-torch.rand(3, 6, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    old = logp.detach() + torch.randn(3, 6, generator=gen, dtype=torch.float64)  # far off: must not matter
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 0]], dtype=torch.float64)
    adv = torch.tensor([1.5, -0.75, 0.25], dtype=torch.float64)
    return logp, old, mask, adv


@pytest.mark.parametrize(
    ("ours", "theirs"), [("token_mean", "token-mean"), ("seq_mean_token_mean", "seq-mean-token-mean")]
)
def test_gpg_loss_matches_verl(ours, theirs):
    # L = -A log pi, no ratio and no clip: value and gradient equal verl's, whatever pi_old is
    logp, old, mask, adv = _gpg_inputs()
    token_losses, stats = policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.2, variant="gpg")
    loss = aggregate(token_losses, mask, ours, num_sequences=3, num_tokens=float(mask.sum()))
    (grad,) = torch.autograd.grad(loss, logp)
    reference = verl_policy_loss_gpg(old, logp, adv[:, None].expand_as(mask), mask, theirs)
    (reference_grad,) = torch.autograd.grad(reference, logp)
    # verl's seq-mean-token-mean divides by (|o_i| + 1e-8): relative differences of ~1e-9
    torch.testing.assert_close(loss, reference, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(grad, reference_grad, rtol=1e-8, atol=1e-12)
    # d loss / d logp_{i,t} = -A_i / sum_i |o_i| under token_mean (mask 0 -> 0)
    if ours == "token_mean":
        torch.testing.assert_close(grad, -adv[:, None] * mask / mask.sum(), rtol=0, atol=1e-15)
    assert stats["clip_frac_low"] == 0 and stats["clip_frac_high"] == 0 and stats["dual_clip_frac"] == 0


def test_gpg_ignores_pi_old_and_the_clip_settings():
    logp, old, mask, adv = _gpg_inputs()
    a, _ = policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.2, variant="gpg")
    b, _ = policy_loss(
        logp, logp.detach(), adv, mask, clip_low=0.0, clip_high=5.0, clip_ratio_c=3.0, variant="gpg"
    )
    assert torch.equal(a, b)
    assert set(POLICY_LOSSES) == {"clip", "pg", "gpg", "clip_cov", "kl_cov"}
    with pytest.raises(ConfigError, match="gpg"):
        policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.2, variant="reinforce")


def test_all_masked_rows_count_in_seq_mean_token_mean_unlike_verl():
    # a deliberate difference (docs/TRAINING.md): a row with no policy token (overlong-filtered) counts in the
    # sequence mean here, as in TRL; verl leaves it out. Rows: mean token loss 2 and 4, then an empty row.
    losses = torch.tensor([[2.0, 2.0], [4.0, 4.0], [9.0, 9.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    ours = aggregate(losses, mask, "seq_mean_token_mean", num_sequences=3, num_tokens=4)
    assert ours.item() == pytest.approx(6 / 3)
    assert verl_agg_loss(losses, mask, "seq-mean-token-mean").item() == pytest.approx(6 / 2)


# Token losses [[1, 2, 3, x], [4, x, x, x]], mask [[1, 1, 1, 0], [1, 0, 0, 0]]; x (100, nan, inf) is ignored.
LOSSES = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, math.nan, math.inf, 100.0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token_mean", 2.5),  # (1 + 2 + 3 + 4) / 4 tokens
        ("seq_mean_token_mean", 3.0),  # (6 / 3 + 4 / 1) / 2 sequences
        ("seq_mean_token_sum_norm", 1.25),  # 10 / (2 sequences * max_length 4)
    ],
)
def test_aggregation_hand_values(mode, expected):
    value = aggregate(LOSSES, MASK, mode, num_sequences=2, num_tokens=4, max_length=4)
    assert value.item() == pytest.approx(expected)
    # the same batch as two micro-batches, one row each, with the whole batch's counts
    counts = {"num_sequences": 2, "num_tokens": 4, "max_length": 4}
    first = aggregate(LOSSES[:1], MASK[:1], mode, **counts)
    second = aggregate(LOSSES[1:], MASK[1:], mode, **counts)
    assert (first + second).item() == pytest.approx(expected)


@pytest.mark.parametrize("mode", sorted(AGGREGATIONS))
def test_micro_batches_sum_to_the_whole_batch(mode):
    gen = torch.Generator().manual_seed(0)
    losses = torch.randn(5, 7, generator=gen)
    mask = (torch.rand(5, 7, generator=gen) > 0.3).float()
    mask[:, 0] = 1
    counts = {"num_sequences": 5, "num_tokens": mask.sum().item(), "max_length": 7}
    whole = aggregate(losses * mask, mask, mode, **counts)
    split = aggregate(losses[:2] * mask[:2], mask[:2], mode, **counts)
    split = split + aggregate(losses[2:] * mask[2:], mask[2:], mode, **counts)
    torch.testing.assert_close(split, whole)


def test_aggregation_errors():
    with pytest.raises(ConfigError, match="max_length"):
        aggregate(LOSSES, MASK, "seq_mean_token_sum_norm", num_sequences=2, num_tokens=4)
    with pytest.raises(ConfigError, match="token_mean"):
        aggregate(LOSSES, MASK, "sum", num_sequences=2, num_tokens=4)
    with pytest.raises(ConfigError, match="num_tokens"):
        aggregate(LOSSES, MASK, "token_mean", num_sequences=2, num_tokens=0)


def test_kl_estimators_hand_values():
    # x = ref - logp = [0, 1, -1]
    logp = torch.tensor([[-1.0, -2.0, -0.5]], dtype=torch.float64)
    ref = torch.tensor([[-1.0, -1.0, -1.5]], dtype=torch.float64)
    e = math.e
    expected = {
        "k1": [0.0, -1.0, 1.0],  # -x
        "k2": [0.0, 0.5, 0.5],  # x^2 / 2
        "k3": [0.0, e - 2, 1 / e],  # e^x - x - 1: e - 1 - 1, e^-1 + 1 - 1
    }
    for name, values in expected.items():
        torch.testing.assert_close(kl_penalty(logp, ref, name), torch.tensor([values], dtype=torch.float64))


def test_k3_is_non_negative_and_unknown_estimator():
    x = torch.linspace(-30, 30, 601, dtype=torch.float64)
    k3 = kl_penalty(torch.zeros_like(x), x, "k3")
    assert torch.all(k3 >= 0)
    assert kl_penalty(torch.zeros(3), torch.zeros(3), "k3").eq(0).all()  # x = 0
    with pytest.raises(ConfigError, match="k3"):
        kl_penalty(x, x, "k4")


def test_entropy_from_logits():
    # uniform over V = 7 -> log 7, whatever the constant logit
    uniform = torch.full((2, 3, 7), 5.0)
    torch.testing.assert_close(entropy_from_logits(uniform), torch.full((2, 3), math.log(7)))
    # p = [1/4, 3/4]: H = 1/4 ln 4 + 3/4 ln(4/3) = 0.346574 + 0.215762 = 0.562335
    two = torch.tensor([[[0.0, math.log(3)]]])
    assert entropy_from_logits(two).item() == pytest.approx(0.25 * math.log(4) + 0.75 * math.log(4 / 3))
    # huge logits do not overflow; a -inf (masked) entry counts as p = 0, with a finite gradient
    assert entropy_from_logits(torch.tensor([[[1000.0, 1000.0]]])).item() == pytest.approx(math.log(2))
    masked = torch.tensor([[[0.0, 0.0, -math.inf]]], requires_grad=True)
    h = entropy_from_logits(masked)
    assert h.item() == pytest.approx(math.log(2))
    h.sum().backward()
    assert torch.isfinite(masked.grad).all()
