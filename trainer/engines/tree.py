"""Tree rollouts for the `hf` engine (TreePO, Li et al. 2025, arXiv 2508.17445): sampling in segments, where every
live path branches into `branching` continuations after each of the first `depth` segments.

    prompt --prefill once--> roots rows --S tokens--> x branching --S tokens--> x branching ... (depth times) --> end

All live rows advance in lockstep, so every path reaches a segment boundary at the same step. A branch copies the
row's KV cache (`cache.batch_select_indices` with the row repeated): a shared prefix is prefilled or decoded once,
never per leaf. A path that stops (EOS, a stop string, `max_tokens`) is a leaf and branches no more, so a prompt has
at most roots x branching^depth leaves. Each segment of a path is one tree node: node j of a leaf holds its
completion tokens [j S, (j + 1) S), and leaves share the node ids (and tokens) of their common prefix.

With branching 1 the loop is `HFEngine._decode` of `roots` samples per prompt: the same rows, forwards and draws.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

from rlvr.envs.types import Completion, Sampling
from rlvr.errors import ConfigError
from rlvr.trainer.engines.hf import HFEngine, _sample

_IDS = itertools.count()
"""Tree and node ids, unique in the process: leaves of several calls (dynamic sampling's draws) never collide."""


@dataclass(frozen=True)
class TreeShape:
    """The tree of one prompt: `roots` independent first segments, then `branching` children per live path after
    each of the first `depth` segments of `segment_tokens` tokens."""

    segment_tokens: int
    branching: int
    depth: int
    roots: int = 1

    def __post_init__(self) -> None:
        for name in ("segment_tokens", "branching", "roots"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"rollout.tree {name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.depth, int) or self.depth < 0:
            raise ConfigError(f"rollout.tree depth must be an integer >= 0, got {self.depth!r}")

    @property
    def leaves(self) -> int:
        """Leaves per prompt when no path stops before the last branch point: roots x branching^depth."""
        return self.roots * self.branching**self.depth

    @classmethod
    def for_group(cls, group_size: int, segment_tokens: int, branching: int, depth: int) -> TreeShape:
        """The shape whose full tree has `group_size` leaves: roots = group_size / branching^depth."""
        per_root = branching**depth
        if group_size % per_root:
            raise ConfigError(
                f"rollout.group_size {group_size} is not a multiple of branching^depth = {branching}^{depth} = "
                f"{per_root}; choose group_size = roots x {per_root}"
            )
        return cls(segment_tokens, branching, depth, roots=group_size // per_root)


@dataclass(frozen=True)
class TreeSample:
    """One leaf: its prompt (index into the call's prompts), its tree (an id per prompt and call), its whole
    completion, and its path of node ids (one per segment)."""

    prompt: int
    tree: int
    completion: Completion
    path: tuple[int, ...]
    segment_tokens: int

    def spans(self) -> list[tuple[int, int, int]]:
        """(node id, start, end) of each segment in the completion's tokens."""
        total = len(self.completion.token_ids or ())
        s = self.segment_tokens
        return [(node, j * s, min((j + 1) * s, total)) for j, node in enumerate(self.path)]


@dataclass
class _Path:
    prompt: int
    tree: int
    nodes: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: str = "length"
    cut: str | None = None
    done: bool = False

    def copy(self) -> _Path:
        return _Path(self.prompt, self.tree, list(self.nodes), list(self.tokens), list(self.logprobs))


def generate_tree(
    engine: HFEngine,
    prompt_token_ids: list[list[int]],
    sampling: Sampling,
    *,
    roots: int,
    segment_tokens: int,
    branching: int,
    depth: int,
) -> list[TreeSample]:
    """Sample a tree per prompt (token ids) and return its leaves, prompt by prompt, depth-first.

    Prompts go in chunks so that a chunk's full trees fit `engine.max_batch_size` rows (at least one prompt).
    `sampling.seed` seeds one generator for the whole call, as `HFEngine.generate` does.
    """
    shape = TreeShape(segment_tokens, branching, depth, roots)
    s = segment_tokens
    generator = None
    if sampling.seed is not None:
        generator = torch.Generator(device=engine.device).manual_seed(sampling.seed)
    per_chunk = max(1, engine.max_batch_size // shape.leaves)
    leaves: list[TreeSample] = []
    was_training = engine.model.training
    engine.model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(prompt_token_ids), per_chunk):
                chunk = [list(p) for p in prompt_token_ids[start : start + per_chunk]]
                for path in _decode_tree(engine, chunk, sampling, generator, shape):
                    completion = engine._completion(path.tokens, path.logprobs, path.finish, path.cut)
                    sample = TreeSample(start + path.prompt, path.tree, completion, tuple(path.nodes), s)
                    leaves.append(sample)
    finally:
        if was_training:
            engine.model.train()
    return leaves


def _decode_tree(
    engine: HFEngine,
    prompts: list[list[int]],
    sampling: Sampling,
    generator: torch.Generator | None,
    shape: TreeShape,
) -> list[_Path]:
    """The decode loop of `HFEngine._decode`, with a new node per segment and the rows copied at branch points."""
    device = engine.device
    s = shape.segment_tokens
    logits, attention, positions, cache, padded = engine._prefill(
        [p for p in prompts for _ in range(shape.roots)]
    )
    trees = [next(_IDS) for _ in prompts]
    paths = [_Path(p, trees[p]) for p in range(len(prompts)) for _ in range(shape.roots)]  # one per live row
    eos = torch.tensor(sorted(engine.eos_ids), device=device)
    finished: list[_Path] = []
    for step in range(sampling.max_tokens):
        if step % s == 0:  # a new segment: one new node per live path
            for path in paths:
                path.nodes.append(next(_IDS))
        token, token_logprob = _sample(logits.float(), sampling, generator)  # (B,), (B,)
        done = _record(engine, paths, token, token_logprob, eos, sampling)
        finished.extend(path for path, d in zip(paths, done, strict=True) if d)
        copies = shape.branching if (step + 1) % s == 0 and (step + 1) // s <= shape.depth else 1
        keep = [row for row, d in enumerate(done) if not d for _ in range(copies)]  # branch = repeat the row
        if not keep or step == sampling.max_tokens - 1:  # no forward whose logits nobody samples
            break
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        positions = positions[:, -1:] + 1
        token = token[:, None]
        if keep != list(range(len(done))):  # drop finished rows, copy branching ones (cache included)
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            attention, positions, token = attention[index], positions[index], token[index]
            paths = [
                paths[row] if i == 0 or keep[i - 1] != row else paths[row].copy()
                for i, row in enumerate(keep)
            ]
        logits = engine.model(
            input_ids=token,
            attention_mask=attention if padded else None,
            position_ids=positions,
            past_key_values=cache,
        ).logits[:, -1, :]
    finished.extend(path for path in paths if not path.done)  # still live at max_tokens: "length"
    return sorted(finished, key=lambda path: (path.prompt, path.nodes))  # ids grow in row order: depth-first


def _record(
    engine: HFEngine,
    paths: list[_Path],
    token: torch.Tensor,
    token_logprob: torch.Tensor,
    eos: torch.Tensor,
    sampling: Sampling,
) -> list[bool]:
    """Append each live row's draw to its path; which rows ended (EOS or a stop string), as `_decode` decides."""
    done = torch.isin(token, eos).tolist()
    for live, (path, value, logprob) in enumerate(
        zip(paths, token.tolist(), token_logprob.tolist(), strict=True)
    ):
        path.tokens.append(value)
        path.logprobs.append(logprob)
        if done[live]:
            path.finish = "stop"
        elif sampling.stop:
            cut = engine._stop_cut(path.tokens, sampling.stop)
            if cut is not None:
                path.cut, path.finish = cut, "stop"
                done[live] = True
        path.done = done[live]
    return done
