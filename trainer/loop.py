"""The training loop: sample tasks -> rollout -> rewards -> advantages -> batch -> update, with checkpoints.

    train(config)  runs `config.run.steps` steps (fewer when `run.sample_budget` is spent first), resuming from
                   the latest checkpoint when asked, and returns a TrainResult with the held-out greedy accuracy
                   before and after.

Under `torchrun` each rank draws its own tasks (its share of `prompts_per_step`), generates with its own copy
of the model, and DDP averages the gradients; metrics are averaged over ranks and rank 0 writes the logs.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlvr.atomic import write_text_atomic
from rlvr.envs.rollout import Trajectory, rollout
from rlvr.envs.splits import warn_benchmark_overlap
from rlvr.envs.suite import Draw, Suite, suite_metrics
from rlvr.envs.types import Sampling
from rlvr.errors import ConfigError
from rlvr.trainer.async_rollout import RolloutWorker
from rlvr.trainer.batch import build_batch
from rlvr.trainer.checkpoint import (
    latest_checkpoint,
    read_state,
    set_rng_state,
)
from rlvr.trainer.config import TrainConfig
from rlvr.trainer.distributed import Distributed
from rlvr.trainer.dynamic_sampling import FillStats, fill_batch
from rlvr.trainer.evaluate import HeldOutResult, held_out_accuracy
from rlvr.trainer.families import GroupBaseline, ScoredBatch, make_family
from rlvr.trainer.groups import Group
from rlvr.trainer.logger import RunLogger, plot_curves
from rlvr.trainer.lora import (
    adapters_disabled,
    apply_lora,
    is_lora,
    load_adapter,
    trainable_parameters,
)
from rlvr.trainer.losses import kl_penalty
from rlvr.trainer.run_dir import check_output_dir, make_output_dir, start_run
from rlvr.trainer.run_envs import run_environments
from rlvr.trainer.sharding import Replicated, make_sharding
from rlvr.trainer.task_draws import TaskDraws
from rlvr.trainer.tree_advantages import distinct_tokens
from rlvr.trainer.update import UpdateSettings, batch_logprobs, policy_update
from rlvr.verifiers.length import OverlongConfig, overlong_penalty

PENDING = "pending_rollouts"
"""rollout.async: the file (per rank) of a checkpoint holding the next step's rollouts, already generated."""


