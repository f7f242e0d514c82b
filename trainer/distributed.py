"""torch.distributed glue: one process, or many under `torchrun` (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as td


@dataclass
class Distributed:
    """The process's place in the run; every collective is a no-op with one process."""

    rank: int
    world_size: int
    device: str

    @classmethod
    def from_env(cls, device: str = "auto") -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and world > 1:
            device = f"cuda:{local}"
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        if world > 1 and not td.is_initialized():
            td.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        return cls(rank, world, device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: Any) -> Any:
        """DDP around the model when there are several processes."""
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        tensor = tensor.clone().to(self.device)
        td.all_reduce(tensor, op=td.ReduceOp.SUM)
        return tensor.cpu()

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Metrics averaged over ranks (every rank must report the same keys)."""
        if self.world_size == 1:
            return metrics
        keys = sorted(metrics)
        gathered = self.gather_object({k: metrics[k] for k in keys})
        return {k: sum(g.get(k, 0.0) for g in gathered) / len(gathered) for k in keys}

    def gather_object(self, value: Any) -> list[Any]:
        if self.world_size == 1:
            return [value]
        out: list[Any] = [None] * self.world_size
        td.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        if self.world_size > 1:
            td.barrier()

    def close(self) -> None:
        if td.is_initialized():  # also the one-process group of model.sharding=fsdp
            td.destroy_process_group()
