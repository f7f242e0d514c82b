"""Paths of the real benchmark files in `../shared/data/` used by the environment tests (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """The path of one shared data file (e.g. "math/gsm8k_test.jsonl"); skips the test when it is absent."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"real benchmark file {path} is absent (shared data folder not mounted next to the repo)")
    return path


# The local copy of each catalog dataset (the registered environments load the hub by default).
DATASET_FILES = {
    "gsm8k": "math/gsm8k_test.jsonl",
    "math": "math/math500.jsonl",
    "math500": "math/math500.jsonl",
    "aime24": "math/aime24.jsonl",
    "aime25": "math/aime25.jsonl",
    "amc23": "math/amc23.jsonl",
    "minerva": "math/minerva_math.jsonl",
    "olympiadbench": "math/olympiadbench.jsonl",
    "humaneval": "code/humaneval.jsonl",
    "mbpp": "code/mbpp.jsonl",
    "lcb": "code/lcb_style.jsonl",
}


def local_overrides(env_id: str) -> dict:
    """`make` overrides that point a registered dataset environment at its local file ({} for the others)."""
    import gymnasium as gym

    dataset = gym.spec(env_id).kwargs.get("dataset")
    if dataset is None:
        return {}
    return {"data_path": str(shared_file(DATASET_FILES[dataset]))}


def lcb_references() -> dict[str, str]:
    """Model solutions (Qwen3-Coder-Plus, MavenCoder run) that pass their public tests, by LCB question id.

    LiveCodeBench ships no reference programs; these stand in for them in the reference-solution check.
    """
    import json

    path = shared_file("code/lcb_solutions_qwen3-coder-plus_mavencoder.jsonl")
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return {row["task_id"]: row["solution"] for row in rows if row.get("passing_public_tests")}


def reference_overrides(env_id: str) -> dict:
    """`make` overrides that give an environment reference solutions its data lacks (LCB)."""
    import gymnasium as gym

    if gym.spec(env_id).kwargs.get("dataset") == "lcb" and env_id.startswith("rlvr/code-"):
        return {"references": lcb_references()}
    return {}
