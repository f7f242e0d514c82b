"""Benchmark suites: which environment, which data, which prompt, which default sampling, which metrics.

A suite is a small frozen record; the registry maps names to suites. Any registered environment id is also a
suite (`get_suite("rlvr/arithmetic-v0")`) with generic defaults. A suite over a catalog dataset names the split
it evaluates (`env_kwargs["split"]`): the dataset's test split (`rlvr.envs.catalog`), never the environment's
default, which is the training split. Add your own in a few lines:

    from rlvr.benchmarks import BenchmarkSuite, register_suite

    register_suite(BenchmarkSuite("gsm8k-short", env_id="rlvr/math-gsm8k-v0", dataset="gsm8k", n=8, max_tokens=512))

and load the module with `rlvr eval --suites-from my_suites.py --suite gsm8k-short ...`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlvr.envs.catalog import get_spec
from rlvr.envs.math_env import DEFAULT_PROMPT_TEMPLATE
from rlvr.errors import ConfigError

METRICS = ("avg", "pass", "maj")
"""avg@n (with its standard error), pass@k for each k, maj@k for each k (needs `vote`)."""
VOTES = ("math", "exact")
"""How maj@k clusters final answers: by math-verifier equivalence, or by identical text."""

MATH_TEMPLATE = DEFAULT_PROMPT_TEMPLATE
"""The usual zero-shot chain-of-thought prompt of math evaluations (Qwen2.5-Math, DeepSeek-R1): "{problem}" then
"Please reason step by step, and put your final answer within \\boxed{}."."""

DEFAULT_ENV_LIMIT = 500
"""Tasks an environment-id suite evaluates by default when its environment has no dataset (procedural tasks)."""


@dataclass(frozen=True)
class BenchmarkSuite:
    """One benchmark: an environment, its data, its prompt, default sampling and the metrics it reports."""

    name: str
    env_id: str
    """The registered environment that renders prompts and scores answers (the training reward pipeline)."""
    dataset: str | None = None
    """The catalog dataset (`rlvr.envs.catalog`) the environment reads: hub id at a pinned revision, or `--data`."""
    description: str = ""
    prompt_template: str | None = None
    """The user message, `{problem}` replaced by the problem (math environments); None: the environment's own."""
    system_prompt: str | None = None
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for `rlvr.make(env_id, ...)`. With a `dataset`, `split` defaults to the dataset's
    test split (the environment's own default is its training split)."""
    n: int = 4
    """Samples per problem."""
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 4096
    k: tuple[int, ...] = (1,)
    """The k of pass@k and maj@k reported by default (each k <= n)."""
    metrics: tuple[str, ...] = ("avg", "pass", "maj")
    vote: str | None = "math"
    """How maj@k clusters answers ("math" or "exact"); None when answers cannot be voted on (code)."""
    breakdowns: tuple[str, ...] = ()
    """Task metadata fields to break the metrics down by (subject, level, difficulty, ...)."""
    limit: int | None = None
    """Evaluate the first `limit` tasks by default (None: all)."""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"a suite needs a name, got {self.name!r}")
        if not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"suite {self.name}: n must be an integer >= 1, got {self.n!r}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_tokens < 1:
            raise ConfigError(
                f"suite {self.name}: need temperature >= 0, 0 < top_p <= 1 and max_tokens >= 1, got "
                f"{self.temperature}, {self.top_p}, {self.max_tokens}"
            )
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ConfigError(f"suite {self.name}: unknown metrics {unknown}; choose from {METRICS}")
        if self.vote is not None and self.vote not in VOTES:
            raise ConfigError(f"suite {self.name}: vote must be one of {VOTES} or None, got {self.vote!r}")
        if "maj" in self.metrics and self.vote is None:
            raise ConfigError(f"suite {self.name}: maj@k needs a vote rule (vote='math' or 'exact')")
        if self.prompt_template is not None and "{problem}" not in self.prompt_template:
            raise ConfigError(f"suite {self.name}: prompt_template must contain {{problem}}")
        object.__setattr__(self, "k", tuple(sorted(set(self.k))))
        if not self.k or any(not isinstance(k, int) or k < 1 for k in self.k):
            raise ConfigError(f"suite {self.name}: k must be integers >= 1, got {self.k!r}")
        if self.dataset is not None and "split" not in self.env_kwargs:
            split = get_spec(self.dataset).test_split
            object.__setattr__(self, "env_kwargs", {**self.env_kwargs, "split": split})

    @property
    def split(self) -> str | None:
        """The dataset split evaluated (`env_kwargs["split"]`); None for environments without a dataset."""
        return self.env_kwargs.get("split")


_SUITES: dict[str, BenchmarkSuite] = {}


