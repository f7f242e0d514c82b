"""Run configuration: small dataclasses with a docstring per field, loaded from YAML with `key=value` overrides.

    config = load_config("configs/quickstart.yaml", ["algorithm.clip_high=0.28", "run.steps=10"])

Algorithm fields left unset (None) take their value from the preset (`algorithm.preset`, see `algorithms.py`);
a value given in the file or on the command line wins over the preset.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import itertools
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError


@dataclass
class ModelConfig:
    name: str = "smollm2-135m-instruct"
    """The policy: an HF model folder, a hub id in the local HF cache, or the embedded `smollm2-135m-instruct`."""
    dtype: str = "float32"
    """Weights dtype for training and generation: float32, bfloat16 or float16 (half precision halves memory, but
    with small learning rates bf16 weights drop updates smaller than their resolution: prefer float32 when it fits)."""
    device: str = "auto"
    """`auto` (cuda when available, else cpu), `cpu`, `cuda`, or `cuda:N`."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~30% more compute."""
    threads: int = 0
    """torch CPU threads (0: leave torch's default)."""
    sharding: str = "none"
    """`none` (every process holds the whole model; DDP under torchrun) or `fsdp` (FSDP2 `fully_shard` per decoder
    layer and at the root: weights, gradients and optimiser states sharded over the processes; sharded
    checkpoints)."""
    master_dtype: str = ""
    """With `sharding=fsdp`: dtype of the stored (master) weights and the optimiser states, e.g. float32 while
    forward and backward compute in `dtype` bfloat16 (empty: `dtype`). Gradients are reduced in float32."""
    cpu_offload: bool = False
    """With `sharding=fsdp`: keep the sharded weights and optimiser states in CPU memory (FSDP2's offload
    policy; the optimiser step runs on the CPU)."""
    lora_rank: int = 0
    """LoRA rank r (0: full fine-tuning). With r > 0 only peft adapters on `lora_targets` train; the KL reference
    is the same model with its adapters disabled; step checkpoints hold the adapter, final/ the merged model.
    See "LoRA"."""
    lora_alpha: float = 32.0
    """LoRA scale numerator: the adapter's update is (lora_alpha / lora_rank) B A (e.g. 2 x rank)."""
    lora_targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """Module names that get adapters (default: the attention and MLP projections of Llama-style models)."""


@dataclass
class EnvConfig:
    suite: str = "rlvr/arithmetic-v0"
    """Training environments, `id[:weight],...` (weights default to 1); an id may be `module:id`."""
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """`make` keyword overrides per environment id, e.g. {"rlvr/arithmetic-v0": {"level": 2}}."""
    eval_env: str = ""
    """Held-out environment for greedy accuracy before and after training (empty: the suite's first id)."""
    eval_overrides: dict[str, Any] = field(default_factory=dict)
    """`make` overrides of held-out environments, per id: {"rlvr/arithmetic-v0": {"level": 2}}. The held-out
    environment gets `split="test"`, then its own entry; a flat mapping needs `eval_env`."""
    eval_tasks: int = 100
    """Held-out tasks evaluated (task indices 0..eval_tasks-1); 0 disables the evaluation."""
    eval_max_tokens: int = 0
    """Token limit of the greedy evaluation (0: rollout.max_tokens)."""
    stages: list[dict[str, Any]] = field(default_factory=list)
    """Training in stages (SRPO): [{suite: ID[,ID...], steps: N}, ...], each stage drawing from its own suite for
    its steps (the last one's steps 0: until the end); empty: `suite` throughout."""
    history_resampling: bool = False
    """SRPO history resampling: a task whose last group was all correct leaves the pool (see retire_epochs);
    all-wrong tasks stay, to be retried."""
    retire_epochs: int = 0
    """With history_resampling: epochs a solved task stays out (an epoch: the steps of one expected pass over its
    environment's tasks); 0: for good."""
    curriculum: str = "none"
    """`none` or `pass_rate`: tasks drawn with weights f(p) of their estimated pass rate (curriculum_weight)."""
    pass_rates: list[str] = field(default_factory=list)
    """Pre-pass results seeding the pass-rate estimates (curriculum, knapsack, history resampling): `rlvr eval`
    suite folders (OUT/<suite>) of training environments; each task's samples count as one group seen before
    step 1 (empty: estimates from training's rollouts only)."""
    curriculum_weight: str = "variance"
    """f(p) of the curriculum: `variance` (p (1 - p): favours the middle band, where groups carry a gradient) or
    `kimi` (1 - p, Kimi k1.5's prioritised sampling)."""
    level_curriculum: str = ""
    """An environment of the suite with a `level` (e.g. rlvr/arithmetic-v0): its level starts at 1 and moves up
    (to 5) when the accuracy of its last `level_window` samples reaches `level_threshold` (empty: off)."""
    level_window: int = 64
    """Samples in the rolling accuracy of the level curriculum."""
    level_threshold: float = 0.8
    """Rolling accuracy at which the level curriculum moves up a level."""


