"""Throughput of rlvr's MathVerifier against plain sequential Math-Verify on an RL-shaped workload.

Workload: real gold answers from ../shared/data/math (MATH-500 ~70 %, GSM8K test ~12 %, AIME 2024 ~9 %,
AMC 2023 ~9 %), `--samples` completions per problem, grouped by problem as a GRPO batch is. Each problem gets a
pool of 3-5 distinct final answers (the gold as written, correct answers spelled differently, perturbed wrong
answers) with skewed weights (0.55/0.20/0.12/0.08/0.05); each sample draws one, so the same final answer repeats
within a group while the reasoning sentence before it changes from sample to sample.

Measured in one process, `--rounds` times in alternation (medians reported):
  (a) baseline: per row `math_verify.parse(completion)`, `math_verify.parse("\\boxed{" + gold + "}")`,
      `math_verify.verify(gold_parsed, pred_parsed)`, sequentially in the main thread, Math-Verify defaults
      (signal-based timeouts, its own small internal caches);
  (b) `MathVerifier(MathVerifyConfig()).verify_batch(golds, completions)` on a fresh verifier (empty cache);
      the timed span covers construction, worker start-up and the batch, not `close()`;
  (b warm) `verify_batch` on a fresh verifier after `warmup()` (untimed): workers started and their parsers
      warmed once, as a run does at start-up, and an empty cache: the headline figure;
  (b steady) the same batch on a verifier that has just verified a batch of other problems (seed + 1,
      no gold shared with this workload): workers running and warm, as at a later step of an RL run.
Each round also re-runs the batch on (b)'s verifier (every pair cached). Once at the end: a fresh verifier
with one `verify()` call per row, for per-row p50/p99 latency (a batch has no per-row latency).

Run: .venv/bin/python benchmarks/perf/verify_throughput.py [--problems 125 --samples 16 --seed 0
     --rounds 3 --shuffle --json PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import re
import statistics
import time
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from importlib.metadata import version
from pathlib import Path

import math_verify
from perf_common import busy_cpu_seconds, percentile, source_state

from rlvr.verifiers.math_verifier import MathVerifier, MathVerifyConfig
from rlvr.verifiers.types import TIMEOUT

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "math"  # ../shared/data/math
# Dataset mix of an RL math training set: mostly MATH-style problems.
MIX = (("math500", 0.70), ("gsm8k", 0.12), ("aime24", 0.09), ("amc23", 0.09))
POOL_WEIGHTS = (0.55, 0.20, 0.12, 0.08, 0.05)  # skewed: one answer dominates a group
FINAL_ANSWER_SHARE = 0.15  # "The final answer is $X$." instead of \boxed{X}

_INT = re.compile(r"-?\d+")
_DEC = re.compile(r"-?\d+\.\d+")
_FRAC = re.compile(r"(-?)\\frac(?:\{(\d+)\}\{(\d+)\}|(\d)(\d))")
_FIRST_INT = re.compile(r"\d+")

REASONING = (
    "Setting up the equation from the conditions and solving step by step, the {n} terms combine cleanly.",
    "We simplify the expression, handling the case k = {n} separately since it is the boundary case.",
    "Working through all {n} cases and adding up the contributions gives the total.",
    "Substituting back into the original condition confirms the value; the check with {n} also works.",
    "Let me compute this carefully. After {n} rounds of simplification the expression reduces nicely.",
    "Using the given ratio and clearing denominators, everything reduces after {n} short steps.",
)
BOXED_ENDINGS = (
    "Therefore, the answer is $\\boxed{{{x}}}$.",
    "So the final result is \\boxed{{{x}}}.",
    "Hence\n\\[\n\\boxed{{{x}}}\n\\]",
)


@dataclass(frozen=True)
class Row:
    source: str
    gold: str
    completion: str
    intended: bool  # what the generator meant: a correct (possibly reformatted) or a perturbed wrong answer
    kind: str


# -- workload ------------------------------------------------------------------------------------------------


def load_golds() -> dict[str, list[str]]:
    def jsonl(name: str) -> list[dict]:
        with open(DATA / f"{name}.jsonl", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def amc(value: object) -> str:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    return {
        "math500": [str(r["answer"]) for r in jsonl("math500")],
        "gsm8k": [r["answer"].split("#### ")[-1].strip() for r in jsonl("gsm8k_test")],
        "aime24": [str(r["answer"]) for r in jsonl("aime24")],
        "amc23": [amc(r["answer"]) for r in jsonl("amc23")],
    }


def plain_fraction(gold: str) -> Fraction | None:
    m = _FRAC.fullmatch(gold)
    if not m:
        return None
    num, den = (m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5))
    value = Fraction(int(num), int(den))
    return -value if m.group(1) else value


def exact_decimal(value: Fraction) -> str | None:
    """The finite decimal spelling of `value`, or None when it has none (denominator not 2^a 5^b)."""
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1 or value.denominator == 1:
        return None
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f")


def frac_latex(value: Fraction) -> str:
    sign = "-" if value < 0 else ""
    p, q = abs(value.numerator), value.denominator
    return f"{sign}\\frac{p}{q}" if p < 10 and q < 10 else f"{sign}\\frac{{{p}}}{{{q}}}"


def correct_variants(gold: str, source: str) -> list[tuple[str, str]]:
    """Correct answers spelled differently from the gold, as (answer, kind)."""
    out: list[tuple[str, str]] = []
    if "\\frac" in gold:
        out.append((gold.replace("\\frac", "\\dfrac"), "dfrac"))
    frac = plain_fraction(gold)
    if frac is not None and (dec := exact_decimal(frac)) is not None:
        out.append((dec, "decimal_for_fraction"))
    if _DEC.fullmatch(gold):
        value = Fraction(gold)
        if value.denominator != 1:
            out.append((frac_latex(value), "fraction_for_decimal"))
    single_valued = not any(s in gold for s in (",", "=", "\\text", "\\begin", "\\pm"))
    if single_valued:
        out.append((f"x = {gold}", "x_equals"))
    if _INT.fullmatch(gold):
        n = int(gold)
        if source == "gsm8k":
            out.append((f"{gold} \\text{{ dollars}}", "unit"))
        if abs(n) >= 1000:
            out.append((f"{n:,}", "thousands_sep"))
        if gold.lstrip("-").startswith("0") and n != 0:
            out.append((str(n), "leading_zero"))
    if "^\\circ" in gold:
        out.append((gold.replace("^\\circ", ""), "no_degree"))
    if "\\left" in gold:
        out.append((gold.replace("\\left", "").replace("\\right", ""), "no_left_right"))
    return [(a, k) for a, k in out if a != gold]


def wrong_variants(gold: str, others: list[str], rng: random.Random) -> list[tuple[str, str]]:
    """Plausible wrong answers, as (answer, kind)."""
    out: list[tuple[str, str]] = []
    if _INT.fullmatch(gold):
        n = int(gold)
        out.append((str(n + rng.choice((-1, 1))), "off_by_one"))
        if n != 0:
            out.append((str(-n), "sign_flip"))
    elif _DEC.fullmatch(gold):
        out.append((str(Decimal(gold) + 1), "off_by_one"))
        out.append((gold[1:] if gold.startswith("-") else "-" + gold, "sign_flip"))
    elif (frac := plain_fraction(gold)) is not None:
        out.append((frac_latex(Fraction(frac.numerator + 1, frac.denominator)), "changed_numerator"))
        out.append((frac_latex(-frac), "sign_flip"))
    else:
        m = _FIRST_INT.search(gold)
        if m:
            bumped = gold[: m.start()] + str(int(m.group()) + 1) + gold[m.end() :]
            out.append((bumped, "changed_number"))
        if not any(s in gold for s in (",", "\\text", "\\begin", "=")):
            out.append((gold[1:] if gold.startswith("-") else "-" + gold, "sign_flip"))
        if not out:  # no digits and no sign to flip: another problem's answer
            out.append((rng.choice([o for o in others if o != gold]), "other_answer"))
    return [(a, k) for a, k in out if a != gold]


def completion_text(answer: str, style: int, rng: random.Random) -> str:
    reasoning = rng.choice(REASONING).format(n=rng.randint(2, 12))
    if style < 0:
        return f"{reasoning}\nThe final answer is ${answer}$. I hope it is correct."
    return f"{reasoning}\n{BOXED_ENDINGS[style].format(x=answer)}"


def build_workload(
    problems: int, samples: int, seed: int, exclude: frozenset[str] = frozenset()
) -> list[Row]:
    """RL-shaped rows; problems whose gold is in `exclude` are not drawn."""
    rng = random.Random(seed)
    golds = {source: [g for g in found if g not in exclude] for source, found in load_golds().items()}
    counts = {name: round(problems * share) for name, share in MIX}
    counts["math500"] += problems - sum(counts.values())
    rows: list[Row] = []
    for source, count in counts.items():
        for gold in rng.sample(golds[source], min(count, len(golds[source]))):
            size = rng.randint(3, 5)
            right = correct_variants(gold, source)
            plain = [v for v in right if v[1] != "x_equals"]  # prefer the formatting variants to `x = `
            right = plain if plain and rng.random() < 0.7 else right
            right = rng.sample(right, min(len(right), rng.choice((0, 1, 1, 2))))
            wrong = wrong_variants(gold, golds[source], rng)
            wrong = rng.sample(wrong, min(len(wrong), size - 1 - len(right)))
            pool = [(gold, True, "canonical")] + [(a, True, k) for a, k in right]
            pool += [(a, False, k) for a, k in wrong]
            rng.shuffle(pool)
            # The most frequent answer of a group: the canonical gold on 60 % of problems, else another answer.
            canonical = next(i for i, entry in enumerate(pool) if entry[2] == "canonical")
            pool.insert(0, pool.pop(canonical if rng.random() < 0.6 else rng.randrange(len(pool))))
            weights = POOL_WEIGHTS[: len(pool)]
            styles = [
                -1 if rng.random() < FINAL_ANSWER_SHARE else rng.randrange(len(BOXED_ENDINGS)) for _ in pool
            ]
            for index in rng.choices(range(len(pool)), weights=weights, k=samples):
                answer, intended, kind = pool[index]
                rows.append(Row(source, gold, completion_text(answer, styles[index], rng), intended, kind))
    return rows


# -- measurements --------------------------------------------------------------------------------------------


class _TimeoutCounter(logging.Handler):
    """Counts Math-Verify's 'Timeout during ...' warnings: its only signal that a call timed out."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Timeout"):
            self.count += 1


