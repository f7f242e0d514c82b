"""Engine/trainer mismatch correction (`algorithm.engine_correction`): a no-op when the engine and the trainer agree,
the importance-weighted expectation on a toy categorical with a known mismatch, TRL's and verl's formulas on the
same tensors, the update and the config. The measured vLLM-vs-hf mismatch is in test_engine_correction_vllm.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from test_update import SETTINGS, duplicated_batch, tiny_model

from rlvr.errors import ConfigError
from rlvr.trainer.config import load_config
from rlvr.trainer.engine_correction import correction_weights
from rlvr.trainer.losses import aggregate, policy_loss
from rlvr.trainer.update import batch_logprobs, policy_update

MODES = ("tis", "mis")
LEVELS = ("token", "sequence")


def _logprobs(seed: int, shape=(4, 6), spread: float = 0.6):
    """(old, engine, mask): engine = old + noise (ratios on both sides of [1/2, 2]), row 3 half padding."""
    gen = torch.Generator().manual_seed(seed)
    old = -3 * torch.rand(shape, generator=gen, dtype=torch.float64)
    engine = old + spread * torch.randn(shape, generator=gen, dtype=torch.float64)
    mask = torch.ones(shape, dtype=torch.float64)
    mask[3, : shape[1] // 2] = 0
    return old, engine, mask


# ---------------------------------------------------------------------------------------------------------
# No-op when the engine and the trainer agree


@pytest.mark.parametrize(("mode", "level"), list(itertools.product(MODES, LEVELS)))
def test_weights_are_one_when_engine_and_trainer_agree(mode, level):
    old, _, mask = _logprobs(0)
    old[mask == 0] = -math.inf  # padding garbage stays out
    weights, metrics = correction_weights(old, old.clone(), mask, mode=mode, cap=2.0, level=level)
    assert torch.equal(weights, mask)  # exactly 1 on policy tokens, 0 elsewhere
    assert {k: float(v) for k, v in metrics.items()} == {
        "ratio_mean": 1.0,
        "truncated_frac": 0.0,
        "masked_frac": 0.0,
        "kl": 0.0,
    }


@pytest.mark.parametrize("minibatches", [1, 2])
@pytest.mark.parametrize(("mode", "level"), list(itertools.product(MODES, LEVELS)))
def test_update_unchanged_when_engine_and_trainer_agree(mode, level, minibatches):
    """The engine's log-probs are the generating policy's own: the update equals the uncorrected one."""
    settings = dataclasses.replace(SETTINGS, minibatches=minibatches)
    batch = duplicated_batch()
    model = tiny_model()
    generating = batch_logprobs(model, batch, 1.0, settings.micro_batch_size)  # (4, span)
    batch.old_logprobs[:, -batch.span :] = generating * batch.tail(batch.loss_mask)
    plain, plain_metrics = _updated(tiny_model(), batch, settings)
    corrected_settings = dataclasses.replace(
        settings, engine_correction=mode, engine_correction_cap=2.0, engine_correction_level=level
    )
    corrected, metrics = _updated(tiny_model(), batch, corrected_settings)
    for a, b in zip(plain.parameters(), corrected.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert metrics["loss"] == pytest.approx(plain_metrics["loss"], abs=1e-6)
    assert metrics["engine_correction/ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    assert metrics["engine_correction/kl"] == pytest.approx(0.0, abs=1e-10)
    assert metrics["engine_correction/truncated_frac"] == metrics["engine_correction/masked_frac"] == 0.0
    assert not any(k.startswith("engine_correction/") for k in plain_metrics)


def _updated(model, batch, settings):
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    metrics = policy_update(model, optimizer, scheduler, batch, settings)
    return model, metrics


# ---------------------------------------------------------------------------------------------------------
# A known mismatch in the update: sequence weights w_i act like advantages A_i * weight(w_i)


@pytest.mark.parametrize("mode", MODES)
def test_update_with_a_known_mismatch_weights_each_sequence(mode):
    """One optimiser step (ratio 1, nothing clipped): the policy loss -A_i rho_t is linear in A_i, so weighting
    sequence i by c_i must equal training on advantages c_i A_i without correction. Sequence log-ratios
    log w_i = [log 1.5, log 0.25, log 3, log 0.8], C = 2: tis c = [1.5, 0.25, 2, 0.8], mis c = [1.5, 0, 0, 0.8]."""
    settings = dataclasses.replace(SETTINGS, minibatches=1, micro_batch_size=4)
    batch = duplicated_batch()
    generating = batch_logprobs(tiny_model(), batch, 1.0, 4)
    log_w = torch.tensor([1.5, 0.25, 3.0, 0.8]).log()
    # token log-ratios differ along the row and sum to log w_i
    spread = torch.tensor([0.3, -0.2, 0.1, -0.4, 0.2])
    token_log_w = log_w[:, None] / batch.span + spread  # (4, span): sums to log w_i
    batch.old_logprobs[:, -batch.span :] = generating - token_log_w  # engine = old - log w
    corrected, metrics = _updated(
        tiny_model(),
        batch,
        dataclasses.replace(settings, engine_correction=mode, engine_correction_level="sequence"),
    )
    c = torch.tensor([1.5, 0.25, 2.0, 0.8]) if mode == "tis" else torch.tensor([1.5, 0.0, 0.0, 0.8])
    scaled = dataclasses.replace(batch, advantages=batch.advantages * c)
    reference, _ = _updated(tiny_model(), scaled, settings)
    for a, b in zip(reference.parameters(), corrected.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert metrics["engine_correction/ratio_mean"] == pytest.approx((1.5 + 0.25 + 3 + 0.8) / 4, rel=1e-5)
    if mode == "tis":  # every row has 5 policy tokens: fractions of rows
        assert metrics["engine_correction/truncated_frac"] == pytest.approx(1 / 4)
    else:
        assert metrics["engine_correction/masked_frac"] == pytest.approx(2 / 4)
    kl = (token_log_w.exp() - 1 - token_log_w).mean()  # k3 per token, r = pi_old / pi_engine
    assert metrics["engine_correction/kl"] == pytest.approx(float(kl), rel=1e-4)


# ---------------------------------------------------------------------------------------------------------
# Toy categorical with a known mismatch: the corrected gradient estimate against the exact expectation

THETA = [0.5, -0.3, 0.1, 0.9]  # trainer: p = softmax(theta) = [0.277, 0.124, 0.186, 0.413]
Q = [0.2, 0.3, 0.2, 0.3]  # engine: p / q = [1.39, 0.41, 0.93, 1.38]
ADV = [1.0, -0.5, 2.0, -1.0]  # advantage of each token
SAMPLES = 200_000


def _weight(mode: str, cap: float, r: float) -> float:
    if mode == "none":
        return 1.0
    if mode == "tis":
        return min(r, cap)
    return r if 1 / cap <= r <= cap else 0.0


def _toy_gradient(mode: str, cap: float):
    """(estimate, per-sample standard error, exact expectation, on-policy gradient) of d loss / d theta, where
    the loss is the update's: clipped surrogate at rho = 1 (one step), times the correction weights, token_mean.
    Score function: d log p(x) / d theta = e_x - p."""
    theta = torch.tensor(THETA, dtype=torch.float64, requires_grad=True)
    q = torch.tensor(Q, dtype=torch.float64)
    adv = torch.tensor(ADV, dtype=torch.float64)
    x = torch.multinomial(q, SAMPLES, replacement=True, generator=torch.Generator().manual_seed(0))
    logprobs = torch.log_softmax(theta, dim=0)[x][:, None]  # (N, 1)
    engine = q.log()[x][:, None]
    mask = torch.ones_like(engine)
    losses, _ = policy_loss(logprobs, logprobs.detach(), adv[x], mask, clip_low=0.2, clip_high=0.2)
    if mode != "none":
        weights, _ = correction_weights(logprobs.detach(), engine, mask, mode=mode, cap=cap)
        losses = losses * weights
    loss = aggregate(losses, mask, "token_mean", num_sequences=SAMPLES, num_tokens=SAMPLES)
    (estimate,) = torch.autograd.grad(loss, theta)
    p = torch.softmax(theta.detach(), dim=0)
    score = torch.eye(4, dtype=torch.float64) - p  # row x: e_x - p
    w = torch.tensor([_weight(mode, cap, float(p[k] / q[k])) for k in range(4)], dtype=torch.float64)
    per_sample = -(w * adv)[x, None] * score[x]  # (N, 4)
    error = per_sample.std(dim=0) / math.sqrt(SAMPLES)
    exact = sum(-q[k] * w[k] * adv[k] * score[k] for k in range(4))  # E_q[weight * grad]
    on_policy = sum(-p[k] * adv[k] * score[k] for k in range(4))  # E_p[grad]
    return estimate, error, exact, on_policy


@pytest.mark.parametrize(("mode", "cap"), [("tis", 100.0), ("tis", 1.2), ("mis", 1.5), ("mis", 100.0)])
def test_toy_corrected_gradient_is_the_weighted_expectation(mode, cap):
    estimate, error, exact, on_policy = _toy_gradient(mode, cap)
    assert ((estimate - exact).abs() <= 5 * error).all(), (estimate, exact, error)
    if cap == 100.0:  # C above every ratio: unbiased, the on-policy gradient under p
        torch.testing.assert_close(exact, on_policy, rtol=0, atol=1e-12)
    else:  # truncation / masking biases it: a different expectation, and the estimate tracks that one
        assert (exact - on_policy).abs().max() > 10 * error.max()


def test_toy_uncorrected_gradient_is_biased():
    """Without the correction the estimate is E_q[grad], not the on-policy E_p[grad] (so the test above bites)."""
    estimate, error, exact, on_policy = _toy_gradient("none", 2.0)
    assert ((estimate - exact).abs() <= 5 * error).all()
    assert (estimate - on_policy).abs().max() > 10 * error.max()


def test_toy_sequence_level_is_unbiased_for_sequence_advantages():
    """Sequences of 2 tokens drawn from q, advantage c(x1) * a(x2) for both tokens: the sequence weight
    min(w1 w2, C) with C above every product gives the on-policy gradient; the token weights do not (the second
    token's term still sees the first token drawn from q: E_q[c] = 0.9, E_p[c] = 0.66)."""
    theta = torch.tensor(THETA, dtype=torch.float64, requires_grad=True)
    q = torch.tensor(Q, dtype=torch.float64)
    a = torch.tensor(ADV, dtype=torch.float64)
    c = torch.tensor([0.0, 2.0, 0.0, 1.0], dtype=torch.float64)
    n = SAMPLES // 2
    x = torch.multinomial(q, 2 * n, replacement=True, generator=torch.Generator().manual_seed(1)).view(n, 2)
    p = torch.softmax(theta.detach(), dim=0)
    score = torch.eye(4, dtype=torch.float64) - p
    on_policy = sum(
        -p[i] * p[j] * c[i] * a[j] * (score[i] + score[j]) / 2 for i in range(4) for j in range(4)
    )
    for level, unbiased in (("sequence", True), ("token", False)):
        logprobs = torch.log_softmax(theta, dim=0)[x]  # (n, 2)
        mask = torch.ones_like(logprobs)
        adv = (c[x[:, 0]] * a[x[:, 1]])[:, None].expand(n, 2)
        losses, _ = policy_loss(logprobs, logprobs.detach(), adv, mask, clip_low=0.2, clip_high=0.2)
        weights, _ = correction_weights(
            logprobs.detach(), q.log()[x], mask, mode="tis", cap=100.0, level=level
        )
        loss = aggregate(losses * weights, mask, "token_mean", num_sequences=n, num_tokens=2 * n)
        (estimate,) = torch.autograd.grad(loss, theta)
        per_sequence = -(weights * adv)[:, :, None] * score[x] / 2  # (n, 2, 4)
        error = per_sequence.sum(dim=1).std(dim=0) / math.sqrt(n)
        close = ((estimate - on_policy).abs() <= 5 * error).all()
        assert bool(close) == unbiased, (level, estimate, on_policy, error)


def test_toy_kl_metric_estimates_kl_engine_to_trainer():
    q = torch.tensor(Q, dtype=torch.float64)
    p = torch.softmax(torch.tensor(THETA, dtype=torch.float64), dim=0)
    x = torch.multinomial(q, SAMPLES, replacement=True, generator=torch.Generator().manual_seed(2))[:, None]
    _, metrics = correction_weights(p.log()[x], q.log()[x], torch.ones(SAMPLES, 1), mode="tis", cap=2.0)
    kl = float((q * (q / p).log()).sum())  # KL(q || p) = 0.144
    log_r = (p / q).log()[x]
    error = float((log_r.exp() - 1 - log_r).std()) / math.sqrt(SAMPLES)
    assert float(metrics["kl"]) == pytest.approx(kl, abs=5 * error)
    assert float(metrics["ratio_mean"]) == pytest.approx(1.0, abs=0.01)  # E_q[p / q] = 1


# ---------------------------------------------------------------------------------------------------------
# TRL and verl, transcribed, on the same tensors


def trl_importance_sampling_ratio(old, sampling, mask, mode: str, cap: float):
    """TRL GRPOTrainer, `vllm_importance_sampling_correction` with `vllm_importance_sampling_mode` and `_cap`."""
    per_token_logps_diff = (old - sampling) * mask
    if mode in ("sequence_mask", "sequence_truncate"):
        logps_diff = per_token_logps_diff.sum(dim=-1, keepdim=True)
    else:
        logps_diff = per_token_logps_diff
    ratio = torch.exp(logps_diff)
    if mode in ("sequence_truncate", "token_truncate"):
        return torch.clamp(ratio, max=cap)
    return ratio.masked_fill(ratio > cap, value=0.0)


def verl_rollout_correction(old, rollout, mask, level: str, threshold: float):
    """verl rollout_corr_helper: truncated IS weights (`rollout_is`), the rejection mask (`rollout_rs`, lower
    threshold 1 / upper) and the `k3_kl` off-policy metric."""
    log_ratio = old - rollout
    if level == "token":
        log_ratio_for_weights = log_ratio
    else:
        log_ratio_for_weights = (log_ratio * mask).sum(dim=-1, keepdim=True)
    weights = torch.exp(torch.clamp(log_ratio_for_weights, min=-20.0, max=20.0)).expand_as(log_ratio) * mask
    rejection = ((weights >= 1 / threshold) & (weights <= threshold)).to(mask.dtype)
    k3 = ((torch.exp(log_ratio) - log_ratio - 1) * mask).sum() / mask.sum()
    return weights.clamp(max=threshold), rejection, k3


@pytest.mark.parametrize("level", LEVELS)
def test_tis_equals_trl_truncate_and_verl_rollout_is(level):
    # sequence level: log w = -0.6, 1.3, -1.1, -0.6 (one above log 2)
    old, engine, mask = _logprobs(3, spread=0.6 if level == "token" else 0.3)
    ours, metrics = correction_weights(old, engine, mask, mode="tis", cap=2.0, level=level)
    trl = trl_importance_sampling_ratio(old, engine, mask, f"{level}_truncate", 2.0).expand_as(mask)
    verl, _, k3 = verl_rollout_correction(old, engine, mask, level, 2.0)
    assert (ours == 2.0).any() and ((ours < 2.0) & (mask > 0)).any()  # both sides of the cap occur
    torch.testing.assert_close(ours, trl * mask, rtol=1e-12, atol=0)  # TRL leaves 1 on padding
    torch.testing.assert_close(ours, verl, rtol=1e-12, atol=0)
    torch.testing.assert_close(metrics["kl"], k3, rtol=1e-12, atol=0)


@pytest.mark.parametrize("level", LEVELS)
def test_mis_equals_verl_is_times_rs_and_differs_from_trl_below_one_over_c(level):
    """Masked IS keeps w inside [1/C, C]. verl: IS weights times the rejection mask (lower threshold 1/C).
    TRL's `*_mask` modes zero only w > C: they differ exactly where w < 1/C (documented in docs/TRAINING.md)."""
    old, engine, mask = _logprobs(3, spread=0.6 if level == "token" else 0.3)
    ours, metrics = correction_weights(old, engine, mask, mode="mis", cap=2.0, level=level)
    verl_weights, rejection, _ = verl_rollout_correction(old, engine, mask, level, 2.0)
    torch.testing.assert_close(ours, verl_weights * rejection, rtol=1e-12, atol=0)
    trl = trl_importance_sampling_ratio(old, engine, mask, f"{level}_mask", 2.0).expand_as(mask) * mask
    below = (ours == 0) & (trl > 0)
    assert below.any() and (trl[below] < 0.5).all()
    torch.testing.assert_close(ours[~below], trl[~below], rtol=1e-12, atol=0)
    assert float(metrics["masked_frac"]) == pytest.approx(
        float(((ours == 0) & (mask > 0)).sum() / mask.sum())
    )


def test_no_overflow_on_long_sequences():
    """A sequence log-ratio of +-500 (exp overflows float32 at 88): weights stay finite, at most C."""
    old = torch.full((2, 1000), -1.0)
    engine = old - torch.tensor([[0.5], [-0.5]])  # log w_seq = +500 / -500
    mask = torch.ones_like(old)
    tis, metrics = correction_weights(old, engine, mask, mode="tis", cap=2.0, level="sequence")
    assert torch.equal(tis[0], torch.full((1000,), 2.0)) and (tis[1] == 0).all()
    mis, _ = correction_weights(old, engine, mask, mode="mis", cap=2.0, level="sequence")
    assert (mis == 0).all()
    assert all(math.isfinite(float(v)) for v in metrics.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "trunc", "cap": 2.0}, "engine_correction 'trunc'"),
        ({"mode": "tis", "cap": 1.0}, "engine_correction_cap = 1.0 must be > 1"),
        ({"mode": "tis", "cap": 2.0, "level": "geometric"}, "engine_correction_level 'geometric'"),
    ],
)
def test_invalid_arguments(kwargs, message):
    old, engine, mask = _logprobs(5)
    with pytest.raises(ConfigError, match=message):
        correction_weights(old, engine, mask, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# Config: the default follows the engine


def test_default_follows_the_engine():
    assert load_config(None, []).algorithm.engine_correction == "none"  # hf shares the trainer's weights
    vllm = load_config(None, ["rollout.engine=vllm"]).algorithm
    assert (vllm.engine_correction, vllm.engine_correction_cap, vllm.engine_correction_level) == (
        "tis",
        2.0,
        "token",
    )
    explicit = load_config(None, ["rollout.engine=vllm", "algorithm.engine_correction=none"]).algorithm
    assert explicit.engine_correction == "none"
    mis = load_config(None, ["algorithm.engine_correction=mis", "algorithm.engine_correction_level=sequence"])
    assert (mis.algorithm.engine_correction, mis.algorithm.engine_correction_level) == ("mis", "sequence")


def test_print_config_shows_the_resolved_value(capsys):
    from rlvr.cli import main

    assert main(["train", "--print-config", "rollout.engine=vllm"]) == 0
    assert json.loads(capsys.readouterr().out)["algorithm"]["engine_correction"] == "tis"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "algorithm.engine_correction=is",
            r"algorithm\.engine_correction = 'is' is invalid: .*tis, mis or auto",
        ),
        (
            "algorithm.engine_correction_cap=1",
            r"algorithm\.engine_correction_cap = 1\.0 is invalid: expected > 1",
        ),
        ("algorithm.engine_correction_level=geo", r"algorithm\.engine_correction_level = 'geo' is invalid"),
    ],
)
def test_invalid_config_is_a_one_line_error(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_every_correction_metric_is_documented():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "TRAINING.md").read_text(encoding="utf-8")
    old, engine, mask = _logprobs(6)
    _, metrics = correction_weights(old, engine, mask, mode="tis", cap=2.0)
    missing = [k for k in metrics if f"`engine_correction/{k}`" not in docs]
    assert not missing, f"metrics missing from docs/TRAINING.md: {missing}"


def test_training_with_the_correction_logs_its_metrics(tiny_model_folder, tmp_path):
    """End to end with the hf engine and `engine_correction: tis`: the loop passes the setting to the update,
    which logs the metrics; the hf engine samples with the trainer's weights, so the ratio is ~1."""
    from test_training import read_metrics, tiny_config

    from rlvr.trainer.loop import train

    train(tiny_config(tiny_model_folder, tmp_path, "algorithm.engine_correction=tis", "run.steps=1"))
    (metrics,) = read_metrics(tmp_path)
    assert metrics["engine_correction/ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    assert metrics["engine_correction/truncated_frac"] == 0.0
    assert 0 <= metrics["engine_correction/kl"] < 1e-5
