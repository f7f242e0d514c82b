"""The `hf` engine: batched sampling with a transformers causal LM and its KV cache, in a lean decode loop.

Why not `model.generate`: per step it runs a chain of logits processors and stopping criteria over the whole
batch, keeps finished rows in the batch until the last one ends, and re-checks stop strings on full texts. This
loop does only what sampling needs: one forward per step on the *unfinished* rows (finished rows are dropped
from the batch and from the KV cache), then temperature, top-k and top-p on the last logits, one draw, the
sampled token's log-probability, and an incremental stop-string check on the tail of each row. Samples of the
same prompt (a GRPO group, `n > 1`) share its prefill: each distinct prompt runs through the model once and its
KV cache rows are copied to its samples, so the prefill costs 1/G of a naive batch.

Left padding: prompts are right-aligned, the attention mask hides the pads and position ids count real tokens
only, so each row sees exactly its own prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib.metadata import version
from typing import Any

import torch

from rlvr.envs.types import Completion, Message, Sampling
from rlvr.trainer.engines.base import ChatPrompts, check_n


class HFEngine:
    """Sampling with a transformers model on CPU or GPU.

    `model` is a loaded causal LM (the trainer's own, so training updates are seen at once) or a name/path
    (`rlvr.trainer.engines.models.load_model`). `max_batch_size` bounds the rows decoded together.
    """

    name = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        dtype: str = "float32",
        device: str | None = None,
        max_batch_size: int = 64,
    ) -> None:
        from rlvr.trainer.engines.models import load_model, load_tokenizer

        self.model_name = str(getattr(getattr(model, "config", None), "_name_or_path", model))
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
            model = load_model(model, dtype=dtype, device=device or _default_device())
        if tokenizer is None:
            raise ValueError("HFEngine needs the tokenizer when given a loaded model")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = _eos_ids(model, tokenizer)
        self._prompts = ChatPrompts(self.tokenizer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "version": f"transformers {version('transformers')}, torch {torch.__version__}",
            "model": self.model_name,
            "device": str(self.device),
            "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
        }

    def close(self) -> None:
        self._prompts.clear()

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Copy weights in place (a no-op when the trainer shares this engine's model object)."""
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in named_tensors:
                if name in params and params[name].data_ptr() != tensor.data_ptr():
                    params[name].copy_(tensor)

    def prompt_ids(self, conversation: list[Message], tools: list[dict[str, Any]] | None = None) -> list[int]:
        return self._prompts.prompt_ids(conversation, tools)

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
        prompts = [
            ids for ids in self._prompts.batch(conversations, tools, prompt_token_ids) for _ in range(n)
        ]
        generator = None
        if sampling.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(sampling.seed)
        completions: list[Completion] = []
        for start in range(0, len(prompts), self.max_batch_size):
            completions.extend(
                self.generate_ids(prompts[start : start + self.max_batch_size], sampling, generator)
            )
        return completions

    @torch.inference_mode()
    def generate_ids(
        self, prompts: list[list[int]], sampling: Sampling, generator: torch.Generator | None = None
    ) -> list[Completion]:
        """Sample one completion per prompt (token ids). Logprobs are of the temperature-scaled distribution."""
        was_training = self.model.training
        self.model.eval()
        try:
            return self._decode(prompts, sampling, generator)
        finally:
            if was_training:
                self.model.train()

    def _decode(
        self, prompts: list[list[int]], sampling: Sampling, generator: torch.Generator | None
    ) -> list[Completion]:
        device = self.device
        batch = len(prompts)
        logits, attention, positions, cache, padded = self._prefill(prompts)
        eos = torch.tensor(sorted(self.eos_ids), device=device)
        tokens: list[list[int]] = [[] for _ in range(batch)]
        logprobs: list[list[float]] = [[] for _ in range(batch)]
        finish = ["length"] * batch
        cut_text: list[str | None] = [None] * batch
        rows = torch.arange(batch, device=device)  # original row of each live batch row
        for step in range(sampling.max_tokens):
            token, token_logprob = _sample(logits.float(), sampling, generator)  # (B,), (B,)
            done = torch.isin(token, eos)
            token_list, logprob_list, done_list = token.tolist(), token_logprob.tolist(), done.tolist()
            for live, row in enumerate(rows.tolist()):
                tokens[row].append(token_list[live])
                logprobs[row].append(logprob_list[live])
                if done_list[live]:
                    finish[row] = "stop"
                elif sampling.stop:
                    cut = self._stop_cut(tokens[row], sampling.stop)
                    if cut is not None:
                        cut_text[row], finish[row] = cut, "stop"
                        done_list[live] = True
            keep = [i for i, d in enumerate(done_list) if not d]
            if not keep or step == sampling.max_tokens - 1:  # no forward whose logits nobody samples
                break
            attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
            positions = positions[:, -1:] + 1
            token = token[:, None]
            if len(keep) < len(done_list):  # drop finished rows: copying the cache costs far less than a step
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                rows, attention, positions, token = (
                    rows[index],
                    attention[index],
                    positions[index],
                    token[index],
                )
            logits = self.model(
                input_ids=token,
                attention_mask=attention if padded else None,
                position_ids=positions,
                past_key_values=cache,
            ).logits[:, -1, :]
        return [self._completion(tokens[i], logprobs[i], finish[i], cut_text[i]) for i in range(batch)]

    def _prefill(
        self, prompts: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any, bool]:
        """One forward over the distinct prompts (left-padded), its KV cache rows then copied to every row.

        Returns the next-token logits (B, V), attention mask (B, W), position ids (B, W), the cache, and whether
        any row is padded (without padding the mask is all ones and is not passed: attention can skip it).
        """
        from transformers import DynamicCache

        device = self.device
        # A GRPO group repeats one prompt G times: prefill each distinct prompt once, then copy its KV cache rows.
        distinct: dict[tuple[int, ...], int] = {}
        source = [distinct.setdefault(tuple(ids), len(distinct)) for ids in prompts]  # row -> distinct prompt
        unique = [list(ids) for ids in distinct]
        width = max(len(p) for p in unique)
        input_ids = torch.full((len(unique), width), self.pad_id, dtype=torch.long, device=device)
        attention = torch.zeros((len(unique), width), dtype=torch.long, device=device)
        for row, ids in enumerate(unique):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long, device=device)
            attention[row, width - len(ids) :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        padded = bool((attention == 0).any())
        logits = self.model(
            input_ids=input_ids,
            attention_mask=attention if padded else None,
            position_ids=positions,
            past_key_values=cache,
            logits_to_keep=1,
        ).logits[:, -1, :]
        if len(unique) < len(prompts):
            expand = torch.tensor(source, device=device)
            cache.batch_select_indices(expand)
            logits, attention, positions = logits[expand], attention[expand], positions[expand]
        return logits, attention, positions, cache, padded

    def _stop_cut(self, ids: list[int], stops: Sequence[str]) -> str | None:
        """The text before the first stop string, when the newest token completed one."""
        window = max(8, max(len(stop) for stop in stops) + 2)  # a token holds at least one character
        tail = self.tokenizer.decode(ids[-window:], skip_special_tokens=True)
        if not any(stop in tail for stop in stops):
            return None
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        positions = [text.find(stop) for stop in stops if stop in text]
        return text[: min(positions)] if positions else None

    def _completion(self, ids: list[int], logprobs: list[float], finish: str, cut: str | None) -> Completion:
        text = cut if cut is not None else self.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(text=text, token_ids=tuple(ids), logprobs=tuple(logprobs), finish_reason=finish)


def _sample(
    logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row; return it and its log-probability under softmax(logits / T)."""
    if sampling.temperature == 0:
        logp = torch.log_softmax(logits, dim=-1)  # (B, V)
        token = logits.argmax(dim=-1)
        return token, logp.gather(-1, token[:, None])[:, 0]
    logp = torch.log_softmax(logits / sampling.temperature, dim=-1)  # (B, V)
    filtered = logp
    if sampling.top_k > 0 and sampling.top_k < logp.shape[-1]:
        kth = torch.topk(filtered, sampling.top_k, dim=-1).values[:, -1:]
        filtered = filtered.masked_fill(filtered < kth, float("-inf"))
        filtered = torch.log_softmax(filtered, dim=-1)  # renormalise, so top-p measures mass among the top k
    if sampling.top_p < 1.0:
        sorted_logp, order = torch.sort(filtered, dim=-1, descending=True)
        cumulative = sorted_logp.exp().cumsum(dim=-1)
        drop = cumulative - sorted_logp.exp() > sampling.top_p  # keep the smallest prefix reaching top_p
        sorted_logp = sorted_logp.masked_fill(drop, float("-inf"))
        filtered = torch.full_like(filtered, float("-inf")).scatter(-1, order, sorted_logp)
    probs = torch.softmax(filtered, dim=-1)
    token = torch.multinomial(probs, 1, generator=generator)[:, 0]
    return token, logp.gather(-1, token[:, None])[:, 0]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return ids


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
