"""The math verifier: extraction, answer rules, exact fast paths, a cache, and Math-Verify under hard deadlines.

For each (gold, completion):
1. extract the final answer (`extract.py`); none found -> `no_answer`;
2. more distinct boxed answers than `max_boxed` -> `multiple_answers`; a hedged answer ("either 3 or 4") to a
   single-valued gold -> `hedged`;
3. every distinct boxed answer is checked against the gold (usually just one): the completion is correct only if
   the last one is, and `multiple_answers` if the last is right but another boxed answer is not;
4. each (gold, answer) pair is decided by, in order: the LRU cache; the multiple-choice rule; the exact fast path
   for plain numbers; equal normalised spellings; numeric refutation of clearly different values (`refute.py`);
   else Math-Verify in the deadline pool.

Identical pairs in a batch are decided once. The pool starts on first use, so answers the fast path decides never
start a worker process.
"""

from __future__ import annotations

import asyncio
import collections
import math
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field

from rlvr.verifiers import pool as pool_module
from rlvr.verifiers.exact import TooLarge, evaluate
from rlvr.verifiers.extract import (
    EXTRACTION_PROFILES,
    Extraction,
    ExtractionConfig,
    extract_answer,
    extract_choice,
    is_choice_gold,
    is_hedged,
)
from rlvr.verifiers.fastpath import PlainNumber, numbers_equal, parse_decimal_comma, parse_number
from rlvr.verifiers.normalize import normalize_answer, strip_math_delimiters
from rlvr.verifiers.refute import refutes
from rlvr.verifiers.types import (
    BAD_GOLD,
    CORRECT,
    ERROR,
    HEDGED,
    MULTIPLE_ANSWERS,
    NO_ANSWER,
    TIMEOUT,
    UNPARSEABLE,
    WRONG,
    Verdict,
)

_MULTI_VALUE_GOLD = re.compile(r",|\bor\b|\band\b|\\cup|\\pm|\\mp", re.IGNORECASE)
_ASSIGNMENT = re.compile(r"\s*[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?\s*=\s*([^=<>]+?)\s*")
_ELLIPSIS = re.compile(r"\\[lc]?dots(?![a-zA-Z])|\.\.\.|\u2026")
_CACHEABLE = frozenset({CORRECT, WRONG, UNPARSEABLE, BAD_GOLD})

Pair = tuple[str, str]


@dataclass(frozen=True)
class MathVerifyConfig:
    """Options of the math verifier. Frozen: a verifier's cache is only valid for one configuration."""

    timeout_s: float = 5.0
    """Deadline of one (gold, answer) check, counted from when a worker starts it; past it the verdict is `timeout`."""
    extraction: str = "strict"
    """How the final answer is found (`extract.py`): "strict" reads only an explicit final answer (box, tag,
    "answer is", ####); "last_number" falls back to the last number; "math_verify" falls back to the last LaTeX
    span or, for a short bare answer, the whole text, as Math-Verify does for completions that do not box."""
    strict: bool = True
    """Older spelling of the profile: `strict=False` means `extraction="last_number"`."""
    float_tolerance: float = 1e-6
    """Relative tolerance when a decimal is involved: |g - p| <= tol * max(1, |g|, |p|). Math-Verify's rounding
    is set to the matching number of decimal places."""
    max_boxed: int = 4
    """A completion with more distinct boxed answers than this is `multiple_answers` without further checks."""
    reject_hedged: bool = True
    """Refuse answers such as "either 3 or 4" when the gold is a single value."""
    workers: int | None = None
    """Worker processes for Math-Verify; None means one per core."""
    cache_size: int = 100_000
    """Entries of the LRU cache of decided (gold, answer) pairs kept across batches."""
    memory_limit_mb: int | None = 4096
    """Address-space limit of each worker process; None for no limit."""
    max_answer_chars: int = 10_000
    """A final answer longer than this is `unparseable` at once: no real final answer is that long."""
    allow_set_relation_comp: bool = False
    """Also compare a relation in the answer with a set gold (`-2 \\le x \\le 7` against `x \\in [-2, 7]`), as
    Math-Verify's option of the same name; off by default, when only a set answer is compared with a relation."""

    def __post_init__(self) -> None:
        if not 0 < self.timeout_s < math.inf:  # also refuses NaN: every check needs a real deadline
            raise ValueError(f"timeout_s must be a finite number of seconds > 0, got {self.timeout_s}")
        if not 0 < self.float_tolerance < 1:
            raise ValueError(f"float_tolerance must be in (0, 1), got {self.float_tolerance}")
        if self.max_boxed < 1:
            raise ValueError(f"max_boxed must be >= 1, got {self.max_boxed}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1 or None (one per core), got {self.workers}")
        if self.memory_limit_mb is not None and self.memory_limit_mb < 256:
            raise ValueError(
                f"memory_limit_mb must be >= 256 (a worker needs ~200 MB for sympy) or None, got {self.memory_limit_mb}"
            )
        if self.max_answer_chars < 1:
            raise ValueError(f"max_answer_chars must be >= 1, got {self.max_answer_chars}")
        if self.cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {self.cache_size}")
        if self.extraction not in EXTRACTION_PROFILES:
            raise ValueError(
                f"extraction must be one of {', '.join(EXTRACTION_PROFILES)}, got {self.extraction!r}"
            )
        if not self.strict and self.extraction == "strict":  # the older spelling of the last-number profile
            object.__setattr__(self, "extraction", "last_number")
        object.__setattr__(self, "strict", self.extraction == "strict")

    @property
    def float_rounding(self) -> int:
        """Decimal places for Math-Verify's float comparison, matching `float_tolerance`."""
        return max(1, round(-math.log10(self.float_tolerance)))

    def tolerance(self, precision: int | None) -> tuple[float, int]:
        """(relative tolerance, Math-Verify decimal places) for one call: `precision` decimal places, as
        Math-Verify's `precision`/`float_rounding`, or this configuration's `float_tolerance` when None."""
        if precision is None:
            return self.float_tolerance, self.float_rounding
        if isinstance(precision, bool) or not isinstance(precision, int) or not 1 <= precision <= 15:
            raise ValueError(
                f"precision must be an int of decimal places in [1, 15] or None, got {precision!r}"
            )
        return 10.0**-precision, precision


