"""Where the weights live (`model.sharding`): whole on every process (`none`: one process, or DDP under
torchrun) or sharded over the processes with FSDP2 (`fsdp`).

    sharding = make_sharding(config.model, dist, engine="hf")
    trained = sharding.wrap(model)             # before the optimiser is made: FSDP2 swaps in DTensor parameters
    ref = sharding.wrap_reference(ref)         # the KL anchor, sharded the same way
    sharding.for_generation(model) / for_update(model)   # around each update (see FullyShard)
    engine.load_weights(sharding.weights(model))          # one full tensor at a time
    sharding.save(...) / sharding.restore(...)           # checkpoints
    sharding.export(model, tokenizer, last, out / "final")  # final/ (a collective under fsdp + LoRA)

`fsdp` calls `fully_shard` on each decoder layer, then on the root (embeddings, final norm, LM head), with a
mixed-precision policy: compute in `model.dtype`, gradients reduced in float32, the stored (master) weights and
the optimiser states in `model.master_dtype`. FSDP2 averages gradients over the ranks in its reduce-scatter, as
DDP does in its all-reduce: the update's loss scaled by the world size undoes either (see update.py).

With LoRA (`model.lora_rank > 0`) the adapters are added before `fully_shard`, which shards the frozen base and
the adapters alike; only the adapters get gradients (FSDP2 reduce-scatters the parameters that have one), and the
optimiser holds only them (`ShardedLoRA`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as td

from rlvr.trainer.checkpoint import export_model, restore_optimizer, save_checkpoint, staging_folder
from rlvr.trainer.distributed import Distributed
from rlvr.trainer.lora import adapter_state, full_tensor, is_lora, merged_weights, save_merged

SHARDED = "sharded"
"""The folder of a checkpoint that holds the sharded model and optimiser (torch.distributed.checkpoint)."""
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Replicated:
    """`model.sharding: none`: every process holds the whole model; rank 0 writes the checkpoints."""

    def __init__(self, dist: Distributed) -> None:
        self.dist = dist

    def wrap(self, model: Any) -> Any:
        return self.dist.wrap(model)

    def wrap_reference(self, model: Any) -> Any:
        return model

    def for_generation(self, model: Any) -> None:
        pass

    def for_update(self, model: Any) -> None:
        pass

    def weights(self, model: Any) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, tensor) for the engine; LoRA: W + scale * B A. Sharded (fsdp): each parameter gathered whole when
        its turn comes, so the extra memory is the largest tensor, not the model (a collective: all ranks call it)."""
        return merged_weights(model)

    def save(
        self,
        folder: Path,
        step: int,
        model: Any,
        optimizer: Any,
        state: dict,
        *,
        extra: Any = None,
        **kwargs: Any,
    ) -> None:
        """Checkpoint `step` (rank 0 writes it); `extra(staging)` adds files to it first, on every rank."""
        self.staging(folder, step, extra)  # made, with the extra files
        if self.dist.is_main:
            save_checkpoint(folder, step, model, optimizer, state, staged=True, **kwargs)
        self.dist.barrier()

    def staging(self, folder: Path, step: int, extra: Any = None) -> Path:
        """The empty staging folder of checkpoint `step` (made by rank 0, the same path on every rank), with what
        `extra(staging)` writes into it (e.g. the critic; every rank calls it): it is published with the rest."""
        staging = staging_folder(folder, step) if self.dist.is_main else None
        staging = Path(self.dist.gather_object(str(staging))[0])
        self.dist.barrier()  # the folder exists before any rank writes into it
        if extra is not None:
            extra(staging)
        return staging

    def restore(self, checkpoint: Path, model: Any, optimizer: Any) -> None:
        restore_optimizer(checkpoint, optimizer)

    def export(self, model: Any, tokenizer: Any, last: Path | None, target: Path) -> None:
        """final/ (rank 0): the model folder of the `last` checkpoint; LoRA: the merged model and the adapter."""
        if not self.dist.is_main or last is None:
            return
        if is_lora(model):
            save_merged(model, tokenizer, target)
        else:
            export_model(last, target)


