"""Benchmark suites and the evaluator: pass@k, maj@k and avg@n with provenance (`rlvr eval`, `rlvr compare`).

`perf/` holds the speed benchmarks (scripts, not part of the package).
"""

from rlvr.benchmarks.metrics import maj_at_k, mean_and_std_error, pass_at_k, vote_credit
from rlvr.benchmarks.suites import BenchmarkSuite, get_suite, register_suite, suite_names

__all__ = [
    "BenchmarkSuite",
    "get_suite",
    "maj_at_k",
    "mean_and_std_error",
    "pass_at_k",
    "register_suite",
    "suite_names",
    "vote_credit",
]
