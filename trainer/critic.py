"""PPO's critic (ALGORITHMS.md section 7b): a value model V(s_t) at every policy token, its clipped loss, and
its optimiser, micro-batching, sharding and checkpoints.

    critic = Critic(load_value_model(config.model.name), CriticSettings(lr=1e-5), sharding=sharding)
    old_values = critic.values(batch)                       # (B, span), no gradient: the GAE input
    metrics = critic.update(batch, returns, old_values, all_reduce=dist.all_reduce_sum, world_size=dist.world_size)
    critic.save(folder) / critic.restore(folder)             # weights + optimiser state, exact resume

The value model is the policy's base model loaded again (separate weights) without its LM head, with a scalar
head `Linear(hidden, 1)` on the final hidden states. V of policy token t is read at the position that predicts
token t (the state before the token is emitted), so its columns line up with `trainer.update.token_logprobs`
(verl's critic takes values[:, -response_length - 1:-1] for the same reason).

The head starts at zero (weight and bias): V = 0 everywhere at first, so the first advantages are the plain
(KL-shaped) Monte-Carlo returns instead of returns minus the noise of a random head; the head's weight gets a
gradient at once (dL/dw = dL/dV * h) and the body from the second step on. It is also the same on every rank
and every seed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rlvr.errors import ConfigError
from rlvr.trainer.batch import PolicyBatch
from rlvr.trainer.losses import aggregate
from rlvr.trainer.sharding import FullyShard, same_count
from rlvr.trainer.update import micro_batches

CHECKPOINT_FILE = "critic.pt"
"""The critic's file in a checkpoint folder without sharding: {"model": state dict, "optimizer": state dict}."""
SHARDED = "critic-sharded"
"""The critic's folder under FSDP (torch.distributed.checkpoint: one file per rank, same world size to load)."""