class FullyShard(Replicated):
    """`model.sharding: fsdp`: FSDP2 per decoder layer and at the root, sharded checkpoints.

    Generation with the `hf` engine runs on the sharded model with its layers gathered: `for_generation`
    all-gathers every layer once (each rank then holds the full weights in `model.dtype` while it generates)
    and keeps them until `for_update` reshards them. The decoding forwards then run no collective, so ranks may
    generate different numbers of tokens and turns, and rank 0 alone may evaluate. With `vllm` nothing is
    gathered: the engine receives the weights one full tensor at a time (`weights`).
    """

    def __init__(self, dist: Distributed, dtype: str, *, cpu_offload: bool, gather: bool) -> None:
        super().__init__(dist)
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy

        if not td.is_initialized():  # fully_shard needs a process group, also for one process
            backend = "nccl" if dist.device.startswith("cuda") else "gloo"
            td.init_process_group(backend, store=td.HashStore(), rank=0, world_size=1)
        self.mixed = MixedPrecisionPolicy(param_dtype=DTYPES[dtype], reduce_dtype=torch.float32)
        self.offload = (
            CPUOffloadPolicy(pin_memory=torch.cuda.is_available()) if cpu_offload else OffloadPolicy()
        )
        self.gather = gather

    def wrap(self, model: Any) -> Any:
        return self._shard(
            model, reshard_root=False
        )  # the root's weights stay gathered from forward to backward

    def wrap_reference(self, model: Any) -> Any:
        return self._shard(model, reshard_root=True)  # forward only: nothing to keep for a backward

    def _shard(self, model: Any, *, reshard_root: bool) -> Any:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        kind = "cuda" if self.dist.device.startswith("cuda") else "cpu"
        mesh = init_device_mesh(kind, (self.dist.world_size,))
        options = {"mesh": mesh, "mp_policy": self.mixed, "offload_policy": self.offload}
        for layer in decoder_layers(model):
            fully_shard(layer, reshard_after_forward=True, **options)
        fully_shard(model, reshard_after_forward=reshard_root, **options)
        return model

    def for_generation(self, model: Any) -> None:
        """Gather every layer (a collective: all ranks call it) and keep it gathered through the forwards."""
        if not self.gather:
            return
        for module in _fsdp_modules(model):
            module.set_reshard_after_forward(False, recurse=False)
            module.unshard()

    def for_update(self, model: Any) -> None:
        """Back to sharded weights, each layer gathered in its own forward and backward only."""
        if not self.gather:
            return
        for module in _fsdp_modules(model):
            module.reshard()
            module.set_reshard_after_forward(module is not model, recurse=False)

    def save(
        self,
        folder: Path,
        step: int,
        model: Any,
        optimizer: Any,
        state: dict,
        *,
        extra: Any = None,
        **kwargs: Any,
    ) -> None:
        """The sharded model and optimiser (every rank), then the HF model folder gathered on rank 0."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        self.for_update(model)  # the state dicts below are of the sharded parameters
        staging = self.staging(folder, step, extra)
        model_state, optim_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=staging / SHARDED)
        full = full_state_dict(model)  # every rank takes part; rank 0 receives it
        if self.dist.is_main:
            save_checkpoint(folder, step, model, None, state, state_dict=full, staged=True, **kwargs)
        self.dist.barrier()
        self.for_generation(model)

    def restore(self, checkpoint: Path, model: Any, optimizer: Any) -> None:
        """Load the sharded model and optimiser of `checkpoint` (written at the same world size)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        self.for_update(model)
        model_state, optim_state = get_state_dict(model, optimizer)
        state = {"model": model_state, "optim": optim_state}
        dcp.load(state, checkpoint_id=checkpoint / SHARDED)
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