def wrap_gold(gold: str) -> str:
    return "\\boxed{" + gold + "}"


def run_baseline(rows: list[Row], counter: _TimeoutCounter) -> tuple[list[bool], list[bool], list[float]]:
    verdicts, timed_out, latencies = [], [], []
    for row in rows:
        before = counter.count
        start = time.perf_counter()
        pred = math_verify.parse(row.completion)
        gold = math_verify.parse(wrap_gold(row.gold))
        ok = math_verify.verify(gold, pred)
        latencies.append(time.perf_counter() - start)
        verdicts.append(bool(ok))
        timed_out.append(counter.count > before)
    return verdicts, timed_out, latencies


def gold_wrapping_check(rows: list[Row]) -> tuple[int, int]:
    """How many distinct golds Math-Verify reads identically as `$gold$` and as `\\boxed{gold}`."""
    distinct = sorted({r.gold for r in rows})
    same = sum(
        str(math_verify.parse("$" + g + "$")) == str(math_verify.parse(wrap_gold(g))) for g in distinct
    )
    return same, len(distinct)


def run_cold_batch(golds: list[str], completions: list[str]) -> dict:
    """(b): a fresh verifier, then one batch; the timed span includes construction and worker start-up."""
    start = time.perf_counter()
    verifier = MathVerifier(MathVerifyConfig())
    verdicts = verifier.verify_batch(golds, completions)
    seconds = time.perf_counter() - start
    stats = dict(vars(verifier.stats))
    start = time.perf_counter()
    again = verifier.verify_batch(golds, completions)
    cached_seconds = time.perf_counter() - start
    verifier.close()
    if [v.correct for v in again] != [v.correct for v in verdicts]:
        raise AssertionError("the cached second batch changed a verdict")
    return {
        "seconds": seconds,
        "verdicts": verdicts,
        "stats": stats,
        "cached_seconds": cached_seconds,
    }


