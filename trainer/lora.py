"""LoRA (`model.lora_rank > 0`): low-rank adapters on the frozen policy, with peft.

    model = apply_lora(model, rank=16, alpha=32, targets=DEFAULT_TARGETS)   # before any DDP/FSDP wrapping
    trainable_parameters(model)        # what the optimiser holds: the adapter matrices only
    with adapters_disabled(model): ... # the KL reference: the same model, base weights only (no second copy)
    merged_weights(model)              # (base name, W + scale * B A) for vLLM, the base model left untouched
    adapter_state(model)               # the adapter's tensors, whole (gathered from the shards under FSDP)
    save_merged(model, tokenizer, out) # final/: a merged HF model folder, the adapter in final/adapter/

A step checkpoint of a LoRA run is the adapter (`adapter_model.safetensors`, `adapter_config.json`, as
`save_pretrained` of a peft model writes it) plus the tokenizer and the training state; `load_adapter` puts its
weights back into a freshly adapted base model for `--resume`.

The merged weights are computed out of place (W + delta, a new tensor) rather than by peft's in-place
merge/unmerge: W + delta - delta is not W in floating point, and the frozen base would drift by rounding at
every weight sync; it must stay bit-identical, since it is also the KL reference.

Under `model.sharding: fsdp` the adapted model is sharded like any other (sharding.py): the parameters are DTensors,
and `merged_weights` and `adapter_state` gather each one whole when its turn comes (collectives: every rank
iterates in the same order).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rlvr.errors import ConfigError
from rlvr.trainer.checkpoint import publish_folder

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The attention and MLP projections of Llama-style models (Llama, Qwen2/3, Mistral, SmolLM2)."""
ADAPTER = "default"
_PREFIX = "base_model.model."
ADAPTER_FILE = "adapter_model.safetensors"


def apply_lora(model: Any, rank: int, alpha: float, targets: list[str] | tuple[str, ...]) -> Any:
    """`model` with LoRA adapters of `rank` on the modules named `targets`; only the adapters train.

    A base in bfloat16/float16 gets float32 adapters (peft's `autocast_adapter_dtype`).
    """
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import Linear, LoraLayer

    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, bias="none")
    try:
        adapted = get_peft_model(model, config)
    except ValueError as exc:  # no module matched
        raise ConfigError(
            f"model.lora_targets = {list(targets)!r}: {exc}; name Linear modules of the model "
            f"(default: {', '.join(DEFAULT_TARGETS)})"
        ) from exc
    other = [n for n, m in adapted.named_modules() if isinstance(m, LoraLayer) and not isinstance(m, Linear)]
    if other:  # merged_weights computes the Linear delta B A only
        raise ConfigError(
            f"model.lora_targets = {list(targets)!r} adapts {other[0]}, not a Linear module; name Linear "
            f"modules of the model (default: {', '.join(DEFAULT_TARGETS)})"
        )
    if getattr(model, "is_gradient_checkpointing", False):
        model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks need an input with grad
    return adapted


