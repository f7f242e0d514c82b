"""Chunked log-probs (`optim.logprob_chunk`): the LM head applied to a few policy tokens at a time and recomputed
in the backward pass gives the log-probs, entropy, loss and gradients of the whole computation (float32, 1e-5),
with a temperature, left padding, multi-turn holes in the loss mask and a row without policy tokens."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from rlvr.errors import ConfigError
from rlvr.trainer.batch import PolicyBatch
from rlvr.trainer.losses import aggregate, kl_penalty, policy_loss
from rlvr.trainer.update import UpdateSettings, batch_logprobs, policy_update, token_logprobs

VOCAB = 50
TEMPERATURE = 0.7
TOL = {"rtol": 1e-5, "atol": 1e-5}

SETTINGS = UpdateSettings(
    clip_low=0.2,
    clip_high=0.28,
    clip_ratio_c=3.0,
    ratio_level="token",
    loss_agg="token_mean",
    loss_max_length=8,
    kl_coef=0.1,
    kl_estimator="k3",
    kl_in_loss=True,
    num_iterations=1,
    minibatches=2,  # pi_old from batch_logprobs (no grad), then two steps
    micro_batch_size=2,
    max_grad_norm=0.0,
    temperature=TEMPERATURE,
)


def tiny_llama(tied: bool = False) -> torch.nn.Module:
    """A random 2-layer Llama (vocab 50, hidden 16), float32, from a config; `tied`: lm_head = embeddings."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
        initializer_range=0.2,  # gradients of order 1, so an absolute 1e-5 means something
        pad_token_id=0,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).float()


def padded_batch(rows: list[tuple[int, list[int]]], width: int, seed: int = 1) -> PolicyBatch:
    """Left-padded rows of (prompt length, completion mask); old log-probs near -2 so ratios differ from 1."""
    gen = torch.Generator().manual_seed(seed)
    count = len(rows)
    input_ids = torch.zeros(count, width, dtype=torch.long)
    attention = torch.zeros(count, width, dtype=torch.long)
    loss_mask = torch.zeros(count, width)
    for i, (prompt, completion) in enumerate(rows):
        length = prompt + len(completion)
        input_ids[i, width - length :] = torch.randint(1, VOCAB, (length,), generator=gen)
        attention[i, width - length :] = 1
        loss_mask[i, width - len(completion) :] = torch.tensor(completion, dtype=torch.float)
    first = min(width - len(c) + c.index(1) for _, c in rows if 1 in c)
    return PolicyBatch(
        input_ids=input_ids,
        attention_mask=attention,
        loss_mask=loss_mask,
        old_logprobs=(-2.0 + torch.randn(count, width, generator=gen)) * loss_mask,
        advantages=torch.randn(count, generator=gen),
        span=width - first,
    )


def mixed_batch() -> PolicyBatch:
    """4 rows, width 12: full, 3 pads with a multi-turn hole (environment tokens), 6 pads, and a dropped row."""
    return padded_batch(
        [
            (4, [1] * 8),
            (3, [1, 1, 0, 0, 1, 1]),
            (2, [1, 1, 1, 1]),
            (5, [0] * 7),  # overlong-filtered: tokens, but no loss
        ],
        width=12,
    )


class GradRecorder(torch.optim.SGD):
    """lr 0: records every parameter's gradient at each step, the model never moves."""

    def __init__(self, params) -> None:
        super().__init__(params, lr=0.0)
        self.grads: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        self.grads.append([torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params])