@dataclass
class _Plan:
    """One completion on its way to a verdict."""

    gold: str
    extraction: Extraction
    early: Verdict | None = None
    pairs: list[Pair] = field(default_factory=list)
    joined: Pair | None = None
    """Several boxes read as one list answer, tried when the gold has several values."""

    def all_pairs(self) -> list[Pair]:
        return self.pairs if self.joined is None else [*self.pairs, self.joined]


@dataclass
class VerifierStats:
    """Counters of how pairs were decided; `pool_timeouts` counts deadline kills."""

    verifications: int = 0
    cache_hits: int = 0
    fast_path: int = 0
    pool_calls: int = 0
    pool_timeouts: int = 0


class MathVerifier:
    """Verifies math completions against gold answers. Thread-safe; use as a context manager or call `close()`."""

    def __init__(self, config: MathVerifyConfig | None = None) -> None:
        self.config = config or MathVerifyConfig()
        self._extraction_config = ExtractionConfig(
            strict=self.config.strict, max_boxed=self.config.max_boxed, profile=self.config.extraction
        )
        self._pool = pool_module.DeadlinePool(
            "rlvr.verifiers.math_equiv:judge_task",
            warmup_path="rlvr.verifiers.math_equiv:warm_up",
            size=self.config.workers,
            memory_limit_mb=self.config.memory_limit_mb,
        )
        self._cache: collections.OrderedDict[tuple[str, str, int | None], str] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.stats = VerifierStats()

    # -- public API ------------------------------------------------------------------------------------------

    def verify(self, gold: str, completion: str, *, precision: int | None = None) -> Verdict:
        """Verify one completion against its gold answer; `precision`: decimal places for decimals (as
        Math-Verify's `precision`), else the configuration's `float_tolerance`."""
        return self.verify_batch([gold], [completion], precision=precision)[0]

    def verify_batch(
        self,
        golds: Sequence[str],
        completions: Sequence[str],
        on_progress: Callable[[int], None] | None = None,
        *,
        precision: int | None = None,
    ) -> list[Verdict]:
        """Verify many completions; identical (gold, answer) pairs are decided once.

        `on_progress(n)` is called as pool checks finish, with the number just finished; `precision` as in
        `verify`.
        """
        plans, decided, pending = self._prepare(golds, completions, precision)
        for future in as_completed(pending):
            pair = pending[future]
            decided[pair] = self._settle(pair, future.result(), precision)
            if on_progress is not None:
                on_progress(1)
        return [self._finish(plan, decided) for plan in plans]

    async def averify_batch(
        self, golds: Sequence[str], completions: Sequence[str], *, precision: int | None = None
    ) -> list[Verdict]:
        """`verify_batch` for asyncio code: waits without blocking the event loop."""
        plans, decided, pending = self._prepare(golds, completions, precision)
        outcomes = await asyncio.gather(*(asyncio.wrap_future(f) for f in pending))
        for future, outcome in zip(pending, outcomes, strict=True):
            decided[pending[future]] = self._settle(pending[future], outcome, precision)
        return [self._finish(plan, decided) for plan in plans]

    async def averify(self, gold: str, completion: str, *, precision: int | None = None) -> Verdict:
        """`verify` for asyncio code."""
        return (await self.averify_batch([gold], [completion], precision=precision))[0]

    def warmup(self, timeout_s: float = 120.0) -> bool:
        """Start the worker processes now and wait until each has imported Math-Verify and warmed its parser.

        Call it once when a run starts (workers otherwise start on the first check that needs them, and that
        batch pays their start-up). Returns False if the workers were not ready within `timeout_s`.
        """
        return self._pool.start(wait_s=timeout_s)

    def clear_cache(self) -> None:
        """Forget every decided pair (benchmarks use it to time verification itself)."""
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.close()

    def __enter__(self) -> MathVerifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- stages ----------------------------------------------------------------------------------------------

    def _prepare(
        self, golds: Sequence[str], completions: Sequence[str], precision: int | None = None
    ) -> tuple[list[_Plan], dict[Pair, tuple[str, str]], dict[Future, Pair]]:
        if len(golds) != len(completions):
            raise ValueError(
                f"got {len(golds)} gold answers for {len(completions)} completions; pass one each"
            )
        tolerance, rounding = self.config.tolerance(precision)
        plans = [self._safe_plan(g, c) for g, c in zip(golds, completions, strict=True)]
        decided: dict[Pair, tuple[str, str]] = {}
        pending: dict[Future, Pair] = {}
        submitted: set[Pair] = set()
        for plan in plans:
            for pair in plan.all_pairs():
                if pair in decided or pair in submitted:
                    continue
                quick = self._decide_quickly(pair, tolerance, precision)
                if quick is not None:
                    decided[pair] = quick
                else:
                    submitted.add(pair)
                    item = (pair[0], pair[1], rounding, self.config.allow_set_relation_comp)
                    # the same gold goes to the same worker: its parse and sympy's caches are reused there
                    pending[self._pool.submit(item, self.config.timeout_s, affinity=hash(pair[0]))] = pair
        with self._lock:
            self.stats.verifications += len(plans)
            self.stats.pool_calls += len(pending)
        return plans, decided, pending

    def _safe_plan(self, gold: object, completion: object) -> _Plan:
        """`_plan`, with any unexpected failure turned into an `error` verdict: a bad row never raises."""
        try:
            return self._plan(str(gold), str(completion))
        except Exception as exc:
            extraction = Extraction(None, "none")
            plan = _Plan("<unreadable gold>", extraction)
            plan.early = _verdict(ERROR, extraction, f"rules:{type(exc).__name__}: {str(exc)[:200]}")
            return plan

    def _plan(self, gold: str, completion: str) -> _Plan:
        gold = strip_math_delimiters(gold)
        extraction = extract_answer(completion, self._extraction_config)
        plan = _Plan(gold, extraction)
        if not gold:
            plan.early = _verdict(BAD_GOLD, extraction, "rules")
        elif extraction.answer is None or not extraction.answer.strip():
            plan.early = _verdict(NO_ANSWER, extraction, "rules")
        elif len(extraction.answer) > self.config.max_answer_chars:
            plan.early = _verdict(UNPARSEABLE, extraction, "rules")
        elif extraction.too_many_boxes:
            plan.early = _verdict(MULTIPLE_ANSWERS, extraction, "rules")
        elif (
            self.config.reject_hedged and is_hedged(extraction.answer) and not _MULTI_VALUE_GOLD.search(gold)
        ):
            plan.early = _verdict(HEDGED, extraction, "rules")
        else:
            answers = extraction.boxed if len(extraction.boxed) > 1 else (extraction.answer,)
            plan.pairs = [(gold, strip_math_delimiters(answer)) for answer in answers]
            if len(answers) > 1 and _MULTI_VALUE_GOLD.search(normalize_answer(gold)):
                plan.joined = (gold, ", ".join(answer for _, answer in plan.pairs))
        return plan

    def _decide_quickly(self, pair: Pair, tolerance: float, precision: int | None) -> tuple[str, str] | None:
        """A decision without the pool, as (reason, path), or None."""
        key = (*pair, precision)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.stats.cache_hits += 1
                return cached, "cache"
        try:
            reason = _fast_reason(pair, tolerance)
        except Exception:  # the fast path is only a shortcut: anything odd goes to Math-Verify
            reason = None
        if reason is None:
            return None
        with self._lock:
            self.stats.fast_path += 1
        self._remember(key, reason)
        return reason, "fast"

    def _settle(self, pair: Pair, outcome: pool_module.PoolOutcome, precision: int | None) -> tuple[str, str]:
        if outcome.status == pool_module.OK:
            self._remember((*pair, precision), outcome.value)
            return outcome.value, "math_verify"
        if outcome.status == pool_module.TIMEOUT:
            with self._lock:
                self.stats.pool_timeouts += 1
            return TIMEOUT, "math_verify"
        return ERROR, f"math_verify:{outcome.status}:{outcome.value}"

    def _remember(self, key: tuple[str, str, int | None], reason: str) -> None:
        if reason not in _CACHEABLE or self.config.cache_size == 0:
            return
        with self._lock:
            self._cache[key] = reason
            self._cache.move_to_end(key)
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)

    def _finish(self, plan: _Plan, decided: dict[Pair, tuple[str, str]]) -> Verdict:
        if plan.early is not None:
            return plan.early
        last_reason, path = decided[plan.pairs[-1]]
        reason = last_reason
        if last_reason == CORRECT and any(decided[p][0] != CORRECT for p in plan.pairs[:-1]):
            reason = MULTIPLE_ANSWERS
        if reason != CORRECT and plan.joined is not None and decided[plan.joined][0] == CORRECT:
            reason, path = CORRECT, decided[plan.joined][1]  # the boxes together are the gold's list
        return _verdict(reason, plan.extraction, path)


