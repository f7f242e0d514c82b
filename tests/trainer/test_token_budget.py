"""Token-budget micro-batches (`optim.token_budget`): rows grouped by length within a budget of padded tokens
give the gradient of fixed-size micro-batches (the loss divides by whole-minibatch counts), and the update
reports the padding fraction of its forward passes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_logprob_chunks import SETTINGS, padded_batch, update_grads

from rlvr.trainer.update import batch_logprobs, micro_batches


def test_micro_batches_by_length_fill_the_budget_and_a_long_row_goes_alone():
    lengths = [5, 12, 3, 12, 7]
    # longest first: 12, 12 (2 x 12 = 24 fits), then 7, 5, 3 (3 x 7 = 21 fits)
    assert micro_batches(lengths, size=2, token_budget=24) == [[1, 3], [4, 0, 2]]
    # budget 10: each 12 and the 7 alone (2 x 7 = 14 > 10); 5 and 3 together (2 x 5 = 10)
    assert micro_batches(lengths, size=2, token_budget=10) == [[1], [3], [4], [0, 2]]
    assert micro_batches(lengths, size=2, token_budget=1) == [[1], [3], [4], [0], [2]]
    assert micro_batches(lengths, size=2, token_budget=1000) == [[1, 3, 4, 0, 2]]
    assert micro_batches(lengths, size=2) == [[0, 1], [2, 3], [4]]  # budget 0: consecutive rows


def test_every_row_once_and_every_shared_micro_batch_within_the_budget():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 300, (200,), generator=gen).tolist()
    for budget in (1, 50, 299, 300, 1000, 4096):
        groups = micro_batches(lengths, size=8, token_budget=budget)
        assert sorted(r for g in groups for r in g) == list(range(200))
        for group in groups:
            assert len(group) == 1 or len(group) * max(lengths[r] for r in group) <= budget


def varied_batch():
    """6 rows, width 14, lengths 14, 6, 11, 8, 14, 5: policy tokens with a multi-turn hole and a dropped row."""
    return padded_batch(
        [
            (4, [1] * 10),
            (2, [1, 1, 1, 1]),
            (3, [1, 1, 0, 0, 1, 1, 1, 1]),
            (5, [0, 0, 0]),  # overlong-filtered: no loss
            (6, [1] * 8),
            (2, [1, 1, 1]),
        ],
        width=14,
        seed=3,
    )


@pytest.mark.parametrize("loss_agg", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"])
def test_token_budget_gives_the_gradient_of_fixed_size_micro_batches(loss_agg):
    batch = varied_batch()
    ref = batch.tail(batch.old_logprobs) - 0.3  # (B, span) pi_ref for the KL term
    fixed = dataclasses.replace(SETTINGS, loss_agg=loss_agg, loss_max_length=10)
    fixed_metrics, expected = update_grads(fixed, batch, ref=ref)
    assert len(expected) == 2 and any(g.abs().max() > 0.1 for g in expected[0])
    for budget in (1, 20, 30, 1000):  # every row alone, ..., the whole minibatch in one forward pass
        settings = dataclasses.replace(fixed, token_budget=budget)
        metrics, grads = update_grads(settings, batch, ref=ref)
        for key in ("loss", "entropy", "kl", "ratio/mean"):
            assert metrics[key] == pytest.approx(fixed_metrics[key], rel=1e-6, abs=1e-6), (budget, key)
        for step_expected, step in zip(expected, grads, strict=True):
            for a, b in zip(step_expected, step, strict=True):
                torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6, msg=lambda m, k=budget: f"{k}: {m}")


def test_token_budget_with_chunked_log_probs():
    batch = varied_batch()
    _, expected = update_grads(SETTINGS, batch)
    _, grads = update_grads(dataclasses.replace(SETTINGS, token_budget=25, logprob_chunk=3), batch)
    for step_expected, step in zip(expected, grads, strict=True):
        for a, b in zip(step_expected, step, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_batch_logprobs_by_length_come_back_in_row_order():
    from test_logprob_chunks import TEMPERATURE, tiny_llama

    model, batch = tiny_llama(), varied_batch()
    policy = batch.tail(batch.loss_mask) > 0
    fixed = batch_logprobs(model, batch, TEMPERATURE, micro_batch_size=2)
    by_length = batch_logprobs(model, batch, TEMPERATURE, micro_batch_size=2, token_budget=30)
    torch.testing.assert_close(by_length[policy], fixed[policy], rtol=1e-6, atol=1e-6)


def test_padding_fraction_per_step():
    # lengths 12, 6, 12, 6; one minibatch. Two rows each in order: 2 x (2 x 12) = 48 padded, 36 real -> 0.25.
    # Budget 24 by length: [12, 12] and [6, 6] -> no padding.
    batch = padded_batch([(4, [1] * 8), (2, [1] * 4), (5, [1] * 7), (3, [1] * 3)], width=12)
    settings = dataclasses.replace(SETTINGS, minibatches=1, kl_in_loss=False)
    metrics, _ = update_grads(settings, batch)
    assert metrics["batch/padding_frac"] == pytest.approx(0.25)
    metrics, _ = update_grads(dataclasses.replace(settings, token_budget=24), batch)
    assert metrics["batch/padding_frac"] == 0.0
    # budget 36: [12, 12, 6] (3 x 12 = 36 fits), then [6] alone: 42 padded, 36 real
    metrics, _ = update_grads(dataclasses.replace(settings, token_budget=36), batch)
    assert metrics["batch/padding_frac"] == pytest.approx(1 - 36 / 42)
    # budget 60: all four together, 4 x 12 = 48 padded -> 0.25 again
    metrics, _ = update_grads(dataclasses.replace(settings, token_budget=60), batch)
    assert metrics["batch/padding_frac"] == pytest.approx(0.25)
