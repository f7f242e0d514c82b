"""Where the weights live (`model.sharding`): whole on every process (`none`: one process, or DDP under
torchrun) or sharded over the processes with FSDP2 (`fsdp`).

    sharding = make_sharding(config.model, dist, engine="hf")
    trained = sharding.wrap(model)             # before the optimiser is made: FSDP2 swaps in DTensor parameters
    ref = sharding.wrap_reference(ref)         # the KL anchor, sharded the same way
    sharding.for_generation(model) / for_update(model)   # around each update (see FullyShard)
    engine.load_weights(sharding.weights(model))          # one full tensor at a time
    sharding.save(...) / sharding.restore(...)           # checkpoints

`fsdp` calls `fully_shard` on each decoder layer, then on the root (embeddings, final norm, LM head), with a
mixed-precision policy: compute in `model.dtype`, gradients reduced in float32, the stored (master) weights and
the optimiser states in `model.master_dtype`. FSDP2 averages gradients over the ranks in its reduce-scatter, as
DDP does in its all-reduce: the update's loss scaled by the world size undoes either (see update.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as td

from rlvr.trainer.checkpoint import restore_optimizer, save_checkpoint, staging_folder
from rlvr.trainer.distributed import Distributed

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
        from rlvr.trainer.lora import merged_weights  # a plain model's state dict; LoRA: W + BA

        return merged_weights(model)

    def save(self, folder: Path, step: int, model: Any, optimizer: Any, state: dict, **kwargs: Any) -> None:
        if self.dist.is_main:
            save_checkpoint(folder, step, model, optimizer, state, **kwargs)
        self.dist.barrier()

    def restore(self, checkpoint: Path, model: Any, optimizer: Any) -> None:
        restore_optimizer(checkpoint, optimizer)


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

    def weights(self, model: Any) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, full tensor) one parameter at a time: a collective, every rank iterates in the same order."""
        return stream_full_tensors(model)

    def save(self, folder: Path, step: int, model: Any, optimizer: Any, state: dict, **kwargs: Any) -> None:
        """The sharded model and optimiser (every rank), then the HF model folder gathered on rank 0."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        self.for_update(model)  # the state dicts below are of the sharded parameters
        staging = staging_folder(folder, step) if self.dist.is_main else None
        staging = Path(self.dist.gather_object(str(staging))[0])
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


SHARDINGS = {"none", "fsdp"}


def make_sharding(model_config: Any, dist: Distributed, *, engine: str) -> Replicated:
    """The sharding `model_config.sharding` names."""
    if model_config.sharding == "none":
        return Replicated(dist)
    return FullyShard(dist, model_config.dtype, cpu_offload=model_config.cpu_offload, gather=engine == "hf")


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    """The decoder layers of an HF causal LM: the largest ModuleList in it (`model.layers` for Llama/Qwen)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no ModuleList of decoder layers to shard")
    return list(max(lists, key=len))


def stream_full_tensors(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """Each entry of the state dict as a full tensor, one at a time (the extra memory is the largest one).

    A sharded entry (DTensor) is all-gathered when its turn comes; nothing is kept after it is yielded.
    """
    from torch.distributed.tensor import DTensor

    for name, value in model.state_dict().items():
        yield name, value.full_tensor() if isinstance(value, DTensor) else value


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
