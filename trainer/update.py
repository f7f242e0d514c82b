"""The policy update: log-probs of a batch, the clipped surrogate with KL, aggregation, optimiser steps.

    for pass in num_iterations:  for minibatch in minibatches:  for micro-batch:  forward, loss, backward
                                                                  clip grads, optimiser step, lr step

Aggregation divides by counts of the whole minibatch (all micro-batches, all ranks), so gradient accumulation
and DDP give the gradient of the whole-minibatch loss. DDP averages gradients over ranks (so does FSDP2's
reduce-scatter); the loss is scaled by the world size to undo that average (the counts already normalise). Under
torchrun every rank runs as many micro-batches (`same_count`), as FSDP needs: each forward is a collective. The same holds for any split into
micro-batches: `micro_batch_size` rows each, or rows grouped by length within `token_budget` padded tokens.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from rlvr.errors import ConfigError
from rlvr.trainer.batch import PolicyBatch
from rlvr.trainer.engine_correction import correction_weights
from rlvr.trainer.losses import (
    aggregate,
    entropy_bonus,
    entropy_from_logits,
    kl_penalty,
    policy_loss,
    token_covariance,
)
from rlvr.trainer.sharding import same_count


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
    logprob_chunk: int = 0
    token_budget: int = 0
    engine_correction: str = "none"
    engine_correction_cap: float = 2.0
    engine_correction_level: str = "token"
    entropy_coef: float = 0.0
    positive_nll_coef: float = 0.0
    cov_mode: str = "none"
    cov: Any = None  # losses.CovSettings of cov_mode
    behaviour_old: bool = False  # pi_old = the engine's sampling log-probs (rollout.async: stale samples)


def token_logprobs(
    model: Any,
    batch: PolicyBatch,
    temperature: float,
    *,
    with_entropy: bool = False,
    chunk: int = 0,
    entropy_grad: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """log pi(token_t | tokens_<t) of the last `span` columns (B, span), and the entropy there when asked.

    Logits are divided by the sampling temperature, so the log-probs are those of the sampling distribution.
    The forward pass skips the columns that are padding in every row; columns left of them get 0. With `chunk`
    > 0 only policy tokens (loss_mask > 0) get values (the others 0), `chunk` tokens at a time (see
    `_chunked_logprobs`). The entropy carries a gradient only with `entropy_grad` (an entropy bonus).
    """
    part = batch.trimmed()  # (B, L') with L' the longest row
    inputs = {
        "input_ids": part.input_ids,
        "attention_mask": part.attention_mask,
        "position_ids": (part.attention_mask.cumsum(-1) - 1).clamp(min=0),
    }
    if chunk > 0:
        logprobs, entropy = _chunked_logprobs(
            model, part, inputs, temperature, chunk, with_entropy, entropy_grad
        )
    else:
        logits = model(**inputs, logits_to_keep=part.span + 1).logits[:, :-1, :]
        logits = logits.float() / temperature  # (B, span', V): column j predicts the token at L' - span' + j
        targets = part.tail(part.input_ids)  # (B, span')
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
        entropy = None
        if with_entropy:
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                entropy = entropy_from_logits(logits)
    dropped = batch.span - part.span  # (B, span') -> (B, span): zeros for the all-padding columns
    return F.pad(logprobs, (dropped, 0)), None if entropy is None else F.pad(entropy, (dropped, 0))


def _chunked_logprobs(
    model: Any,
    batch: PolicyBatch,
    inputs: dict[str, Tensor],
    temperature: float,
    chunk: int,
    entropy: bool,
    entropy_grad: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """(B, span) log-probs (and entropy) of the policy tokens, the LM head applied to `chunk` tokens at once.

    The body gives the final hidden states (its logits are asked for one column only); each chunk's float32
    logits (chunk, V) are freed after its forward and recomputed in the backward pass (checkpointing), so the
    peak is O(chunk x V) instead of O(B x span x V).
    """
    head = _plain_lm_head(model)
    out = model(**inputs, logits_to_keep=1, output_hidden_states=True)
    hidden = batch.tail(out.hidden_states[-1][:, :-1])  # (B, span, H): the final norm applied by the body
    valid = batch.tail(batch.loss_mask) > 0  # (B, span)
    states, targets = hidden[valid], batch.tail(batch.input_ids)[valid]  # (N, H), (N,)
    # at least one (maybe empty) chunk, so the head is in the graph even without a policy token (DDP needs it)
    pieces = [
        _head_chunk(head, states[i : i + chunk], targets[i : i + chunk], temperature, entropy, entropy_grad)
        for i in range(0, max(len(targets), 1), chunk)
    ]
    logprobs = hidden.new_zeros(valid.shape, dtype=torch.float32)  # (B, span)
    logprobs[valid] = torch.cat([p[0] for p in pieces])
    entropies = None
    if entropy:
        entropies = torch.zeros_like(logprobs)
        entropies[valid] = torch.cat([p[1] for p in pieces])
    return logprobs, entropies


def _head_chunk(
    head: torch.nn.Module,
    states: Tensor,
    targets: Tensor,
    temperature: float,
    entropy: bool,
    entropy_grad: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """(n,) log pi(target) and entropy of (n, H) final hidden states; backward recomputes the logits."""

    def logprobs_of(states: Tensor) -> tuple[Tensor, Tensor | None]:
        logits = head(states).float() / temperature  # (n, V)
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None])[:, 0]  # (n,)
        # without its gradient the entropy comes after the last saved tensor: the recomputation in backward
        # stops before it (checkpoint early stop)
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            return logprobs, entropy_from_logits(logits) if entropy else None

    if not torch.is_grad_enabled():
        return logprobs_of(states)
    return checkpoint(logprobs_of, states, use_reentrant=False)


# config attributes of models whose logits are not lm_head(h): the chunked path would get them wrong
_LOGIT_TRANSFORMS = {"final_logit_softcapping": None, "logit_scale": None, "logits_scaling": 1.0}


def _plain_lm_head(model: Any) -> torch.nn.Module:
    inner = getattr(model, "module", model)  # under DDP the forward goes through the wrapper, the head not
    config = getattr(inner, "config", None)
    for name, neutral in _LOGIT_TRANSFORMS.items():
        value = getattr(config, name, neutral)
        if value is not None and value != neutral:
            raise ConfigError(
                f"optim.logprob_chunk needs logits = lm_head(hidden), but the model's config has "
                f"{name}={value}; set optim.logprob_chunk=0"
            )
    return inner.get_output_embeddings()


@torch.no_grad()
def batch_logprobs(
    model: Any,
    batch: PolicyBatch,
    temperature: float,
    micro_batch_size: int,
    *,
    logprob_chunk: int = 0,
    token_budget: int = 0,
) -> Tensor:
    """(B, span) log-probs under `model` without gradients (pi_old for several passes, pi_ref for KL)."""
    groups = same_count(micro_batches(batch.lengths().tolist(), micro_batch_size, token_budget))
    parts = [token_logprobs(model, batch.rows(g), temperature, chunk=logprob_chunk)[0] for g in groups]
    order = torch.tensor([row for g in groups for row in g])
    return torch.cat(parts)[torch.argsort(order).to(parts[0].device)]  # back to the batch's row order


def micro_batches(lengths: list[int], size: int, token_budget: int = 0) -> list[list[int]]:
    """Row indices of each micro-batch: `size` consecutive rows, or with a token budget, rows by length.

    By length: longest first, a micro-batch takes rows while rows x its longest row (the padded tokens of its
    forward pass, see `PolicyBatch.trimmed`) stays within the budget; a row longer than the budget goes alone.
    """
    if token_budget <= 0:
        return [list(range(a, min(a + size, len(lengths)))) for a in range(0, len(lengths), size)]
    groups: list[list[int]] = []
    for row in sorted(range(len(lengths)), key=lambda i: -lengths[i]):  # stable: ties keep the row order
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= token_budget:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


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
    old_all = None
    if several_steps and not s.behaviour_old:
        old_all = batch_logprobs(
            model,
            batch,
            s.temperature,
            s.micro_batch_size,
            logprob_chunk=s.logprob_chunk,
            token_budget=s.token_budget,
        )
    sums: dict[str, float] = {}  # metric -> token-weighted sum
    # policy tokens (the metrics' weight), padded tokens (rows x longest row per micro-batch), real tokens
    counts = torch.zeros(3, dtype=torch.float64)
    grad_norms: list[float] = []
    times: dict[str, float] = {"time/old_logprobs_s": time.perf_counter() - begun}
    for _ in range(s.num_iterations):
        for rows in minibatches:
            index = torch.as_tensor(rows)
            counts += _accumulate(
                model,
                batch.rows(rows),
                s,
                old=None if old_all is None else old_all[index],
                ref=None if ref_logprobs is None else ref_logprobs[index],
                all_reduce=all_reduce,
                world_size=world_size,
                sums=sums,
                times=times,
            )
            params = [p for p in model.parameters() if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(
                params, s.max_grad_norm if s.max_grad_norm > 0 else float("inf")
            )
            grad_norms.append(float(norm))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    keys = sorted(sums)  # token-weighted means over all ranks (every rank has the same keys)
    totals = all_reduce(torch.tensor([sums[k] for k in keys] + [float(counts[0])], dtype=torch.float64))
    metrics = {k: float(totals[i]) / max(float(totals[-1]), 1.0) for i, k in enumerate(keys)}
    metrics.update(times)  # seconds on this rank
    metrics["grad_norm"] = sum(grad_norms) / len(grad_norms)
    metrics["optimizer_steps"] = float(len(grad_norms))
    metrics["batch/padding_frac"] = 1.0 - float(counts[2]) / max(float(counts[1]), 1.0)  # this rank
    return metrics


def _accumulate(
    model: Any,
    minibatch: PolicyBatch,
    s: UpdateSettings,
    *,
    old: Tensor | None,
    ref: Tensor | None,
    all_reduce: Callable[[Tensor], Tensor],
    world_size: int,
    sums: dict[str, float],
    times: dict[str, float],
) -> Tensor:
    """Gradients of one minibatch, micro-batch by micro-batch; adds to `sums` and `times`.

    Returns (3,): policy tokens, padded tokens (rows x longest row, summed over micro-batches), real tokens.
    """
    counts = all_reduce(_counts(minibatch))  # (3,) over all micro-batches and ranks
    lengths = minibatch.lengths().tolist()
    micro = same_count(micro_batches(lengths, s.micro_batch_size, s.token_budget))  # FSDP: equal on all ranks
    totals = torch.zeros(3, dtype=torch.float64)
    for number, rows in enumerate(micro):
        index = torch.as_tensor(rows)
        with _no_sync(model, enabled=number < len(micro) - 1):  # DDP syncs on the last backward
            stats, timings, tokens = _micro_step(
                model,
                minibatch.rows(rows),
                s,
                old=None if old is None else old[index],
                ref=None if ref is None else ref[index],
                counts=counts,
                scale=float(world_size),
            )
        for key, value in stats.items():
            sums[key] = sums.get(key, 0.0) + value * tokens
        for key, value in timings.items():
            times[key] = times.get(key, 0.0) + value
        longest = max(lengths[r] for r in rows)
        totals += torch.tensor(
            [tokens, len(rows) * longest, sum(lengths[r] for r in rows)], dtype=torch.float64
        )
    return totals


def _counts(minibatch: PolicyBatch) -> Tensor:
    """(3,): sequences, policy tokens, and policy tokens of solved samples (VAPO's NLL) of this rank's rows."""
    mask = minibatch.tail(minibatch.loss_mask)
    solved = 0.0 if minibatch.positive is None else float((mask * minibatch.positive[:, None]).sum())
    return torch.tensor([float(len(minibatch)), float(mask.sum()), solved], dtype=torch.float64)


def _micro_step(
    model: Any,
    part: PolicyBatch,
    s: UpdateSettings,
    *,
    old: Tensor | None,
    ref: Tensor | None,
    counts: Tensor,
    scale: float,
) -> tuple[dict[str, float], dict[str, float], float]:
    """Forward and backward of one micro-batch; its metrics (means over its policy tokens), timings, tokens.

    `counts` (3,) holds the whole minibatch's sequences, policy tokens and solved samples' policy tokens: the
    partial losses of the micro-batches then add up to the minibatch's loss (see `aggregate`).
    """
    started = time.perf_counter()
    logprobs, entropy = token_logprobs(
        model, part, s.temperature, with_entropy=True, chunk=s.logprob_chunk, entropy_grad=s.entropy_coef > 0
    )  # (b, span)
    mask = part.tail(part.loss_mask)  # (b, span)
    losses, values = _token_losses(logprobs, part, s, old=old, ref=ref)
    num_tokens = max(float(counts[1]), 1.0)
    loss = aggregate(
        losses,
        mask,
        s.loss_agg,
        num_sequences=float(counts[0]),
        num_tokens=num_tokens,
        max_length=s.loss_max_length,
    )
    loss = loss + _extra_terms(logprobs, entropy, part, s, counts, values)
    forward_s = time.perf_counter() - started
    (loss * scale).backward()
    backward_s = time.perf_counter() - started - forward_s
    tokens = float(mask.sum())
    values["loss"] = (
        float(loss.detach()) * num_tokens / max(tokens, 1.0)
    )  # the token-weighted mean is the batch loss
    values["entropy"] = float((entropy.detach() * mask).sum() / max(tokens, 1.0))
    timings = {"time/forward_s": forward_s, "time/backward_s": backward_s}
    return values, timings, tokens


def _token_losses(
    logprobs: Tensor, part: PolicyBatch, s: UpdateSettings, *, old: Tensor | None, ref: Tensor | None
) -> tuple[Tensor, dict[str, float]]:
    """The token losses (b, span): the policy loss (engine-corrected), plus the KL when it goes in the loss."""
    mask = part.tail(part.loss_mask)  # (b, span)
    advantages = part.advantages if part.advantages.dim() == 1 else part.tail(part.advantages)
    old_logprobs = logprobs.detach() if old is None else old
    if s.behaviour_old:  # the samples come from an older policy: it is pi_old (rollout.async)
        old_logprobs = part.tail(part.old_logprobs)
    losses, stats = policy_loss(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        clip_low=s.clip_low,
        clip_high=s.clip_high,
        clip_ratio_c=s.clip_ratio_c,
        ratio_level=s.ratio_level,
        variant=s.policy_loss if s.cov_mode == "none" else s.cov_mode,
        **({} if s.cov is None else {"cov": s.cov}),
    )
    losses, correction = _engine_corrected(losses, old_logprobs, part.tail(part.old_logprobs), mask, s)
    kl_value = torch.zeros(())
    if ref is not None:
        kl = kl_penalty(logprobs, ref, s.kl_estimator) * mask  # (b, span)
        kl_value = kl.detach().sum() / mask.sum().clamp(min=1)
        if s.kl_in_loss:
            losses = losses + s.kl_coef * kl
    with torch.no_grad():
        tokens = float(mask.sum())
        gap = ((part.tail(part.old_logprobs) - logprobs.detach()).abs() * mask).sum() / max(tokens, 1.0)
        values = {
            "kl": float(kl_value),
            "clip/low_frac": float(stats["clip_frac_low"]),
            "clip/high_frac": float(stats["clip_frac_high"]),
            "clip/dual_frac": float(stats["dual_clip_frac"]),
            "ratio/mean": float(stats["ratio_mean"]),
            "logprob_gap/engine_vs_train": float(gap),
            **{f"engine_correction/{k}": float(v) for k, v in correction.items()},
            **{name: float(v) for name, v in token_covariance(logprobs, advantages, mask).items()},
        }
        if s.cov_mode != "none":
            values["cov/frac"] = float(stats["cov_frac"])
    return losses, values


def _extra_terms(
    logprobs: Tensor, entropy: Tensor, part: PolicyBatch, s: UpdateSettings, counts: Tensor, values: dict
) -> Tensor:
    """Loss terms beside the policy loss, as partial sums over the minibatch like `aggregate`:

    entropy bonus   - entropy_coef * sum_t H_t / N_tokens                (token mean over policy tokens)
    positive NLL    + positive_nll_coef * sum_{t of solved} (-log pi_t) / N_solved_tokens   (VAPO)
    """
    mask = part.tail(part.loss_mask)  # (b, span)
    term = logprobs.new_zeros(())
    if s.entropy_coef > 0:
        term = term - entropy_bonus(entropy, mask, coef=s.entropy_coef, num_tokens=max(float(counts[1]), 1.0))
    if s.positive_nll_coef > 0 and part.positive is not None:
        solved = mask * part.positive[:, None].to(mask.dtype)  # (b, span) policy tokens of solved samples
        nll = -(logprobs * solved).sum() / max(float(counts[2]), 1.0)
        term = term + s.positive_nll_coef * nll
        values["positive_nll"] = (
            float(nll.detach()) * max(float(counts[2]), 1.0) / max(float(solved.sum()), 1.0)
        )
    return term


def _engine_corrected(
    losses: Tensor, old_logprobs: Tensor, engine_logprobs: Tensor, mask: Tensor, s: UpdateSettings
) -> tuple[Tensor, dict[str, Tensor]]:
    """The policy token losses (b, span) times the detached pi_old / pi_engine weights (`engine_correction`), and
    the correction's metrics; as in TRL and verl, only the policy term is weighted (the KL term is added after)."""
    if s.engine_correction == "none":
        return losses, {}
    weights, metrics = correction_weights(
        old_logprobs,
        engine_logprobs,
        mask,
        mode=s.engine_correction,
        cap=s.engine_correction_cap,
        level=s.engine_correction_level,
    )
    return losses * weights, metrics


def _split(count: int, parts: int) -> list[list[int]]:
    """`parts` contiguous, nearly equal index lists (empty ones dropped)."""
    bounds = [round(i * count / parts) for i in range(parts + 1)]
    return [list(range(a, b)) for a, b in itertools.pairwise(bounds) if b > a]


def _no_sync(model: Any, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled and hasattr(model, "no_sync"):
        return model.no_sync()
    return contextlib.nullcontext()
