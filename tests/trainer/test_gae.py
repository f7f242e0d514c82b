"""GAE over policy tokens (trainer/gae.py) against verl's code on identical tensors, and by hand.

The references below are transcribed from verl (github.com/volcengine/verl):
`compute_gae_advantage_return` from verl/trainer/ppo/core_algos.py at commit 012be9d9dcb7c38499f23616142870d2682757fc
(the version that carries `nextvalues` / `lastgaelam` across mask == 0), and `masked_mean`, `masked_var`,
`masked_whiten` from verl/utils/torch_functional.py at commit 33ddc71428da6e945cee80f6020dac4b59cb9c63. verl
whitens inside its GAE; rlvr keeps the two apart (`gae`, then `whiten`), so the reference's advantages are
compared with whiten(gae(...)) and its returns (computed before whitening) with gae's returns.
"""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch", reason="torch is part of the models extra")

from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer.gae import gae, last_token_rewards, length_adaptive_lam, whiten  # noqa: E402

TOLERANCE = 1e-5

# ---------------------------------------------------------------------------------------------------------
# verl, transcribed


def verl_masked_mean(values, mask, axis=None):
    return (values * mask).sum(axis=axis) / (mask.sum(axis=axis) + 1e-8)


def verl_masked_var(values, mask, unbiased=True):
    mean = verl_masked_mean(values, mask)
    centered_values = values - mean
    variance = verl_masked_mean(centered_values**2, mask)
    if unbiased:
        mask_sum = mask.sum()
        if mask_sum == 0:
            raise ValueError("At least one element in the mask has to be 1.")
        if mask_sum == 1:
            raise ValueError("The sum of the mask is one, which can cause a division by zero.")
        bessel_correction = mask_sum / (mask_sum - 1)
        variance = variance * bessel_correction
    return variance


def verl_masked_whiten(values, mask, shift_mean=True):
    mean, var = verl_masked_mean(values, mask), verl_masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


def verl_compute_gae_advantage_return(token_level_rewards, values, response_mask, gamma, lam):
    with torch.no_grad():
        nextvalues = 0
        lastgaelam = 0
        advantages_reversed = []
        gen_len = token_level_rewards.shape[-1]

        for t in reversed(range(gen_len)):
            delta = token_level_rewards[:, t] + gamma * nextvalues - values[:, t]
            lastgaelam_ = delta + gamma * lam * lastgaelam

            # skip values and TD-error on observation tokens
            nextvalues = values[:, t] * response_mask[:, t] + (1 - response_mask[:, t]) * nextvalues
            lastgaelam = lastgaelam_ * response_mask[:, t] + (1 - response_mask[:, t]) * lastgaelam

            advantages_reversed.append(lastgaelam)
        advantages = torch.stack(advantages_reversed[::-1], dim=1)

        returns = advantages + values
        advantages = verl_masked_whiten(advantages, response_mask)
    return advantages, returns


# ---------------------------------------------------------------------------------------------------------
# masks: ragged (left- and right-padded rows of different lengths) and multi-turn (gaps of environment tokens)


def ragged_mask(rows: int, width: int, g: torch.Generator) -> torch.Tensor:
    """Each row: a run of policy tokens at a random place (prompt zeros before it, padding after it)."""
    mask = torch.zeros(rows, width)
    for r in range(rows):
        start = int(torch.randint(0, width - 1, (1,), generator=g))
        end = int(torch.randint(start + 1, width + 1, (1,), generator=g))
        mask[r, start:end] = 1
    return mask


def multi_turn_mask(rows: int, width: int, g: torch.Generator) -> torch.Tensor:
    """Each row: 1-4 turns of policy tokens separated by environment tokens (zeros), left-padded."""
    mask = torch.zeros(rows, width)
    for r in range(rows):
        column = int(torch.randint(0, 4, (1,), generator=g))  # prompt
        for _ in range(int(torch.randint(1, 5, (1,), generator=g))):
            turn = int(torch.randint(1, 6, (1,), generator=g))
            mask[r, column : column + turn] = 1
            column += turn + int(torch.randint(1, 4, (1,), generator=g))  # the environment's reply
            if column >= width:
                break
    mask[0] = 0
    mask[0, 2:5], mask[0, 7:9], mask[0, width - 1] = 1, 1, 1  # at least one row with gaps up to the end
    return mask


MASKS = {"ragged": ragged_mask, "multi_turn": multi_turn_mask}