@dataclass
class RolloutConfig:
    engine: str = "hf"
    """Generation engine: `hf` (transformers, CPU/GPU) or `vllm` (GPU, weights synced after each update)."""
    prompts_per_step: int = 8
    """Tasks per training step (each sampled `group_size` times)."""
    group_size: int = 8
    """Completions per task: the GRPO group G."""
    max_tokens: int = 128
    """Tokens generated per model turn (L_max of overlong shaping)."""
    temperature: float = 1.0
    """Sampling temperature; the training log-probs use the same temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    top_k: int = -1
    """Top-k cut (-1: none)."""
    max_batch_size: int = 64
    """Rows decoded together by the hf engine."""
    vllm_gpu_memory_utilization: float = 0.3
    """GPU memory fraction vLLM may take when colocated with training."""
    allocation: str = "uniform"
    """`uniform` (group_size samples per task) or `knapsack` (Knapsack-RL: the budget prompts_per_step x
    group_size split over the tasks by their estimated pass rates, group sizes in [min_group, max_group])."""
    min_group: int = 2
    """Knapsack: the smallest group (0: a task may get no sample and is dropped for the step)."""
    max_group: int = 0
    """Knapsack: the largest group (0: 4 x group_size)."""
    overprovision: float = 1.0
    """Knapsack: tasks drawn per step = prompts_per_step x this (1: the same tasks as uniform, the budget moved
    between them; more, with min_group 0: the knapsack also picks the tasks)."""
    tree: dict[str, int] = field(default_factory=dict)
    """TreePO tree rollouts, {segment_tokens: S, branching: b, depth: d} (empty: off): each group is a tree whose
    paths branch into b continuations after each of the first d segments of S tokens, so samples share their
    prefixes (decoded once); needs algorithm.advantage=treepo, the hf engine and single-turn environments."""
    async_: bool = False
    """`rollout.async` in a config: one-step-off-policy training, the next step's rollouts generated on a worker
    thread with its own copy of the policy while this step's update runs (hf engine, sharding none)."""
    async_staleness: int = 1
    """With async: 1, step t+1 samples from the weights before update t (one step off-policy, the ratio uses the
    behaviour log-probs); 0, the synchronous schedule through the worker (equal to async false)."""