@dataclass
class TrainResult:
    """What a run produced."""

    output_dir: Path
    steps: int
    before: HeldOutResult | None = None
    after: HeldOutResult | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Run:
    """What the stages of one run share."""

    config: TrainConfig
    dist: Distributed
    out: Path
    suite: Suite
    eval_env: str
    eval_overrides: dict[str, Any]
    tokenizer: Any
    model: Any
    trained: Any  # the model, or DDP around it under torchrun (FSDP2 shards the model itself)
    ref_model: Any
    engine: Any
    optimizer: Any
    scheduler: Any
    sharding: Replicated
    family: GroupBaseline
    tasks: TaskDraws
    worker: RolloutWorker | None = None  # rollout.async: the next step's rollouts, generated meanwhile
    start_step: int = 0
    samples: int = 0  # completions sampled so far, all ranks (run.sample_budget)
    evals: list[dict[str, Any]] = field(default_factory=list)
    logger: RunLogger | None = None


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Run (or resume) a training run as configured.

    What can be checked without the model is checked before it loads: the output folder (one that holds a run
    needs `resume` to continue it or `overwrite` to replace it), the checkpoint to resume from, the environments.
    """
    started = time.perf_counter()
    dist = Distributed.from_env(config.model.device)
    out = Path(config.run.output_dir)
    checkpoint = check_output_dir(out, resume=resume, overwrite=overwrite)
    saved = _saved_state(checkpoint, config) if checkpoint is not None else None
    environments = run_environments(config.env)
    warn_benchmark_overlap(environments.entries, show=dist.is_main)  # training on a benchmark's split
    if dist.is_main:
        make_output_dir(out)
    dist.barrier()  # every process has checked the folder before the first one writes to it
    run = _setup(config, dist, out, environments, checkpoint)
    run.worker = _make_worker(run)
    if dist.is_main:
        start_run(out, config.to_dict(), replace=overwrite)
    if saved is not None:
        _restore(run, checkpoint, saved)
    if dist.is_main:
        run.logger = _make_logger(config, out, run.start_step)
    run.sharding.for_generation(run.model)
    before = _before(run)
    last = _train_steps(run)
    after = _evaluate(run, last)
    history = _finish(run, last, before, after, started)
    return TrainResult(out, last, before, after, history, time.perf_counter() - started)


def _saved_state(checkpoint: Path, config: TrainConfig) -> dict[str, Any]:
    state = read_state(checkpoint)
    if state.get("lora_rank", 0) != config.model.lora_rank:
        raise ConfigError(
            f"--resume: {checkpoint} continues a run of model.lora_rank={state.get('lora_rank', 0)}, not "
            f"{config.model.lora_rank}; resume with the same model.lora_rank"
        )
    if state.get("model", config.model.name) != config.model.name:
        raise ConfigError(
            f"--resume: {checkpoint} continues a run of model.name={state['model']}, not "
            f"{config.model.name}; resume with the same model.name"
        )
    return state


def _setup(
    config: TrainConfig, dist: Distributed, out: Path, environments: Any, checkpoint: Path | None
) -> _Run:
    """Seeds, tokenizer, policy (from the checkpoint when resuming), reference model, engine, optimiser."""
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    if config.model.threads:
        torch.set_num_threads(config.model.threads)
    _seed_everything(config.run.seed + dist.rank)
    tokenizer = load_tokenizer(config.model.name)
    lora = config.model.lora_rank > 0
    source = config.model.name if lora else str(checkpoint or config.model.name)  # LoRA: the adapter's base
    weights_dtype = config.model.master_dtype or config.model.dtype  # fsdp computes in model.dtype
    if lora:  # the frozen base needs no master copy; peft keeps the adapters in float32 (apply_lora)
        weights_dtype = config.model.dtype
    model = load_model(source, dtype=weights_dtype, device=dist.device)
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if lora:
        model = _adapted(config, model, checkpoint)
    algo = config.algorithm
    ref_model = None
    if algo.kl_coef > 0 and lora:
        ref_model = model  # the same object, run with its adapters disabled (_make_batch): no second copy
    elif algo.kl_coef > 0:  # the starting model, also when the policy comes from a checkpoint
        ref_model = (
            _reference_model(model)
            if checkpoint is None
            else _frozen(load_model(config.model.name, dtype=weights_dtype, device=dist.device))
        )
    sharding = make_sharding(config.model, dist, engine=config.rollout.engine)
    trained = sharding.wrap(model)  # before the optimiser: FSDP2 replaces the parameters
    if ref_model is not None and ref_model is not model:
        ref_model = sharding.wrap_reference(ref_model)
    optimizer = torch.optim.AdamW(
        trainable_parameters(model),  # under LoRA the adapters only
        lr=config.optim.lr,
        betas=config.optim.betas,
        weight_decay=config.optim.weight_decay,
    )
    family = _make_family(config, dist, sharding)
    suite = Suite(environments.entries, seed=config.run.seed * 1000 + dist.rank)
    total_updates = config.run.steps * algo.num_iterations * algo.minibatches
    return _Run(
        config=config,
        dist=dist,
        out=out,
        suite=suite,
        eval_env=environments.held_out_id,
        eval_overrides=environments.held_out_overrides,
        tokenizer=tokenizer,
        model=model,
        trained=trained,
        ref_model=ref_model,
        engine=_make_engine(config, model, tokenizer, source, sharding),
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, total_updates)),
        sharding=sharding,
        family=family,
        tasks=TaskDraws.from_config(config, suite, dist.rank, dist.world_size),
    )


def _make_worker(run: _Run) -> RolloutWorker | None:
    """rollout.async: a worker thread with its own hf engine on a copy of the policy (a plain model: LoRA's
    merged weights are what it receives)."""
    r = run.config.rollout
    if not r.async_:
        return None
    from rlvr.trainer.engines.hf import HFEngine

    copy_of_policy = copy.deepcopy(run.model)
    if is_lora(copy_of_policy):
        copy_of_policy = copy_of_policy.merge_and_unload()
    engine = HFEngine(copy_of_policy, run.tokenizer, max_batch_size=r.max_batch_size)
    return RolloutWorker(lambda step: _draw_groups(step, run, engine), engine, staleness=r.async_staleness)


def _make_family(config: TrainConfig, dist: Distributed, sharding: Replicated) -> GroupBaseline:
    """The algorithm family of `algorithm.advantage`; with gae, its critic (sharded like the policy)."""
    critic = None
    if config.algorithm.advantage == "gae":
        from rlvr.trainer.critic import Critic, CriticSettings, load_value_model

        c, o = config.critic, config.optim
        dtype = config.model.master_dtype or config.model.dtype
        value_model = load_value_model(c.model or config.model.name, dtype=dtype, device=dist.device)
        if config.model.gradient_checkpointing:
            value_model.gradient_checkpointing_enable()
        settings = CriticSettings(
            lr=c.lr,
            betas=o.betas,
            weight_decay=c.weight_decay,
            max_grad_norm=c.max_grad_norm,
            value_clip=c.value_clip or None,
            micro_batch_size=c.micro_batch_size or o.micro_batch_size,
            token_budget=o.token_budget,
        )
        critic = Critic(value_model, settings, sharding=sharding)
    warmup = config.critic.warmup_steps or 0
    return make_family(config.algorithm, critic=critic, dist=dist, warmup_steps=warmup)


def _adapted(config: TrainConfig, model: Any, checkpoint: Path | None) -> Any:
    """The model with LoRA adapters (before any DDP/FSDP wrapping); their saved weights when resuming."""
    m = config.model
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.run.seed)  # A's random start: the same on every rank (FSDP shards each's)
        model = apply_lora(model, m.lora_rank, m.lora_alpha, m.lora_targets)
    if checkpoint is not None:
        load_adapter(model, checkpoint)
    return model


def _restore(run: _Run, checkpoint: Path, state: dict[str, Any]) -> None:
    """Continue from `checkpoint`: optimiser, scheduler, the suite's draws, every RNG, the held-out results."""
    run.sharding.restore(checkpoint, run.model, run.optimizer)
    run.family.restore(checkpoint)  # PPO/VAPO: the critic
    run.scheduler.load_state_dict(state["scheduler"])
    suite_rngs = state["suite_rng"]
    rank = run.dist.rank
    run.suite.rng.bit_generator.state = suite_rngs[rank] if rank < len(suite_rngs) else suite_rngs[0]
    set_rng_state(state["rng"])
    pending = checkpoint / f"{PENDING}-rank{rank}.pt"
    if run.worker is not None and pending.is_file():  # the step the worker had generated
        run.worker.restore_pending(torch.load(pending, weights_only=False))
    if "tasks" in state:  # the task history, the curriculum's level, each stage's draws
        tasks = state["tasks"]
        run.tasks.load_state_dict(tasks[rank] if rank < len(tasks) else tasks[0])
    run.start_step, run.evals = state["step"], state.get("evals", [])
    run.samples = state.get("samples", 0)


