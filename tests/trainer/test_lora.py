"""LoRA (`model.lora_rank > 0`): only the adapters train, the reference is the base model with the adapters off,
vLLM gets the merged weights under the base model's names, checkpoints hold the adapter, resume is exact."""

from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from rlvr.trainer.loop import train
from rlvr.trainer.lora import (
    adapters_disabled,
    apply_lora,
    merged_weights,
    save_merged,
    trainable_parameters,
)
from rlvr.trainer.update import batch_logprobs, policy_update

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from test_training import read_metrics, tiny_config  # noqa: E402
from test_update import SETTINGS, duplicated_batch, tiny_model  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA = ["model.lora_rank=4", "model.lora_alpha=8", "optim.lr=1e-2"]


def adapted() -> tuple[torch.nn.Module, torch.nn.Module]:
    """(the tiny Llama with rank-4 adapters, an untouched copy of the base model)."""
    base = tiny_model()
    reference = copy.deepcopy(base)
    torch.manual_seed(1)
    return apply_lora(base, rank=4, alpha=8, targets=TARGETS), reference


def one_step(model: torch.nn.Module, optimizer) -> None:
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    settings = dataclasses.replace(SETTINGS, minibatches=1, num_iterations=2)
    policy_update(model, optimizer, scheduler, duplicated_batch(), settings)


def test_the_optimiser_holds_only_the_adapters():
    model, base = adapted()
    params = trainable_parameters(model)
    named = [n for n, p in model.named_parameters() if p.requires_grad]
    assert named and all(".lora_A." in n or ".lora_B." in n for n in named)
    assert len(params) == 2 * 7 * 2  # A and B of 7 projections in 2 layers
    targets = [m for n, m in base.named_modules() if n.rsplit(".", 1)[-1] in TARGETS]
    assert sum(p.numel() for p in params) == sum(4 * (m.in_features + m.out_features) for m in targets)


def test_a_step_changes_only_the_adapters():
    model, _ = adapted()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    one_step(model, torch.optim.AdamW(trainable_parameters(model), lr=1e-2))
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed, "the step changed nothing"
    assert all(".lora_" in n for n in changed), sorted(changed - {n for n in changed if ".lora_" in n})
    assert any(".lora_A." in n for n in changed) and any(".lora_B." in n for n in changed)


def test_the_reference_is_the_base_model_before_and_after_a_step():
    model, base = adapted()
    batch = duplicated_batch()
    # the whole head, and the chunked head (applied outside the model's forward)
    expected = {chunk: batch_logprobs(base, batch, 1.0, 2, logprob_chunk=chunk) for chunk in (0, 3)}
    for chunk in (0, 3):
        with adapters_disabled(model):
            assert torch.equal(batch_logprobs(model, batch, 1.0, 2, logprob_chunk=chunk), expected[chunk])
    one_step(model, torch.optim.AdamW(trainable_parameters(model), lr=1e-2))
    moved = batch_logprobs(model, batch, 1.0, 2)
    assert (moved - expected[0]).abs().max() > 1e-3  # the adapted policy moved away
    for chunk in (0, 3):
        with adapters_disabled(model):
            assert torch.equal(batch_logprobs(model, batch, 1.0, 2, logprob_chunk=chunk), expected[chunk])
    assert torch.equal(batch_logprobs(model, batch, 1.0, 2), moved)  # adapters back on after the block


def test_merged_weights_are_the_merged_model_under_the_base_names():
    model, base = adapted()
    one_step(model, torch.optim.AdamW(trainable_parameters(model), lr=1e-2))
    streamed = dict(merged_weights(model))
    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    assert streamed.keys() == merged.keys() == base.state_dict().keys()
    for name, tensor in merged.items():
        assert torch.equal(streamed[name], tensor), name
    changed = [n for n in merged if not torch.equal(merged[n], base.state_dict()[n])]
    assert changed and all(n.rsplit(".", 2)[-2] in TARGETS for n in changed)
    # the policy keeps its adapters and bit-identical base weights
    assert any(".lora_B." in n for n, _ in model.named_parameters())
    for name, tensor in base.state_dict().items():
        peft_name = (
            name.replace(".weight", ".base_layer.weight") if name.rsplit(".", 2)[-2] in TARGETS else name
        )
        assert torch.equal(model.state_dict()[f"base_model.model.{peft_name}"], tensor), name


def test_save_merged_writes_a_model_folder_and_the_adapter(tmp_path):
    from transformers import AutoModelForCausalLM

    model, _ = adapted()
    one_step(model, torch.optim.AdamW(trainable_parameters(model), lr=1e-2))
    save_merged(model, None, tmp_path / "final")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "final", dtype=torch.float32)
    streamed = dict(merged_weights(model))
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, streamed[name]), name
    assert (tmp_path / "final" / "adapter" / "adapter_model.safetensors").is_file()