def _verdict(reason: str, extraction: Extraction, path: str) -> Verdict:
    correct = reason == CORRECT
    details = {"extracted": extraction.answer, "method": extraction.method, "path": path}
    if len(extraction.boxed) > 1:
        details["boxed"] = list(extraction.boxed)
    return Verdict(score=1.0 if correct else 0.0, correct=correct, reason=reason, details=details)


def _fast_reason(pair: Pair, float_tolerance: float) -> str | None:
    """Decide choice letters, exact arithmetic, identical spellings and clearly different values without sympy;
    None when unsure."""
    gold, answer = pair
    if is_choice_gold(gold):
        return CORRECT if extract_choice(answer) == extract_choice(gold) else WRONG
    gold_norm, answer_norm = _unwrap_assignment(normalize_answer(gold), normalize_answer(answer))
    if _ELLIPSIS.search(gold_norm) or _ELLIPSIS.search(answer_norm):
        # Math-Verify misreads a list with an ellipsis (`1, 2, \ldots, n` parses as 2), which called
        # `1, 3, 5, \ldots, 2n-1` equal to it: such answers are compared by spelling only
        return CORRECT if _spelling(gold_norm) == _spelling(answer_norm) else WRONG
    try:
        gold_number = _read_number(gold_norm)
        answer_number = _read_number(answer_norm) if gold_number is not None else None
        if answer_number is None and gold_number is not None and "," not in gold_norm:
            answer_number = parse_decimal_comma(answer_norm)
    except TooLarge:  # past the exact path's size guard: equal spellings only, never a float comparison
        return CORRECT if gold_norm == answer_norm else WRONG
    if gold_number is not None and answer_number is not None:
        return CORRECT if numbers_equal(gold_number, answer_number, float_tolerance) else WRONG
    if gold_norm and gold_norm == answer_norm:
        return CORRECT
    if refutes(gold, answer):  # clearly different values: wrong without a parse by Math-Verify
        return WRONG
    return None


