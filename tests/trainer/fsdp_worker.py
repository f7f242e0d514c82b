"""Worker of test_fsdp.py, run as a script: alone (one process) or under torchrun (FSDP2 over gloo).

    python fsdp_worker.py update MODEL_DIR OUT_DIR   every CASES entry; rank 0 writes NAME.pt (alone: plain
                                                    model and FSDP at world size 1; torchrun: FSDP), then
                                                    the LoRA update, lora.pt, and under torchrun the weight
                                                    streams' records, stream.pt and stream_lora.pt
    python fsdp_worker.py step MODEL_DIR OUT_DIR     one FSDP update (token_mean); every rank writes rankR.pt
                                                    with the full weights (the two-node test)
    python fsdp_worker.py train MODEL_DIR OUT_DIR    train() with model.sharding=fsdp, 2 steps (train-1: 1 step;
                                                    resume: --resume to 2 steps; lora-train, lora-train-1,
                                                    lora-resume: the same with LoRA). One run per launch: a
                                                    process group made again in the same torchrun worker can hang.

The batch and the row order are those of ddp_worker.py: rank r trains on its contiguous share of the rows, the
one process on all of them in `aligned_order`.
"""

from __future__ import annotations

import dataclasses
import sys
import weakref
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ddp_worker import ROWS, WORLD, aligned_order, settings, synthetic_batch

from rlvr.trainer.distributed import Distributed
from rlvr.trainer.lora import (
    DEFAULT_TARGETS,
    adapter_state,
    adapters_disabled,
    apply_lora,
    trainable_parameters,
)
from rlvr.trainer.sharding import FullyShard, Replicated, ShardedLoRA, full_state_dict
from rlvr.trainer.update import batch_logprobs, policy_update

CASES: dict[str, dict[str, Any]] = {
    "token_mean": {"loss_agg": "token_mean", "minibatches": 1, "num_iterations": 1},
    "seq_mean_token_mean": {"loss_agg": "seq_mean_token_mean", "minibatches": 1, "num_iterations": 1},
    "seq_mean_token_sum_norm": {"loss_agg": "seq_mean_token_sum_norm", "minibatches": 1, "num_iterations": 1},
    "token_mean_2minibatches": {"loss_agg": "token_mean", "minibatches": 2, "num_iterations": 1},
    "kl_seq_mean_token_mean_2minibatches": {
        "loss_agg": "seq_mean_token_mean",
        "minibatches": 2,
        "num_iterations": 1,
        "kl_coef": 0.5,
    },
    "token_mean_logprob_chunk": {"loss_agg": "token_mean", "minibatches": 1, "num_iterations": 1, "chunk": 4},
    # by length within 20 padded tokens: rank 0 forms 3 micro-batches, rank 1 2 (split to 3: FSDP needs equal)
    "token_mean_token_budget": {
        "loss_agg": "token_mean",
        "minibatches": 1,
        "num_iterations": 1,
        "budget": 20,
    },
}
"""Name -> what varies; micro_batch_size is 2, so every minibatch accumulates gradients over micro-batches."""
LORA_CASE = {"loss_agg": "seq_mean_token_mean", "minibatches": 2, "num_iterations": 1, "kl_coef": 0.5}
"""The LoRA update: its KL reference is the policy itself with the adapters disabled."""


def case_settings(case: dict[str, Any]) -> Any:
    kl = float(case.get("kl_coef", 0.0))
    return dataclasses.replace(
        settings(case),
        kl_coef=kl,
        kl_in_loss=kl > 0,
        logprob_chunk=int(case.get("chunk", 0)),
        token_budget=int(case.get("budget", 0)),
    )


def reference(model_dir: str) -> Any:
    """The KL anchor: the starting model moved by a fixed random perturbation, so the KL has a gradient."""
    from transformers import LlamaForCausalLM

    ref = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
            p.requires_grad_(False)
    return ref.eval()


