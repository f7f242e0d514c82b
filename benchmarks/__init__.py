"""Benchmark suites and the pass@k / maj@k / avg@k evaluator (planned: issue 6); `perf/` holds speed benchmarks."""