def register_suite(suite: BenchmarkSuite, *, replace: bool = False) -> BenchmarkSuite:
    """Add `suite` to the registry (ConfigError if the name is taken, unless `replace`)."""
    if not isinstance(suite, BenchmarkSuite):
        raise TypeError(f"register_suite takes a BenchmarkSuite, got {type(suite).__name__}")
    if suite.name in _SUITES and not replace:
        raise ConfigError(f"a suite named {suite.name!r} is already registered; pick another name")
    _SUITES[suite.name] = suite
    return suite


def suite_names() -> list[str]:
    """The registered suite names, sorted (environment ids are suites too, not listed here)."""
    return sorted(_SUITES)


def get_suite(name: str) -> BenchmarkSuite:
    """The suite `name`, or a suite for the registered environment id `name` (or `module:id`); ConfigError
    naming close names."""
    if name in _SUITES:
        return _SUITES[name]
    from rlvr.envs.registry import list_ids, resolve

    if ":" in name:  # a user environment as `module:id`
        return env_suite(resolve(name))
    if name in list_ids(namespace=None):
        return env_suite(name)
    close = difflib.get_close_matches(name, [*_SUITES, *list_ids()], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(
        f"unknown suite {name!r}{hint}; suites: {', '.join(suite_names())}, or any id of `rlvr envs list`"
    )


def env_suite(env_id: str) -> BenchmarkSuite:
    """A suite for any registered environment: n 4, T 0.6, top_p 0.95, 1024 tokens, pass@1/4, avg@4; maj@k by
    math equivalence for environments tagged "math"; a dataset's test split; the first `DEFAULT_ENV_LIMIT` tasks
    when it has no dataset."""
    import gymnasium as gym

    from rlvr.envs.registry import card

    dataset = gym.spec(env_id).kwargs.get("dataset")
    is_math = "math" in card(env_id).tags
    return BenchmarkSuite(
        name=env_id,
        env_id=env_id,
        dataset=dataset,
        description=card(env_id).description,
        max_tokens=1024,
        k=(1, 4),
        metrics=("avg", "pass", "maj") if is_math else ("avg", "pass"),
        vote="math" if is_math else None,
        limit=None if dataset else DEFAULT_ENV_LIMIT,
    )


def _math(name: str, description: str, split: str = "test", **options: Any) -> BenchmarkSuite:
    options.setdefault("prompt_template", MATH_TEMPLATE)
    return BenchmarkSuite(
        name=name,
        env_id=f"rlvr/math-{name}-v0",
        dataset=name,
        description=description,
        env_kwargs={"split": split},
        **options,
    )


def _code(name: str, description: str, split: str = "test", **options: Any) -> BenchmarkSuite:
    options = {"temperature": 0.2, "metrics": ("avg", "pass"), "vote": None, **options}
    return BenchmarkSuite(
        name=name,
        env_id=f"rlvr/code-{name}-v0",
        dataset=name,
        description=description,
        env_kwargs={"split": split},
        **options,
    )


# Reasoning-model defaults (DeepSeek-R1's evaluation: T 0.6, top_p 0.95, long outputs); code at T 0.2 as Codex.
# Every suite names its split: "test", or "train" where that is the hub's only split (AIME, OlympiadBench).
BUILTIN_SUITES = (
    _math("aime24", "AIME 2024, 30 problems", "train", n=32, max_tokens=32768, k=(1, 4, 8, 16, 32)),
    _math("aime25", "AIME 2025, 30 problems", "train", n=32, max_tokens=32768, k=(1, 4, 8, 16, 32)),
    _math("amc23", "AMC 2023, 40 problems", n=16, max_tokens=32768, k=(1, 4, 16)),
    _math("math500", "MATH-500", n=4, max_tokens=8192, k=(1, 4), breakdowns=("subject", "level")),
    _math("gsm8k", "GSM8K test, 1319 problems", n=4, max_tokens=2048, k=(1, 4)),
    _math(
        "minerva",
        "Minerva math (MIT OCW), 272 problems",
        n=4,
        max_tokens=8192,
        k=(1, 4),
        breakdowns=("type",),
    ),
    _math(
        "olympiadbench",
        "OlympiadBench (English, text-only, open-ended math), 675 problems",
        "train",
        n=4,
        max_tokens=8192,
        k=(1, 4),
        breakdowns=("subfield",),
    ),
    _code("humaneval", "HumanEval, 164 functions", n=10, max_tokens=1024, k=(1, 5, 10)),
    _code(
        "mbpp",
        "MBPP sanitized, test split 257 (a --data file is read whole: the local one holds all 427)",
        n=10,
        max_tokens=1024,
        k=(1, 5, 10),
    ),
    _code(
        "lcb",
        "LiveCodeBench release_v1, 400 problems (public tests locally)",
        n=4,
        max_tokens=4096,
        k=(1, 4),
        breakdowns=("difficulty", "platform"),
    ),
)

for _suite in BUILTIN_SUITES:
    register_suite(_suite)