@dataclass
class AlgorithmConfig:
    preset: str = "grpo"
    """grpo, dapo, dr_grpo, gspo, rloo, reinforce_pp, remax, gpg, reinforce, ppo, vapo, raft or raft_pp: the
    defaults of the fields below (docs/TRAINING.md, "Algorithm families")."""
    advantage: str | None = None
    """Advantage estimator: grpo, dr_grpo, rloo, remax, gpg, reinforce (A = r), reinforce_pp, gae (PPO/VAPO:
    a learned critic, see the `critic` section), raft (A = 1 on the kept correct samples) or treepo (subtree
    baselines of rollout.tree)."""
    policy_loss: str | None = None
    """`clip` (the clipped surrogate of PPO/GRPO), `pg` (-A log pi: no ratio, no clip; REINFORCE, RAFT's NLL),
    `gpg` (the same loss, GPG's name for it)."""
    clip_low: float | None = None
    """Lower clip epsilon: ratios below 1 - clip_low are clipped (for negative advantages)."""
    clip_high: float | None = None
    """Upper clip epsilon (clip-higher when > clip_low): ratios above 1 + clip_high are clipped."""
    clip_ratio_c: float | None = None
    """Dual clip bound c > 1 for negative advantages (None: off)."""
    ratio_level: str | None = None
    """`token` (PPO/GRPO) or `sequence` (GSPO: length-normalised sequence ratio)."""
    loss_agg: str | None = None
    """token_mean, seq_mean_token_mean or seq_mean_token_sum_norm."""
    kl_coef: float | None = None
    """KL weight against the starting model (0: no reference model is loaded)."""
    kl_estimator: str | None = None
    """k1, k2 or k3."""
    kl_in_reward: bool | None = None
    """Subtract the KL from the reward (per token) instead of adding it to the loss."""
    filter_groups: bool | None = None
    """DAPO dynamic sampling: drop groups whose accuracy is all 0 or all 1 and draw more."""
    max_gen_batches: int | None = None
    """Dynamic sampling: generation batches drawn at most per step."""
    mask_truncated: bool | None = None
    """Overlong filtering: completions cut at max_tokens contribute no loss."""
    overlong_buffer: int | None = None
    """DAPO soft overlong punishment buffer L_cache in tokens (0: off)."""
    overlong_penalty: float | None = None
    """Scale of the overlong punishment."""
    num_iterations: int | None = None
    """Optimiser passes over each batch (with minibatches = 1, one pass is one step: no pi_old forward)."""
    minibatches: int | None = None
    """Optimiser steps per pass (the batch is split into this many minibatches)."""
    gamma: float | None = None
    """GAE discount over policy tokens (advantage=gae; RLHF practice: 1.0)."""
    lam: float | None = None
    """GAE lambda of the policy's advantages (advantage=gae; PPO: 0.95)."""
    lam_critic: float | None = None
    """GAE lambda of the critic's return targets (-1: the same as `lam`; VAPO's decoupled GAE: 1.0, Monte-Carlo
    returns)."""
    lam_alpha: float | None = None
    """VAPO's length-adaptive lambda: lam_policy = 1 - 1 / (lam_alpha * len(o)) per sequence (0: a fixed `lam`;
    VAPO: 0.05)."""
    positive_nll_coef: float | None = None
    """VAPO's positive-example LM loss: mu * NLL (token mean) of the solved samples added to the loss (0: off;
    VAPO: 0.1)."""
    raft_keep: int | None = None
    """advantage=raft: the solved samples kept per group, best reward first (0: all of them)."""
    entropy_coef: float | None = None
    """Entropy bonus: the loss gets -entropy_coef * H, H the token-mean entropy of the sampling distribution
    over the policy tokens (> 0 raises the entropy; 0: off, no entropy gradient is computed)."""
    cov_mode: str = "none"
    """Entropy control by token covariance (Cui et al. 2025): `none`, `clip_cov` (detach the gradient of a random
    `clip_cov_ratio` of the tokens whose Cov(log pi, A) lies in [clip_cov_lb, clip_cov_ub]) or `kl_cov` (add
    kl_cov_coef * abs(log pi - log pi_old) on the top `kl_cov_ratio` of tokens by Cov)."""
    clip_cov_ratio: float = 0.0002
    """Clip-Cov: the fraction of policy tokens whose gradient is detached."""
    clip_cov_lb: float = 1.0
    """Clip-Cov: lower bound of the covariance band eligible for detaching."""
    clip_cov_ub: float = 5.0
    """Clip-Cov: upper bound of the covariance band eligible for detaching."""
    kl_cov_ratio: float = 0.0002
    """KL-Cov: the fraction of policy tokens (highest covariance) that get the KL penalty."""
    kl_cov_coef: float = 1.0
    """KL-Cov: weight of abs(log pi - log pi_old) on the selected tokens."""
    engine_correction: str = "auto"
    """Engine/trainer mismatch correction: `none`, `tis` (each token's policy loss times min(pi_old / pi_engine, C))
    or `mis` (tokens with the ratio outside [1/C, C] get no loss); `auto`: tis with rollout.engine=vllm, none with
    hf (it samples with the trainer's weights)."""
    engine_correction_cap: float = 2.0
    """C of `engine_correction` (> 1)."""
    engine_correction_level: str = "token"
    """`token` (a ratio per token) or `sequence` (the product over the sequence's policy tokens, for all of them)."""


