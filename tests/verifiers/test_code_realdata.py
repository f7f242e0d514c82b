"""`CodeVerifier` on the real benchmark files of `../shared/data/code/` (see its MANIFEST.md), in real sandboxes.

- HumanEval: every canonical solution (prompt + canonical_solution) passes, on Docker and on the local backend.
- MBPP (sanitized, 427 rows): every reference `code` passes its `test_list` after `test_imports`, except the
  rows in `MBPP_STRICT_EXCEPTIONS`, whose results are not plain data; with `STDLIB_RESULT_TYPES` they pass too.
- LiveCodeBench (lcb_style.jsonl, 400 rows): there is no reference solution in that file, so the public tests of
  every row are run with the two MavenCoder solution files, joined on task_id == question_id.
- Labelled outputs: HumanEval completions graded by the official harness (`passed`), and the MavenCoder
  solutions' `passing_public_tests` (LiveCodeBench's own grading code). Every disagreement was inspected and is in
  `ADJUDICATED` with who is right; a new one fails the test until it is adjudicated.

Measured 2026-11-22 (2 cores): HumanEval canonical 164/164 on both backends; MBPP 423/427 strict (4 exceptions,
all result types), 427/427 with STDLIB_RESULT_TYPES; phi-1.5 164/164 = 100 % agreement, WC-2B 164/164 = 100 %;
LCB gpt-4o-mini 399-400/400, qwen3-coder-plus 397-399/400 (the spread is the machine-speed rows below).
Figures of each run are printed in the summary ("verifier accuracy on real data").
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest
import realdata

from rlvr.sandbox import SandboxUnavailable, make_sandbox
from rlvr.verifiers.code import STDLIB_RESULT_TYPES, CodeConfig, CodeVerdict, CodeVerifier
from rlvr.verifiers.code_extract import CodeExtractConfig
from rlvr.verifiers.code_tests import CodeTests

pytestmark = [
    pytest.mark.slow,
    pytest.mark.docker,
    pytest.mark.filterwarnings("ignore:invalid escape sequence"),  # parsing the candidates
]


# MBPP reference solutions that fail under the strict plain-data rule (all pass with STDLIB_RESULT_TYPES).
MBPP_STRICT_EXCEPTIONS = {
    88: "freq_count returns a collections.Counter (a dict subclass), compared with a dict literal",
    737: "check_str returns the re.Match of re.search; the asserts test its truth value",
    787: "text_match_three returns the re.Match of re.search; the asserts test its truth value",
    794: "text_starta_endb returns the re.Match of re.search; the asserts test its truth value",
}

_SPEED = (
    "ambiguous",
    "right output, but the third public test takes 4-9 s on this 2-core machine (measured 3.7-9.3 s across runs); "
    "LiveCodeBench's limit is 6 s per test and the labeller's machine was faster. Machine-dependent: either verdict "
    "is accepted.",
)
# (file, task id) -> (who is right: "rlvr" | "label" | "ambiguous", why). Rows marked with _SPEED may agree or not.
ADJUDICATED: dict[tuple[str, str], tuple[str, str]] = {
    ("lcb-gpt-4o-mini", "abc328_e"): _SPEED,
    ("lcb-qwen3-coder-plus", "abc328_e"): _SPEED,
    ("lcb-qwen3-coder-plus", "abc301_e"): _SPEED,
    ("lcb-qwen3-coder-plus", "abc306_e"): (
        "ambiguous",
        "the solution imports sortedcontainers, a third-party package: the labeller's environment had it, the "
        "sandbox image is the standard library only, so rlvr reports ModuleNotFoundError (runtime_error). Right "
        "for a stdlib-only judge; AtCoder's judge does install sortedcontainers.",
    ),
}
HUMANEVAL_MIN_AGREEMENT = 0.98
LCB_MIN_AGREEMENT = 0.98


def open_sandbox(backend: str) -> Iterator[object]:
    try:
        box = make_sandbox(backend, size=2)
    except SandboxUnavailable as exc:
        pytest.skip(f"the {backend} sandbox cannot start here: {exc}")
    with box:
        yield box


@pytest.fixture(scope="module")
def docker_box() -> Iterator[object]:
    yield from open_sandbox("docker")


@pytest.fixture(scope="module")
def local_box() -> Iterator[object]:
    yield from open_sandbox("local")


def failures(rows: list[dict], verdicts: list[CodeVerdict], key: str) -> list[str]:
    return [
        f"{row[key]}: {v.reason}: {v.details.get('error', '')[:300]}"
        for row, v in zip(rows, verdicts, strict=True)
        if not v.correct
    ]


# -- reference solutions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["docker", "local"])
def test_humaneval_canonical_solutions_pass(backend: str, request: pytest.FixtureRequest) -> None:
    box = request.getfixturevalue(f"{backend}_box")
    rows = realdata.read_code_rows("humaneval.jsonl")
    verdicts = CodeVerifier(box).verify_batch(
        [row["canonical_solution"] for row in rows], [CodeTests.from_humaneval(row) for row in rows]
    )
    passed = sum(v.correct for v in verdicts)
    realdata.report(f"code  HumanEval canonical solutions ({backend}): {passed}/{len(rows)}")
    assert passed == len(rows) == 164, failures(rows, verdicts, "task_id")


def test_mbpp_reference_solutions_pass(docker_box: object) -> None:
    rows = realdata.read_code_rows("mbpp.jsonl")
    suites = [CodeTests.from_mbpp(row) for row in rows]
    strict = CodeVerifier(docker_box, CodeConfig(test_timeout_s=30.0, total_timeout_s=90.0))
    verdicts = strict.verify_batch([row["code"] for row in rows], suites)
    failed = {row["task_id"]: v for row, v in zip(rows, verdicts, strict=True) if not v.correct}
    realdata.report(
        f"code  MBPP sanitized reference code (strict plain data): {len(rows) - len(failed)}/{len(rows)}, "
        f"exceptions {sorted(failed)}"
    )
    assert sorted(failed) == sorted(MBPP_STRICT_EXCEPTIONS), failures(rows, verdicts, "task_id")
    for verdict in failed.values():
        assert verdict.reason == "wrong_answer" and "not plain data" in verdict.details["error"], verdict
    lenient = CodeVerifier(docker_box, CodeConfig(test_timeout_s=30.0, result_types=STDLIB_RESULT_TYPES))
    exceptions = [row for row in rows if row["task_id"] in MBPP_STRICT_EXCEPTIONS]
    again = lenient.verify_batch(
        [row["code"] for row in exceptions], [CodeTests.from_mbpp(r) for r in exceptions]
    )
    assert all(v.correct for v in again), failures(exceptions, again, "task_id")
    realdata.report(f"code  MBPP with STDLIB_RESULT_TYPES: {len(rows)}/{len(rows)}")


# -- labelled outputs ------------------------------------------------------------------------------------------


def check_agreement(
    name: str, labels: list[bool], verdicts: list[CodeVerdict], ids: list[str], floor: float
) -> None:
    agree = sum(v.correct == label for v, label in zip(verdicts, labels, strict=True))
    reasons = collections.Counter(v.reason for v in verdicts)
    realdata.report(
        f"code  {name}: rlvr agrees with the labels on {agree}/{len(labels)} = {agree / len(labels):.2%} "
        f"(labels: {sum(labels)} pass; rlvr: {dict(reasons)})"
    )
    new = [
        f"{task_id}: label {label}, rlvr {v.reason}: {v.details.get('error', '')[:300]}"
        for task_id, label, v in zip(ids, labels, verdicts, strict=True)
        if v.correct != label and (name, task_id) not in ADJUDICATED
    ]
    assert not new, f"{name}: disagreements not adjudicated: {new}"
    assert agree / len(labels) >= floor


@pytest.mark.parametrize("sample_file", ["phi15", "wc2b"])
def test_humaneval_samples_agree_with_the_official_harness(docker_box: object, sample_file: str) -> None:
    problems = {row["task_id"]: row for row in realdata.read_code_rows("humaneval.jsonl")}
    rows = realdata.read_code_rows(f"humaneval_samples_results_{sample_file}.jsonl")
    verifier = CodeVerifier(docker_box, CodeConfig(extract=CodeExtractConfig(raw=True), test_timeout_s=3.0))
    verdicts = verifier.verify_batch(
        [row["completion"] for row in rows],
        [CodeTests.from_humaneval(problems[row["task_id"]]) for row in rows],
    )
    ids = [row["task_id"] for row in rows]
    check_agreement(
        f"humaneval-{sample_file}", [row["passed"] for row in rows], verdicts, ids, HUMANEVAL_MIN_AGREEMENT
    )


@pytest.fixture(scope="module")
def lcb_verdicts(docker_box: object) -> dict[str, tuple[list[dict], list[CodeVerdict]]]:
    """Both MavenCoder solution files against the public tests of lcb_style.jsonl, in one batch."""
    suites = {
        row["question_id"]: CodeTests.from_lcb(row) for row in realdata.read_code_rows("lcb_style.jsonl")
    }
    files = {
        "lcb-gpt-4o-mini": realdata.read_code_rows("lcb_solutions_gpt-4o-mini_mavencoder.jsonl"),
        "lcb-qwen3-coder-plus": realdata.read_code_rows("lcb_solutions_qwen3-coder-plus_mavencoder.jsonl"),
    }
    rows = [row for name in files for row in files[name]]
    # LiveCodeBench's 6 s per test; a row's verdict only needs its tests up to the first failure.
    config = CodeConfig(extract=CodeExtractConfig(raw=True), test_timeout_s=6.0, stop_at_first_failure=True)
    verdicts = CodeVerifier(docker_box, config).verify_batch(
        [row["solution"] for row in rows], [suites[row["task_id"]] for row in rows]
    )
    out, start = {}, 0
    for name, file_rows in files.items():
        out[name] = (file_rows, verdicts[start : start + len(file_rows)])
        start += len(file_rows)
    return out


def test_lcb_public_tests_run_for_every_row(lcb_verdicts: dict) -> None:
    ran: dict[str, set[str]] = collections.defaultdict(set)
    for rows, verdicts in lcb_verdicts.values():
        for row, verdict in zip(rows, verdicts, strict=True):
            assert verdict.reason not in ("bad_tests", "sandbox_error", "no_code"), (row["task_id"], verdict)
            ran[row["task_id"]].add(verdict.reason)
    passed_by_one = sum("correct" in reasons for reasons in ran.values())
    realdata.report(
        f"code  LiveCodeBench public tests: {len(ran)}/400 rows parsed and ran; {passed_by_one}/400 passed by "
        "at least one of the two MavenCoder solutions"
    )
    assert len(ran) == 400
    assert passed_by_one >= 380  # 386-387 measured; rows near the 6 s limit vary with the load


@pytest.mark.parametrize("name", ["lcb-gpt-4o-mini", "lcb-qwen3-coder-plus"])
def test_lcb_solutions_agree_with_their_labels(lcb_verdicts: dict, name: str) -> None:
    rows, verdicts = lcb_verdicts[name]
    labels = [bool(row["passing_public_tests"]) for row in rows]
    check_agreement(name, labels, verdicts, [row["task_id"] for row in rows], LCB_MIN_AGREEMENT)
