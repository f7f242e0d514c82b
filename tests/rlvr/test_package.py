"""Packaging: the top-level folders are sub-packages of `rlvr`, and the verifiers do not import torch."""

import subprocess
import sys
from pathlib import Path

import rlvr

ROOT = Path(__file__).resolve().parents[2]


def test_subpackages_map_to_top_level_folders():
    import rlvr.benchmarks
    import rlvr.envs
    import rlvr.sandbox
    import rlvr.trainer
    import rlvr.verifiers

    for module, folder in [
        (rlvr.verifiers, "verifiers"),
        (rlvr.envs, "envs"),
        (rlvr.trainer, "trainer"),
        (rlvr.sandbox, "sandbox"),
        (rlvr.benchmarks, "benchmarks"),
    ]:
        assert Path(module.__file__).resolve().parent == ROOT / folder


def test_verifiers_import_without_torch_and_quickly():
    code = (
        "import sys, time; t = time.perf_counter(); import rlvr.verifiers; "
        "print('torch' in sys.modules, round(time.perf_counter() - t, 2))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "False", "rlvr.verifiers must not import torch"
    assert float(out[1]) < 5.0


def test_version_is_exposed():
    assert rlvr.__version__.count(".") == 2
