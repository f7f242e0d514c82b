"""Supervised fine-tuning on chat completions: the NLL of the completion tokens, the prompt tokens masked.

    (prompt messages, completion text) -> token ids as the rollout builds them -> PolicyBatch (left-padded,
    loss mask on the completion tokens) -> token_logprobs -> loss -> AdamW, micro-batches, epochs

Tokens: the prompt is the chat template with the generation prompt (`ChatTokens.prompt_ids`, as the rollout
and the engines render it), the completion is its text encoded without special tokens, then the
end-of-sequence token when the completion stopped by itself (the token the engine sampled to stop:
`<|im_end|>` for ChatML models). So a kept sample trains on the ids the RL trainer would score for it, up
to the re-encoding of its text.

Loss of an optimiser batch (token mean over every completion token of the batch, all micro-batches together):

    L = - (1 / N) * sum_{rows i} sum_{completion tokens t of i} log pi(y_{i,t} | y_{i,<t}, prompt_i)

RAFT's loss (ALGORITHMS.md 7): rejection-sampling fine-tuning is this NLL on the selected samples.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from rlvr.envs.chat_tokens import ChatTokens
from rlvr.envs.rollout import Trajectory
from rlvr.envs.types import Message
from rlvr.errors import ConfigError
from rlvr.trainer.batch import PolicyBatch, build_batch
from rlvr.trainer.update import micro_batches, token_logprobs


@dataclass(frozen=True)
class SFTExample:
    """One training conversation: the prompt messages and the assistant's reply."""

    prompt: list[Message]
    completion: str
    stopped: bool = True
    """The reply ended by itself: the end-of-sequence token is a target too (False: cut at max_tokens)."""


@dataclass(frozen=True)
class SFTConfig:
    """The fine-tuning run."""

    lr: float = 1e-5
    """AdamW learning rate (constant)."""
    epochs: int = 2
    """Passes over the examples, shuffled anew each pass."""
    batch_size: int = 16
    """Examples per optimiser step."""
    micro_batch_size: int = 8
    """Examples per forward/backward; gradients accumulate over the optimiser batch."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0: off)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    seed: int = 0
    """Seeds the order of the examples."""

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr!r} (--lr)")
        for name in ("epochs", "batch_size", "micro_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{name} must be an integer >= 1, got {value!r} (--{name.replace('_', '-')})"
                )
        if self.max_grad_norm < 0 or self.weight_decay < 0:
            raise ConfigError(
                f"max_grad_norm and weight_decay must be >= 0, got {self.max_grad_norm}, {self.weight_decay}"
            )


@dataclass
class SFTResult:
    """What a fine-tuning run did; `epoch_nll[e]`: the token-mean NLL over epoch e (each batch's before its
    step)."""

    examples: int
    completion_tokens: int
    steps: int
    epoch_nll: list[float] = field(default_factory=list)
    seconds: float = 0.0


def encode_example(example: SFTExample, tokenizer: Any, chat: ChatTokens | None = None) -> Trajectory:
    """The example's token ids and mask (0 prompt, 1 completion), laid out as a rollout's Trajectory."""
    chat = chat or ChatTokens(tokenizer)
    prompt = chat.prompt_ids(example.prompt)
    completion = chat.encode(example.completion)
    if example.stopped:
        if tokenizer.eos_token_id is None:
            raise ConfigError("the tokenizer has no eos_token: cannot mark where a reply ends")
        completion.append(tokenizer.eos_token_id)
    if not completion:
        raise ConfigError("an example has an empty completion: there is no token to train on")
    ids = prompt + completion
    return Trajectory(
        env_id="sft",
        task_id="",
        task_index=None,
        messages=list(example.prompt),
        token_ids=ids,
        mask=[0] * len(prompt) + [1] * len(completion),
        logprobs=[0.0] * len(ids),
        prompt_length=len(prompt),
    )


def make_batch(rows: Sequence[Trajectory], pad_id: int) -> PolicyBatch:
    """Left-padded tensors of encoded examples; the loss mask marks the completion tokens."""
    return build_batch(rows, torch.zeros(len(rows)), pad_id=pad_id)


def nll_sum(model: Any, batch: PolicyBatch) -> tuple[Tensor, int]:
    """Summed NLL of the batch's completion tokens (a scalar with gradient) and their count."""
    logprobs, _ = token_logprobs(model, batch, 1.0)  # (B, span)
    mask = batch.tail(batch.loss_mask)  # (B, span)
    return -torch.where(mask > 0, logprobs, torch.zeros_like(logprobs)).sum(), int(mask.sum())


@torch.no_grad()
def mean_nll(model: Any, rows: Sequence[Trajectory], pad_id: int, micro_batch_size: int = 8) -> float:
    """Token-mean NLL of the completion tokens of encoded examples under `model`."""
    total, tokens = 0.0, 0
    device = next(model.parameters()).device
    for part in micro_batches([len(r.token_ids) for r in rows], micro_batch_size):
        loss, count = nll_sum(model, make_batch([rows[i] for i in part], pad_id).to(device))
        total, tokens = total + float(loss), tokens + count
    return total / max(tokens, 1)


def sft(
    model: Any,
    tokenizer: Any,
    examples: Sequence[SFTExample],
    config: SFTConfig,
    *,
    on_step: Callable[[int, float], None] | None = None,
) -> SFTResult:
    """Fine-tune `model` in place on `examples`; `on_step(step, nll)` is called after each optimiser step."""
    if not examples:
        raise ConfigError("no examples to fine-tune on")
    started = time.perf_counter()
    chat = ChatTokens(tokenizer)
    rows = [encode_example(example, tokenizer, chat) for example in examples]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    result = SFTResult(examples=len(rows), completion_tokens=sum(sum(r.mask) for r in rows), steps=0)
    for epoch in range(config.epochs):
        order = list(range(len(rows)))
        random.Random(config.seed + epoch).shuffle(order)
        epoch_loss, epoch_tokens = 0.0, 0
        for first in range(0, len(order), config.batch_size):
            batch = [rows[i] for i in order[first : first + config.batch_size]]
            loss, tokens = _step(model, optimizer, params, batch, pad_id, device, config)
            epoch_loss, epoch_tokens = epoch_loss + loss * tokens, epoch_tokens + tokens
            result.steps += 1
            if on_step is not None:
                on_step(result.steps, loss)
        result.epoch_nll.append(epoch_loss / max(epoch_tokens, 1))
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def _step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    params: list[Tensor],
    rows: list[Trajectory],
    pad_id: int,
    device: torch.device,
    config: SFTConfig,
) -> tuple[float, int]:
    """One optimiser step on `rows`: each micro-batch's summed NLL / N (N: the batch's completion tokens), so
    the accumulated gradient is that of the token-mean loss of the whole batch. Returns (that loss, N)."""
    total_tokens = sum(sum(r.mask) for r in rows)
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for part in micro_batches([len(r.token_ids) for r in rows], config.micro_batch_size):
        summed, _ = nll_sum(model, make_batch([rows[i] for i in part], pad_id).to(device))
        loss = summed / total_tokens
        loss.backward()
        total += float(loss.detach())
    if config.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
    optimizer.step()
    return total, total_tokens
