"""Generalised advantage estimation over policy tokens (ALGORITHMS.md section 7b), and its pieces for PPO/VAPO.

    rewards = last_token_rewards(scores, mask, token_kl, kl_coef)   # (B, T): r on the last policy token, - beta kl
    advantages, returns = gae(rewards, values, mask, gamma, lam)    # (B, T) each, 0 off the policy tokens
    advantages = whiten(advantages, mask)                           # over the batch's policy tokens

Every tensor is (B, T) with `mask` > 0 on the policy tokens, columns aligned with `trainer.update.token_logprobs`
(the last `span` columns of a `PolicyBatch`). Tokens with mask 0 are not steps of the policy: the prompt, the
padding, and, in a multi-turn trajectory, the environment's tokens between two turns. GAE skips them: the next
value and the running advantage are carried across them unchanged, so the step after the last token of turn k is
the first token of turn k + 1 (one discount gamma, whatever the number of environment tokens between them), and a
reward or value written on a skipped token is never read. This is verl's `compute_gae_advantage_return`
(core_algos.py, which carries `nextvalues` and `lastgaelam` across mask == 0), and the choice REINFORCE++ makes
for multi-turn masks: the environment's tokens are no actions, so they neither discount nor bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from rlvr.errors import ConfigError

WHITEN_EPS = 1e-8
"""Added to the variance before the inverse square root (verl `masked_whiten`)."""


def gae(
    token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float | Tensor
) -> tuple[Tensor, Tensor]:
    """GAE advantages and returns (B, T) over the policy tokens; both 0 where mask is 0.

    `lam` is a float or a (B,) tensor (one lambda per sequence: VAPO's length-adaptive lambda). V after a row's
    last policy token is 0 (the trajectory has ended). No gradient flows (values are detached).
    """
    _check_unit("gamma", gamma)
    rewards, v = token_rewards.detach().float(), values.detach().float()  # (B, T)
    policy = mask > 0  # (B, T)
    lam = _per_row_lam(lam, rewards.shape[0], rewards.device)  # (B,)
    next_value = torch.zeros_like(rewards[:, 0])  # (B,) V of the next policy token (0 after the last one)
    next_advantage = torch.zeros_like(rewards[:, 0])  # (B,) A of the next policy token
    advantages = torch.zeros_like(rewards)
    for t in reversed(range(rewards.shape[1])):
        # delta_t = r_t + gamma * V_{t'} - V_t,  A_t = delta_t + gamma * lam * A_{t'}   (t' = next policy token)
        delta = rewards[:, t] + gamma * next_value - v[:, t]
        advantage = delta + gamma * lam * next_advantage
        here = policy[:, t]  # a skipped token carries V_{t'} and A_{t'} to the policy token before it
        next_value = torch.where(here, v[:, t], next_value)
        next_advantage = torch.where(here, advantage, next_advantage)
        advantages[:, t] = torch.where(here, advantage, torch.zeros_like(advantage))
    returns = torch.where(policy, advantages + v, torch.zeros_like(v))  # R_t = A_t + V_t
    return advantages, returns


def _per_row_lam(lam: float | Tensor, rows: int, device: torch.device) -> Tensor:
    """lambda as a (B,) float tensor, checked to lie in [0, 1]."""
    if isinstance(lam, Tensor):
        if lam.shape != (rows,):
            raise ConfigError(
                f"lam must be a float or a (B,) = ({rows},) tensor, got shape {tuple(lam.shape)}"
            )
        if len(lam) and (float(lam.min()) < 0 or float(lam.max()) > 1):
            raise ConfigError(
                f"lam must lie in [0, 1], got values in [{float(lam.min())}, {float(lam.max())}]"
            )
        return lam.detach().float().to(device)
    _check_unit("lam", lam)
    return torch.full((rows,), float(lam), device=device)


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name}={value} must lie in [0, 1] (RLHF practice: gamma = 1, lam = 0.95 or 1)")


def last_token_rewards(
    rewards: Tensor, mask: Tensor, token_kl: Tensor | None = None, kl_coef: float = 0.0
) -> Tensor:
    """Per-token rewards (B, T): each row's scalar reward on its last policy token, minus kl_coef * kl_t.

    r_t = [t = last policy token] * r - kl_coef * kl_t on policy tokens, 0 elsewhere (the KL-in-reward of
    PPO-RLHF; `token_kl` is (B, T), e.g. log pi_old - log pi_ref). A row without a policy token (an all-zero
    mask: a dropped sample) gets no reward anywhere.
    """
    policy = mask > 0  # (B, T)
    columns = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(policy, columns, torch.full_like(columns, -1)).amax(dim=1)  # (B,) -1: no policy token
    rows = torch.nonzero(last >= 0)[:, 0]
    out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    out[rows, last[rows]] = rewards.detach().float().to(mask.device)[rows]
    if token_kl is not None and kl_coef != 0.0:
        out = out - kl_coef * torch.where(policy, token_kl.detach().float(), torch.zeros_like(out))
    return out


def whiten(
    x: Tensor,
    mask: Tensor,
    shift_mean: bool = True,
    *,
    all_reduce: Callable[[Tensor], Tensor] = lambda t: t,
) -> Tensor:
    """(x - mean) / sqrt(var + 1e-8) over the policy tokens of the batch (verl `masked_whiten`); 0 off them.

    var is the unbiased (Bessel-corrected) variance, as in verl. With `shift_mean=False` the mean is added
    back (only the scale changes). `all_reduce` sums a tensor over the ranks, so that the mean and variance are
    those of the whole batch across ranks (every rank calls this). Fewer than two policy tokens do not raise
    (verl does): var is then the biased one (0 for a single token, whose whitened value is 0).
    """
    m = (mask > 0).to(torch.float64)  # (B, T)
    values = torch.where(mask > 0, x.detach(), torch.zeros_like(x)).to(torch.float64)
    totals = all_reduce(torch.stack([m.sum(), (values * m).sum()]).cpu())  # count, sum
    count = float(totals[0])
    mean = float(totals[1]) / max(count, 1.0)
    squares = float(all_reduce(((values - mean) ** 2 * m).sum().reshape(1).cpu())[0])
    # var = sum (x - mean)^2 / (n - 1)   (unbiased, as verl's masked_var)
    var = squares / (count - 1.0) if count > 1 else squares / max(count, 1.0)
    out = (x.detach().float() - mean) / math.sqrt(var + WHITEN_EPS)
    if not shift_mean:
        out = out + mean
    return torch.where(mask > 0, out, torch.zeros_like(out))


def length_adaptive_lam(lengths: Tensor, alpha: float = 0.05) -> Tensor:
    """VAPO's per-sequence lambda (B,): lam = 1 - 1 / (alpha * |o|), clamped to [0, 1].

    |o| is the number of policy tokens of the sequence. For |o| <= 1 / alpha (20 tokens at alpha = 0.05) the
    formula gives lam <= 0; it is clamped to 0 there (one-step TD advantages, A_t = delta_t), also for |o| = 0.
    """
    if not alpha > 0:
        raise ConfigError(f"alpha={alpha} must be > 0 (VAPO uses 0.05)")
    n = lengths.detach().float()  # (B,)
    lam = 1.0 - 1.0 / (alpha * n.clamp(min=1e-6))  # |o| = 0: a huge negative number, clamped to 0 below
    return lam.clamp(min=0.0, max=1.0)
