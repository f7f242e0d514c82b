"""Worker of test_distributed.py, run as a script: alone (one process) or under torchrun (DDP over gloo).

    python ddp_worker.py update MODEL_DIR OUT_DIR   policy_update of every CASES entry; rank 0 writes NAME.pt
    python ddp_worker.py train MODEL_DIR OUT_DIR    the training loop, 2 steps on rlvr-test/parity-v0

`update` builds the same synthetic batch of ROWS rows on every rank; rank r trains on the contiguous rows
r*ROWS/W .. (r+1)*ROWS/W. Alone, it trains on all rows in `aligned_order`, the order in which the minibatches of
one process are the unions of the ranks' minibatches.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # trainer_envs registers rlvr-test/parity-v0

from rlvr.trainer.batch import PolicyBatch
from rlvr.trainer.distributed import Distributed
from rlvr.trainer.update import UpdateSettings, policy_update

ROWS = 8
WORLD = 2
"""Processes of the torchrun run; the one-process reference orders its rows for this many."""
CASES: dict[str, dict[str, object]] = {
    "token_mean": {"loss_agg": "token_mean", "minibatches": 1, "num_iterations": 1},
    "seq_mean_token_mean": {"loss_agg": "seq_mean_token_mean", "minibatches": 1, "num_iterations": 1},
    "seq_mean_token_sum_norm": {"loss_agg": "seq_mean_token_sum_norm", "minibatches": 1, "num_iterations": 1},
    "token_mean_2minibatches_2passes": {"loss_agg": "token_mean", "minibatches": 2, "num_iterations": 2},
}
"""Name -> UpdateSettings fields that vary; micro_batch_size is 2, so every minibatch accumulates gradients."""


def settings(case: dict[str, object]) -> UpdateSettings:
    return UpdateSettings(
        clip_low=0.2,
        clip_high=0.28,
        clip_ratio_c=None,
        ratio_level="token",
        loss_agg=str(case["loss_agg"]),
        loss_max_length=8,
        kl_coef=0.0,
        kl_estimator="k3",
        kl_in_loss=False,
        num_iterations=int(case["num_iterations"]),  # type: ignore[call-overload]
        minibatches=int(case["minibatches"]),  # type: ignore[call-overload]
        micro_batch_size=2,
        max_grad_norm=1.0,
        temperature=1.0,
    )


def synthetic_batch(rows: int = ROWS, vocab: int = 256) -> PolicyBatch:
    """Left-padded prompt (3-6 tokens) + completion (2-7 tokens) rows, loss on the completions, mixed advantages."""
    g = torch.Generator().manual_seed(1234)
    prompts = torch.randint(3, 7, (rows,), generator=g).tolist()
    completions = torch.randint(2, 8, (rows,), generator=g).tolist()
    width = max(p + c for p, c in zip(prompts, completions, strict=True))
    input_ids = torch.zeros((rows, width), dtype=torch.long)  # pad id 0
    attention = torch.zeros((rows, width), dtype=torch.long)
    loss_mask = torch.zeros((rows, width))
    for row, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        input_ids[row, width - p - c :] = torch.randint(1, vocab, (p + c,), generator=g)
        attention[row, width - p - c :] = 1
        loss_mask[row, width - c :] = 1
    advantages = torch.randn(rows, generator=g)
    advantages[::2] = advantages[::2].abs()  # mixed signs, whatever the draw
    advantages[1::2] = -advantages[1::2].abs()
    return PolicyBatch(
        input_ids, attention, loss_mask, torch.zeros((rows, width)), advantages, max(completions)
    )


def aligned_order(rows: int, world: int, minibatches: int) -> list[int]:
    """Rows in the order whose k-th minibatch (one process) is the union of every rank's k-th minibatch.

    Rank r holds rows r*rows/world..; `policy_update` splits them into `minibatches` contiguous parts, so
    one process sees the same minibatches when the rows go: (rank 0, part 0), (rank 1, part 0), (rank 0, part 1) ...
    """
    share = rows // world
    bounds = [round(i * share / minibatches) for i in range(minibatches + 1)]
    return [
        r * share + j
        for k in range(minibatches)
        for r in range(world)
        for j in range(bounds[k], bounds[k + 1])
    ]


def update(model_dir: str, out_dir: str) -> None:
    from transformers import LlamaForCausalLM

    torch.set_num_threads(1)
    dist = Distributed.from_env("cpu")
    full = synthetic_batch()
    share = ROWS // dist.world_size
    for name, case in CASES.items():
        if dist.world_size == 1:
            batch = full.rows(aligned_order(ROWS, WORLD, int(case["minibatches"])))  # type: ignore[call-overload]
        else:
            batch = full.rows(range(dist.rank * share, (dist.rank + 1) * share))
        model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        wrapped = dist.wrap(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        metrics = policy_update(
            wrapped,
            optimizer,
            scheduler,
            batch,
            settings(case),
            all_reduce=dist.all_reduce_sum,
            world_size=dist.world_size,
        )
        if dist.is_main:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            torch.save({"state": state, "metrics": metrics}, Path(out_dir) / f"{name}.pt")
        dist.barrier()
    dist.close()


def train_loop(model_dir: str, out_dir: str) -> None:
    import trainer_envs  # registers rlvr-test/parity-v0

    from rlvr.trainer.config import load_config
    from rlvr.trainer.loop import train

    config = load_config(
        None,
        [
            f"model.name={model_dir}",
            "model.device=cpu",
            "model.threads=1",
            f"env.suite={trainer_envs.PARITY_ID}",
            "env.eval_tasks=4",
            "rollout.prompts_per_step=2",
            "rollout.group_size=4",
            "rollout.max_tokens=8",
            "optim.lr=0.001",
            "optim.micro_batch_size=2",
            "run.steps=2",
            f"run.output_dir={out_dir}",
            "run.progress=false",
            "run.plot=false",
            "run.save_model=false",
        ],
    )
    train(config)


if __name__ == "__main__":
    mode, model_dir, out_dir = sys.argv[1:4]
    {"update": update, "train": train_loop}[mode](model_dir, out_dir)
