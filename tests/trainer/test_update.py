"""The policy update on a real tiny transformer: which policy is pi_old when a batch gets several optimiser steps."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from rlvr.trainer import update as update_module
from rlvr.trainer.batch import PolicyBatch
from rlvr.trainer.update import UpdateSettings, batch_logprobs, policy_update

SETTINGS = UpdateSettings(
    clip_low=0.2,
    clip_high=0.2,
    clip_ratio_c=None,
    ratio_level="token",
    loss_agg="token_mean",
    loss_max_length=5,
    kl_coef=0.0,
    kl_estimator="k3",
    kl_in_loss=False,
    num_iterations=1,
    minibatches=2,
    micro_batch_size=2,
    max_grad_norm=0.0,  # off: the step must be large enough to move the ratio past the clip range
    temperature=1.0,
)


def tiny_model() -> torch.nn.Module:
    """A random 2-layer Llama (vocab 40, hidden 16), float32, built from a config (no files)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=40,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
        initializer_range=0.5,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).float()


def duplicated_batch() -> PolicyBatch:
    """4 rows of 3 prompt + 5 completion tokens; rows 2-3 repeat rows 0-1, advantages [+1, -1, +1, -1].

    With 2 minibatches, the first step (on rows 0-1) raises pi(A > 0 tokens) and lowers pi(A < 0 tokens) of the
    very same sequences that minibatch 2 (rows 2-3) trains on.
    """
    gen = torch.Generator().manual_seed(1)
    first = torch.randint(1, 40, (2, 8), generator=gen)
    input_ids = torch.cat([first, first])  # (4, 8)
    loss_mask = torch.zeros(4, 8)
    loss_mask[:, 3:] = 1
    return PolicyBatch(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        loss_mask=loss_mask,
        old_logprobs=torch.zeros(4, 8),
        advantages=torch.tensor([1.0, -1.0, 1.0, -1.0]),
        span=5,
    )


def run_update(settings: UpdateSettings, monkeypatch, lr: float = 2.0):
    """(metrics, model before the update, batch, [(logprobs, old_logprobs, stats) of each policy_loss call])."""
    model = tiny_model()
    before = copy.deepcopy(model)
    batch = duplicated_batch()
    calls = []
    real = update_module.policy_loss

    def spy(logprobs, old_logprobs, *args, **kwargs):
        loss, stats = real(logprobs, old_logprobs, *args, **kwargs)
        calls.append((logprobs.detach().clone(), old_logprobs.detach().clone(), stats))
        return loss, stats

    monkeypatch.setattr(update_module, "policy_loss", spy)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    metrics = policy_update(model, optimizer, scheduler, batch, settings)
    return metrics, before, batch, calls


def test_every_minibatch_uses_the_generating_policy_as_pi_old(monkeypatch):
    # One pass, 2 minibatches: minibatch 2 runs after one SGD step on minibatch 1. Its pi_old must be the
    # policy that generated the batch (the model before the update), so its ratio is no longer 1 and the
    # clip fires; the bug took minibatch 2's own detached log-probs, giving rho == 1 and clip fractions 0.
    metrics, before, batch, calls = run_update(SETTINGS, monkeypatch)
    assert len(calls) == 2 and metrics["optimizer_steps"] == 2.0
    logprobs_2, old_2, stats_2 = calls[1]
    ratio_2 = (logprobs_2 - old_2).exp()  # (2, 5)
    assert (ratio_2 - 1).abs().max() > 0.2, "minibatch 2's ratio is 1: pi_old is not the generating policy"
    assert stats_2["clip_frac_high"] > 0 and stats_2["clip_frac_low"] > 0
    assert metrics["clip/high_frac"] > 0 and metrics["clip/low_frac"] > 0
    generating = batch_logprobs(before, batch, temperature=1.0, micro_batch_size=4)  # (4, 5)
    torch.testing.assert_close(old_2, generating[2:4], rtol=0, atol=1e-6)
    # minibatch 1 sees the generating policy itself: ratio 1 up to float noise, nothing clipped
    logprobs_1, old_1, stats_1 = calls[0]
    torch.testing.assert_close(old_1, generating[0:2], rtol=0, atol=1e-6)
    torch.testing.assert_close(logprobs_1, old_1, rtol=0, atol=1e-5)
    assert stats_1["clip_frac_high"] == 0 and stats_1["clip_frac_low"] == 0


def test_one_step_per_batch_uses_the_detached_current_log_probs(monkeypatch):
    # num_iterations = minibatches = 1: pi_old == pi_theta, no extra forward pass; rho is exactly 1
    settings = dataclasses.replace(SETTINGS, minibatches=1, micro_batch_size=4)
    metrics, _, _, calls = run_update(settings, monkeypatch)
    ((logprobs, old, stats),) = calls
    assert torch.equal(logprobs, old)
    assert stats["clip_frac_high"] == 0 and stats["clip_frac_low"] == 0
    assert metrics["optimizer_steps"] == 1.0 and metrics["ratio/mean"] == pytest.approx(1.0, abs=0)


def test_gpg_update_has_no_ratio_and_no_clip(monkeypatch):
    # policy_loss = gpg: -A log pi on every minibatch, whatever pi_old; the policy still moves (ratio/mean != 1)
    settings = dataclasses.replace(SETTINGS, policy_loss="gpg")
    metrics, _, _, calls = run_update(settings, monkeypatch)
    assert len(calls) == 2
    assert metrics["clip/high_frac"] == 0 and metrics["clip/low_frac"] == 0 and metrics["clip/dual_frac"] == 0
    assert abs(metrics["ratio/mean"] - 1) > 1e-3


def test_the_gpg_preset():
    from rlvr.errors import ConfigError
    from rlvr.trainer.config import load_config

    a = load_config(None, ["algorithm.preset=gpg"]).algorithm
    assert (a.advantage, a.policy_loss, a.loss_agg, a.kl_coef) == ("gpg", "gpg", "token_mean", 0.0)
    assert load_config(None, ["algorithm.preset=grpo"]).algorithm.policy_loss == "clip"
    with pytest.raises(ConfigError, match="ratio_level"):
        load_config(None, ["algorithm.preset=gpg", "algorithm.ratio_level=sequence"])
    with pytest.raises(ConfigError, match="policy_loss"):
        load_config(None, ["algorithm.policy_loss=vanilla"])