class ValueModel(torch.nn.Module):
    """A causal LM's body (the decoder with its final norm; the LM head is dropped) and a scalar value head."""

    def __init__(self, causal_lm: Any) -> None:
        """Take over the body of `causal_lm` (an HF causal LM); pass a copy that the policy does not use."""
        super().__init__()
        self.body = causal_lm.get_decoder()  # LlamaModel & co.: last_hidden_state has the final norm applied
        self.config = causal_lm.config
        weight = next(self.body.parameters())
        self.head = torch.nn.Linear(self.config.hidden_size, 1, dtype=weight.dtype, device=weight.device)
        torch.nn.init.zeros_(self.head.weight)  # V = 0 at the start: see the module docstring
        torch.nn.init.zeros_(self.head.bias)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, values_to_keep: int = 0
    ) -> Tensor:
        """V at every position (B, L), or at the last `values_to_keep` positions (B, keep), in float32."""
        hidden = self.body(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state  # (B, L, H); no KV cache: nothing is generated
        if values_to_keep > 0:
            hidden = hidden[:, -values_to_keep:]
        values = self.head(hidden.to(self.head.weight.dtype))[..., 0]  # (B, keep)
        return values.to(torch.float32, copy=True)  # not a view (FSDP2's backward hook is on the output)

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        self.body.gradient_checkpointing_enable(**kwargs)


def load_value_model(name_or_path: str, dtype: str = "float32", device: str = "cpu") -> ValueModel:
    """A value model on the causal LM `name_or_path` (loaded anew: weights separate from the policy's)."""
    from rlvr.trainer.engines.models import load_model

    return ValueModel(load_model(name_or_path, dtype=dtype, device=device))


def token_values(value_model: Any, batch: PolicyBatch) -> Tensor:
    """V(s_t) of the last `span` columns (B, span), column for column as `token_logprobs` gives log-probs.

    Column j holds V at the position that predicts the token of column j; tokens that are not policy tokens
    get 0 (so do the columns that are padding in every row, which the forward pass skips).
    """
    part = batch.trimmed()  # (B, L') with L' the longest row
    inputs = {
        "input_ids": part.input_ids,
        "attention_mask": part.attention_mask,
        "position_ids": (part.attention_mask.cumsum(-1) - 1).clamp(min=0),
    }
    values = value_model(**inputs, values_to_keep=part.span + 1)[:, :-1]  # (B, span'): shifted like logits
    values = torch.where(part.tail(part.loss_mask) > 0, values, torch.zeros_like(values))
    dropped = batch.span - part.span  # (B, span') -> (B, span)
    return F.pad(values, (dropped, 0))


def value_loss(
    vpreds: Tensor,
    returns: Tensor,
    old_values: Tensor,
    mask: Tensor,
    clip: float | None,
    agg: str = "token_mean",
    num_tokens: float | None = None,
    *,
    num_sequences: float | None = None,
    max_length: int | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped value loss over the policy tokens, aggregated by `agg` (see `losses.aggregate`).

    L_t = 0.5 * max((V_t - R_t)^2, (clip(V_t, V_old_t - eps, V_old_t + eps) - R_t)^2), eps = `clip`;
    `clip` None or 0 means unclipped, L_t = 0.5 * (V_t - R_t)^2 (a clip of 0 would pin V to V_old). The counts
    default to this call's tokens and rows; pass the whole batch's (all micro-batches, all ranks) to accumulate.
    Stats (detached): vf_clipfrac, the fraction of tokens where the clipped term is the larger one.
    """
    if clip is not None and clip < 0:
        raise ConfigError(f"value_clip={clip} must be >= 0 (e.g. 0.2 or 0.5), or None / 0 for no clipping")
    m = (mask > 0).to(vpreds.dtype)  # (B, T)
    unclipped = (vpreds - returns) ** 2  # (B, T)
    clipped_frac = torch.zeros((), device=vpreds.device)
    losses = unclipped
    if clip:
        v_clipped = torch.max(torch.min(vpreds, old_values + clip), old_values - clip)
        clipped = (v_clipped - returns) ** 2
        losses = torch.max(unclipped, clipped)
        with torch.no_grad():
            clipped_frac = (clipped > unclipped).to(m.dtype).mul(m).sum() / m.sum().clamp(min=1)
    tokens = float(m.sum()) if num_tokens is None else num_tokens
    rows = float(len(m)) if num_sequences is None else num_sequences
    loss = aggregate(
        0.5 * losses, m, agg, num_sequences=max(rows, 1.0), num_tokens=max(tokens, 1.0), max_length=max_length
    )
    return loss, {"vf_clipfrac": clipped_frac}


@dataclass(frozen=True)
class CriticSettings:
    """The critic's optimiser and update settings."""

    lr: float = 1e-5
    """AdamW learning rate of the value model (constant)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW (beta1, beta2)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm before each step; 0 = no clipping."""
    value_clip: float | None = 0.5
    """eps of the clipped value loss (verl's default cliprange_value 0.5); None or 0 = unclipped."""
    loss_agg: str = "token_mean"
    """How token losses make the loss: a name of `losses.AGGREGATIONS` (token_mean, seq_mean_token_mean)."""
    micro_batch_size: int = 4
    """Rows per forward/backward pass (gradients accumulate over the micro-batches)."""
    token_budget: int = 0
    """> 0: micro-batches of rows grouped by length within this many padded tokens (see update.micro_batches)."""
    minibatches: int = 1
    """One optimiser step per minibatch in each `update` pass over the batch."""

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"critic.lr={self.lr} must be > 0 (e.g. 1e-5)")
        if self.micro_batch_size < 1 or self.minibatches < 1:
            raise ConfigError(
                f"critic micro_batch_size={self.micro_batch_size} and minibatches={self.minibatches} "
                "must be >= 1"
            )
        if self.value_clip is not None and self.value_clip < 0:
            raise ConfigError(
                f"critic.value_clip={self.value_clip} must be >= 0, or None / 0 for no clipping"
            )


class Critic:
    """The value model, its AdamW optimiser and its updates; sharded like the policy when given `sharding`."""

    def __init__(self, model: ValueModel, settings: CriticSettings, *, sharding: Any = None) -> None:
        self.model = model  # the module itself (FSDP2 shards it in place; DDP wraps it)
        self.settings = settings
        self.sharding = sharding
        self.trained = sharding.wrap(model) if sharding is not None else model  # before the optimiser
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=settings.lr,
            betas=settings.betas,
            weight_decay=settings.weight_decay,
        )

    @torch.no_grad()
    def values(self, batch: PolicyBatch) -> Tensor:
        """(B, span) V(s_t) without gradients, micro-batched (every rank must call it under FSDP)."""
        s = self.settings
        groups = same_count(micro_batches(batch.lengths().tolist(), s.micro_batch_size, s.token_budget))
        parts = [token_values(self.trained, batch.rows(g)) for g in groups]
        order = torch.tensor([row for g in groups for row in g])
        return torch.cat(parts)[torch.argsort(order).to(parts[0].device)]  # back to the batch's row order

    def update(
        self,
        batch: PolicyBatch,
        returns: Tensor,
        old_values: Tensor,
        *,
        all_reduce: Callable[[Tensor], Tensor] = lambda x: x,
        world_size: int = 1,
    ) -> dict[str, float]:
        """One pass over `batch` (an optimiser step per minibatch) on the clipped value loss; the metrics.

        `returns` and `old_values` are (B, span), aligned with `batch.tail(batch.loss_mask)`. The loss of each
        minibatch divides by its counts over all micro-batches and ranks (see update.py), so accumulation and
        DDP/FSDP give the gradient of the whole minibatch's loss. Metrics are token-weighted over all ranks.
        """
        begun = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64)  # loss (summed over minibatches), clipfrac * tokens, V sum
        norms: list[float] = []
        for rows in torch.arange(len(batch)).tensor_split(self.settings.minibatches):
            if len(rows) == 0:
                continue
            index = rows.to(returns.device)
            sums += self._accumulate(
                batch.rows(rows), returns[index], old_values[index], all_reduce, world_size
            )
            norms.append(self._step())
        mask = batch.tail(batch.loss_mask)
        totals = all_reduce(torch.cat([sums, _value_moments(mask, returns, old_values)]))
        tokens = max(float(totals[3]), 1.0)
        metrics = {
            "critic/value_loss": float(totals[0]) / max(len(norms), 1),  # mean over the minibatches
            "critic/vf_clipfrac": float(totals[1]) / tokens,
            "critic/vpred_mean": float(totals[2]) / tokens,
            **_value_metrics(totals[3:]),
            "critic/grad_norm": sum(norms) / max(len(norms), 1),
            "critic/lr": float(self.optimizer.param_groups[0]["lr"]),
            "critic/update_s": time.perf_counter() - begun,
        }
        return metrics

    def _accumulate(
        self,
        minibatch: PolicyBatch,
        returns: Tensor,
        old_values: Tensor,
        all_reduce: Callable[[Tensor], Tensor],
        world_size: int,
    ) -> Tensor:
        """Gradients of one minibatch, micro-batch by micro-batch; (3,) sums: its loss on this rank (the
        ranks' add up to the minibatch's loss), clipped tokens and V over its policy tokens."""
        s = self.settings
        mask = minibatch.tail(minibatch.loss_mask)  # (b, span)
        counts = all_reduce(torch.tensor([float(len(minibatch)), float(mask.sum())]))
        num_sequences, num_tokens = max(float(counts[0]), 1.0), max(float(counts[1]), 1.0)
        micro = same_count(micro_batches(minibatch.lengths().tolist(), s.micro_batch_size, s.token_budget))
        sums = torch.zeros(3, dtype=torch.float64)
        for number, rows in enumerate(micro):
            part, index = minibatch.rows(rows), torch.as_tensor(rows, device=returns.device)
            with _no_sync(self.trained, enabled=number < len(micro) - 1):  # DDP syncs on the last backward
                vpreds = token_values(self.trained, part)  # (b, span)
                m = part.tail(part.loss_mask)
                loss, stats = value_loss(
                    vpreds,
                    returns[index].to(vpreds.device).float(),
                    old_values[index].to(vpreds.device).float(),
                    m,
                    s.value_clip,
                    s.loss_agg,
                    num_tokens,
                    num_sequences=num_sequences,
                )
                (loss * world_size).backward()  # DDP/FSDP average over ranks; the counts already normalise
            tokens = float((m > 0).sum())
            vsum = float((vpreds.detach() * (m > 0)).sum())
            sums += torch.tensor(
                [float(loss.detach()), float(stats["vf_clipfrac"]) * tokens, vsum], dtype=torch.float64
            )
        return sums

    def _step(self) -> float:
        """Clip the gradients, step, zero them; the gradient norm before clipping."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        limit = self.settings.max_grad_norm if self.settings.max_grad_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, limit)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def save(self, folder: Path | str) -> None:
        """Write the weights and optimiser state into `folder` (every rank calls it).

        Without sharding (one process or DDP) rank 0 writes critic.pt. Under FSDP every rank writes its shards
        of both with torch.distributed.checkpoint into critic-sharded/, as `FullyShard.save` does for the
        policy; they are restored at the same world size.
        """
        folder = Path(folder)
        if isinstance(self.sharding, FullyShard):
            import torch.distributed.checkpoint as dcp
            from torch.distributed.checkpoint.state_dict import get_state_dict

            _reshard(self.model)
            model_state, optim_state = get_state_dict(self.model, self.optimizer)
            dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=folder / SHARDED)
            return
        if self.sharding is None or self.sharding.dist.is_main:
            folder.mkdir(parents=True, exist_ok=True)
            state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
            torch.save(state, folder / CHECKPOINT_FILE)
        if self.sharding is not None:
            self.sharding.dist.barrier()

    def restore(self, folder: Path | str) -> None:
        """Load what `save` wrote into `folder`: the next update is the one the saved critic would have made."""
        folder = Path(folder)
        if isinstance(self.sharding, FullyShard):
            import torch.distributed.checkpoint as dcp
            from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

            _reshard(self.model)  # no gathered copy of the old weights may outlive the load
            model_state, optim_state = get_state_dict(self.model, self.optimizer)
            state = {"model": model_state, "optim": optim_state}
            dcp.load(state, checkpoint_id=folder / SHARDED)
            set_state_dict(
                self.model, self.optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
            )
            return
        device = next(self.model.parameters()).device
        state = torch.load(folder / CHECKPOINT_FILE, map_location=device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


def _reshard(model: Any) -> None:
    """FSDP2: drop the gathered weights (the root keeps its own after a forward without a backward)."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def _value_moments(mask: Tensor, returns: Tensor, values: Tensor) -> Tensor:
    """(5,) sums over the policy tokens: count, R, R^2, R - V, (R - V)^2 (float64, on the CPU)."""
    m = (mask > 0).to(returns.device)
    r = torch.where(m, returns.detach(), torch.zeros_like(returns)).double()
    d = torch.where(m, (returns - values.to(returns.device)).detach(), torch.zeros_like(returns)).double()
    return torch.stack([m.sum().double(), r.sum(), (r**2).sum(), d.sum(), (d**2).sum()]).cpu()


def _value_metrics(moments: Tensor) -> dict[str, float]:
    """Means and explained variance 1 - Var(R - V) / Var(R) of the old values V from `_value_moments`."""
    n = max(float(moments[0]), 1.0)
    r_mean, d_mean = float(moments[1]) / n, float(moments[3]) / n
    var_r = float(moments[2]) / n - r_mean**2
    var_d = float(moments[4]) / n - d_mean**2
    return {
        "critic/returns_mean": r_mean,
        "critic/values_mean": r_mean - d_mean,
        "critic/explained_variance": 1.0 - var_d / var_r if var_r > 1e-12 else float("nan"),
    }


def _no_sync(model: Any, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled and hasattr(model, "no_sync"):
        return model.no_sync()
    return contextlib.nullcontext()
