"""Extra benchmark suites for `rlvr eval --suites-from configs/eval_suites.py --suite NAME`.

`quickstart-arithmetic`: the held-out test split of the CPU quickstart's task (1-digit `+ - *`, level 2, the same
short system prompt), sampled 4 times per task, to see what the quickstart's training did with pass@k and maj@k.
"""

from rlvr.benchmarks import BenchmarkSuite, register_suite

register_suite(
    BenchmarkSuite(
        "quickstart-arithmetic",
        env_id="rlvr/arithmetic-v0",
        description="the quickstart's task, held-out test split (level 2, 'Answer briefly.')",
        system_prompt="Answer briefly.",
        env_kwargs={"level": 2, "split": "test"},
        n=4,
        max_tokens=24,
        k=(1, 2, 4),
        limit=200,
    )
)
