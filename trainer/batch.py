"""From trajectories to tensors: one left-padded row per trajectory, with the policy-token mask.

Rows are left-padded so every sequence ends at the last column; the policy tokens of all rows then lie in the
last `span` columns, and the forward pass computes logits only there (`logits_to_keep`), never over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from rlvr.envs.rollout import Trajectory


@dataclass
class PolicyBatch:
    """Tensors of B trajectories. Columns are token positions; `span` = columns holding any policy token."""

    input_ids: Tensor  # (B, L) left-padded
    attention_mask: Tensor  # (B, L) 1 on real tokens
    loss_mask: Tensor  # (B, L) float, 1 on policy tokens that train (prompt, environment, pad: 0)
    old_logprobs: Tensor  # (B, L) float, the engine's log-probs of the policy tokens (0 elsewhere)
    advantages: Tensor  # (B,) or (B, L)
    span: int  # policy tokens lie in the last `span` columns
    positive: Tensor | None = None  # (B,) float, 1 for a solved sample (VAPO's positive-example NLL)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def rows(self, index: Sequence[int] | Tensor) -> PolicyBatch:
        """The sub-batch of these rows (the span is kept, so every sub-batch aligns with the whole)."""
        index = torch.as_tensor(index, dtype=torch.long)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            if isinstance(value, Tensor) and value.dim() >= 1 and value.shape[0] == len(self):
                values[name] = value[index]
        return PolicyBatch(**values)

    def to(self, device: torch.device | str) -> PolicyBatch:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return PolicyBatch(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in values.items()})

    def tail(self, tensor: Tensor) -> Tensor:
        """The last `span` columns of a (B, L, ...) tensor."""
        return tensor[:, tensor.shape[1] - self.span :]

    def lengths(self) -> Tensor:
        """(B,) real tokens per row."""
        return self.attention_mask.sum(dim=1)

    def trimmed(self) -> PolicyBatch:
        """The same rows without the leading columns that are padding in every row (B, L' = longest row).

        The span shrinks to at most L' - 1 columns: the dropped columns hold no token, and a row's first token
        is a prompt token (it has nothing to be predicted from), so no policy token is lost.
        """
        width = self.input_ids.shape[1]
        keep = int(self.lengths().max()) if len(self) else width
        if keep == width:
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            if isinstance(value, Tensor) and value.dim() >= 2 and value.shape[1] == width:
                values[name] = value[:, width - keep :]
        values["span"] = min(self.span, max(keep - 1, 0))
        return PolicyBatch(**values)


def build_batch(
    trajectories: Sequence[Trajectory],
    advantages: Tensor,
    *,
    pad_id: int,
    drop: Sequence[bool] | None = None,
    positive: Sequence[bool] | None = None,
) -> PolicyBatch:
    """Tensors for `trajectories`; `advantages` is (B,) or (B, L) left-padded like `token_mask`; rows with
    `drop[i]` (overlong filtering) keep their tokens but get an all-zero loss mask; `positive[i]` marks the solved
    samples."""
    if any(not t.token_ids for t in trajectories):
        raise ValueError("trajectories need token ids: run the rollout with the policy's tokenizer")
    batch = len(trajectories)
    width = max(len(t.token_ids) for t in trajectories)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    attention = torch.zeros((batch, width), dtype=torch.long)
    loss_mask = torch.zeros((batch, width))
    old = torch.zeros((batch, width))
    if advantages.dim() == 2 and advantages.shape != (batch, width):
        raise ValueError(f"token advantages must be (B, L) = {(batch, width)} as `token_mask` gives them")
    first_policy = width
    for row, trajectory in enumerate(trajectories):
        start = width - len(trajectory.token_ids)
        input_ids[row, start:] = torch.tensor(trajectory.token_ids)
        attention[row, start:] = 1
        mask = torch.tensor(trajectory.mask, dtype=torch.float)
        if drop is not None and drop[row]:
            mask = torch.zeros_like(mask)
        loss_mask[row, start:] = mask
        old[row, start:] = torch.tensor(trajectory.logprobs, dtype=torch.float)
        policy = [i for i, m in enumerate(trajectory.mask) if m]
        if policy:
            first_policy = min(first_policy, start + policy[0])
    span = max(1, width - first_policy)
    flags = None if positive is None else torch.tensor([float(p) for p in positive])
    return PolicyBatch(input_ids, attention, loss_mask, old, advantages.float(), span, flags)


def token_mask(trajectories: Sequence[Trajectory]) -> Tensor:
    """(B, L) policy-token mask, left-padded like `build_batch` (for per-token advantages)."""
    width = max(len(t.mask) for t in trajectories)
    mask = torch.zeros((len(trajectories), width))
    for row, trajectory in enumerate(trajectories):
        mask[row, width - len(trajectory.mask) :] = torch.tensor(trajectory.mask, dtype=torch.float)
    return mask
