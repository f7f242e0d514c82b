"""Deadlines and robustness of the math verifier and its worker pool (`rlvr.verifiers.pool`).

Pathological answers must come back within the deadline (plus a little caller-side work) and leave the pool
serving; workers that crash, raise or hang must be reported as data; the verifier must be usable from many
threads at once and from asyncio without blocking the event loop.

Pool tests run `tests/verifiers/pool_helpers.py` in real worker processes: workers are started with
`sys.executable -c` and inherit the environment, so this module puts the helpers' folder on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rlvr.verifiers import MathVerifier, MathVerifyConfig
from rlvr.verifiers.pool import CLOSED, CRASHED, FAILED, OK, TIMEOUT, DeadlinePool
from rlvr.verifiers.types import CORRECT, ERROR, NO_ANSWER, UNPARSEABLE, WRONG

DEADLINE_S = 2.0
SLACK_S = 0.5  # caller-side extraction, pickling and the kill; the deadline itself starts when a worker does
RESULT_WAIT_S = 60.0  # how long a test waits on a future before calling the pool hung

HELPERS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def _workers_import_helpers():
    path = os.environ.get("PYTHONPATH")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join([str(HELPERS_DIR), *([path] if path else [])]))
        yield


@pytest.fixture(scope="module")
def verifier():
    """One verifier for the module, two workers, warmed up so that start-up never counts in a measurement."""
    with MathVerifier(MathVerifyConfig(timeout_s=DEADLINE_S, workers=2)) as verifier:
        assert verifier.verify("x^2", r"\boxed{x \cdot x}").reason == CORRECT
        yield verifier


def wait_until_idle(pool: DeadlinePool, limit_s: float = RESULT_WAIT_S) -> None:
    """Wait until every worker of the pool is started, ready and idle.

    A replacement's start-up is outside the deadline contract (the deadline starts when a worker takes the
    item), but on a small machine the replacement's imports compete for the CPU with the caller's extraction
    of the next item; measurements start from a settled pool so that they measure the deadline alone."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        workers = list(pool._workers)
        if len(workers) == pool.size and all(w.ready and w.task is None for w in workers):
            return
        time.sleep(0.01)
    raise AssertionError(f"pool did not settle in {limit_s} s")


# -- pathological inputs --------------------------------------------------------------------------------------

_FRESH = itertools.count(1)  # makes pairs that no earlier check has cached
_MILLION_SUM = "1+" * 500_000 + "1"  # 1,000,001 characters
_NESTED_BRACES = "{" * 10_000 + "1" + "}" * 10_000
_FRAC_CHAIN = r"\frac{1}{" * 300 + "2" + "}" * 300

PATHOLOGICAL = [
    pytest.param("5", r"\boxed{9^{9^{9^{9}}}}", id="power-tower"),
    pytest.param("5", r"\boxed{" + _MILLION_SUM + "}", id="million-char-answer"),
    pytest.param("5", r"\boxed{" + _NESTED_BRACES + "}", id="braces-10000-deep"),
    pytest.param("5", r"\boxed{" + _FRAC_CHAIN + "}", id="frac-chain-300"),
    pytest.param("5", r"\boxed{\frac{1}{", id="malformed-unclosed-frac"),
    pytest.param("5", r"\boxed{\sqrt[}{}}", id="malformed-sqrt"),
    pytest.param("5", r"\boxed{\left( 1, 2}", id="malformed-left"),
    pytest.param("5", r"\boxed{10^{10^{10}}!}", id="factorial-of-tower"),
    pytest.param("5", r"\boxed{100000000!}", id="huge-factorial"),
    pytest.param(r"9^{9^{9^{9}}}", r"\boxed{5}", id="pathological-gold"),
]


@pytest.mark.parametrize(("gold", "completion"), PATHOLOGICAL)
def test_pathological_input_returns_within_the_deadline(verifier, gold: str, completion: str) -> None:
    pool = verifier._pool
    wait_until_idle(pool)
    replaced, timeouts = pool.replaced_workers, verifier.stats.pool_timeouts

    start = time.monotonic()
    verdict = verifier.verify(gold, completion)
    elapsed = time.monotonic() - start
    print(f"\n{completion[:40]!r} (gold {gold[:20]!r}): {verdict.reason} in {elapsed:.3f} s")

    assert elapsed < DEADLINE_S + SLACK_S, (elapsed, verdict)
    assert not verdict.correct
    assert verdict.reason in (TIMEOUT, WRONG, UNPARSEABLE, NO_ANSWER), verdict
    if verdict.reason == TIMEOUT:
        assert pool.replaced_workers == replaced + 1
        assert verifier.stats.pool_timeouts == timeouts + 1
        assert TIMEOUT not in verifier._cache.values()  # a timeout is decided again next time, never cached
    else:
        assert pool.replaced_workers == replaced

    # The pool keeps serving: a fresh (uncached) pair goes through Math-Verify and is decided correctly.
    marker = f"y_{{{next(_FRESH)}}}"
    after = verifier.verify(f"{marker}^2", rf"\boxed{{{marker} \cdot {marker}}}")
    assert after.reason == CORRECT, after
    assert after.details["path"] == "math_verify"