def run_warm_batch(golds: list[str], completions: list[str]) -> float:
    """(b, warm): a fresh verifier whose workers were started and warmed by `warmup()` before the clock
    starts, as in a run that calls `warmup()` once at start-up; its cache is empty."""
    with MathVerifier(MathVerifyConfig()) as verifier:
        if not verifier.warmup():
            raise RuntimeError("verifier workers did not become ready")
        start = time.perf_counter()
        verifier.verify_batch(golds, completions)
        return time.perf_counter() - start


def run_steady_batch(golds: list[str], completions: list[str], previous: list[Row]) -> float:
    """(b, steady state): a verifier that has already verified `previous`, a batch of other problems, as at
    a later step of an RL run: workers started and warmed up, cache holding other problems' pairs."""
    with MathVerifier(MathVerifyConfig()) as verifier:
        verifier.verify_batch([r.gold for r in previous], [r.completion for r in previous])
        start = time.perf_counter()
        verifier.verify_batch(golds, completions)
        return time.perf_counter() - start


def run_per_row(golds: list[str], completions: list[str]) -> tuple[float, list[float]]:
    """(b, per row): a fresh verifier, one `verify()` call per row, timed one by one."""
    latencies = []
    with MathVerifier(MathVerifyConfig()) as verifier:
        start = time.perf_counter()
        for gold, completion in zip(golds, completions, strict=True):
            t0 = time.perf_counter()
            verifier.verify(gold, completion)
            latencies.append(time.perf_counter() - t0)
        return time.perf_counter() - start, latencies


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=125)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of (a) and (b); medians are reported"
    )
    parser.add_argument(
        "--shuffle",
        action="store_true",
        help="rows in random order instead of grouped by problem (defeats Math-Verify's 20-entry parse cache)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    mv_logger = logging.getLogger("math_verify")
    mv_logger.setLevel(logging.WARNING)
    mv_logger.propagate = False
    counter = _TimeoutCounter()
    mv_logger.addHandler(counter)
    load_before = os.getloadavg()
    busy_before, own_before = busy_cpu_seconds(), own_cpu_seconds()

    rows = build_workload(args.problems, args.samples, args.seed)
    if args.shuffle:
        random.Random(args.seed).shuffle(rows)
    golds = [r.gold for r in rows]
    completions = [r.completion for r in rows]
    n = len(rows)
    by_source = {s: sum(r.source == s for r in rows) // args.samples for s, _ in MIX}
    distinct_answers = len({(r.gold, r.completion.rsplit("\n", 1)[-1]) for r in rows})
    print(
        f"workload: {n} rows = {args.problems} problems x {args.samples} samples, seed {args.seed}; "
        f"problems per source {by_source}; {distinct_answers} distinct (gold, final answer line); "
        f"{'shuffled' if args.shuffle else 'grouped by problem'}; "
        f"intended correct {sum(r.intended for r in rows)}, wrong {sum(not r.intended for r in rows)}"
    )
    same, total = gold_wrapping_check(rows)
    print(f"gold wrapping: \\boxed{{gold}}; Math-Verify reads $gold$ identically for {same}/{total} golds")

    a_seconds, b_seconds, cached_seconds, steady_seconds, warm_seconds, a_lat = [], [], [], [], [], []
    previous = build_workload(args.problems, args.samples, args.seed + 1, exclude=frozenset(golds))
    first_a: tuple[list[bool], list[bool]] | None = None
    first_b: dict | None = None
    for _ in range(args.rounds):
        start = time.perf_counter()
        a_ok, a_timeout, latencies = run_baseline(rows, counter)
        a_seconds.append(time.perf_counter() - start)
        a_lat += latencies
        cold = run_cold_batch(golds, completions)
        b_seconds.append(cold["seconds"])
        cached_seconds.append(cold["cached_seconds"])
        warm_seconds.append(run_warm_batch(golds, completions))
        steady_seconds.append(run_steady_batch(golds, completions, previous))
        if first_a is None:
            first_a, first_b = (a_ok, a_timeout), cold
        elif a_ok != first_a[0] or [v.correct for v in cold["verdicts"]] != [
            v.correct for v in first_b["verdicts"]
        ]:
            raise AssertionError("verdicts changed between rounds")
    assert first_a is not None and first_b is not None
    per_row_seconds, b_lat = run_per_row(golds, completions)

    foreign_cpu = None
    if busy_before is not None and (busy_after := busy_cpu_seconds()) is not None:
        foreign_cpu = max(0.0, (busy_after - busy_before) - (own_cpu_seconds() - own_before))

    a_ok, a_timeout = first_a
    b_verdicts = first_b["verdicts"]
    compared = 0
    disagreeing = []
    for i, (row, a, v) in enumerate(zip(rows, a_ok, b_verdicts, strict=True)):
        if a_timeout[i] or v.reason == TIMEOUT:
            continue
        compared += 1
        if a != v.correct:
            disagreeing.append(
                {
                    "row": i,
                    "gold": row.gold,
                    "completion_tail": row.completion[-70:],
                    "a": a,
                    "b": v.correct,
                    "b_reason": v.reason,
                    "b_extracted": v.extracted,
                    "b_path": v.details.get("path"),
                    "intended": row.intended,
                }
            )

    a_wall, b_wall = statistics.median(a_seconds), statistics.median(b_seconds)
    steady_wall, cached_wall = statistics.median(steady_seconds), statistics.median(cached_seconds)
    warm_wall = statistics.median(warm_seconds)
    a_rate, b_rate = n / a_wall, n / b_wall
    cold_stats = first_b["stats"]
    figures = {
        "rows": n,
        "problems": args.problems,
        "samples": args.samples,
        "seed": args.seed,
        "shuffled": args.shuffle,
        "rounds": args.rounds,
        "workers": MathVerifyConfig().workers or len(os.sched_getaffinity(0)),  # None: one per core
        "a_seconds_per_round": a_seconds,
        "a_verifications_per_s": a_rate,
        "a_latency_p50_ms": 1e3 * percentile(a_lat, 50),
        "a_latency_p99_ms": 1e3 * percentile(a_lat, 99),
        "a_latency_max_ms": 1e3 * max(a_lat),
        "a_timeouts": sum(a_timeout),
        "b_seconds_per_round": b_seconds,
        "b_verifications_per_s": b_rate,
        "b_mean_ms_per_row": 1e3 * b_wall / n,
        "b_stats": cold_stats,
        "b_timeouts": sum(v.reason == TIMEOUT for v in b_verdicts),
        "b_warm_seconds_per_round": warm_seconds,
        "b_warm_verifications_per_s": n / warm_wall,
        "b_steady_seconds_per_round": steady_seconds,
        "b_steady_verifications_per_s": n / steady_wall,
        "b_cached_seconds_per_round": cached_seconds,
        "b_cached_verifications_per_s": n / cached_wall,
        "b_per_row_seconds": per_row_seconds,
        "b_per_row_verifications_per_s": n / per_row_seconds,
        "b_per_row_latency_p50_ms": 1e3 * percentile(b_lat, 50),
        "b_per_row_latency_p99_ms": 1e3 * percentile(b_lat, 99),
        "b_per_row_latency_max_ms": 1e3 * max(b_lat),
        "compared": compared,
        "agreements": compared - len(disagreeing),
        "agreement_pct": 100.0 * (compared - len(disagreeing)) / compared if compared else float("nan"),
        "a_matches_intended": sum(a == r.intended for a, r in zip(a_ok, rows, strict=True)),
        "b_matches_intended": sum(v.correct == r.intended for v, r in zip(b_verdicts, rows, strict=True)),
        "ratio_b_over_a": b_rate / a_rate,
        "ratio_steady_over_a": (n / steady_wall) / a_rate,
        "ratio_warm_over_a": (n / warm_wall) / a_rate,
        "disagreements": disagreeing,
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "other_processes_cpu_seconds": foreign_cpu,
        "cores": os.cpu_count(),
        "source": source_state("verifiers"),
        "python": platform.python_version(),
        "math_verify": version("math-verify"),
    }

    def secs(values: list[float]) -> str:
        return "/".join(f"{v:.2f}" for v in values)

    print(f"rounds: {args.rounds}, each (a), then (b) cold, (b) warm, (b) steady state; medians reported")
    print(
        f"(a) sequential Math-Verify: {a_wall:.2f} s (rounds {secs(a_seconds)}) = {a_rate:.1f} verifications/s; "
        f"per call p50 {figures['a_latency_p50_ms']:.2f} ms, p99 {figures['a_latency_p99_ms']:.2f} ms, "
        f"max {figures['a_latency_max_ms']:.0f} ms; timeouts {figures['a_timeouts']}"
    )
    print(
        f"(b) rlvr verify_batch, fresh verifier, start-up included ({figures['workers']} workers): "
        f"{b_wall:.2f} s (rounds {secs(b_seconds)}) = {b_rate:.1f} verifications/s, "
        f"mean {figures['b_mean_ms_per_row']:.3f} ms/row; timeouts {figures['b_timeouts']}"
    )
    print(
        f"    stats: {cold_stats['fast_path']} fast path, {cold_stats['cache_hits']} cache hits, "
        f"{cold_stats['pool_calls']} Math-Verify pool calls for {cold_stats['verifications']} rows"
    )
    print(
        f"(b) warm: fresh verifier after warmup(), empty cache: "
        f"{warm_wall:.2f} s (rounds {secs(warm_seconds)}) = {n / warm_wall:.1f} verifications/s"
    )
    print(
        f"(b) steady state, verifier that already verified {len(previous)} rows of other problems: "
        f"{steady_wall:.2f} s (rounds {secs(steady_seconds)}) = {n / steady_wall:.1f} verifications/s"
    )
    print(f"(b) same batch again on the same verifier (all cached): {n / cached_wall:.0f} verifications/s")
    print(
        f"(b) per-row verify() on a fresh verifier: {per_row_seconds:.2f} s = "
        f"{n / per_row_seconds:.1f} verifications/s; per call p50 {figures['b_per_row_latency_p50_ms']:.3f} ms, "
        f"p99 {figures['b_per_row_latency_p99_ms']:.2f} ms, max {figures['b_per_row_latency_max_ms']:.0f} ms"
    )
    print(
        f"agreement (a) vs (b) on {compared} rows where neither timed out: "
        f"{figures['agreements']}/{compared} = {figures['agreement_pct']:.2f} %"
    )
    for d in disagreeing:
        print(
            f"  DISAGREE row {d['row']}: gold {d['gold']!r} | completion ...{d['completion_tail']!r} | "
            f"a={d['a']} b={d['b']} reason={d['b_reason']} extracted={d['b_extracted']!r} path={d['b_path']}"
        )
    print(
        f"vs the generator's intended label: (a) {figures['a_matches_intended']}/{n}, "
        f"(b) {figures['b_matches_intended']}/{n}"
    )
    print(
        f"ratio b/a (verifications/s): warm {figures['ratio_warm_over_a']:.2f}; "
        f"cold, start-up included {figures['ratio_b_over_a']:.2f}; steady state {figures['ratio_steady_over_a']:.2f}"
    )
    print(
        f"python {figures['python']}, math-verify {figures['math_verify']}, {os.cpu_count()} cores, "
        f"rlvr {figures['source']}, "
        f"1-min load average before/after {load_before[0]:.2f}/{os.getloadavg()[0]:.2f}"
    )
    if foreign_cpu is not None:
        print(f"CPU used by other processes during the measurements: {foreign_cpu:.1f} s")

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