def _spelling(text: str) -> str:
    """`text` with every ellipsis written `...` and no spaces."""
    return _ELLIPSIS.sub("...", text).replace(" ", "")


def _read_number(text: str) -> PlainNumber | None:
    """A plain number (`fastpath.py`) or exact arithmetic (`exact.py`: factorials, powers, sums, products)."""
    return parse_number(text) or evaluate(text)


def _unwrap_assignment(gold: str, answer: str) -> tuple[str, str]:
    """Math-Verify's rule for an assignment facing a value: `x = 5` against `5` compares `5` with `5`.

    Only a single-variable left side (`x`, `a_1`) on exactly one `=` is unwrapped, and only when the other side
    has no `=`; two assignments (`x = 5` vs `y = 5`) are left to Math-Verify, where the variable matters.
    """
    if "=" in gold and "=" not in answer:
        return _assignment_value(gold), answer
    if "=" in answer and "=" not in gold:
        return gold, _assignment_value(answer)
    return gold, answer


def _assignment_value(text: str) -> str:
    match = _ASSIGNMENT.fullmatch(text)
    return normalize_answer(match.group(1)) if match else text


_default: MathVerifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> MathVerifier:
    """A process-wide verifier with the default configuration, created on first use.

    `RLVR_VERIFIER_WORKERS` sets its pool size (useful when a trainer runs many reward processes).
    """
    global _default
    with _default_lock:
        if _default is None:
            workers = os.environ.get("RLVR_VERIFIER_WORKERS")
            _default = MathVerifier(MathVerifyConfig(workers=int(workers) if workers else None))
        return _default


def verify_math(gold: str, completion: str) -> Verdict:
    """Verify one completion with the process-wide default verifier."""
    return default_verifier().verify(gold, completion)
