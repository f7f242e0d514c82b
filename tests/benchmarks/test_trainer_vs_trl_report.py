"""benchmarks/perf/trainer_vs_trl.py's aggregation, on synthetic step timings: "other" is computed per step (never
negative), a ratio to a time under a millisecond is "n/a", and a disturbed repeat is flagged and left out of the
headline medians."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[2] / "benchmarks" / "perf"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(
        0, str(PERF)
    )  # the script imports its sibling perf_common, as it does when run from there
    try:
        spec = importlib.util.spec_from_file_location("trainer_vs_trl_under_test", PERF / "trainer_vs_trl.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(PERF))
    return module


def step(total, generation, logprobs, backward, tokens=12.0, reward=0.5):
    return {
        "step_s": total,
        "generation_s": generation,
        "logprobs_s": logprobs,
        "backward_s": backward,
        "completion_tokens": tokens,
        "reward": reward,
    }


# The parts' medians come from different steps: median step 10, but median generation 9 and log-probs 9, so
# "median step minus the parts' medians" is 10 - 9 - 9 - 0.5 = -8.5. Per step, the time outside the parts is
# 0, 0 and 0.1 (median 0).
SKEWED = [step(10, 9, 0.5, 0.5), step(10, 0.5, 9, 0.5), step(30, 9, 9, 11.9)]
TRL = [step(20, 6, 6, 6), step(21, 6, 6, 6), step(22, 6, 6, 6)]


def run(repeat, side, steps, others=0.01):
    return {"side": side, "repeat": repeat, "steps": steps, "others_busy_cores": others}


def test_other_is_per_step_and_never_negative(bench):
    summary = bench.medians(SKEWED)
    assert summary["step_s"] == 10 and summary["generation_s"] == 9 and summary["logprobs_s"] == 9
    assert summary["other_s"] == 0.0  # the old aggregation gave -8.5
    assert summary["steps_with_overlap"] == 0
    assert bench.medians(TRL)["other_s"] == pytest.approx(3.0)
    overlapping = bench.medians([step(1.0, 0.6, 0.3, 0.3)])  # parts 1.2 s in a 1.0 s step: a timer bug
    assert overlapping["other_s"] == 0.0 and overlapping["steps_with_overlap"] == 1


def test_a_ratio_to_noise_is_none_not_nonsense(bench):
    figures = bench.aggregate([run(1, "rlvr", SKEWED), run(1, "trl", TRL)], cores=2)
    assert figures["rlvr"]["other_s"] == 0.0
    assert figures["speedup"]["other_s"] is None  # trl's 3 s / rlvr's 0 s: no ratio, not 3e9x
    assert figures["speedup"]["step_s"] == pytest.approx(21 / 10)
    assert all(v is None or 0 < v < 1e3 for v in figures["speedup"].values())
    assert bench.ratio(1.0, 5e-4) is None and bench.ratio(-1.0, 2.0) is None and bench.ratio(3.0, 2.0) == 1.5


def test_a_disturbed_repeat_is_flagged_and_left_out(bench):
    quiet_rlvr = [step(10, 3, 3, 3), step(10, 3, 3, 3)]
    slow_rlvr = [step(16, 5, 5, 5), step(16, 5, 5, 5)]  # repeat 1: another job took the cores
    results = [
        run(1, "rlvr", slow_rlvr, others=0.9),
        run(1, "trl", TRL[:2]),
        run(2, "rlvr", quiet_rlvr),
        run(2, "trl", TRL[:2]),
    ]
    figures = bench.aggregate(results, cores=2)
    assert [r["disturbed"] for r in figures["repeats"]] == [True, False]
    assert figures["used_repeats"] == [2] and not figures["all_disturbed"]
    assert figures["rlvr"]["step_s"] == 10 and figures["rlvr"]["timed_steps"] == 2
    assert figures["speedup"]["step_s"] == pytest.approx(20.5 / 10)
    assert figures["repeats"][0]["speedup_step"] == pytest.approx(20.5 / 16)

    everything = bench.aggregate([{**r, "others_busy_cores": 1.0} for r in results], cores=2)
    assert everything["all_disturbed"] and everything["used_repeats"] == [1, 2]
    assert everything["rlvr"]["timed_steps"] == 4
    unknown = bench.aggregate([{**r, "others_busy_cores": None} for r in results], cores=2)
    assert not any(r["disturbed"] for r in unknown["repeats"])  # no /proc/stat: nothing to flag


def test_report_prints_per_repeat_lines_and_flags(bench, capsys):
    results = [
        run(1, "rlvr", SKEWED, others=0.9),
        run(1, "trl", TRL),
        run(2, "rlvr", SKEWED),
        run(2, "trl", TRL),
    ]
    args = argparse.Namespace(prompts=6, group=6, max_tokens=24, threads=2, repeats=2)
    bench.report(bench.aggregate(results, cores=2), args, cores=2)
    out = capsys.readouterr().out
    assert "repeat 1: " in out and "DISTURBED" in out and "repeat 2: " in out and "quiet" in out
    assert "of repeat 2 of 2" in out
    assert "n/a" in out and "-" not in out.split("trl/rlvr", 1)[1].splitlines()[0]
    assert "rlvr is 2.10x faster per step" in out


def test_main_writes_per_repeat_figures(bench, monkeypatch, tmp_path, capsys):
    """main() end to end with the workers replaced by synthetic results (the real ones train for minutes)."""
    timings = {"rlvr": SKEWED, "trl": TRL}
    monkeypatch.setattr(
        bench, "spawn", lambda side, args: {"side": side, "steps": timings[side], "others_busy_cores": 0.0,
                                            "process_s": 1.0, "trl_version": "test"}
    )  # fmt: skip
    out = tmp_path / "figures.json"
    monkeypatch.setattr(sys, "argv", ["trainer_vs_trl.py", "--repeats", "3", "--json-out", str(out)])
    bench.main()
    figures = json.loads(out.read_text())
    assert [r["repeat"] for r in figures["repeats"]] == [1, 2, 3] and figures["used_repeats"] == [1, 2, 3]
    assert figures["rlvr"]["timed_steps"] == 9 and figures["speedup"]["other_s"] is None
    assert "rlvr is 2.10x faster per step" in capsys.readouterr().out