def test_a_killed_worker_gives_an_error_verdict_and_the_pool_keeps_serving(verifier) -> None:
    """A worker killed mid-check (as the OOM killer would) is reported as `error`, never as a hang."""
    pool = verifier._pool
    wait_until_idle(pool)
    verdicts = []
    thread = threading.Thread(
        target=lambda: verdicts.append(verifier.verify("5", r"\boxed{\sqrt{7}^{7^{7^{7}}}}"))
    )
    thread.start()
    end = time.monotonic() + DEADLINE_S
    busy = []
    while not busy and time.monotonic() < end:
        busy = [w for w in list(pool._workers) if w.task is not None]
        time.sleep(0.005)
    assert busy, "the item never reached a worker"
    os.kill(busy[0].process.pid, signal.SIGKILL)
    thread.join(RESULT_WAIT_S)
    assert not thread.is_alive()
    (verdict,) = verdicts
    assert verdict.reason == ERROR, verdict
    assert verdict.details["path"].startswith("math_verify:crashed"), verdict
    wait_until_idle(pool)
    assert verifier.verify("u^2", r"\boxed{u \cdot u}").reason == CORRECT


# -- many threads, asyncio -------------------------------------------------------------------------------------


def _thread_cases(k: int) -> list[tuple[str, str, str]]:
    """(gold, completion, expected reason), distinct for each k so that no thread reads another's cache."""
    return [
        (str(k), rf"The answer is $\boxed{{{k}}}$.", CORRECT),  # fast path
        (str(k), rf"\boxed{{{k + 1}}}", WRONG),  # fast path
        (f"x^{{{k}}}", rf"\boxed{{x^{{{k - 1}}} \cdot x}}", CORRECT),  # Math-Verify
        (f"x^{{{k}}}", rf"\boxed{{x^{{{k + 1}}}}}", WRONG),  # fast path: refuted (values differ at any x > 1)
        (str(k), rf"\boxed{{\sqrt{{{k * k}}}}}", CORRECT),  # Math-Verify
        (rf"\frac{{\sqrt{{{k}}}}}{{2}}", rf"\boxed{{\frac{{1}}{{2}}\sqrt{{{k}}}}}", CORRECT),  # Math-Verify
        (f"({k}, {k + 1})", rf"\boxed{{({k + 1}, {k})}}", WRONG),  # Math-Verify: order matters in a tuple
        (str(k), "no final answer here", NO_ANSWER),
    ]


