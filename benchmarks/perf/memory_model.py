"""The memory model of docs/SCALING.md: bytes per GPU of training a Qwen2.5-shaped model under each mode, checked
against benchmarks/perf/memory.py's measured points, and the table of what fits.

Run: .venv/bin/python benchmarks/perf/memory_model.py [--measured runs/bench/memory.json]
It prints the model's prediction next to each measured case, then the fit table that docs/SCALING.md shows.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

GB = 10**9
MIB = 2**20


@dataclass(frozen=True)
class Shape:
    """A decoder-only transformer's shape (Qwen2.5 family: GQA, SwiGLU MLP, biases on q/k/v)."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int = 151_936
    tied: bool = False

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.hidden // self.heads

    @property
    def layer_params(self) -> int:
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        attention = h * h + h + 2 * (h * kv + kv) + h * h  # q (+bias), k, v (+biases), o
        return attention + 3 * h * i + 2 * h  # gate, up, down; two RMSNorms

    @property
    def params(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * self.layer_params + embeddings + self.hidden  # + final norm

    def lora_params(self, rank: int) -> int:
        """Adapter parameters of LoRA r on q, k, v, o, gate, up, down: r * (d_in + d_out) per matrix."""
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        per_layer = (h + h) + 2 * (h + kv) + (h + h) + 2 * (h + i) + (i + h)
        return self.layers * rank * per_layer

    def activation_bytes_per_token(self, dtype_bytes: int, checkpointing: bool) -> int:
        """Saved activations per token. Without checkpointing, per layer: the norms' inputs/outputs, q/k/v,
        the attention output, o's output, the MLP's gate, up, their product and the activation (SDPA/flash
        attention keeps no (T x T) matrix); with checkpointing, each layer's input only, plus one layer's full
        set while it is recomputed."""
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        per_layer = (6 * h + 2 * kv + 4 * i) * dtype_bytes
        if checkpointing:
            return self.layers * h * dtype_bytes + per_layer
        return self.layers * per_layer


QWEN25 = {
    "0.5B": Shape("0.5B", 896, 24, 14, 2, 4864, tied=True),
    "1.5B": Shape("1.5B", 1536, 28, 12, 2, 8960, tied=True),
    "7B": Shape("7B", 3584, 28, 28, 4, 18944),
    "14B": Shape("14B", 5120, 48, 40, 8, 13824),
    "32B": Shape("32B", 5120, 64, 40, 8, 27648),
}


def model_state_bytes(shape: Shape, mode: str, world: int, *, mixed: bool = True, lora_rank: int = 16) -> int:
    """Weights + gradients + AdamW states held per GPU for the whole run.

    full/ddp: fp32 master 4 + fp32 grad 4 + Adam m, v 8 = 16 B/param per replica (bf16 compute under autocast
    adds no persistent copy). fsdp: the same 16 B/param sharded over `world`. fsdp_offload: nothing on the GPU;
    the sharded 16 B/param live in host memory. lora: the frozen base in bf16 (2 B/param; fp32 4 when not
    mixed), and 16 B per adapter parameter."""
    n = shape.params
    if mode in ("full", "ddp"):
        return 16 * n
    if mode == "fsdp":
        return 16 * n // world
    if mode == "fsdp_offload":
        return 0
    if mode == "lora":
        return (2 if mixed else 4) * n + 16 * shape.lora_params(lora_rank)
    raise ValueError(mode)


def working_bytes(shape: Shape, mode: str, *, mixed: bool = True) -> int:
    """What a step holds beyond the states: under FSDP the gathered (unsharded) parameters and their gradients
    before the reduce-scatter, for two decoder layers (the one computing, the one prefetched) and the root (the
    embeddings and the LM head, gathered for the whole step); under DDP its gradient buckets (a float32 copy
    of every gradient, as `gradient_as_bucket_view=False`, the default, keeps them)."""
    if mode.startswith("fsdp"):
        root = shape.vocab * shape.hidden * (1 if shape.tied else 2)
        return (2 * shape.layer_params + root) * ((2 if mixed else 4) + 4)
    if mode == "ddp":
        return 4 * shape.params
    return 0


def logprob_bytes(tokens: int, vocab: int, chunk: int, copies: int | None = None) -> int:
    """float32 (rows x vocab) tensors alive at once, rows = the chunk (or all tokens). The trainer's log-probs
    keep about 6 whole (the logits, their temperature-scaled copy, the log-softmax, the entropy's temporaries)
    or 5 per chunk, as benchmarks/perf/logprob_memory.py measured; transformers' cross-entropy loss (memory.py's
    benchmark) keeps 4 (the logits, the log-softmax, and in backward the NLL's dense gradient and its own)."""
    copies = copies if copies is not None else (5 if chunk else 6)
    return copies * 4 * (chunk or tokens) * vocab


def transient_bytes(shape: Shape, mode: str, world: int) -> int:
    """The largest short-lived tensor: the (vocab x hidden) embedding's float32 gradient before it is added to
    `.grad` (and AdamW's per-parameter temporaries of the same size); sharded under FSDP."""
    return 4 * shape.vocab * shape.hidden // (world if mode.startswith("fsdp") else 1)


def step_peak_bytes(shape: Shape, mode: str, world: int, tokens: int, *, chunk: int = 1024) -> int:
    """Peak per GPU of one micro-batch of `tokens` with bf16 compute, gradient checkpointing, chunked log-probs."""
    activations = tokens * shape.activation_bytes_per_token(2, checkpointing=True)
    return (
        model_state_bytes(shape, mode, world)
        + working_bytes(shape, mode)
        + activations
        + logprob_bytes(tokens, shape.vocab, chunk)
        + transient_bytes(shape, mode, world)
    )


def host_bytes(shape: Shape, mode: str, world: int, gpus_per_node: int) -> int:
    """Host memory per node that fsdp_offload needs: the node's share of the 16 B/param states."""
    return 16 * shape.params * min(world, gpus_per_node) // world if mode == "fsdp_offload" else 0


def fits(shape: Shape, mode: str, gpus: int, *, gpu_bytes: int = 80 * GB, tokens: int = 8192) -> str:
    """'yes (NN GB)' when one training step fits in 90% of a GPU (CUDA context, fragmentation), else 'no';
    fsdp_offload also names the host memory per node it needs."""
    if mode in ("full", "ddp") and gpus > 1:
        mode = "ddp"
    peak = step_peak_bytes(shape, mode, gpus, tokens)
    verdict = f"yes ({peak / GB:.0f} GB)" if peak <= 0.9 * gpu_bytes else f"no ({peak / GB:.0f} GB)"
    host = host_bytes(shape, mode, gpus, 8)
    return verdict[:-1] + f", host {host / GB:.0f} GB/node)" if host else verdict


def check_against(measured: dict) -> None:
    """The model at the benchmark's setting (8 of 24 layers of 0.5B, float32, 512 tokens, no checkpointing)."""
    bench = Shape("bench", 896, 8, 14, 2, 4864, tied=True)
    print(
        f"{'case':<13} {'model state MiB (model / measured)':>36} {'activations MiB (model / measured)':>36}"
    )
    for case, records in measured.items():
        if "error" in records[0]:
            continue
        world = len(records)
        mode = "fsdp" if case == "fsdp_offload" else case  # on a CPU the host is the device: all of it counts
        predicted = model_state_bytes(bench, mode, world, mixed=False)
        if case == "lora":  # the benchmark's base is float32, and peft keeps its adapters in float32 too
            predicted = 4 * bench.params + 16 * bench.lora_params(16)
        acts = (
            512 * bench.activation_bytes_per_token(4, checkpointing=False)
            + logprob_bytes(512, bench.vocab, 0, copies=4)
            + (transient_bytes(bench, case, world) if case != "lora" else 0)  # lora: the embedding is frozen
            + working_bytes(bench, case, mixed=False)
        )
        got_state, got_acts = records[0]["model_state"], records[0]["activations"]
        print(
            f"{case:<13} {predicted / MIB:>17.0f} / {got_state / MIB:<8.0f} ({predicted / got_state - 1:+.0%})"
            f"{acts / MIB:>14.0f} / {got_acts / MIB:<8.0f} ({acts / got_acts - 1:+.0%})"
        )


def fit_table() -> None:
    setups = {"1 x 80 GB": 1, "8 x 80 GB": 8, "4 nodes x 8 x 80 GB": 32}
    modes = ("full", "fsdp", "fsdp_offload", "lora")
    print("\n| model | params | GPUs | " + " | ".join(modes) + " |")
    print("|---|---|---|" + "---|" * len(modes))
    for shape in QWEN25.values():
        for label, gpus in setups.items():
            cells = [fits(shape, mode, gpus) for mode in modes]
            print(f"| {shape.name} | {shape.params / 1e9:.2f}B | {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", default="runs/bench/memory.json")
    args = parser.parse_args()
    path = Path(args.measured)
    if path.is_file():
        check_against(json.loads(path.read_text()))
    else:
        print(f"no measured points at {path}; run benchmarks/perf/memory.py first")
    fit_table()


if __name__ == "__main__":
    main()
