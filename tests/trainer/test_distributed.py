"""DDP under torchrun (gloo, 2 CPU processes): the update equals one process's update on the whole batch, and
the training loop runs end to end.

The processes run `ddp_worker.py` (next to this file); each launch pays for importing torch and transformers,
so every update case runs in one launch of each kind.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is part of the models extra")
pytest.importorskip("transformers", reason="transformers is part of the models extra")

if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip(
        "torch.distributed with the gloo backend is not available in this torch build",
        allow_module_level=True,
    )

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # pytest's default import mode has put it there already
    sys.path.insert(0, str(HERE))
from ddp_worker import CASES, WORLD  # noqa: E402
from torchrun import finish as wait_for  # noqa: E402
from torchrun import start  # noqa: E402

WORKER = HERE / "ddp_worker.py"
TIMEOUT_S = 300
TOLERANCE = 1e-5


def launch(mode: str, model_dir: str, out_dir: Path, *, processes: int) -> subprocess.Popen:
    """Start the worker alone (processes=1, no torchrun) or under torchrun with `processes` ranks."""
    prefix = [sys.executable]
    if processes > 1:  # --standalone: a c10d rendezvous on a free port, chosen by torchrun
        prefix += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    out_dir.mkdir(parents=True, exist_ok=True)
    return start([*prefix, str(WORKER), mode, model_dir, str(out_dir)])


def finish(process: subprocess.Popen, what: str) -> None:
    wait_for(process, what, TIMEOUT_S)


@pytest.fixture(scope="module")
def updates(small_llama: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Folders of the updated weights per case: (one process, whole batch) and (torchrun, 2 ranks)."""
    root = tmp_path_factory.mktemp("ddp-updates")
    single, multi = root / "single", root / "multi"
    runs = [
        (launch("update", small_llama, single, processes=1), "the one-process update"),
        (launch("update", small_llama, multi, processes=WORLD), f"the {WORLD}-process torchrun update"),
    ]
    for process, what in runs:
        finish(process, what)
    return single, multi


@pytest.mark.parametrize("case", list(CASES))
def test_ddp_update_matches_one_process(case: str, updates: tuple[Path, Path], small_llama: str) -> None:
    from safetensors.torch import load_file

    single, multi = (torch.load(folder / f"{case}.pt", weights_only=True) for folder in updates)
    initial = load_file(Path(small_llama) / "model.safetensors")
    assert single["state"].keys() == multi["state"].keys()
    moved = 0.0
    for name, value in single["state"].items():
        diff = float((value - multi["state"][name]).abs().max())
        assert diff < TOLERANCE, f"{case}: {name} differs by {diff:.2e} between 1 and {WORLD} processes"
        if name in initial:
            moved = max(moved, float((value - initial[name]).abs().max()))
    assert moved > 100 * TOLERANCE, (
        f"{case}: the update barely moved the weights ({moved:.2e}); nothing was tested"
    )
    # The gradient itself: AdamW's first steps are nearly invariant to the gradient's scale, so a loss scaled
    # wrongly (no world-size factor, per-rank counts) can leave the weights within tolerance; its norm cannot.
    # DDP synchronises the gradients before clipping, so rank 0 reports the whole batch's norm.
    for key in ("grad_norm", "optimizer_steps"):
        assert single["metrics"][key] == pytest.approx(multi["metrics"][key], rel=1e-4), key
    expected_steps = CASES[case]["minibatches"] * CASES[case]["num_iterations"]
    assert single["metrics"]["optimizer_steps"] == expected_steps


def test_train_loop_under_torchrun(tiny_model_folder: str, tmp_path: Path) -> None:
    """train() with 2 ranks (gloo): 2 steps of 1 prompt x 4 samples per rank, logs, checkpoint, summary."""
    from safetensors.torch import load_file

    out = tmp_path / "run"
    finish(
        launch("train", tiny_model_folder, out, processes=WORLD), f"train() under torchrun with {WORLD} ranks"
    )
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [m["step"] for m in steps] == [1, 2]
    for metrics in steps:  # per rank: 1 prompt x 4 samples, one optimiser step (averaged over the ranks)
        assert metrics["batch/trajectories"] == 4.0 and metrics["optimizer_steps"] == 1.0
        assert math.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
    weights = out / "checkpoints" / "step-000002" / "model.safetensors"
    assert weights.is_file()
    trained, initial = load_file(weights), load_file(Path(tiny_model_folder) / "model.safetensors")
    assert any(not torch.equal(trained[name], initial[name]) for name in initial), "training changed nothing"
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["steps"] == 2