def test_eight_threads_verify_at_once(verifier) -> None:
    wait_until_idle(verifier._pool)
    threads = 8
    barrier = threading.Barrier(threads)
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []
    pool_calls = verifier.stats.pool_calls

    def run(k: int) -> None:
        try:
            barrier.wait(RESULT_WAIT_S)
            results[k] = [
                verifier.verify(gold, completion).reason for gold, completion, _ in _thread_cases(k)
            ]
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(2, 2 + threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(RESULT_WAIT_S)
    assert not errors, errors
    assert not any(worker.is_alive() for worker in workers)
    for k in range(2, 2 + threads):
        assert results[k] == [expected for _, _, expected in _thread_cases(k)], k
    assert verifier.stats.pool_calls - pool_calls == 4 * threads  # the Math-Verify pairs, each decided once


_ASYNC_GOLDS = ["1/2", "x^2", "5", r"\frac{\sqrt{3}}{2}", "(1, 2)", "C", "7", "2"]
_ASYNC_COMPLETIONS = [
    r"So \boxed{\frac{2}{4}}.",
    r"\boxed{x \cdot x}",
    r"\boxed{6}",
    r"\boxed{\frac{1}{2}\sqrt{3}}",
    r"\boxed{(2, 1)}",
    r"\boxed{\text{(C)}}",
    "no answer",
    r"\boxed{\sqrt{4}}",
]


def test_averify_batch_gives_the_same_verdicts_as_verify_batch() -> None:
    config = MathVerifyConfig(timeout_s=DEADLINE_S, workers=2, cache_size=0)  # no cache: both go to the pool
    with MathVerifier(config) as verifier:
        sync = verifier.verify_batch(_ASYNC_GOLDS, _ASYNC_COMPLETIONS)
        calls = verifier.stats.pool_calls
        asynchronous = asyncio.run(verifier.averify_batch(_ASYNC_GOLDS, _ASYNC_COMPLETIONS))
        assert verifier.stats.pool_calls == 2 * calls
        single = asyncio.run(verifier.averify(_ASYNC_GOLDS[1], _ASYNC_COMPLETIONS[1]))

    def summary(verdicts):
        return [(v.reason, v.correct, v.score, v.extracted) for v in verdicts]

    assert summary(asynchronous) == summary(sync)
    assert [v.reason for v in sync] == [CORRECT, CORRECT, WRONG, CORRECT, WRONG, CORRECT, NO_ANSWER, CORRECT]
    assert calls == 4  # x^2, sqrt(3)/2, the tuple and sqrt(4) needed Math-Verify
    assert single.reason == CORRECT


def test_averify_batch_does_not_block_the_event_loop(verifier) -> None:
    wait_until_idle(verifier._pool)

    async def main():
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        start = time.monotonic()
        verdicts = await verifier.averify_batch(
            ["5", "z^2"], [r"\boxed{\sqrt{8}^{8^{8^{8}}}}", r"\boxed{z \cdot z}"]
        )
        elapsed = time.monotonic() - start
        task.cancel()
        return verdicts, ticks, elapsed

    verdicts, ticks, elapsed = asyncio.run(main())
    assert [v.reason for v in verdicts] == [TIMEOUT, CORRECT]
    assert DEADLINE_S <= elapsed < DEADLINE_S + SLACK_S
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= 0.5 * elapsed / 0.01, len(ticks)  # the ticker kept running during the slow batch
    assert max(gaps) < 0.25, max(gaps)


# -- batches, cache, configuration ------------------------------------------------------------------------


def test_verify_batch_with_mismatched_lengths_raises() -> None:
    with MathVerifier(MathVerifyConfig(timeout_s=DEADLINE_S)) as verifier:
        with pytest.raises(ValueError, match="2 gold answers for 1 completions"):
            verifier.verify_batch(["1", "2"], [r"\boxed{1}"])
        with pytest.raises(ValueError):
            verifier.verify_batch([], [r"\boxed{1}"])
        assert verifier.verify_batch([], []) == []
        assert verifier._pool._thread is None  # nothing was submitted


def test_identical_pairs_in_a_batch_are_submitted_once(verifier) -> None:
    calls = verifier.stats.pool_calls
    completions = [
        r"\boxed{w \cdot w \cdot w}",
        r"\boxed{w \cdot w \cdot w}",
        r"The final answer is $w \cdot w \cdot w$.",  # the same extracted answer: the same pair
        r"<answer>w \cdot w \cdot w</answer>",
        r"\boxed{w^{4}}",  # refuted without the pool (refute.py)
    ]
    verdicts = verifier.verify_batch(["w^3"] * len(completions), completions)
    assert [v.reason for v in verdicts] == [CORRECT, CORRECT, CORRECT, CORRECT, WRONG]
    assert verifier.stats.pool_calls - calls == 1


def test_the_cache_is_used_across_batches(verifier) -> None:
    golds, completions = ["v^2", "v^3"], [r"\boxed{v \cdot v}", r"\boxed{v^{2}}"]
    first = verifier.verify_batch(golds, completions)
    calls, hits = verifier.stats.pool_calls, verifier.stats.cache_hits
    second = verifier.verify_batch(golds, completions)
    assert [v.reason for v in first] == [v.reason for v in second] == [CORRECT, WRONG]
    assert verifier.stats.pool_calls == calls  # nothing went to the pool again
    assert verifier.stats.cache_hits == hits + 2
    assert [v.details["path"] for v in second] == ["cache", "cache"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout_s", 0),
        ("timeout_s", -1.0),
        ("timeout_s", math.nan),
        ("float_tolerance", 0),
        ("float_tolerance", 1),
        ("float_tolerance", -1e-6),
        ("float_tolerance", math.nan),
        ("max_boxed", 0),
        ("max_boxed", -3),
        ("workers", 0),
        ("workers", -1),
        ("cache_size", -1),
        ("memory_limit_mb", -1),
        ("memory_limit_mb", 0),
        ("timeout_s", math.inf),
        ("max_answer_chars", 0),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        MathVerifyConfig(**{field: value})


def test_config_accepts_edge_values() -> None:
    config = MathVerifyConfig(timeout_s=0.01, float_tolerance=0.5, max_boxed=1, workers=1, cache_size=0)
    assert config.float_rounding >= 1
    assert MathVerifyConfig(workers=None, memory_limit_mb=None).workers is None


# -- the pool itself ----------------------------------------------------------------------------------------


@pytest.fixture
def pool():
    with DeadlinePool("pool_helpers:call", size=1) as pool:
        yield pool


def result(pool: DeadlinePool, request: tuple, timeout_s: float = 10.0):
    return pool.submit(request, timeout_s).result(RESULT_WAIT_S)


def test_items_with_the_same_affinity_go_to_the_same_worker_and_none_waits_for_it() -> None:
    with DeadlinePool("pool_helpers:call", size=2) as pool:
        assert pool.start(wait_s=RESULT_WAIT_S)
        for _ in range(3):  # one at a time, so that both workers are free each time: affinity decides
            pids = {
                key: pool.submit(("pid", None), 10, affinity=key).result(RESULT_WAIT_S).value
                for key in (0, 1)
            }
            assert pids[0] != pids[1]
            assert pool.submit(("pid", None), 10, affinity=2).result(RESULT_WAIT_S).value == pids[0]
        # every item prefers slot 0, yet both workers work: an idle worker takes another slot's items
        futures = [pool.submit(("sleep_for", 0.2), 10, affinity=0) for _ in range(4)]
        start = time.monotonic()
        assert all(f.result(RESULT_WAIT_S).status == OK for f in futures)
        assert time.monotonic() - start < 0.75, "the second worker stayed idle"


def test_pool_returns_values(pool) -> None:
    outcome = result(pool, ("echo", {"a": [1, 2.5, "x"]}))
    assert outcome.status == OK
    assert outcome.value == {"a": [1, 2.5, "x"]}


def test_a_crashing_worker_gives_crashed_and_the_pool_keeps_serving(pool) -> None:
    assert result(pool, ("echo", 1)).status == OK
    outcome = result(pool, ("crash", 3))
    assert outcome.status == CRASHED
    assert "status 3" in outcome.value
    assert pool.replaced_workers == 1
    assert result(pool, ("echo", 2)).value == 2
    assert result(pool, ("crash", 0)).status == CRASHED  # even a clean exit mid-item is a crash
    assert result(pool, ("echo", 3)).value == 3
    assert pool.replaced_workers == 2


def test_a_worker_killed_while_idle_is_replaced(pool) -> None:
    os.kill(result(pool, ("pid", None)).value, signal.SIGKILL)
    time.sleep(0.3)  # its death is noticed while the pool is idle
    assert result(pool, ("echo", 1)).value == 1
    # Killed just before an item is sent: the item may go down with the worker, but nothing hangs.
    os.kill(result(pool, ("pid", None)).value, signal.SIGKILL)
    assert result(pool, ("echo", 2)).status in (OK, CRASHED)
    assert result(pool, ("echo", 3)).value == 3
    assert pool.replaced_workers == 2


def test_a_raising_function_gives_failed_with_the_message(pool) -> None:
    outcome = result(pool, ("raise_error", "bad input 42"))
    assert outcome.status == FAILED
    assert outcome.value == "ValueError: bad input 42"
    assert result(pool, ("echo", 5)).value == 5
    assert pool.replaced_workers == 0  # an exception does not cost the worker


def test_a_result_that_cannot_be_pickled_gives_failed(pool) -> None:
    outcome = result(pool, ("unpicklable_result", None))
    assert outcome.status == FAILED
    assert "pickle" in outcome.value
    assert result(pool, ("echo", 6)).value == 6
    assert pool.replaced_workers == 0


def test_an_item_that_cannot_be_pickled_gives_failed_and_the_pool_keeps_serving(pool) -> None:
    outcome = result(pool, ("echo", threading.Lock()))
    assert outcome.status == FAILED
    assert "pickle" in outcome.value
    assert result(pool, ("echo", 7)).value == 7


def test_a_hanging_item_times_out_and_its_worker_is_replaced(pool) -> None:
    assert result(pool, ("sleep_for", 0.05), timeout_s=5.0).status == OK
    start = time.monotonic()
    outcome = result(pool, ("sleep_for", 30.0), timeout_s=0.5)
    elapsed = time.monotonic() - start
    assert outcome.status == TIMEOUT
    assert 0.5 <= outcome.seconds < 0.5 + SLACK_S
    assert elapsed < 0.5 + SLACK_S
    assert pool.replaced_workers == 1
    assert result(pool, ("echo", 8)).value == 8


def test_infinite_and_invalid_timeouts(pool) -> None:
    assert result(pool, ("sleep_for", 0.05), timeout_s=math.inf).status == OK  # no deadline
    for bad in (0, -1.0, math.nan):
        with pytest.raises(ValueError, match="timeout_s"):
            pool.submit(("echo", 1), bad)
    assert result(pool, ("echo", 9)).value == 9


def test_close_resolves_pending_items_as_closed() -> None:
    pool = DeadlinePool("pool_helpers:call", size=1)
    assert result(pool, ("echo", 1)).status == OK
    running = pool.submit(("sleep_for", 30.0), 60.0)
    queued = [pool.submit(("echo", i), 60.0) for i in range(3)]
    time.sleep(0.2)  # let the first item reach the worker
    start = time.monotonic()
    pool.close()
    assert time.monotonic() - start < 5.0
    assert running.result(1).status == CLOSED
    assert [f.result(1).status for f in queued] == [CLOSED] * 3
    assert pool.submit(("echo", 1), 1.0).result(1).status == CLOSED  # after close, at once
    pool.close()  # a second close is harmless


def test_a_cancelled_future_is_skipped(pool) -> None:
    assert result(pool, ("echo", 1)).status == OK
    running = pool.submit(("sleep_for", 1.0), 10.0)
    doomed = pool.submit(("crash", 3), 10.0)  # would cost the worker if it ran
    after = pool.submit(("echo", 2), 10.0)
    assert doomed.cancel()
    assert running.result(RESULT_WAIT_S).status == OK
    assert after.result(RESULT_WAIT_S).value == 2
    assert doomed.cancelled()
    assert pool.replaced_workers == 0


def test_a_function_that_cannot_be_imported_fails_fast_and_does_not_spin() -> None:
    with DeadlinePool("pool_helpers:no_such_function", size=2) as pool:
        outcome = pool.submit(("echo", 1), 5.0).result(RESULT_WAIT_S)
        assert outcome.status == CRASHED
        assert "failed to start" in outcome.value
        time.sleep(0.5)  # workers started before the pool gave up finish failing
        removed = pool.replaced_workers
        time.sleep(1.0)
        assert pool.replaced_workers == removed  # and no new ones are started while nothing is asked
        assert pool._workers == []
        again = pool.submit(("echo", 2), 5.0).result(RESULT_WAIT_S)  # a new item tries again
        assert again.status == CRASHED
        assert "failed to start" in again.value


def test_the_pool_is_usable_again_after_fork(pool) -> None:
    parent_worker = result(pool, ("pid", None)).value
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        code = 1
        try:
            outcome = pool.submit(("pid", None), 10.0).result(30)
            code = 0 if outcome.status == OK and outcome.value != parent_worker else 2
        finally:
            os._exit(code)
    end = time.monotonic() + RESULT_WAIT_S
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid or time.monotonic() > end:
            break
        time.sleep(0.05)
    if not pid:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        pytest.fail("the forked child hung using the pool")
    assert os.waitstatus_to_exitcode(status) == 0
    assert result(pool, ("pid", None)).value == parent_worker  # the parent's pool is untouched


_ABANDONING_PARENT = """
import os, sys, time
from rlvr.verifiers import MathVerifier, MathVerifyConfig
verifier = MathVerifier(MathVerifyConfig(timeout_s=60, workers=2))
assert verifier.warmup()
print(" ".join(str(w.process.pid) for w in verifier._pool._workers), flush=True)
verifier._pool.submit(("9", "9^{9^{9^{9}}}", 6), 60)  # a worker is now busy for far longer than the test
time.sleep(1.0)
os._exit(0)  # the caller dies abruptly, without close()
"""


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped by init) counts as gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux-only")
def test_workers_die_with_their_parent(tmp_path) -> None:
    out = tmp_path / "pids.txt"
    with out.open("w") as handle:  # a file, not a pipe: a surviving worker must not block this test
        subprocess.run([sys.executable, "-c", _ABANDONING_PARENT], stdout=handle, timeout=120, check=True)
    pids = [int(p) for p in out.read_text().split()]
    assert len(pids) == 2
    try:
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in pids), "a worker outlived its parent"
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("this row cannot be read")


def test_a_row_that_cannot_be_read_is_an_error_verdict_not_an_exception() -> None:
    with MathVerifier() as verifier:
        bad, good = verifier.verify_batch([_Unprintable(), "2"], ["\\boxed{1}", "\\boxed{2}"])
    assert bad.reason == ERROR and not bad.correct and "cannot be read" in bad.details["path"]
    assert good.reason == CORRECT