def _make_logger(config: TrainConfig, out: Path, start_step: int) -> RunLogger:
    return RunLogger(
        out,
        tensorboard=config.run.tensorboard,
        wandb=config.run.wandb,
        project=config.run.wandb_project,
        config=config.to_dict(),
        resume_step=start_step,
    )


def _evaluate(run: _Run, step: int) -> HeldOutResult | None:
    """Held-out greedy accuracy (rank 0), recorded in the run's evals."""
    config = run.config
    if config.env.eval_tasks == 0 or not run.dist.is_main:
        return None
    max_tokens = config.env.eval_max_tokens or config.rollout.max_tokens
    result = held_out_accuracy(
        run.engine, run.eval_env, run.eval_overrides, config.env.eval_tasks, max_tokens, run.tokenizer
    )
    run.evals.append(
        {"step": step, "accuracy": result.accuracy, "solved": result.solved, "tasks": result.tasks}
    )
    _say(
        f"held-out greedy accuracy at step {step}: {result.accuracy:.3f} ({result.solved}/{result.tasks} "
        f"tasks of {run.eval_env}, {result.seconds:.0f} s)"
    )
    return result


def _before(run: _Run) -> HeldOutResult | None:
    """The accuracy before training: measured now, or the first one of a resumed run."""
    if run.start_step == 0:
        return _evaluate(run, 0) if run.config.run.eval_before else None
    if run.evals:
        first = run.evals[0]
        return HeldOutResult(run.eval_env, first["tasks"], first["solved"], math.nan, math.nan, 0.0)
    return None


