"""Peak memory per rank of one training step (forward, backward, AdamW step) under each way of holding the model.

Model: random weights in Qwen2.5-0.5B's shape (hidden 896, 14 heads / 2 KV heads, intermediate 4864, vocabulary
151,936, tied embeddings), built from a config, with 8 of its 24 decoder layers (255M parameters instead of
494M) so that two DDP ranks with float32 AdamW fit in this machine's 24 GB. float32 throughout: on a CPU, bf16
compute is slower and FSDP's mixed precision has no device to save; the bytes per parameter of other dtypes are
in docs/SCALING.md. Batch: one row of 512 tokens, cross-entropy on every token.

Cases, each in a fresh process (`torchrun --standalone` for 2 ranks, gloo):
  full          one process, every parameter trained
  ddp           2 ranks, DistributedDataParallel
  fsdp          2 ranks, FSDP2 `fully_shard` per decoder layer and the root
  fsdp_offload  as fsdp, with FSDP2's CPUOffloadPolicy
  lora          one process, peft LoRA r=16 (alpha 32) on the attention and MLP projections

Per rank it reports:
  model_state  bytes of this rank's parameters, gradients and optimiser states, summed tensor by tensor
               (the local shard of each DTensor): exact, independent of the allocator;
  optimizer    the optimiser-state part of it;
  peak         peak resident memory (VmHWM) minus resident memory after the imports, so it counts the model,
               the step and the allocator's overhead;
  activations  peak - model_state, what the forward/backward adds on top (logits included: 512 x 151,936 x 4 B).

Targets (issue 13): FSDP per-rank model state <= 0.55x DDP's; LoRA optimiser state <= 0.05x full. The log-prob
memory (whole vs `optim.logprob_chunk`) has its own script, benchmarks/perf/logprob_memory.py.

Run: .venv/bin/python benchmarks/perf/memory.py [--cases full,ddp,fsdp,fsdp_offload,lora] [--out FILE.json]
A finished case is kept in FILE.json and skipped when the script is run again (delete it to remeasure).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CASES = ("full", "ddp", "fsdp", "fsdp_offload", "lora")
RANKS = {"full": 1, "ddp": 2, "fsdp": 2, "fsdp_offload": 2, "lora": 1}
LAYERS, TOKENS = 8, 512
HERE = Path(__file__).resolve()


def status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmHWM: peak resident, VmRSS: resident) in KiB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def build_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=151_936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=LAYERS,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=TOKENS,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config).float()


def hold(model, case: str):
    """The model as the case holds it: plain, DDP, FSDP2 (with offload), or with LoRA adapters."""
    if case == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)
    if case in ("fsdp", "fsdp_offload"):
        import torch
        from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

        # pinned host buffers need an accelerator; on a CPU-only machine offload keeps the states where they are
        offload = (
            {"offload_policy": CPUOffloadPolicy(pin_memory=torch.cuda.is_available())}
            if case == "fsdp_offload"
            else {}
        )
        for layer in model.model.layers:
            fully_shard(layer, **offload)
        return fully_shard(model, **offload)
    if case == "lora":
        from peft import LoraConfig, get_peft_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=targets))
    return model


def local_bytes(tensor) -> int:
    """Bytes this rank holds for a tensor (the local shard of a DTensor)."""
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return local.numel() * local.element_size()


def state_bytes(model, optimizer) -> dict[str, int]:
    """Parameters, gradients and optimiser states of this rank, in bytes."""
    params = list(model.parameters())
    weights = sum(local_bytes(p) for p in params)
    grads = sum(local_bytes(p.grad) for p in params if p.grad is not None)
    optim = sum(
        local_bytes(value)
        for state in optimizer.state.values()
        for value in state.values()
        if hasattr(value, "numel") and value.dim() > 0
    )
    return {"weights": weights, "grads": grads, "optimizer": optim, "model_state": weights + grads + optim}


def worker(case: str) -> None:
    """One training step of `case` on this rank; prints one JSON line."""
    import torch

    torch.set_num_threads(max(1, 2 // RANKS[case]))
    baseline = status_kib("VmRSS")
    distributed = RANKS[case] > 1
    if distributed:
        torch.distributed.init_process_group("gloo")
    torch.manual_seed(0)
    model = hold(build_model(), case)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, foreach=False)
    ids = torch.randint(1, 151_936, (1, TOKENS), generator=torch.Generator().manual_seed(1))
    started = time.perf_counter()
    for _ in range(2):  # the second step runs with the optimiser states already allocated
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        if _ == 0:
            optimizer.zero_grad(set_to_none=False)  # keep the gradients: they are part of the state
    seconds = (time.perf_counter() - started) / 2
    peak = (status_kib("VmHWM") - baseline) * 1024
    state = state_bytes(model, optimizer)
    rank = torch.distributed.get_rank() if distributed else 0
    record = {"case": case, "rank": rank, **state, "peak": peak, "activations": peak - state["model_state"]}
    print("RESULT " + json.dumps({**record, "seconds_per_step": round(seconds, 2)}), flush=True)
    if distributed:
        torch.distributed.destroy_process_group()


def run_case(case: str) -> list[dict]:
    """The case in fresh processes; one record per rank."""
    if RANKS[case] == 1:
        command = [sys.executable, str(HERE), "--worker", case]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={RANKS[case]}",
            str(HERE),
            "--worker",
            case,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
    records = [json.loads(line[7:]) for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not records:
        errors = [line for line in result.stderr.splitlines() if "Error:" in line] or ["no output"]
        return [{"case": case, "error": errors[0].strip()[:300]}]
    return sorted(records, key=lambda r: r["rank"])


def report(results: dict[str, list[dict]]) -> None:
    """A table per case (rank 0; the ranks agree within a few MiB) and the ratios against the targets."""
    mib = 2**20
    print(
        f"\n{'case':<13} {'ranks':>5} {'model state':>12} {'optimizer':>10} {'activations':>12} {'peak':>9}  MiB/rank"
    )
    for case, records in results.items():
        first = records[0]
        if "error" in first:
            print(f"{case:<13} error: {first['error']}")
            continue
        print(
            f"{case:<13} {len(records):>5} {first['model_state'] / mib:>12.0f} {first['optimizer'] / mib:>10.0f} "
            f"{first['activations'] / mib:>12.0f} {first['peak'] / mib:>9.0f}"
        )

    def ratio(a: str, b: str, key: str) -> str:
        try:
            return f"{results[a][0][key] / results[b][0][key]:.3f}"
        except (KeyError, ZeroDivisionError):
            return "n/a"

    print(f"\nFSDP model state / DDP's:           {ratio('fsdp', 'ddp', 'model_state')}  (target <= 0.55)")
    print(f"FSDP+offload model state / DDP's:   {ratio('fsdp_offload', 'ddp', 'model_state')}")
    print(f"LoRA optimiser state / full's:      {ratio('lora', 'full', 'optimizer')}  (target <= 0.05)")
    print(f"DDP peak / full peak:               {ratio('ddp', 'full', 'peak')}")
    print(f"FSDP peak / DDP peak:               {ratio('fsdp', 'ddp', 'peak')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", default="runs/bench/memory.json", help="results, kept between runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for case in args.cases.split(","):
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}")
        if case in results and "error" not in results[case][0]:
            print(f"{case}: kept from {out}")
            continue
        print(f"{case}: measuring ...", flush=True)
        results[case] = run_case(case)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(out)
    report({case: results[case] for case in CASES if case in results})


if __name__ == "__main__":
    main()
