"""The policy update: log-probs of a batch, the clipped surrogate with KL, aggregation, optimiser steps.

    for pass in num_iterations:  for minibatch in minibatches:  for micro-batch:  forward, loss, backward
                                                                  clip grads, optimiser step, lr step

Aggregation divides by counts of the whole minibatch (all micro-batches, all ranks), so gradient accumulation
and DDP give the gradient of the whole-minibatch loss. DDP averages gradients over ranks; the loss is scaled by
the world size to undo that average (the counts already normalise).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rlvr.trainer.batch import PolicyBatch
from rlvr.trainer.losses import aggregate, entropy_from_logits, kl_penalty, policy_loss


@dataclass(frozen=True)
class UpdateSettings:
    """What the update needs from the config (resolved algorithm + optimiser + sampling temperature)."""

    clip_low: float
    clip_high: float
    clip_ratio_c: float | None
    ratio_level: str
    loss_agg: str
    loss_max_length: int
    kl_coef: float
    kl_estimator: str
    kl_in_loss: bool
    num_iterations: int
    minibatches: int
    micro_batch_size: int
    max_grad_norm: float
    temperature: float
    policy_loss: str = "clip"


def token_logprobs(
    model: Any, batch: PolicyBatch, temperature: float, *, with_entropy: bool = False
) -> tuple[Tensor, Tensor | None]:
    """log pi(token_t | tokens_<t) of the last `span` columns (B, span), and the entropy there when asked.

    Logits are divided by the sampling temperature, so the log-probs are those of the sampling distribution.
    """
    positions = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=positions,
        logits_to_keep=batch.span + 1,
    ).logits[:, :-1, :]  # (B, span, V): column j predicts the token at L - span + j
    logits = logits.float() / temperature
    targets = batch.tail(batch.input_ids)  # (B, span)
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits)
    return logprobs, entropy


@torch.no_grad()
def batch_logprobs(model: Any, batch: PolicyBatch, temperature: float, micro_batch_size: int) -> Tensor:
    """(B, span) log-probs under `model` without gradients (pi_old for several passes, pi_ref for KL)."""
    parts = []
    for start in range(0, len(batch), micro_batch_size):
        rows = batch.rows(range(start, min(start + micro_batch_size, len(batch))))
        parts.append(token_logprobs(model, rows, temperature)[0])
    return torch.cat(parts)


def policy_update(
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batch: PolicyBatch,
    settings: UpdateSettings,
    *,
    ref_logprobs: Tensor | None = None,
    all_reduce: Callable[[Tensor], Tensor] = lambda x: x,
    world_size: int = 1,
) -> dict[str, float]:
    """Optimise on one batch; return the update metrics (token-weighted means over the batch)."""
    s = settings
    begun = time.perf_counter()
    minibatches = _split(len(batch), s.minibatches)
    # pi_old is the policy that generated the batch. With one optimiser step it is the current policy (use the
    # detached log-probs, no extra forward); with several, every step after the first has moved the policy, so
    # compute pi_old once, before the first step.
    several_steps = s.num_iterations * len(minibatches) > 1
    old_all = batch_logprobs(model, batch, s.temperature, s.micro_batch_size) if several_steps else None
    sums: dict[str, float] = {}
    weight = 0.0
    grad_norms: list[float] = []
    times: dict[str, float] = {"time/old_logprobs_s": time.perf_counter() - begun}
    for _ in range(s.num_iterations):
        for rows in minibatches:
            minibatch = batch.rows(rows)
            counts = all_reduce(
                torch.tensor([float(len(minibatch)), float(batch.tail(minibatch.loss_mask).sum())])
            )
            num_sequences, num_tokens = float(counts[0]), max(float(counts[1]), 1.0)
            micro = _split_by_size(len(minibatch), s.micro_batch_size)
            for index, micro_rows in enumerate(micro):
                part = minibatch.rows(micro_rows)
                sync = index == len(micro) - 1
                with _no_sync(model, enabled=not sync):
                    stats, timings, tokens = _micro_step(
                        model,
                        part,
                        s,
                        old=None
                        if old_all is None
                        else old_all[torch.as_tensor(rows)][torch.as_tensor(micro_rows)],
                        ref=None
                        if ref_logprobs is None
                        else ref_logprobs[torch.as_tensor(rows)][torch.as_tensor(micro_rows)],
                        num_sequences=num_sequences,
                        num_tokens=num_tokens,
                        scale=float(world_size),
                    )
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + value * tokens
                weight += tokens
                for key, value in timings.items():
                    times[key] = times.get(key, 0.0) + value
            params = [p for p in model.parameters() if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(
                params, s.max_grad_norm if s.max_grad_norm > 0 else float("inf")
            )
            grad_norms.append(float(norm))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    keys = sorted(sums)  # token-weighted means over all ranks (every rank has the same keys)
    totals = all_reduce(torch.tensor([sums[k] for k in keys] + [weight], dtype=torch.float64))
    metrics = {k: float(totals[i]) / max(float(totals[-1]), 1.0) for i, k in enumerate(keys)}
    metrics.update(times)  # seconds on this rank
    metrics["grad_norm"] = sum(grad_norms) / len(grad_norms)
    metrics["optimizer_steps"] = float(len(grad_norms))
    return metrics


def _micro_step(
    model: Any,
    part: PolicyBatch,
    s: UpdateSettings,
    *,
    old: Tensor | None,
    ref: Tensor | None,
    num_sequences: float,
    num_tokens: float,
    scale: float,
) -> tuple[dict[str, float], dict[str, float], float]:
    started = time.perf_counter()
    logprobs, entropy = token_logprobs(model, part, s.temperature, with_entropy=True)  # (b, span)
    mask = part.tail(part.loss_mask)  # (b, span)
    advantages = part.advantages if part.advantages.dim() == 1 else part.tail(part.advantages)
    old_logprobs = logprobs.detach() if old is None else old
    losses, stats = policy_loss(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        clip_low=s.clip_low,
        clip_high=s.clip_high,
        clip_ratio_c=s.clip_ratio_c,
        ratio_level=s.ratio_level,
        variant=s.policy_loss,
    )
    kl_value = torch.zeros(())
    if ref is not None:
        kl = kl_penalty(logprobs, ref, s.kl_estimator) * mask  # (b, span)
        kl_value = kl.detach().sum() / mask.sum().clamp(min=1)
        if s.kl_in_loss:
            losses = losses + s.kl_coef * kl
    loss = aggregate(
        losses,
        mask,
        s.loss_agg,
        num_sequences=num_sequences,
        num_tokens=num_tokens,
        max_length=s.loss_max_length,
    )
    forward_s = time.perf_counter() - started
    (loss * scale).backward()
    backward_s = time.perf_counter() - started - forward_s
    tokens = float(mask.sum())
    with torch.no_grad():
        sampled_gap = ((part.tail(part.old_logprobs) - logprobs.detach()).abs() * mask).sum() / max(
            tokens, 1.0
        )
        values = {
            "loss": float(loss)
            * num_tokens
            / max(tokens, 1.0),  # so the token-weighted mean is the batch loss
            "entropy": float((entropy * mask).sum() / max(tokens, 1.0)),
            "kl": float(kl_value),
            "clip/low_frac": float(stats["clip_frac_low"]),
            "clip/high_frac": float(stats["clip_frac_high"]),
            "clip/dual_frac": float(stats["dual_clip_frac"]),
            "ratio/mean": float(stats["ratio_mean"]),
            "logprob_gap/engine_vs_train": float(sampled_gap),
        }
    timings = {"time/forward_s": forward_s, "time/backward_s": backward_s}
    return values, timings, tokens


def _split(count: int, parts: int) -> list[list[int]]:
    """`parts` contiguous, nearly equal index lists (empty ones dropped)."""
    bounds = [round(i * count / parts) for i in range(parts + 1)]
    return [list(range(a, b)) for a, b in itertools.pairwise(bounds) if b > a]


def _split_by_size(count: int, size: int) -> list[list[int]]:
    return [list(range(a, min(a + size, count))) for a in range(0, count, size)]


def _no_sync(model: Any, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled and hasattr(model, "no_sync"):
        return model.no_sync()
    return contextlib.nullcontext()