@dataclass
class CriticConfig:
    """The value model of advantage=gae (PPO, VAPO); unused, and not loaded, by the other families."""

    model: str = ""
    """The critic's base model (empty: `model.name`, loaded again: separate weights) with a scalar value head."""
    lr: float = 1e-5
    """AdamW learning rate of the critic."""
    warmup_steps: int | None = None
    """Steps at the start in which only the critic trains (value pretraining; the policy does not move). Default
    from the preset: ppo 0, vapo 2 (the VAPO paper: 50, for runs of thousands of steps)."""
    value_clip: float = 0.5
    """PPO value clipping eps_v: the new value is clipped to old value +- eps_v in the loss (0: off)."""
    micro_batch_size: int = 0
    """Sequences per critic forward/backward (0: optim.micro_batch_size)."""
    max_grad_norm: float = 1.0
    """Gradient clipping of the critic by global norm (0: off)."""
    weight_decay: float = 0.0
    """AdamW weight decay of the critic."""


@dataclass
class OptimConfig:
    lr: float = 1e-6
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW betas."""
    schedule: str = "constant"
    """Learning-rate schedule after warmup: constant, linear (to 0) or cosine (to 0)."""
    warmup_steps: int = 0
    """Optimiser steps of linear warmup from 0."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0: off)."""
    micro_batch_size: int = 8
    """Sequences per forward/backward; gradients accumulate over a minibatch."""
    logprob_chunk: int = 0
    """Policy tokens per LM-head chunk for the log-probs and entropy (0: the whole micro-batch at once). The head
    runs per chunk and again in the backward pass: the float32 logits take chunk x vocab memory instead of rows x
    completion length x vocab, for one more head matmul (e.g. 1024)."""
    token_budget: int = 0
    """Padded tokens per micro-batch, rows x longest row (0: `micro_batch_size` rows each). Rows are grouped by
    length, longest first; a longer row goes alone. The gradient is the same."""


@dataclass
class RunConfig:
    steps: int = 20
    """Training steps (one step = one batch of prompts x group)."""
    sample_budget: int = 0
    """Stop after the step at which the completions sampled so far (all ranks; DAPO's discarded groups included)
    reach this many, even before `steps` (0: off): runs that sample different numbers per step compare at the
    same generation budget. DAPO's dynamic sampling draws no more batches than the budget has left; a
    learning-rate schedule still spans `steps`."""
    seed: int = 0
    """Seeds the task draws, sampling and initialisation."""
    output_dir: str = "runs/rlvr"
    """Where metrics, samples, checkpoints and plots go."""
    save_every: int = 10
    """Checkpoint every N steps (0: only at the end)."""
    keep_checkpoints: int = 2
    """Step checkpoints kept on disk: the newest N (the run deletes its older ones); the one `--resume` continues
    from and `final/` are never deleted."""
    sample_every: int = 5
    """Write one group of sample completions to samples.jsonl at the first and last step and every N steps (0:
    never)."""
    eval_every: int = 0
    """Held-out greedy evaluation every N steps (0: only before and after training)."""
    eval_before: bool = True
    """Evaluate before the first step (false: skip it, e.g. for many runs from the same model)."""
    save_model: bool = True
    """Publish the last checkpoint's model folder as output_dir/final (hard links: no second copy on disk)."""
    tensorboard: bool = False
    """Also log to TensorBoard (output_dir/tensorboard; needs `tensorboard`)."""
    wandb: bool = False
    """Also log to Weights & Biases (needs `wandb` and a login or WANDB_MODE=offline)."""
    wandb_project: str = "rlvr"
    """wandb project name."""
    progress: bool = True
    """Show a progress bar."""
    plot: bool = True
    """Write curves.png (reward and accuracy per step) at the end."""


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    """The policy model."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """Training and held-out environments."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Sampling."""
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    """Advantage, clipping, aggregation, KL, dynamic sampling."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser and schedule."""
    critic: CriticConfig = field(default_factory=CriticConfig)
    """The value model of PPO/VAPO (advantage=gae)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Steps, seeds, outputs, logging."""

    def to_dict(self) -> dict[str, Any]:
        """The config as its file spells it (`rollout.async`, not the attribute `async_`)."""
        data = dataclasses.asdict(self)
        for section, values in data.items():
            data[section] = {public_name(section, k): v for k, v in values.items()}
        return data