def one_update(model_dir: str, dist: Distributed, case: dict[str, Any], sharding: Replicated, batch: Any):
    """(full weights on rank 0, metrics, model) after one policy_update of `case` on `batch`."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    trained = sharding.wrap(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    s = case_settings(case)
    ref_logprobs = None
    if s.kl_coef > 0:
        ref = sharding.wrap_reference(reference(model_dir))
        ref_logprobs = batch_logprobs(ref, batch, s.temperature, s.micro_batch_size)
    metrics = policy_update(
        trained,
        optimizer,
        scheduler,
        batch,
        s,
        ref_logprobs=ref_logprobs,
        all_reduce=dist.all_reduce_sum,
        world_size=dist.world_size,
    )
    full = full_state_dict(model) if isinstance(sharding, FullyShard) else model.state_dict()
    return {k: v.detach().clone() for k, v in full.items()}, metrics, model


def lora_model(model_dir: str) -> Any:
    """The small Llama with rank-4 adapters; B random (not peft's 0), so the policy differs from the reference
    (the base model) and A gets a gradient. Seeded: the same on every rank and in every process."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    torch.manual_seed(3)
    model = apply_lora(model, rank=4, alpha=8, targets=DEFAULT_TARGETS)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return model


def lora_update(model_dir: str, dist: Distributed, sharding: Replicated, batch: Any):
    """(whole adapter on every rank, metrics, model) after one LoRA policy_update of LORA_CASE on `batch`."""
    model = lora_model(model_dir)
    trained = sharding.wrap(model)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    s = case_settings(LORA_CASE)
    with adapters_disabled(model):  # the reference: the same (sharded) model as its base
        ref_logprobs = batch_logprobs(model, batch, s.temperature, s.micro_batch_size)
    metrics = policy_update(
        trained,
        optimizer,
        scheduler,
        batch,
        s,
        ref_logprobs=ref_logprobs,
        all_reduce=dist.all_reduce_sum,
        world_size=dist.world_size,
    )
    return adapter_state(model), metrics, model


def my_rows(dist: Distributed, case: dict[str, Any]) -> list[int]:
    if dist.world_size == 1:
        return aligned_order(ROWS, WORLD, int(case["minibatches"]))
    share = ROWS // dist.world_size
    return list(range(dist.rank * share, (dist.rank + 1) * share))


def update(model_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist = Distributed.from_env("cpu")
    fsdp = FullyShard(dist, "float32", cpu_offload=False, gather=False)
    full = synthetic_batch()
    model = None
    for name, case in CASES.items():
        batch = full.rows(my_rows(dist, case))
        record = {}
        if dist.world_size == 1:  # the reference: a plain model in one process
            record["plain"] = one_update(model_dir, dist, case, Replicated(dist), batch)[:2]
        state, metrics, model = one_update(model_dir, dist, case, fsdp, batch)
        record["fsdp"] = (state, metrics)
        if dist.is_main:
            torch.save(record, Path(out_dir) / f"{name}.pt")
        dist.barrier()
    if dist.world_size > 1:
        stream = receive(fsdp.weights(model))
        if dist.is_main:
            torch.save(stream, Path(out_dir) / "stream.pt")
    update_lora(model_dir, out_dir, dist)
    dist.close()


def update_lora(model_dir: str, out_dir: str, dist: Distributed) -> None:
    """lora.pt: {label: (adapter, metrics, merged weights)} (alone also the initial adapter); under torchrun
    also stream_lora.pt."""
    batch = synthetic_batch().rows(my_rows(dist, LORA_CASE))
    shardings = {"fsdp": ShardedLoRA(dist, "float32", cpu_offload=False, gather=False)}
    if dist.world_size == 1:
        shardings["plain"] = Replicated(dist)
    record = {"initial": adapter_state(lora_model(model_dir))} if dist.world_size == 1 else {}
    for label, sharding in shardings.items():
        adapter, metrics, model = lora_update(model_dir, dist, sharding, batch)
        record[label] = (adapter, metrics, dict(sharding.weights(model)))  # the merged weights
    if dist.world_size > 1:
        stream = receive(sharding.weights(model))
        if dist.is_main:
            torch.save(stream, Path(out_dir) / "stream_lora.pt")
    if dist.is_main:
        torch.save(record, Path(out_dir) / "lora.pt")
    dist.barrier()


def receive(stream: Any) -> dict[str, Any]:
    """A fake `load_weights`: takes each (name, tensor) and drops it, recording the full tensors alive at once."""
    alive: list[weakref.ref] = []
    peak, sums, sizes = 0, {}, {}
    for name, tensor in stream:
        alive = [r for r in alive if r() is not None] + [weakref.ref(tensor)]
        peak = max(peak, sum(r().nbytes for r in alive if r() is not None))
        sums[name], sizes[name] = float(tensor.double().sum()), tensor.nbytes
    return {"peak_bytes": peak, "sums": sums, "sizes": sizes}


def step(model_dir: str, out_dir: str) -> None:
    """One FSDP update; every rank gathers and writes the full weights (equal on every node)."""
    torch.set_num_threads(1)
    dist = Distributed.from_env("cpu")
    case = CASES["token_mean"]
    fsdp = FullyShard(dist, "float32", cpu_offload=False, gather=False)
    _, metrics, model = one_update(model_dir, dist, case, fsdp, synthetic_batch().rows(my_rows(dist, case)))
    state = dict(fsdp.weights(model))
    torch.save({"state": state, "metrics": metrics}, Path(out_dir) / f"rank{dist.rank}.pt")
    dist.close()


def train_loop(mode: str, model_dir: str, out_dir: str) -> None:
    import trainer_envs  # registers rlvr-test/parity-v0

    from rlvr.trainer.config import load_config
    from rlvr.trainer.loop import train

    lora = ["model.lora_rank=4", "model.lora_alpha=8", "optim.lr=0.01"] if mode.startswith("lora") else []

    def config(folder: str, steps: int) -> Any:
        return load_config(
            None,
            [
                f"model.name={model_dir}",
                "model.device=cpu",
                "model.threads=1",
                "model.sharding=fsdp",
                f"env.suite={trainer_envs.PARITY_ID}",
                "env.eval_tasks=2",
                "rollout.prompts_per_step=2",
                "rollout.group_size=4",
                "rollout.max_tokens=8",
                "algorithm.kl_coef=0.1",
                "optim.lr=0.001",
                "optim.micro_batch_size=2",
                f"run.steps={steps}",
                "run.save_every=1",
                f"run.output_dir={folder}",
                "run.progress=false",
                "run.plot=false",
                *lora,
            ],
        )

    steps, resume = {"train": (2, False), "train-1": (1, False), "resume": (2, True)}[
        mode.removeprefix("lora-")
    ]
    train(config(out_dir, steps), resume=resume)


if __name__ == "__main__":
    mode, model_dir, out_dir = sys.argv[1:4]
    if mode.startswith(("train", "resume", "lora")):
        train_loop(mode, model_dir, out_dir)
    else:
        {"update": update, "step": step}[mode](model_dir, out_dir)