class ShardedLoRA(FullyShard):
    """`model.sharding: fsdp` with `model.lora_rank > 0`: the frozen base and the adapters sharded alike.

    A step checkpoint is that of a one-process LoRA run (`adapter_model.safetensors`, `adapter_config.json`,
    optimizer.pt in the format of `optimizer.state_dict()`, state.pt): every rank gathers the adapter and its
    AdamW moments, and rank 0 writes them. They are small (the base is not saved: `model.name` holds it), and
    the format does not depend on the world size, so a run resumes at another one, or without FSDP. The vLLM
    stream and final/ are the merged weights, W + scale * B A, gathered one full tensor at a time.
    """

    def save(
        self,
        folder: Path,
        step: int,
        model: Any,
        optimizer: Any,
        state: dict,
        *,
        extra: Any = None,
        **kwargs: Any,
    ) -> None:
        self.for_update(model)  # the sharded parameters (their master dtype), not the gathered copies
        self.staging(folder, step, extra)  # made, with the extra files
        adapter = adapter_state(model)
        moments = gathered_optimizer_state(optimizer)
        if self.dist.is_main:
            save_checkpoint(
                folder,
                step,
                model,
                None,
                state,
                state_dict=adapter,
                optimizer_state=moments,
                staged=True,
                **kwargs,
            )
        self.dist.barrier()
        self.for_generation(model)

    def restore(self, checkpoint: Path, model: Any, optimizer: Any) -> None:
        """The AdamW moments of `checkpoint`, each rank keeping its shards (the adapter is set before sharding)."""
        self.for_update(model)
        saved = torch.load(checkpoint / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(sharded_optimizer_state(saved, optimizer))

    def export(self, model: Any, tokenizer: Any, last: Path | None, target: Path) -> None:
        """final/: the merged weights gathered one tensor at a time to rank 0 (a collective), which writes them."""
        if last is None:
            return
        self.for_update(model)
        weights = {}
        for name, tensor in merged_weights(model):
            if self.dist.is_main:
                weights[name] = tensor.cpu()
        adapter = adapter_state(model)
        if self.dist.is_main:
            save_merged(model, tokenizer, target, weights=weights, adapter=adapter)
        self.dist.barrier()


SHARDINGS = {"none", "fsdp"}


def make_sharding(model_config: Any, dist: Distributed, *, engine: str) -> Replicated:
    """The sharding `model_config.sharding` names."""
    if model_config.sharding == "none":
        return Replicated(dist)
    kind = ShardedLoRA if model_config.lora_rank > 0 else FullyShard
    return kind(dist, model_config.dtype, cpu_offload=model_config.cpu_offload, gather=engine == "hf")


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    """The decoder layers of an HF causal LM: the largest ModuleList in it (`model.layers` for Llama/Qwen)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no ModuleList of decoder layers to shard")
    return list(max(lists, key=len))


def full_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The whole model's state dict on rank 0, on the CPU (empty on the other ranks); a collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def same_count(groups: list[list[int]]) -> list[list[int]]:
    """Micro-batches split until every rank has as many as the rank with most (FSDP: each is a collective).

    Splitting a micro-batch leaves the gradient as it is (the loss divides by counts of the whole minibatch).
    A no-op in one process; a rank with fewer rows than that count keeps fewer micro-batches.
    """
    if not td.is_initialized() or td.get_world_size() == 1:
        return groups
    device = torch.device("cuda", torch.cuda.current_device()) if td.get_backend() == "nccl" else "cpu"
    count = torch.tensor([len(groups)], device=device)
    td.all_reduce(count, op=td.ReduceOp.MAX)
    groups = [list(g) for g in groups]
    while len(groups) < int(count) and max(map(len, groups), default=0) > 1:
        big = max(range(len(groups)), key=lambda i: len(groups[i]))
        group = groups.pop(big)
        groups[big:big] = [group[: len(group) // 2], group[len(group) // 2 :]]
    return groups


def _fsdp_modules(model: Any) -> list[Any]:
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


def gathered_optimizer_state(optimizer: Any) -> dict[str, Any]:
    """`optimizer.state_dict()` with every sharded state (DTensor) gathered whole onto the CPU: what one process
    would save. A collective: the states are gathered in the order of the parameters' numbers on every rank."""
    saved = optimizer.state_dict()
    states = saved["state"]
    saved["state"] = {i: {k: full_tensor(v).cpu() for k, v in states[i].items()} for i in sorted(states)}
    return saved


def sharded_optimizer_state(saved: dict[str, Any], optimizer: Any) -> dict[str, Any]:
    """The inverse of `gathered_optimizer_state` for `optimizer`: each whole state tensor of a sharded parameter
    cut into this rank's shard as the parameter is (no communication: every rank holds the whole state)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    params = [p for group in optimizer.param_groups for p in group["params"]]
    states = {}
    for i, entry in saved["state"].items():
        p = params[i]
        states[i] = {
            k: distribute_tensor(v.to(p.device), p.device_mesh, p.placements, src_data_rank=None)
            if isinstance(p, DTensor) and torch.is_tensor(v) and v.shape == p.shape
            else v
            for k, v in entry.items()
        }
    return {**saved, "state": states}