def tensors(kind: str, seed: int, rows: int = 6, width: int = 24):
    g = torch.Generator().manual_seed(seed)
    mask = MASKS[kind](rows, width, g)
    values = torch.randn(rows, width, generator=g)  # values everywhere: off-policy ones must not be read
    scores = torch.randint(0, 2, (rows,), generator=g).float() + 0.1 * torch.randn(rows, generator=g)
    kl = 0.1 * torch.randn(rows, width, generator=g)
    rewards = last_token_rewards(scores, mask, kl, kl_coef=0.3)
    return rewards, values, mask


def compare(rewards, values, mask, gamma, lam) -> float:
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    verl_advantages, verl_returns = verl_compute_gae_advantage_return(rewards, values, mask, gamma, lam)
    on = mask > 0
    error = max(
        float((whiten(advantages, mask) - verl_advantages)[on].abs().max()),
        float((returns - verl_returns)[on].abs().max()),
    )
    assert error < TOLERANCE
    assert (advantages[~on] == 0).all() and (returns[~on] == 0).all()
    return error


# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MASKS))
@pytest.mark.parametrize("gamma", [1.0, 0.99, 0.9, 0.5, 0.0])
@pytest.mark.parametrize("lam", [1.0, 0.95, 0.5, 0.0])
def test_gae_equals_verl(kind: str, gamma: float, lam: float) -> None:
    for seed in range(3):
        compare(*tensors(kind, seed), gamma, lam)


@pytest.mark.parametrize("kind", sorted(MASKS))
def test_per_sequence_lam_equals_verl(kind: str) -> None:
    """VAPO's length-adaptive lambda, one per row: verl's loop broadcasts a (B,) lam the same way."""
    rewards, values, mask = tensors(kind, seed=5, rows=8, width=40)
    lam = length_adaptive_lam(mask.sum(dim=1), alpha=0.5)  # 1 - 2 / |o|: from 0 (|o| <= 2) towards 1
    assert len(set(lam.tolist())) > 3
    for gamma in (1.0, 0.95):
        compare(rewards, values, mask, gamma, lam)
        # each row alone with its float lambda gives the same row
        advantages, _ = gae(rewards, values, mask, gamma, lam)
        for r in range(len(lam)):
            row, _ = gae(rewards[r : r + 1], values[r : r + 1], mask[r : r + 1], gamma, float(lam[r]))
            assert torch.allclose(row[0], advantages[r], atol=1e-6)


def test_gae_by_hand_with_a_gap() -> None:
    """Two rows worked out on paper; column 2 of row 0 and columns 1-2 of row 1 are environment tokens."""
    rewards = torch.tensor([[0.0, 0.0, 7.0, 1.0], [0.0, 0.0, 0.0, 1.0]])  # the 7.0 sits on a skipped token
    values = torch.tensor([[0.5, 0.2, 9.0, 0.4], [0.3, 5.0, 5.0, 0.5]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]])
    # row 0, gamma = 1, lam = 0.5:
    #   t=3: delta = 1 + 0 - 0.4 = 0.6;               A = 0.6;                      R = 1.0
    #   t=1: delta = 0 + 0.4 - 0.2 = 0.2 (skips t=2); A = 0.2 + 0.5 * 0.6 = 0.5;    R = 0.7
    #   t=0: delta = 0 + 0.2 - 0.5 = -0.3;            A = -0.3 + 0.5 * 0.5 = -0.05; R = 0.45
    advantages, returns = gae(rewards[:1], values[:1], mask[:1], gamma=1.0, lam=0.5)
    assert torch.allclose(advantages, torch.tensor([[-0.05, 0.5, 0.0, 0.6]]), atol=1e-6)
    assert torch.allclose(returns, torch.tensor([[0.45, 0.7, 0.0, 1.0]]), atol=1e-6)
    # row 1, gamma = 0.9, lam = 1: the discount counts policy tokens, not the environment's (one gamma per gap)
    #   t=3: delta = 1 - 0.5 = 0.5;                   A = 0.5;                      R = 1.0
    #   t=0: delta = 0 + 0.9 * 0.5 - 0.3 = 0.15;      A = 0.15 + 0.9 * 0.5 = 0.6;   R = 0.9 = gamma * 1
    advantages, returns = gae(rewards[1:], values[1:], mask[1:], gamma=0.9, lam=1.0)
    assert torch.allclose(advantages, torch.tensor([[0.6, 0.0, 0.0, 0.5]]), atol=1e-6)
    assert torch.allclose(returns, torch.tensor([[0.9, 0.0, 0.0, 1.0]]), atol=1e-6)
    # both rows in one batch, per-row lambda
    advantages, _ = gae(rewards, values, mask, gamma=1.0, lam=torch.tensor([0.5, 1.0]))
    assert torch.allclose(advantages[0], torch.tensor([-0.05, 0.5, 0.0, 0.6]), atol=1e-6)
    assert torch.allclose(advantages[1], torch.tensor([0.7, 0.0, 0.0, 0.5]), atol=1e-6)  # 0 + 0.5 - 0.3 + 0.5