def default_config_path() -> Path:
    """The quickstart config, shipped inside the package (`rlvr train` with no file runs it)."""
    from importlib import resources

    return Path(str(resources.files("rlvr").joinpath("data/quickstart.yaml")))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """The config of a YAML file (or the defaults) with `section.key=value` overrides, validated and resolved."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no such config file: {path} (see configs/ for examples)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of sections, got {type(data).__name__}")
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. run.steps=10)")
        section, _, name = key.partition(".")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"section {section!r} must be a mapping")
        data[section][name] = value
    return from_dict(data)


def from_dict(data: dict[str, Any]) -> TrainConfig:
    from rlvr.trainer.algorithms import resolve_algorithm, resolve_critic

    _check_keys("config", data, list(SECTIONS))
    parts = {}
    for name, cls in SECTIONS.items():
        values = data.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"section {name!r} must be a mapping, got {values!r}")
        values = {ALIASES.get(f"{name}.{k}", k): v for k, v in values.items()}  # rollout.async -> async_
        _check_keys(name, values, [g.name for g in fields(cls)])
        parts[name] = cls(**{k: _coerce(cls, k, v) for k, v in values.items()})
    config = TrainConfig(**parts)
    config.algorithm = resolve_algorithm(config.algorithm, engine=config.rollout.engine)
    config.critic = resolve_critic(config.critic, config.algorithm.preset)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Raise ConfigError naming the first invalid value."""
    o, run, m = config.optim, config.run, config.model
    checks = [
        (
            m.dtype in _DTYPES,
            "model.dtype",
            m.dtype,
            "float32, bfloat16 or float16",
        ),
        (m.lora_rank >= 0, "model.lora_rank", m.lora_rank, ">= 0 (0: full fine-tuning)"),
        (m.lora_alpha > 0, "model.lora_alpha", m.lora_alpha, "> 0 (e.g. 2 x lora_rank)"),
        (
            isinstance(m.lora_targets, list)
            and bool(m.lora_targets)
            and all(isinstance(t, str) and t for t in m.lora_targets),
            "model.lora_targets",
            m.lora_targets,
            "a non-empty list of module names, e.g. [q_proj,v_proj]",
        ),
        (m.sharding in ("none", "fsdp"), "model.sharding", m.sharding, "none or fsdp"),
        (
            m.master_dtype in ("", m.dtype) or (m.sharding == "fsdp" and m.master_dtype in _DTYPES),
            "model.master_dtype",
            m.master_dtype,
            f"empty or model.dtype ({m.dtype}); another of {', '.join(_DTYPES)} with model.sharding=fsdp",
        ),
        (
            not m.cpu_offload or m.sharding == "fsdp",
            "model.cpu_offload",
            m.cpu_offload,
            "false unless model.sharding=fsdp (FSDP2 offloads the shards)",
        ),
        (
            m.lora_rank == 0 or m.master_dtype in ("", m.dtype, "float32"),
            "model.master_dtype",
            m.master_dtype,
            "empty or float32 with model.lora_rank > 0 (the frozen base stays in model.dtype, the adapters in float32)",
        ),
        *_rollout_and_env_checks(config),
        (o.lr > 0, "optim.lr", o.lr, "> 0"),
        (
            o.schedule in ("constant", "linear", "cosine"),
            "optim.schedule",
            o.schedule,
            "constant/linear/cosine",
        ),
        (o.warmup_steps >= 0, "optim.warmup_steps", o.warmup_steps, ">= 0"),
        (o.max_grad_norm >= 0, "optim.max_grad_norm", o.max_grad_norm, ">= 0"),
        (o.micro_batch_size >= 1, "optim.micro_batch_size", o.micro_batch_size, ">= 1"),
        (o.logprob_chunk >= 0, "optim.logprob_chunk", o.logprob_chunk, ">= 0 (0: whole micro-batch)"),
        (o.token_budget >= 0, "optim.token_budget", o.token_budget, ">= 0 (0: micro_batch_size rows)"),
        (run.steps >= 1, "run.steps", run.steps, ">= 1"),
        (run.save_every >= 0, "run.save_every", run.save_every, ">= 0"),
        (run.sample_budget >= 0, "run.sample_budget", run.sample_budget, ">= 0 (0: off)"),
        (
            run.keep_checkpoints >= 1,
            "run.keep_checkpoints",
            run.keep_checkpoints,
            ">= 1 (the checkpoint --resume continues from is always kept)",
        ),
        (config.env.eval_tasks >= 0, "env.eval_tasks", config.env.eval_tasks, ">= 0"),
    ]
    for ok, name, value, expected in checks:
        if not ok:
            raise ConfigError(f"{name} = {value!r} is invalid: expected {expected}")


