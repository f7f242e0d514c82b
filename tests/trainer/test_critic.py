"""PPO's critic (trainer/critic.py): the value loss against verl's, V aligned with the log-probs' columns, a
critic that fits fixed returns, micro-batching that leaves the update as it is, an exact save/restore, and the
same update under DDP and FSDP2 (2 ranks, gloo) as in one process.

`compute_value_loss` (with `agg_loss`, `masked_mean`, `clip_by_value`) is transcribed from verl
(github.com/volcengine/verl): verl/trainer/ppo/core_algos.py at commit 012be9d9dcb7c38499f23616142870d2682757fc and
verl/utils/torch_functional.py at commit 33ddc71428da6e945cee80f6020dac4b59cb9c63.

This file is also the worker of the torchrun test: `python test_critic.py worker MODEL_DIR OUT_DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="torch is part of the models extra")
pytest.importorskip("transformers", reason="transformers is part of the models extra")

from torchrun import finish, start  # noqa: E402

from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer.batch import PolicyBatch  # noqa: E402
from rlvr.trainer.critic import (  # noqa: E402
    Critic,
    CriticSettings,
    ValueModel,
    load_value_model,
    token_values,
    value_loss,
)
from rlvr.trainer.gae import gae, last_token_rewards  # noqa: E402

TOLERANCE = 1e-5

# ---------------------------------------------------------------------------------------------------------
# verl, transcribed


def verl_masked_mean(values, mask, axis=None):
    return (values * mask).sum(axis=axis) / (mask.sum(axis=axis) + 1e-8)


def verl_clip_by_value(x, tensor_min, tensor_max):
    clipped = torch.max(torch.min(x, tensor_max), tensor_min)
    return clipped


def verl_agg_loss(loss_mat, loss_mask, loss_agg_mode):
    if loss_agg_mode == "token-mean":
        loss = verl_masked_mean(loss_mat, loss_mask)
    elif loss_agg_mode == "seq-mean-token-mean":
        seq_losses = torch.sum(loss_mat * loss_mask, dim=-1) / torch.sum(loss_mask, dim=-1)  # token-mean
        loss = torch.mean(seq_losses)  # seq-mean
    else:
        raise ValueError(f"Invalid loss_agg_mode: {loss_agg_mode}")
    return loss


def verl_compute_value_loss(
    vpreds, returns, values, response_mask, cliprange_value, loss_agg_mode="token-mean"
):
    vpredclipped = verl_clip_by_value(vpreds, values - cliprange_value, values + cliprange_value)
    vf_losses1 = (vpreds - returns) ** 2
    vf_losses2 = (vpredclipped - returns) ** 2
    clipped_vf_losses = torch.max(vf_losses1, vf_losses2)
    vf_loss = 0.5 * verl_agg_loss(
        loss_mat=clipped_vf_losses, loss_mask=response_mask, loss_agg_mode=loss_agg_mode
    )
    vf_clipfrac = verl_masked_mean(torch.gt(vf_losses2, vf_losses1).float(), response_mask)
    return vf_loss, vf_clipfrac


# ---------------------------------------------------------------------------------------------------------
# a tiny random Llama and synthetic batches


def tiny_llama(seed: int = 0) -> Any:
    """The small_llama architecture (vocab 256, hidden 32, 2 layers), built in memory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def synthetic_batch(rows: int = 8, width: int = 16, seed: int = 0) -> PolicyBatch:
    """Left-padded rows of 7-16 tokens: a 2-4 token prompt, then policy tokens, with an environment gap in odd
    rows (a multi-turn mask)."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.zeros(rows, width, dtype=torch.long)
    attention = torch.zeros(rows, width, dtype=torch.long)
    loss_mask = torch.zeros(rows, width)
    for r in range(rows):
        length = int(torch.randint(7, width + 1, (1,), generator=g))
        prompt = int(torch.randint(2, 5, (1,), generator=g))
        start = width - length
        input_ids[r, start:] = torch.randint(1, 256, (length,), generator=g)
        attention[r, start:] = 1
        loss_mask[r, start + prompt :] = 1
        if r % 2:
            loss_mask[r, start + prompt + 2 : start + prompt + 4] = 0  # the environment's reply
    first = int((loss_mask > 0).float().argmax(dim=1)[loss_mask.sum(1) > 0].min())
    return PolicyBatch(
        input_ids, attention, loss_mask, torch.zeros(rows, width), torch.zeros(rows), width - first
    )


def fixed_returns(batch: PolicyBatch) -> torch.Tensor:
    """(B, span) Monte-Carlo returns (gamma = lam = 1) of a reward set by the row's first prompt token's parity."""
    mask = batch.tail(batch.loss_mask)
    first = batch.input_ids.gather(1, batch.attention_mask.argmax(dim=1, keepdim=True))[:, 0]
    scores = (first % 2).float()  # (B,)
    _, returns = gae(last_token_rewards(scores, mask), torch.zeros_like(mask), mask, gamma=1.0, lam=1.0)
    return returns


def random_head(model: ValueModel, seed: int = 1) -> ValueModel:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=g))
        model.head.bias.fill_(0.3)
    return model


SETTINGS = CriticSettings(lr=3e-3, value_clip=0.5, micro_batch_size=2, max_grad_norm=1.0)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices: a second intra-op thread only adds synchronisation (10x the CPU time on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------
# the loss


def loss_tensors(seed: int, rows: int = 6, width: int = 20):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(rows, width)
    for r in range(rows):  # ragged, with gaps; every row has a policy token (verl's seq-mean divides by it)
        start = int(torch.randint(0, width // 2, (1,), generator=g))
        mask[r, start : start + int(torch.randint(1, width - start + 1, (1,), generator=g))] = 1
        if r % 2:
            mask[r, start + 2 : start + 4] = 0  # the environment's tokens between two turns
        mask[r, start] = 1
    old = torch.randn(rows, width, generator=g)
    vpreds = old + 0.6 * torch.randn(rows, width, generator=g)  # some inside the clip range, some outside
    returns = torch.randn(rows, width, generator=g)
    return vpreds, returns, old, mask


@pytest.mark.parametrize("clip", [0.05, 0.2, 0.5, 10.0])
@pytest.mark.parametrize("agg", ["token_mean", "seq_mean_token_mean"])
def test_value_loss_equals_verl(clip: float, agg: str) -> None:
    for seed in range(4):
        vpreds, returns, old, mask = loss_tensors(seed)
        loss, stats = value_loss(vpreds, returns, old, mask, clip, agg)
        verl_loss, verl_clipfrac = verl_compute_value_loss(
            vpreds, returns, old, mask, clip, agg.replace("_", "-")
        )
        assert float(loss) == pytest.approx(float(verl_loss), abs=TOLERANCE)
        assert float(stats["vf_clipfrac"]) == pytest.approx(float(verl_clipfrac), abs=TOLERANCE)
        if clip == 0.2:
            assert 0.05 < float(stats["vf_clipfrac"]) < 0.95  # both branches are exercised


def test_value_loss_gradient_equals_verl() -> None:
    vpreds, returns, old, mask = loss_tensors(7)
    ours, theirs = vpreds.clone().requires_grad_(), vpreds.clone().requires_grad_()
    value_loss(ours, returns, old, mask, 0.2)[0].backward()
    verl_compute_value_loss(theirs, returns, old, mask, 0.2)[0].backward()
    assert float((ours.grad - theirs.grad).abs().max()) < 1e-6
    assert float(ours.grad.abs().sum()) > 0


@pytest.mark.parametrize("clip", [None, 0.0])
def test_unclipped_value_loss(clip: float | None) -> None:
    """clip None or 0: L = 0.5 * token-mean of (V - R)^2 (verl's loss with an infinite clip range)."""
    vpreds, returns, old, mask = loss_tensors(3)
    loss, stats = value_loss(vpreds, returns, old, mask, clip)
    expected = 0.5 * ((vpreds - returns) ** 2 * mask).sum() / mask.sum()
    assert float(loss) == pytest.approx(float(expected), abs=1e-6)
    assert float(loss) == pytest.approx(
        float(verl_compute_value_loss(vpreds, returns, old, mask, 1e9)[0]), abs=1e-6
    )
    assert float(stats["vf_clipfrac"]) == 0.0


def test_value_loss_counts_of_the_whole_batch() -> None:
    """Partial losses with the whole batch's counts add up to the whole batch's loss (micro-batches, ranks)."""
    vpreds, returns, old, mask = loss_tensors(2)
    whole = value_loss(vpreds, returns, old, mask, 0.2)[0]
    tokens = float(mask.sum())
    parts = sum(
        value_loss(
            vpreds[r : r + 2], returns[r : r + 2], old[r : r + 2], mask[r : r + 2], 0.2, num_tokens=tokens
        )[0]
        for r in (0, 2, 4)
    )
    assert float(parts) == pytest.approx(float(whole), abs=1e-6)


# ---------------------------------------------------------------------------------------------------------
# the value model


def test_token_values_align_with_the_logprob_columns() -> None:
    """Column j of token_values is V at the position that predicts the token of column j (one row at a time,
    unpadded, as the reference), for left-padded rows of different lengths."""
    model = random_head(ValueModel(tiny_llama()))
    batch = synthetic_batch(rows=5, width=14, seed=3)
    values = token_values(model, batch)  # (B, span)
    assert values.shape == (5, batch.span)
    width, mask = batch.input_ids.shape[1], batch.tail(batch.loss_mask)
    with torch.no_grad():
        for r in range(len(batch)):
            ids = batch.input_ids[r][batch.attention_mask[r] > 0]  # (n,)
            hidden = model.body(input_ids=ids[None]).last_hidden_state[0]  # (n, H)
            v = model.head(hidden)[:, 0]  # v[k]: V of the state after tokens 0..k, i.e. before token k + 1
            for j in range(batch.span):
                if mask[r, j] > 0:
                    k = width - batch.span + j - (width - len(ids))  # the token's index in the row
                    assert float(values[r, j]) == pytest.approx(float(v[k - 1]), abs=1e-5)


def test_value_model_has_no_lm_head_and_starts_at_zero(small_llama: str) -> None:
    model = load_value_model(small_llama)
    assert not any("lm_head" in name for name, _ in model.named_parameters())
    assert torch.equal(token_values(model, synthetic_batch()), torch.zeros(8, synthetic_batch().span))


def test_values_is_token_values_in_row_order() -> None:
    model = random_head(ValueModel(tiny_llama()))
    batch = synthetic_batch(seed=4)
    expected = token_values(model, batch)
    for settings in (
        SETTINGS,
        CriticSettings(micro_batch_size=8, token_budget=30),
    ):  # by length: rows reorder
        values = Critic(model, settings).values(batch)
        assert not values.requires_grad
        assert torch.allclose(values, expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# the critic


def test_critic_fits_fixed_returns() -> None:
    critic = Critic(ValueModel(tiny_llama()), SETTINGS)
    batch = synthetic_batch()
    returns = fixed_returns(batch)
    losses = []
    for _ in range(30):
        old = critic.values(batch)
        metrics = critic.update(batch, returns, old)
        losses.append(metrics["critic/value_loss"])
    assert losses[-1] < 0.1 * losses[0], f"value loss {losses[0]:.4f} -> {losses[-1]:.4f}"
    assert metrics["critic/explained_variance"] > 0.8
    for key in ("critic/vf_clipfrac", "critic/grad_norm", "critic/values_mean", "critic/returns_mean"):
        assert key in metrics


def test_micro_batches_and_minibatch_counts_leave_the_update_as_it_is() -> None:
    """One step over 8 rows: micro-batches of 8, of 1, or by a token budget give the same weights."""
    batch = synthetic_batch(seed=5)
    returns = fixed_returns(batch)
    states = []
    for settings in (
        CriticSettings(lr=1e-2, micro_batch_size=8),
        CriticSettings(lr=1e-2, micro_batch_size=1),
        CriticSettings(lr=1e-2, micro_batch_size=8, token_budget=40),
    ):
        critic = Critic(random_head(ValueModel(tiny_llama())), settings)
        critic.update(batch, returns, critic.values(batch))
        states.append(critic.model.state_dict())
    for state in states[1:]:
        for name, value in state.items():
            assert float((value - states[0][name]).abs().max()) < TOLERANCE, name
    two = Critic(random_head(ValueModel(tiny_llama())), CriticSettings(lr=1e-2, minibatches=2))
    assert two.update(batch, returns, two.values(batch))["critic/grad_norm"] > 0


def test_save_restore_resumes_exactly(tmp_path: Path) -> None:
    batch, later = synthetic_batch(seed=6), synthetic_batch(seed=7)
    returns, later_returns = fixed_returns(batch), fixed_returns(later)
    saved = Critic(ValueModel(tiny_llama(0)), SETTINGS)
    for _ in range(2):  # moments in the optimiser state
        saved.update(batch, returns, saved.values(batch))
    saved.save(tmp_path / "critic")
    restored = Critic(ValueModel(tiny_llama(1)), SETTINGS)  # other weights, no optimiser state yet
    restored.restore(tmp_path / "critic")
    metrics = [c.update(later, later_returns, c.values(later)) for c in (saved, restored)]
    for name, value in saved.model.state_dict().items():
        assert torch.equal(value, restored.model.state_dict()[name]), name
    for key in metrics[0]:
        if key != "critic/update_s":
            assert metrics[0][key] == metrics[1][key], key


def test_bad_settings_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="lr"):
        CriticSettings(lr=0.0)
    with pytest.raises(ConfigError, match="micro_batch_size"):
        CriticSettings(micro_batch_size=0)
    with pytest.raises(ConfigError, match="value_clip"):
        CriticSettings(value_clip=-0.1)
    with pytest.raises(ConfigError, match="value_clip"):
        value_loss(*loss_tensors(0), clip=-1.0)
    with pytest.raises(ConfigError, match="loss_agg"):
        value_loss(*loss_tensors(0), clip=0.2, agg="mean")


# ---------------------------------------------------------------------------------------------------------
# DDP and FSDP2 under torchrun (2 ranks, gloo): each rank updates on its half of the rows


WORLD = 2
STEPS = 2
TIMEOUT_S = 240


def run_steps(critic: Critic, batch: PolicyBatch, steps: int, **kwargs: Any) -> list[dict[str, float]]:
    returns = fixed_returns(batch)
    return [critic.update(batch, returns, critic.values(batch), **kwargs) for _ in range(steps)]


def worker(model_dir: str, out_dir: str) -> None:
    """DDP: STEPS updates. FSDP: one update, save, one more; a fresh critic restores and makes that last one."""
    from rlvr.trainer.distributed import Distributed
    from rlvr.trainer.sharding import FullyShard, Replicated, full_state_dict

    torch.set_num_threads(1)
    dist = Distributed.from_env("cpu")
    share = len(synthetic_batch()) // dist.world_size
    batch = synthetic_batch().rows(list(range(dist.rank * share, (dist.rank + 1) * share)))
    reduce = {"all_reduce": dist.all_reduce_sum, "world_size": dist.world_size}
    record: dict[str, Any] = {}
    ddp = Critic(load_value_model(model_dir), SETTINGS, sharding=Replicated(dist))
    record["ddp"] = (ddp.model.state_dict(), run_steps(ddp, batch, STEPS, **reduce))
    fsdp = FullyShard(dist, "float32", cpu_offload=False, gather=False)
    first = Critic(load_value_model(model_dir), SETTINGS, sharding=fsdp)
    metrics = run_steps(first, batch, STEPS - 1, **reduce)
    first.save(Path(out_dir) / "checkpoint")
    metrics += run_steps(first, batch, 1, **reduce)
    record["fsdp"] = (full_state_dict(first.model), metrics)
    second = Critic(load_value_model(model_dir), SETTINGS, sharding=fsdp)
    second.values(batch)  # FSDP2 keeps the root's gathered weights after a forward: restore must drop them
    second.restore(Path(out_dir) / "checkpoint")
    metrics = run_steps(second, batch, 1, **reduce)
    record["fsdp_restored"] = (full_state_dict(second.model), metrics)
    if dist.is_main:
        torch.save(record, Path(out_dir) / "record.pt")
    dist.close()


def test_ddp_and_fsdp_match_one_process(small_llama: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD)]
    process = start([*command, __file__, "worker", small_llama, str(tmp_path)])
    reference = Critic(load_value_model(small_llama), SETTINGS)  # meanwhile: one process, the whole batch
    expected = run_steps(reference, synthetic_batch(), STEPS)
    state = reference.model.state_dict()
    finish(process, "the torchrun critic worker", TIMEOUT_S)
    record = torch.load(tmp_path / "record.pt", weights_only=False)
    for case in ("ddp", "fsdp"):
        weights, metrics = record[case]
        for name, value in state.items():
            assert float((weights[name] - value).abs().max()) < TOLERANCE, f"{case}: {name}"
        for key in ("critic/value_loss", "critic/grad_norm", "critic/explained_variance"):
            assert metrics[-1][key] == pytest.approx(expected[-1][key], rel=1e-4, abs=1e-6), (case, key)
    weights, metrics = record["fsdp_restored"]  # the restored critic's update is the saved one's
    for name, value in record["fsdp"][0].items():
        assert torch.equal(weights[name], value), f"fsdp restore: {name}"
    assert metrics[0]["critic/grad_norm"] == record["fsdp"][1][-1]["critic/grad_norm"]
    assert float(state["head.weight"].abs().max()) > 0  # the steps did move the critic


if __name__ == "__main__":
    mode, model_dir, out_dir = sys.argv[1:4]
    {"worker": worker}[mode](model_dir, out_dir)