def adapter_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_a_lora_run_checkpoints_the_adapter_and_exports_a_merged_model(tiny_model_folder, tmp_path):
    from transformers import AutoModelForCausalLM

    extra = ["run.save_model=true", "run.plot=false", "algorithm.kl_coef=0.05", "env.eval_tasks=2"]
    result = train(tiny_config(tiny_model_folder, tmp_path, *LORA, *extra))
    step = tmp_path / "checkpoints" / "step-000002"
    names = {p.name for p in step.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "state.pt"} <= names
    assert "model.safetensors" not in names
    base_bytes = (Path(tiny_model_folder) / "model.safetensors").stat().st_size
    assert (step / "adapter_model.safetensors").stat().st_size < base_bytes / 5
    saved = adapter_weights(step)
    assert saved and all(".lora_" in k for k in saved)
    assert any(float(v.abs().max()) > 0 for k, v in saved.items() if ".lora_B." in k)  # B moved from 0
    optimizer = torch.load(step / "optimizer.pt", weights_only=False)
    assert len(optimizer["param_groups"][0]["params"]) == len(saved)  # the adapters' moments only
    final = tmp_path / "final"
    merged = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    assert (final / "adapter" / "adapter_model.safetensors").is_file()
    # a step checkpoint is evaluable as it is (rlvr eval --model .../step-N): its base with the adapter merged in
    from rlvr.trainer.engines.models import load_model

    from_step, final_weights = load_model(step).state_dict(), merged.state_dict()
    assert from_step.keys() == final_weights.keys()
    assert all(torch.equal(from_step[name], final_weights[name]) for name in final_weights)
    # the reference (adapters off) differs from the policy once the adapters moved
    assert any(m["kl"] > 0 for m in read_metrics(tmp_path))
    assert result.after is not None


def test_lora_resume_gives_the_same_adapter_as_a_straight_run(tiny_model_folder, tmp_path):
    extra = [*LORA, "run.save_every=2", "algorithm.kl_coef=0.05"]
    straight = tmp_path / "straight"
    train(tiny_config(tiny_model_folder, straight, "run.steps=4", "run.keep_checkpoints=4", *extra))
    split = tmp_path / "split"
    train(tiny_config(tiny_model_folder, split, "run.steps=2", *extra))
    train(tiny_config(tiny_model_folder, split, "run.steps=4", *extra), resume=True)
    a = adapter_weights(straight / "checkpoints" / "step-000004")
    b = adapter_weights(split / "checkpoints" / "step-000004")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), max(float((a[k] - b[k]).abs().max()) for k in a)
    middle = adapter_weights(straight / "checkpoints" / "step-000002")
    assert not all(torch.equal(a[k], middle[k]) for k in a)
    rewards = [m["reward/mean"] for m in read_metrics(straight)]
    assert [m["reward/mean"] for m in read_metrics(split)] == rewards


def test_resuming_a_full_run_with_lora_is_refused(tiny_model_folder, tmp_path):
    from rlvr.errors import ConfigError

    train(tiny_config(tiny_model_folder, tmp_path, "run.steps=1", "env.eval_tasks=0"))
    with pytest.raises(ConfigError, match="lora_rank"):
        train(tiny_config(tiny_model_folder, tmp_path, "run.steps=2", "env.eval_tasks=0", *LORA), resume=True)


def test_the_adapters_start_the_same_on_every_rank():
    """A's random start comes from run.seed, not the rank's seed (FSDP shards each rank's own copy), and does not
    move the rank's random stream."""
    from rlvr.trainer.config import load_config
    from rlvr.trainer.loop import _adapted

    config = load_config(None, ["model.lora_rank=4", "model.lora_alpha=8"])
    starts = []
    for rank in range(2):
        base = tiny_model()
        torch.manual_seed(config.run.seed + rank)  # as _setup seeds each rank
        model = _adapted(config, base, None)
        expected = torch.Generator().manual_seed(config.run.seed + rank)
        assert torch.equal(torch.rand(3), torch.rand(3, generator=expected))
        starts.append({n: p.detach() for n, p in model.named_parameters() if ".lora_A." in n})
    assert starts[0] and all(torch.equal(starts[0][n], starts[1][n]) for n in starts[0])


def test_lora_targets_must_be_linear_modules():
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^model.lora_targets = \['embed_tokens'\].*not a Linear module"):
        apply_lora(tiny_model(), rank=4, alpha=8, targets=["embed_tokens"])