def test_lam_one_gives_monte_carlo_returns() -> None:
    """With gamma = lam = 1 and V = anything, R_t = sum of the rewards from t on (VAPO's value targets)."""
    rewards, values, mask = tensors("multi_turn", seed=1)
    _, returns = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    on = mask > 0
    tail_sums = (rewards * on).flip(1).cumsum(1).flip(1)
    assert torch.allclose(returns[on], tail_sums[on], atol=1e-5)


def test_last_token_rewards() -> None:
    mask = torch.tensor([[0, 1, 1, 0, 1, 0], [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=torch.float)
    kl = torch.arange(18, dtype=torch.float).reshape(3, 6)
    out = last_token_rewards(torch.tensor([2.0, -1.0, 5.0]), mask)
    expected = torch.zeros(3, 6)
    expected[0, 4], expected[1, 5] = 2.0, -1.0  # the last policy token, after a gap; row 2 has none
    assert torch.equal(out, expected)
    with_kl = last_token_rewards(torch.tensor([2.0, -1.0, 5.0]), mask, kl, kl_coef=0.5)
    assert torch.allclose(with_kl, expected - 0.5 * kl * mask)
    assert torch.equal(last_token_rewards(torch.tensor([2.0, -1.0, 5.0]), mask, kl, kl_coef=0.0), expected)


@pytest.mark.parametrize("shift_mean", [True, False])
def test_whiten_equals_verl(shift_mean: bool) -> None:
    g = torch.Generator().manual_seed(3)
    for kind in MASKS:
        mask = MASKS[kind](7, 30, g)
        x = 3.0 + 2.0 * torch.randn(7, 30, generator=g)
        ours, theirs = whiten(x, mask, shift_mean), verl_masked_whiten(x, mask, shift_mean)
        assert float((ours - theirs)[mask > 0].abs().max()) < TOLERANCE
        assert (ours[mask == 0] == 0).all()
    one = torch.zeros(2, 3)
    one[1, 2] = 1
    assert torch.equal(whiten(torch.full((2, 3), 4.0), one), torch.zeros(2, 3))  # verl raises here
    assert torch.equal(whiten(torch.ones(2, 3), torch.zeros(2, 3)), torch.zeros(2, 3))


def test_whiten_across_ranks_equals_whole_batch() -> None:
    """Two 'ranks' (threads) each whiten their half with a summing all_reduce: the whole batch's statistics."""
    g = torch.Generator().manual_seed(4)
    mask = ragged_mask(8, 20, g)
    x = torch.randn(8, 20, generator=g)
    barrier, slots = threading.Barrier(2), [None, None]

    def all_reduce(rank: int):
        def reduce(t: torch.Tensor) -> torch.Tensor:
            slots[rank] = t
            barrier.wait()
            total = slots[0] + slots[1]
            barrier.wait()  # both have read before the next call overwrites a slot
            return total

        return reduce

    halves = [None, None]

    def run(rank: int) -> None:
        rows = slice(4 * rank, 4 * rank + 4)
        halves[rank] = whiten(x[rows], mask[rows], all_reduce=all_reduce(rank))

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert torch.allclose(torch.cat(halves), whiten(x, mask), atol=1e-6)


def test_length_adaptive_lam() -> None:
    lengths = torch.tensor([0, 1, 10, 20, 40, 100, 1000])
    lam = length_adaptive_lam(lengths, alpha=0.05)  # 1 - 1 / (0.05 |o|) = 1 - 20 / |o|
    assert torch.allclose(lam, torch.tensor([0.0, 0.0, 0.0, 0.0, 0.5, 0.8, 0.98]))
    with pytest.raises(ConfigError, match="alpha"):
        length_adaptive_lam(lengths, alpha=0.0)


def test_bad_settings_raise_config_errors() -> None:
    rewards, values, mask = tensors("ragged", seed=0)
    with pytest.raises(ConfigError, match="gamma"):
        gae(rewards, values, mask, gamma=1.5, lam=0.95)
    with pytest.raises(ConfigError, match="lam"):
        gae(rewards, values, mask, gamma=1.0, lam=-0.1)
    with pytest.raises(ConfigError, match="lam"):
        gae(rewards, values, mask, gamma=1.0, lam=torch.ones(3))
    with pytest.raises(ConfigError, match="lam"):
        gae(rewards, values, mask, gamma=1.0, lam=torch.full((len(mask),), 1.2))