def update_grads(settings: UpdateSettings, batch: PolicyBatch, *, tied: bool = False, ref=None):
    """(metrics, [per optimiser step: every parameter's gradient]) of one `policy_update`."""
    model = tiny_llama(tied)
    optimizer = GradRecorder(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    metrics = policy_update(model, optimizer, scheduler, batch, settings, ref_logprobs=ref)
    return metrics, optimizer.grads


def loss_and_grads(model, batch: PolicyBatch, chunk: int):
    """Log-probs, entropy, the update's loss (clip + dual clip + k3 KL, token_mean) and every gradient."""
    model.zero_grad(set_to_none=True)
    logprobs, entropy = token_logprobs(model, batch, TEMPERATURE, with_entropy=True, chunk=chunk)
    mask = batch.tail(batch.loss_mask)  # (B, span)
    ref = batch.tail(batch.old_logprobs) - 0.3 * mask
    losses, _ = policy_loss(
        logprobs, batch.tail(batch.old_logprobs), batch.advantages, mask, clip_low=0.2, clip_high=0.28
    )
    losses = losses + 0.1 * kl_penalty(logprobs, ref, "k3") * mask
    loss = aggregate(losses, mask, "token_mean", num_sequences=len(batch), num_tokens=float(mask.sum()))
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return logprobs.detach(), entropy, loss.detach(), grads


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("chunk", [1, 7, 1000])  # one token, chunks that split rows, one chunk for all 16
def test_chunked_log_probs_entropy_loss_and_gradients_equal_the_whole_computation(chunk, tied):
    model, batch = tiny_llama(tied), mixed_batch()
    whole = loss_and_grads(model, batch, chunk=0)
    chunked = loss_and_grads(model, batch, chunk=chunk)
    policy = batch.tail(batch.loss_mask) > 0  # (B, span): 16 policy tokens
    assert int(policy.sum()) == 16
    torch.testing.assert_close(chunked[0][policy], whole[0][policy], **TOL)
    torch.testing.assert_close(chunked[1][policy], whole[1][policy], **TOL)
    assert (chunked[0][~policy] == 0).all() and (chunked[1][~policy] == 0).all()  # not computed
    torch.testing.assert_close(chunked[2], whole[2], **TOL)
    assert whole[2].abs() > 0.01  # a loss that is not trivially 0
    assert whole[3].keys() == chunked[3].keys()
    for name, grad in whole[3].items():
        assert grad.abs().max() > 0, f"{name} got no gradient: the test would not see a difference"
        torch.testing.assert_close(chunked[3][name], grad, **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_the_update_with_chunks_has_the_metrics_and_gradients_of_the_whole_update(tied):
    # through policy_update: pi_old from batch_logprobs (no grad) and the training forward both chunked
    batch = mixed_batch()
    ref = batch.tail(batch.old_logprobs) - 0.3  # (B, span) pi_ref for the KL term
    whole_metrics, whole = update_grads(SETTINGS, batch, tied=tied, ref=ref)
    chunked_settings = dataclasses.replace(SETTINGS, logprob_chunk=5)
    chunked_metrics, chunked = update_grads(chunked_settings, batch, tied=tied, ref=ref)
    for key in ("loss", "entropy", "kl", "ratio/mean", "clip/low_frac", "clip/high_frac"):
        assert chunked_metrics[key] == pytest.approx(whole_metrics[key], rel=1e-5, abs=1e-5), key
    assert len(whole) == len(chunked) == 2
    for step_whole, step_chunked in zip(whole, chunked, strict=True):
        for a, b in zip(step_whole, step_chunked, strict=True):
            torch.testing.assert_close(b, a, **TOL)


def test_batch_logprobs_chunked_equal_whole_under_no_grad():
    model, batch = tiny_llama(), mixed_batch()
    policy = batch.tail(batch.loss_mask) > 0
    whole = batch_logprobs(model, batch, TEMPERATURE, micro_batch_size=3)
    chunked = batch_logprobs(model, batch, TEMPERATURE, micro_batch_size=3, logprob_chunk=4)
    torch.testing.assert_close(chunked[policy], whole[policy], **TOL)


def test_a_micro_batch_without_policy_tokens_still_backpropagates_zero_gradients():
    # every row overlong-filtered: no token to compute, but the loss must have a graph through every
    # parameter (backward() needs one; DDP waits for every parameter's gradient)
    model, batch = tiny_llama(), mixed_batch()
    batch.loss_mask.zero_()
    logprobs, entropy = token_logprobs(model, batch, TEMPERATURE, with_entropy=True, chunk=4)
    assert (logprobs == 0).all() and (entropy == 0).all()
    (logprobs.sum() * 0).backward()
    assert all(p.grad is not None and (p.grad == 0).all() for p in model.parameters())


def test_models_whose_logits_are_not_the_head_output_are_refused():
    model, batch = tiny_llama(), mixed_batch()
    model.config.final_logit_softcapping = 30.0  # Gemma 2: tanh soft-capping after the head
    with pytest.raises(ConfigError, match=re.escape("softcapping=30.0; set optim.logprob_chunk=0")):
        token_logprobs(model, batch, TEMPERATURE, chunk=4)
    token_logprobs(model, batch, TEMPERATURE, chunk=0)  # the whole path applies the model's own transform


def test_config_fields_are_validated_and_reach_the_update():
    from rlvr.trainer.config import load_config
    from rlvr.trainer.loop import _update_settings

    config = load_config(None, ["optim.logprob_chunk=512", "optim.token_budget=4096"])
    settings = _update_settings(config)
    assert (settings.logprob_chunk, settings.token_budget) == (512, 4096)
    assert (load_config().optim.logprob_chunk, load_config().optim.token_budget) == (0, 0)
    for name in ("logprob_chunk", "token_budget"):
        with pytest.raises(ConfigError, match=rf"optim.{name} = -1 is invalid: expected >= 0"):
            load_config(None, [f"optim.{name}=-1"])