def _train_steps(run: _Run) -> int:
    """Train up to `run.steps` steps, or until `run.sample_budget` completions are sampled; the last step."""
    config, dist = run.config, run.dist
    settings = _update_settings(config)
    bar = _progress(config.run.progress and dist.is_main, run.start_step, config.run.steps)
    last = run.start_step
    for step in range(run.start_step + 1, config.run.steps + 1):
        if _budget_spent(run):  # resumed after the budget's last step
            break
        metrics = _train_step(step, run, settings)
        last, final = step, step == config.run.steps or _budget_spent(run)
        if run.logger is not None:
            run.logger.log(step, metrics)
        if config.run.eval_every and step % config.run.eval_every == 0 and not final:
            _evaluate(run, step)
        if (config.run.save_every and step % config.run.save_every == 0) or final:
            _save(run, step)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(reward=f"{metrics['reward/mean']:.2f}", acc=f"{metrics['accuracy']:.2f}")
        if final:
            break
    if bar is not None:
        bar.close()
    return last


def _budget_spent(run: _Run) -> bool:
    budget = run.config.run.sample_budget
    return bool(budget) and run.samples >= budget


def _gen_batches_left(run: _Run) -> int:
    """DAPO's generation batches this step: max_gen_batches, fewer where run.sample_budget has less left (>= 1)."""
    most, budget = run.config.algorithm.max_gen_batches, run.config.run.sample_budget
    if not budget:
        return most
    r = run.config.rollout
    left = -(-(budget - run.samples) // (r.prompts_per_step * r.group_size))  # ceil: batches of all ranks
    return max(1, min(most, left))


def _save(run: _Run, step: int) -> None:
    state = {
        "scheduler": run.scheduler.state_dict(),
        "suite_rng": run.dist.gather_object(run.suite.rng.bit_generator.state),
        "evals": run.evals,
        "samples": run.samples,
        "model": run.config.model.name,
        "lora_rank": run.config.model.lora_rank,
        "tasks": run.dist.gather_object(run.tasks.state_dict()),  # per rank: each has its own draws
    }
    run.sharding.save(
        run.out / "checkpoints",
        step,
        run.model,
        run.optimizer,
        state,
        tokenizer=run.tokenizer,
        keep=run.config.run.keep_checkpoints,
        extra=lambda staging: _save_extra(run, staging),  # in the same checkpoint folder
    )


def _save_extra(run: _Run, staging: Path) -> None:
    """What a family (PPO/VAPO: the critic) and the async worker (the next step's rollouts) add to a checkpoint."""
    run.family.save(staging)
    if run.worker is not None:
        torch.save(run.worker.pending_state(), staging / f"{PENDING}-rank{run.dist.rank}.pt")


def _finish(
    run: _Run, steps: int, before: HeldOutResult | None, after: HeldOutResult | None, started: float
) -> list[dict[str, Any]]:
    """curves.png, final/ (the last checkpoint's model folder), summary.json; close everything."""
    history = run.logger.history() if run.logger is not None else []
    if run.config.run.save_model:  # every rank: fsdp + LoRA gathers the merged weights to rank 0
        last = latest_checkpoint(run.out / "checkpoints") if run.dist.is_main else None
        run.sharding.export(run.model, run.tokenizer, run.dist.gather_object(last)[0], run.out / "final")
    if run.dist.is_main:
        if run.config.run.plot and history:
            plot_curves(history, run.out / "curves.png", run.evals)
        summary = {
            "steps": steps,
            "samples": run.samples,
            "before": dataclasses.asdict(before) if before else None,
            "after": dataclasses.asdict(after) if after else None,
            "evals": run.evals,
            "seconds": time.perf_counter() - started,
        }
        write_text_atomic(run.out / "summary.json", json.dumps(summary, indent=2))
    if run.logger is not None:
        run.logger.close()
    if run.worker is not None:
        run.worker.close()
    run.engine.close()
    run.dist.close()
    return history


def _train_step(step: int, run: _Run, settings: UpdateSettings) -> dict[str, float]:
    """One step: sample groups, (the family may select samples), score, update; the step's metrics."""
    config, dist, engine = run.config, run.dist, run.engine
    t0 = time.perf_counter()
    if run.worker is None:
        groups, drawn, fill = _draw_groups(step, run, run.engine)
    else:
        groups, drawn, fill = _worker_groups(step, run)
    generation_s = time.perf_counter() - t0
    drawn_of_ranks = dist.gather_object([(g.task, g.accuracies) for g in drawn])
    run.tasks.observe(drawn_of_ranks, step)  # every rank's
    run.samples += sum(len(accuracies) for groups in drawn_of_ranks for _, accuracies in groups)
    more = step < config.run.steps and not _budget_spent(run)
    if run.worker is not None and run.worker.staleness == 1 and more:
        run.worker.submit(step + 1, run.sharding.weights(run.model))  # theta_{t-1}, while update t runs
    sampled = [t for g in drawn for t in g.trajectories]
    metrics = _rollout_metrics(sampled, drawn, fill, config)
    metrics["time/generation_s"] = generation_s
    metrics.update(run.tasks.metrics(step))
    if run.worker is not None:
        metrics.update(run.worker.metrics())
    generated = sum(_policy_tokens(t) for t in sampled)
    groups = run.family.select(groups)  # RAFT: the solved samples; the others keep every sample
    trajectories = [t for g in groups for t in g.trajectories]

    t1 = time.perf_counter()
    _engine_sleep(engine)  # vLLM on GPU: free its KV cache (and move its weights off) during the update
    run.sharding.for_update(run.model)
    update_metrics, moved = _learn(step, run, groups, trajectories, settings)
    _engine_wake_up(engine)
    run.sharding.for_generation(run.model)
    # hf shares the trained model object; vllm gets the new weights, one full tensor at a time
    if engine.name != "hf" and moved:
        engine.load_weights(run.sharding.weights(run.model))  # LoRA: W + BA under the base model's names
    training_s = time.perf_counter() - t1
    metrics.update(update_metrics)
    metrics["lr"] = run.scheduler.get_last_lr()[0]
    metrics["time/training_s"] = training_s
    metrics["time/step_s"] = time.perf_counter() - t0
    metrics["tokens_per_s/generation"] = generated / max(generation_s, 1e-9)
    metrics["tokens_per_s/training"] = sum(len(t.token_ids) for t in trajectories) / max(training_s, 1e-9)
    metrics["batch/trajectories"] = float(len(trajectories))
    metrics = dist.mean_metrics(metrics)
    metrics["samples/total"] = float(run.samples)  # the same on every rank: not averaged
    if run.logger is not None and _sample_step(step, config):
        run.logger.samples(step, [_sample_row(t) for t in sampled[: config.rollout.group_size]])
    return metrics


def _worker_groups(step: int, run: _Run) -> tuple[list[Group], list[Group], FillStats]:
    """rollout.async: `step`'s groups from the worker (submitted the step before, or now with staleness 0)."""
    worker = run.worker
    if worker.staleness == 0 or worker.pending_step() != step:  # the synchronous schedule, or the first step
        worker.submit(step, run.sharding.weights(run.model))
    return worker.result(step)


def _draw_groups(step: int, run: _Run, engine: Any) -> tuple[list[Group], list[Group], FillStats]:
    """The step's groups (DAPO's dynamic sampling refills them), every group drawn, and the fill statistics."""
    config, dist = run.config, run.dist
    algo, r = config.algorithm, config.rollout
    prompts = _share(r.prompts_per_step, dist)
    drawn: list[Group] = []

    draws_made = [0]

    def draw() -> list[Group]:
        draws_made[0] += 1
        seed = (config.run.seed * 1_000_003 + step * 101 + draws_made[0]) * 64 + dist.rank
        suite, tasks, sizes = run.tasks.draw(prompts, step)
        groups = _generate_groups(
            suite, engine, tasks, sizes, r, seed, run.tokenizer, remax=run.family.needs_greedy
        )
        drawn.extend(groups)
        return groups

    if algo.filter_groups:
        groups, fill = fill_batch(draw, prompts, _gen_batches_left(run), _informative)
    else:
        groups = draw()
        fill = FillStats(1, len(groups), len(groups), True)
    return groups, drawn, fill


def _learn(
    step: int, run: _Run, groups: list[Group], trajectories: list[Trajectory], settings: UpdateSettings
) -> tuple[dict[str, float], bool]:
    """Advantages (the family's; a critic learns here) and the policy update; (metrics, the policy moved)."""
    config, dist = run.config, run.dist
    if min(dist.gather_object(len(trajectories))) < config.algorithm.minibatches:  # all ranks train, or none
        return {}, False
    scored, ref_logprobs = _make_batch(
        groups, trajectories, config, run.ref_model, run.tokenizer, settings, dist.device
    )
    advantages, metrics = run.family.advantages(scored)
    batch = scored.batch
    batch.advantages = advantages.float().to(dist.device)
    if not run.family.moves_policy(step):
        return metrics, False
    metrics.update(
        policy_update(
            run.trained,
            run.optimizer,
            run.scheduler,
            batch,
            settings,
            ref_logprobs=ref_logprobs,
            all_reduce=dist.all_reduce_sum,
            world_size=dist.world_size,
        )
    )
    return metrics, True


def _generate_groups(
    suite: Suite,
    engine: Any,
    draws: list[Draw],
    sizes: list[int],
    r: Any,
    seed: int,
    tokenizer: Any,
    *,
    remax: bool,
) -> list[Group]:
    """A group of `sizes[i]` samples of each task `draws[i]` (ReMax: with the reward of a greedy one)."""
    expanded = [d for d, n in zip(draws, sizes, strict=True) for _ in range(n)]
    ends = list(itertools.accumulate(sizes))
    envs, options = suite.episodes(expanded)
    sampling = Sampling(
        max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p, top_k=r.top_k, seed=seed
    )
    group_ids = [i for i, n in enumerate(sizes) for _ in range(n)]
    if r.tree:
        groups = _tree_groups(envs, engine, draws, options, group_ids, sampling, r, tokenizer)
    else:
        trajectories = rollout(
            envs, engine, options=options, groups=group_ids, sampling=sampling, tokenizer=tokenizer
        )
        groups = [
            Group(i, trajectories[end - n : end], task=(d.env_id, d.task_index))
            for i, (d, n, end) in enumerate(zip(draws, sizes, ends, strict=True))
        ]
    if remax:
        greedy_envs, greedy_options = suite.episodes(draws)
        greedy = rollout(
            greedy_envs,
            engine,
            options=greedy_options,
            sampling=dataclasses.replace(sampling, temperature=0.0),
            tokenizer=tokenizer,
        )
        for group, baseline in zip(groups, greedy, strict=True):
            group.baseline = baseline.reward
    return groups


def _tree_groups(
    envs: list[Any],
    engine: Any,
    draws: list[Draw],
    options: list[Any],
    group_ids: list[int],
    sampling: Sampling,
    r: Any,
    tokenizer: Any,
) -> list[Group]:
    """rollout.tree: one TreePO tree per task (group_size leaves when no path stops before the last branch
    point; fewer when some do), each leaf an episode; the groups keep each trajectory's leaf."""
    import functools

    from rlvr.envs.tree_rollout import tree_rollout
    from rlvr.trainer.engines.tree import TreeShape, generate_tree

    shape = TreeShape.for_group(r.group_size, r.tree["segment_tokens"], r.tree["branching"], r.tree["depth"])
    sample_tree = functools.partial(
        generate_tree,
        engine,
        roots=shape.roots,
        segment_tokens=shape.segment_tokens,
        branching=shape.branching,
        depth=shape.depth,
    )
    out = tree_rollout(
        envs,
        sample_tree,
        leaves=r.group_size,
        tokenizer=tokenizer,
        options=options,
        groups=group_ids,
        sampling=sampling,
    )
    played = list(zip(out.trajectories, out.leaves, strict=True))
    return [
        Group(
            i,
            [t for t, _ in played if t.group == i],
            task=(d.env_id, d.task_index),
            tree=[leaf for t, leaf in played if t.group == i],
        )
        for i, d in enumerate(draws)
    ]


def _informative(group: Group) -> bool:
    return len(set(group.accuracies)) > 1


def _rewards(trajectories: Sequence[Trajectory], config: TrainConfig) -> torch.Tensor:
    """Episode returns plus DAPO's soft overlong punishment per model turn when configured."""
    buffer = config.algorithm.overlong_buffer
    if buffer == -1:
        buffer = max(1, config.rollout.max_tokens // 4)
    shaping = (
        OverlongConfig(config.rollout.max_tokens, buffer, config.algorithm.overlong_penalty)
        if buffer
        else None
    )
    values = []
    for t in trajectories:
        reward = t.reward
        if shaping is not None:
            reward += sum(overlong_penalty(turn.completion.num_tokens or 0, shaping) for turn in t.turns)
        values.append(reward)
    return torch.tensor(values, dtype=torch.float)


def _make_batch(
    groups: list[Group],
    trajectories: list[Trajectory],
    config: TrainConfig,
    ref_model: Any,
    tokenizer: Any,
    settings: UpdateSettings,
    device: torch.device,
) -> tuple[ScoredBatch, torch.Tensor | None]:
    """The samples as tensors on `device` (where the policy computes, also with FSDP's CPU offload) with their
    rewards (and the KL per token when it goes in the reward), and the reference log-probs when there is a KL
    term."""
    algo = config.algorithm
    rewards = _rewards(trajectories, config)
    drop = [algo.mask_truncated and _cut_at_length(t) for t in trajectories] if algo.mask_truncated else None
    batch = build_batch(
        trajectories,
        torch.zeros(len(trajectories)),
        pad_id=tokenizer.pad_token_id,
        drop=drop,
        positive=[t.solved for t in trajectories],
    ).to(device)
    ref_logprobs = None
    if ref_model is not None:
        with adapters_disabled(ref_model):  # LoRA: the policy itself is the reference, as its base model
            ref_logprobs = batch_logprobs(
                ref_model,
                batch,
                settings.temperature,
                settings.micro_batch_size,
                logprob_chunk=settings.logprob_chunk,
                token_budget=settings.token_budget,
            )
    token_kl = None
    if ref_logprobs is not None and algo.kl_in_reward:
        token_kl = kl_penalty(batch.tail(batch.old_logprobs), ref_logprobs, algo.kl_estimator) * batch.tail(
            batch.loss_mask
        )
    kl_coef = algo.kl_coef if algo.kl_in_reward else 0.0
    return ScoredBatch(groups, batch, rewards, token_kl, kl_coef), ref_logprobs


def _rollout_metrics(
    sampled: list[Trajectory], drawn: list[Group], fill: FillStats, config: TrainConfig
) -> dict[str, float]:
    rewards = _rewards(sampled, config)
    lengths = np.array([_policy_tokens(t) for t in sampled], dtype=float)
    zero_variance = [len(set(g.accuracies)) == 1 for g in drawn]
    metrics: dict[str, float] = {
        "reward/mean": float(rewards.mean()),
        "reward/std": float(rewards.std()) if len(rewards) > 1 else 0.0,
        "accuracy": float(np.mean([t.solved for t in sampled])),
        "groups/zero_variance_frac": float(np.mean(zero_variance)),
        "groups/all_correct_frac": float(np.mean([all(a == 1 for a in g.accuracies) for g in drawn])),
        "groups/drawn": float(fill.groups_drawn),
        "groups/kept": float(min(fill.groups_kept, config.rollout.prompts_per_step)),
        "groups/gen_batches": float(fill.batches_drawn),
        "length/mean": float(lengths.mean()),
        "length/max": float(lengths.max()),
        "length/truncated_frac": float(np.mean([_cut_at_length(t) for t in sampled])),
        "turns/mean": float(np.mean([len(t.turns) for t in sampled])),
        "tokens/generated": float(sum(_decoded_tokens(g) for g in drawn)),
    }
    for key, value in suite_metrics(sampled).items():
        if "/rewards/" in key or key.endswith(("/solved", "/reward")):
            metrics[f"env/{key}"] = value
    verdicts = [turn.verdict for t in sampled for turn in t.turns if turn.verdict is not None]
    reasons = [getattr(v, "reason", None) for v in verdicts]
    metrics["verifier/timeout_frac"] = float(np.mean([r == "timeout" for r in reasons])) if reasons else 0.0
    step_times = [turn.step_seconds for t in sampled for turn in t.turns]
    step_times = [s for s in step_times if s is not None]
    if step_times:
        metrics["verifier/latency_ms"] = 1000 * float(np.mean(step_times))
    return metrics


def _policy_tokens(trajectory: Trajectory) -> int:
    return sum(turn.completion.num_tokens or 0 for turn in trajectory.turns)


def _decoded_tokens(group: Group) -> int:
    """Tokens the engine generated for a group: each sample's, or a tree's nodes once each (rollout.tree)."""
    if group.tree is None:
        return sum(_policy_tokens(t) for t in group.trajectories)
    return distinct_tokens(group.tree)


def _sample_step(step: int, config: TrainConfig) -> bool:
    """samples.jsonl gets the first step, the last, and every `sample_every`-th (none when it is 0)."""
    every = config.run.sample_every
    return bool(every) and (step % every == 0 or step in (1, config.run.steps))


def _sample_row(t: Trajectory) -> dict[str, Any]:
    return {
        "env": t.env_id,
        "task": t.task_id,
        "prompt": next((m["content"] for m in t.messages if m["role"] == "user"), ""),
        "completion": t.turns[-1].completion.text if t.turns else "",
        "reward": t.reward,
        "solved": t.solved,
    }


def _update_settings(config: TrainConfig) -> UpdateSettings:
    a, o, r = config.algorithm, config.optim, config.rollout
    return UpdateSettings(
        clip_low=a.clip_low,
        clip_high=a.clip_high,
        clip_ratio_c=a.clip_ratio_c,
        ratio_level=a.ratio_level,
        policy_loss=a.policy_loss,
        loss_agg=a.loss_agg,
        loss_max_length=r.max_tokens,
        kl_coef=a.kl_coef,
        kl_estimator=a.kl_estimator,
        kl_in_loss=a.kl_coef > 0 and not a.kl_in_reward,
        num_iterations=a.num_iterations,
        minibatches=a.minibatches,
        micro_batch_size=o.micro_batch_size,
        logprob_chunk=o.logprob_chunk,
        token_budget=o.token_budget,
        max_grad_norm=o.max_grad_norm,
        temperature=r.temperature,
        engine_correction=a.engine_correction,
        engine_correction_cap=a.engine_correction_cap,
        engine_correction_level=a.engine_correction_level,
        entropy_coef=a.entropy_coef,
        positive_nll_coef=a.positive_nll_coef,
        cov_mode=a.cov_mode,
        cov=_cov_settings(a),
        behaviour_old=r.async_ and r.async_staleness > 0,
    )


def _cov_settings(a: Any) -> Any:
    """Clip-Cov / KL-Cov settings of `algorithm.cov_mode` (None when off)."""
    if a.cov_mode == "none":
        return None
    from rlvr.trainer.losses import CovSettings

    return CovSettings(
        clip_ratio=a.clip_cov_ratio,
        clip_lb=a.clip_cov_lb,
        clip_ub=a.clip_cov_ub,
        kl_ratio=a.kl_cov_ratio,
        kl_coef=a.kl_cov_coef,
    )


def _schedule(config: TrainConfig, total: int) -> Any:
    warmup, kind = config.optim.warmup_steps, config.optim.schedule

    def factor(update: int) -> float:
        if warmup and update < warmup:
            return (update + 1) / warmup
        progress = min(1.0, (update - warmup) / max(1, total - warmup))
        if kind == "linear":
            return 1.0 - progress
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


def _reference_model(model: Any) -> Any:
    """A frozen copy of the policy as it is now (the starting model)."""
    return _frozen(copy.deepcopy(model))


def _frozen(model: Any) -> Any:
    reference = model
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference


def _make_engine(config: TrainConfig, model: Any, tokenizer: Any, source: str, sharding: Replicated) -> Any:
    """The generation engine: hf shares the policy object; vllm loads `source` (a checkpoint when resuming)."""
    r = config.rollout
    if r.engine == "hf":
        from rlvr.trainer.engines.hf import HFEngine

        return HFEngine(model, tokenizer, max_batch_size=r.max_batch_size)
    from rlvr.trainer.engines.models import resolve_model
    from rlvr.trainer.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(
        resolve_model(source),
        gpu_memory_utilization=r.vllm_gpu_memory_utilization,
        dtype=config.model.dtype,
        seed=config.run.seed,
    )
    if is_lora(model):  # vLLM loaded the base model: give it the merged weights (a resumed adapter)
        engine.load_weights(sharding.weights(model))  # fsdp: gathered one tensor at a time
    return engine


def _share(total: int, dist: Any) -> int:
    if total % dist.world_size:
        raise ConfigError(
            f"rollout.prompts_per_step={total} must divide evenly over {dist.world_size} processes"
        )
    return total // dist.world_size


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress(enabled: bool, start: int, total: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="training", unit="step", file=sys.stderr)


def _say(text: str) -> None:
    print(f"rlvr: {text}", file=sys.stderr, flush=True)


def _engine_sleep(engine: Any) -> None:
    if hasattr(engine, "sleep"):
        engine.sleep()


def _engine_wake_up(engine: Any) -> None:
    if hasattr(engine, "wake_up"):
        engine.wake_up()


def _cut_at_length(trajectory: Trajectory) -> bool:
    """True when a model turn stopped at the token limit (overlong filtering drops such trajectories)."""
    return any(turn.completion.truncated for turn in trajectory.turns)
