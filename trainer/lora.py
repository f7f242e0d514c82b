"""LoRA (`model.lora_rank > 0`): low-rank adapters on the frozen policy, with peft.

    model = apply_lora(model, rank=16, alpha=32, targets=DEFAULT_TARGETS)   # before any DDP/FSDP wrapping
    trainable_parameters(model)        # what the optimiser holds: the adapter matrices only
    with adapters_disabled(model): ... # the KL reference: the same model, base weights only (no second copy)
    merged_weights(model)              # (base name, W + scale * B A) for vLLM, the base model left untouched
    save_merged(model, tokenizer, out) # final/: a merged HF model folder, the adapter in final/adapter/

A step checkpoint of a LoRA run is the adapter (`adapter_model.safetensors`, `adapter_config.json`, as
`save_pretrained` of a peft model writes it) plus the tokenizer and the training state; `load_adapter` puts its
weights back into a freshly adapted base model for `--resume`.

The merged weights are computed out of place (W + delta, a new tensor) rather than by peft's in-place
merge/unmerge: W + delta - delta is not W in floating point, and the frozen base would drift by rounding at
every weight sync; it must stay bit-identical, since it is also the KL reference.
"""

from __future__ import annotations

import contextlib
import copy
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
    """`model` with LoRA adapters of `rank` on the modules named `targets`; only the adapters train."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, bias="none")
    try:
        adapted = get_peft_model(model, config)
    except ValueError as exc:  # no module matched
        raise ConfigError(
            f"model.lora_targets = {list(targets)!r}: {exc}; name Linear modules of the model "
            f"(default: {', '.join(DEFAULT_TARGETS)})"
        ) from exc
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


@torch.no_grad()
def merged_weights(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of the merged model, W + scale * B A for adapted layers, under the base model's names.

    A plain model gives its state dict. The adapted tensors are new; the model is not modified.
    """
    if not is_lora(model):
        yield from model.state_dict().items()
        return
    from peft.tuners.lora import LoraLayer

    adapted = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and ADAPTER in module.lora_A:
            adapted[f"{name}.base_layer.weight"] = module
    for name, tensor in model.state_dict().items():
        if ".lora_" in name:
            continue
        module = adapted.get(name)
        if module is not None:
            delta = module.get_delta_weight(ADAPTER)
            tensor = tensor + delta.to(tensor.dtype)
        yield base_name(name), tensor


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


def save_merged(model: Any, tokenizer: Any, target: Path) -> Path:
    """Publish `target` (e.g. output_dir/final): the merged model folder, the adapter in `target/adapter`.

    Written into a staging folder and renamed into place, replacing an older `target`.
    """
    target = Path(target)
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    merged = copy.deepcopy(model).merge_and_unload()  # a copy: the policy keeps its adapters
    merged.save_pretrained(staging)
    del merged
    model.save_pretrained(staging / "adapter")
    if tokenizer is not None:
        tokenizer.save_pretrained(staging)
    return publish_folder(staging, target)
