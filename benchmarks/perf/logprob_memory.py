"""Peak memory of the training log-probs + backward: whole micro-batch against `optim.logprob_chunk`.

Model: a random Qwen2 built from a config with Qwen2.5's vocabulary (151,936 tokens, tied embeddings) and a tiny
body (hidden 64, 1 layer), float32 on the CPU, so the (tokens x vocab) logits dominate. Batch: rows of a 64-token
prompt and a 512-token completion (all policy tokens), temperature 0.7; `token_logprobs(..., with_entropy=True)`
as the update calls it, then backward of the summed log-probs.

Each case runs in a fresh process; the figure is its peak resident memory (VmHWM in /proc/self/status) minus
the resident memory just before the log-probs (torch, the model and the batch loaded), so both columns count
only what the log-probs and their backward add. Linux only.

Run: .venv/bin/python benchmarks/perf/logprob_memory.py [--tokens 2048,4096 --chunk 512 --whole-up-to N]
(`--whole-up-to`: skip the whole computation above N tokens, where it needs more memory than the machine has;
it takes about 6 x tokens x vocab x 4 bytes.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

VOCAB = 151_936
PROMPT, COMPLETION = 64, 512


def status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmHWM: peak resident, VmRSS: resident) in KiB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def one_case(tokens: int, chunk: int) -> dict[str, float]:
    """Build the model and batch, then measure one log-probs + backward pass (run in a fresh process)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rlvr.trainer.batch import PolicyBatch
    from rlvr.trainer.update import token_logprobs

    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=PROMPT + COMPLETION,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config).float()
    rows, width = tokens // COMPLETION, PROMPT + COMPLETION
    input_ids = torch.randint(1, VOCAB, (rows, width))
    loss_mask = torch.zeros(rows, width)
    loss_mask[:, PROMPT:] = 1
    zeros = torch.zeros(rows, width)
    batch = PolicyBatch(input_ids, torch.ones_like(input_ids), loss_mask, zeros, torch.ones(rows), COMPLETION)
    before = status_kib("VmRSS")
    started = time.perf_counter()
    logprobs, entropy = token_logprobs(model, batch, 0.7, with_entropy=True, chunk=chunk)  # (rows, 512)
    logprobs.sum().backward()
    seconds = time.perf_counter() - started
    assert entropy is not None and model.lm_head.weight.grad is not None
    return {"peak_mib": (status_kib("VmHWM") - before) / 1024, "seconds": seconds}


def measure(tokens: int, chunk: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--case", str(tokens), str(chunk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"case tokens={tokens} chunk={chunk} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", default="2048,4096", help="policy tokens per case, multiples of 512")
    parser.add_argument("--chunk", type=int, default=512, help="optim.logprob_chunk of the chunked column")
    parser.add_argument("--whole-up-to", type=int, default=0, help="skip whole cases above this (0: none)")
    parser.add_argument("--case", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(*args.case)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from perf_common import source_state

    print(f"source: {source_state('trainer')}; vocab {VOCAB}, chunk {args.chunk}")
    print("| policy tokens | whole (MiB) | chunked (MiB) | chunked / whole | seconds whole / chunked |")
    print("|---|---|---|---|---|")
    for tokens in (int(t) for t in args.tokens.split(",")):
        chunked = measure(tokens, args.chunk)
        if args.whole_up_to and tokens > args.whole_up_to:
            print(f"| {tokens} | not run | {chunked['peak_mib']:.0f} | - | - / {chunked['seconds']:.1f} |")
            continue
        whole = measure(tokens, 0)
        ratio = chunked["peak_mib"] / whole["peak_mib"]
        print(
            f"| {tokens} | {whole['peak_mib']:.0f} | {chunked['peak_mib']:.0f} | {ratio:.3f} "
            f"| {whole['seconds']:.1f} / {chunked['seconds']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