def _rollout_and_env_checks(config: TrainConfig) -> list[tuple[bool, str, Any, str]]:
    """(ok, name, value, expected) of the rollout section and the data-scheduling fields of env."""
    r, m = config.rollout, config.model
    return [
        (r.engine in ("hf", "vllm"), "rollout.engine", r.engine, "hf or vllm"),
        (r.allocation in ("uniform", "knapsack"), "rollout.allocation", r.allocation, "uniform or knapsack"),
        (r.min_group >= 0, "rollout.min_group", r.min_group, ">= 0"),
        (
            r.max_group == 0 or r.max_group >= max(r.min_group, 1),
            "rollout.max_group",
            r.max_group,
            ">= min_group (0: 4 x group_size)",
        ),
        (r.overprovision >= 1, "rollout.overprovision", r.overprovision, ">= 1"),
        (r.async_staleness in (0, 1), "rollout.async_staleness", r.async_staleness, "0 or 1"),
        (
            _tree_ok(r),
            "rollout.tree",
            r.tree,
            "{segment_tokens, branching, depth} >= 1 each, group_size a multiple of branching^depth, engine hf",
        ),
        (
            bool(r.tree) == (config.algorithm.advantage == "treepo"),
            "rollout.tree",
            r.tree,
            "set together with algorithm.advantage=treepo (the tree's subtree baselines need the tree)",
        ),
        (
            not r.tree or r.allocation == "uniform",
            "rollout.allocation",
            r.allocation,
            "uniform with rollout.tree",
        ),
        (
            not r.async_ or (r.engine == "hf" and m.sharding == "none"),
            "rollout.async",
            r.async_,
            "false unless rollout.engine=hf and model.sharding=none (the worker holds a whole copy of the policy)",
        ),
        (config.env.retire_epochs >= 0, "env.retire_epochs", config.env.retire_epochs, ">= 0 (0: for good)"),
        (
            config.env.curriculum in ("none", "pass_rate"),
            "env.curriculum",
            config.env.curriculum,
            "none or pass_rate",
        ),
        (
            config.env.curriculum_weight in ("variance", "kimi"),
            "env.curriculum_weight",
            config.env.curriculum_weight,
            "variance or kimi",
        ),
        (config.env.level_window >= 1, "env.level_window", config.env.level_window, ">= 1"),
        (
            0 < config.env.level_threshold <= 1,
            "env.level_threshold",
            config.env.level_threshold,
            "in (0, 1]",
        ),
        (
            _stages_ok(config.env.stages),
            "env.stages",
            config.env.stages,
            "a list of {suite: ID, steps: N >= 0}",
        ),
        (
            isinstance(config.env.pass_rates, list)
            and all(isinstance(x, str) for x in config.env.pass_rates),
            "env.pass_rates",
            config.env.pass_rates,
            "a list of `rlvr eval` suite folders, e.g. [prepass/rlvr__countdown-v0]",
        ),
        (r.prompts_per_step >= 1, "rollout.prompts_per_step", r.prompts_per_step, ">= 1"),
        (r.group_size >= 1, "rollout.group_size", r.group_size, ">= 1"),
        (r.max_tokens >= 1, "rollout.max_tokens", r.max_tokens, ">= 1"),
        (r.temperature > 0, "rollout.temperature", r.temperature, "> 0 for training (sampling)"),
        (0 < r.top_p <= 1, "rollout.top_p", r.top_p, "in (0, 1]"),
    ]