def is_lora(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # peft is in the `models` extra; without it no model has adapters
        return False

    return isinstance(model, PeftModel)


def trainable_parameters(model: Any) -> list[torch.nn.Parameter]:
    """The parameters that require a gradient: the adapters under LoRA, all of them otherwise."""
    return [p for p in model.parameters() if p.requires_grad]


def adapters_disabled(model: Any) -> contextlib.AbstractContextManager:
    """Run `model` as its base model (adapters off) inside the block; nothing to do for a plain model."""
    return model.disable_adapter() if is_lora(model) else contextlib.nullcontext()


def base_name(name: str) -> str:
    """The base model's name of a peft parameter: no `base_model.model.` prefix, no `.base_layer`."""
    return name.removeprefix(_PREFIX).replace(".base_layer.", ".")


def full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a sharded (FSDP2 DTensor) entry, gathered over the ranks (a collective); else itself."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


@torch.no_grad()
def merged_weights(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of the merged model, W + scale * B A for adapted layers, under the base model's names.

    A plain model gives its state dict. Sharded entries are gathered one at a time, when their turn comes: the
    extra memory is about the largest tensor, not the model. The adapted tensors are new; the model is not
    modified.
    """
    if not is_lora(model):
        for name, tensor in model.state_dict().items():
            yield name, full_tensor(tensor)
        return
    from peft.tuners.lora import Linear

    adapted = {}
    for name, module in model.named_modules():
        if isinstance(module, Linear) and ADAPTER in module.lora_A:
            adapted[f"{name}.base_layer.weight"] = module
    for name, tensor in model.state_dict().items():
        if ".lora_" in name:
            continue
        tensor = full_tensor(tensor)
        module = adapted.get(name)
        if module is not None:
            tensor = tensor + _delta_weight(module).to(tensor.dtype)
        yield base_name(name), tensor


def _retie(model: Any, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`weights` (the merged state dict) with the entries that are one parameter of `model` (tied embeddings and
    LM head) made one tensor again: gathered from shards they are two, and `save_pretrained` would store both."""
    first: dict[int, str] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():  # the parameters, not detached views
        name = base_name(name) if is_lora(model) else name
        if name in weights:
            weights[name] = weights[first.setdefault(id(tensor), name)]
    return weights


def _delta_weight(module: Any) -> torch.Tensor:
    """scale * B A of a peft lora.Linear, as its `get_delta_weight` computes it, from the whole A and B."""
    a, b = full_tensor(module.lora_A[ADAPTER].weight), full_tensor(module.lora_B[ADAPTER].weight)
    dtype = b.dtype
    if b.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):  # as peft: slow on the CPU
        a, b = a.float(), b.float()
    delta = b @ a
    delta = (delta.T if module.fan_in_fan_out else delta) * module.scaling[ADAPTER]
    return delta.to(dtype)


def adapter_state(model: Any) -> dict[str, torch.Tensor]:
    """The adapter's entries of the state dict (peft's names), whole and on the CPU: what `save_pretrained` of the
    peft model writes. Sharded entries are gathered (a collective)."""
    return {name: full_tensor(t).cpu() for name, t in model.state_dict().items() if ".lora_" in name}


def load_adapter(model: Any, checkpoint: Path) -> None:
    """Set the adapter weights of `model` to those saved in `checkpoint` (a step folder of a LoRA run)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(checkpoint) / ADAPTER_FILE
    if not path.is_file():
        raise ConfigError(
            f"--resume: {checkpoint} holds no {ADAPTER_FILE}: it is not a checkpoint of a LoRA run; resume "
            f"with model.lora_rank=0 or start a new run"
        )
    saved = load_file(str(path), device=str(next(model.parameters()).device))
    try:
        result = set_peft_model_state_dict(model, saved, adapter_name=ADAPTER)
    except RuntimeError as exc:  # shapes: another rank
        raise ConfigError(
            f"--resume: the adapter in {checkpoint} does not fit model.lora_rank/lora_targets: {exc}"
        ) from exc
    missing = [k for k in result.missing_keys if ".lora_" in k]
    if missing or result.unexpected_keys:
        raise ConfigError(
            f"--resume: the adapter in {checkpoint} does not match model.lora_targets (missing "
            f"{missing[:3]}, unexpected {list(result.unexpected_keys)[:3]}); resume with the run's settings"
        )


def save_merged(
    model: Any,
    tokenizer: Any,
    target: Path,
    *,
    weights: dict[str, torch.Tensor] | None = None,
    adapter: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Publish `target` (e.g. output_dir/final): the merged model folder, the adapter in `target/adapter`.

    `weights` (the merged state dict) and `adapter` (`adapter_state`) default to the model's own; a sharded
    model passes them gathered. Written into a staging folder and renamed into place, replacing an older
    `target`.
    """
    target = Path(target)
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    weights = _retie(model, dict(merged_weights(model)) if weights is None else weights)
    model.get_base_model().save_pretrained(staging, state_dict=weights)  # the base's config, merged weights
    model.save_pretrained(staging / "adapter", state_dict=adapter)
    if tokenizer is not None:
        tokenizer.save_pretrained(staging)
    return publish_folder(staging, target)
