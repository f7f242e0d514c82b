"""The loss terms beside the policy loss (entropy bonus, VAPO's positive-example NLL): each update's step equals
the gradient of its formula, computed here from scratch, whatever the micro-batching or log-prob chunking."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from test_update import SETTINGS, duplicated_batch, tiny_model

from rlvr.trainer.losses import entropy_from_logits
from rlvr.trainer.update import policy_update

ONE_STEP = dataclasses.replace(SETTINGS, minibatches=1, micro_batch_size=4)


def sgd_step(settings, batch) -> dict[str, torch.Tensor]:
    """The parameter change of one policy_update with SGD, lr 1 (so the change is minus the gradient)."""
    model = tiny_model()
    before = copy.deepcopy(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    policy_update(model, optimizer, scheduler, batch, settings)
    return {k: v - before[k] for k, v in model.state_dict().items()}


def formula_gradient(loss_of) -> dict[str, torch.Tensor]:
    """Minus the gradient of `loss_of(logprobs (B, 5), entropy (B, 5), mask (B, 5))` on the same tiny model."""
    model = tiny_model()
    batch = duplicated_batch()
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, -6:-1].float()
    targets = batch.input_ids[:, -5:]
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
    loss_of(logprobs, entropy_from_logits(logits), batch.loss_mask[:, -5:]).backward()
    return {name: -p.grad for name, p in model.named_parameters()}


def assert_step_is(delta, expected):
    for name, value in expected.items():
        torch.testing.assert_close(delta[name], value, rtol=1e-4, atol=1e-6, msg=name)
    assert any(float(v.abs().max()) > 0 for v in expected.values())


@pytest.mark.parametrize(("micro", "chunk"), [(4, 0), (1, 0), (3, 2)])
def test_entropy_bonus_step_is_the_gradient_of_minus_coef_times_mean_entropy(micro, chunk):
    # zero advantages: the policy loss has no gradient, the step is the bonus's alone
    batch = duplicated_batch()
    batch.advantages = torch.zeros(4)
    settings = dataclasses.replace(ONE_STEP, entropy_coef=0.05, micro_batch_size=micro, logprob_chunk=chunk)
    expected = formula_gradient(lambda lp, h, m: -0.05 * (h * m).sum() / m.sum())
    assert_step_is(sgd_step(settings, batch), expected)


def test_the_bonus_raises_the_entropy():
    batch = duplicated_batch()
    batch.advantages = torch.zeros(4)
    model = tiny_model()
    settings = dataclasses.replace(ONE_STEP, entropy_coef=1.0)

    def mean_entropy() -> float:
        with torch.no_grad():
            logits = model(input_ids=batch.input_ids).logits[:, -6:-1]
            return float(entropy_from_logits(logits).mean())

    start = mean_entropy()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    policy_update(
        model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0), batch, settings
    )
    assert mean_entropy() > start


@pytest.mark.parametrize("micro", [4, 1])
def test_positive_nll_step_is_the_gradient_of_mu_times_the_solved_samples_nll(micro):
    batch = duplicated_batch()
    batch.advantages = torch.zeros(4)
    batch.positive = torch.tensor([1.0, 0.0, 0.0, 1.0])
    settings = dataclasses.replace(ONE_STEP, positive_nll_coef=0.1, micro_batch_size=micro)
    solved = torch.tensor([1.0, 0.0, 0.0, 1.0])[:, None]
    expected = formula_gradient(lambda lp, h, m: 0.1 * -(lp * m * solved).sum() / (m * solved).sum())
    assert_step_is(sgd_step(settings, batch), expected)


def test_positive_nll_without_solved_samples_adds_nothing():
    batch = duplicated_batch()
    batch.advantages = torch.zeros(4)
    batch.positive = torch.zeros(4)
    delta = sgd_step(dataclasses.replace(ONE_STEP, positive_nll_coef=0.1), batch)
    assert all(float(v.abs().max()) == 0 for v in delta.values())