_DTYPES = ("float32", "bfloat16", "float16")

ALIASES = {"rollout.async": "async_"}
"""Config keys that are Python keywords, and the attribute that holds each."""


def public_name(section: str, attribute: str) -> str:
    """The key a config file uses for `section.attribute` (`async` for `async_`)."""
    for key, held_by in ALIASES.items():
        key_section, name = key.split(".", 1)
        if key_section == section and held_by == attribute:
            return name
    return attribute


def _tree_ok(r: Any) -> bool:
    """`rollout.tree` is empty, or {segment_tokens, branching, depth} of ints >= 1 with the hf engine."""
    keys = {"segment_tokens", "branching", "depth"}
    if not r.tree:
        return True
    return (
        isinstance(r.tree, dict)
        and set(r.tree) == keys
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in r.tree.values())
        and r.engine == "hf"
        and r.group_size % r.tree["branching"] ** r.tree["depth"] == 0  # roots = group_size / b^d
    )


def _stages_ok(stages: Any) -> bool:
    """`env.stages` is a list of {suite: str, steps: int >= 0} mappings."""
    return isinstance(stages, list) and all(
        isinstance(s, dict)
        and set(s) == {"suite", "steps"}
        and isinstance(s["suite"], str)
        and isinstance(s["steps"], int)
        and not isinstance(s["steps"], bool)
        and s["steps"] >= 0
        for s in stages
    )


def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal under it), for `rlvr train --help-config` and the docs."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            docs[node.target.id] = str(after.value.value)  # type: ignore[union-attr]
    return docs


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "env": EnvConfig,
    "rollout": RolloutConfig,
    "algorithm": AlgorithmConfig,
    "optim": OptimConfig,
    "critic": CriticConfig,
    "run": RunConfig,
}


def _check_keys(section: str, values: dict[str, Any], known: list[str]) -> None:
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
            raise ConfigError(f"unknown key {key!r} in {section}{hint}")


def _coerce(cls: type, name: str, value: Any) -> Any:
    """YAML gives ints for floats, lists for tuples: convert those; reject other type mismatches clearly."""
    default = next(f for f in fields(cls) if f.name == name)
    kind = default.type if isinstance(default.type, str) else str(default.type)
    if value is None:
        if "None" in kind:
            return None
        raise ConfigError(f"{cls.__name__.removesuffix('Config').lower()}.{name} cannot be null")
    if kind.startswith("float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind.startswith("float") and isinstance(value, str):  # YAML reads 1e-6 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if kind.startswith("tuple") and isinstance(value, list):
        return tuple(float(v) for v in value)
    expected = {"int": int, "float": (int, float), "bool": bool, "str": str, "dict": dict}
    base = kind.split("[")[0].split(" ")[0]
    if (base in expected and not isinstance(value, expected[base])) or (
        base == "int" and isinstance(value, bool)
    ):
        raise ConfigError(
            f"{cls.__name__.removesuffix('Config').lower()}.{name} = {value!r} must be of type {kind}"
        )
    return value
