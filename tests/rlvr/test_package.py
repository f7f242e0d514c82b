"""Packaging: the top-level folders are sub-packages of `rlvr`, and the verifiers do not import torch."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


SOURCES = ("pyproject.toml", "README.md", "rlvr", "verifiers", "envs", "trainer", "sandbox", "benchmarks")


@pytest.mark.slow
def test_wheel_ships_its_data_and_its_cli_runs_from_an_install(tmp_path):
    """`pip wheel .` builds without setuptools warnings, the wheel holds the data files, and `rlvr train --help`
    and `--print-config` (which reads the shipped quickstart.yaml) work from an install of it, not this checkout."""
    pytest.importorskip(
        "setuptools", reason="building the wheel offline needs setuptools in this environment"
    )
    source = tmp_path / "src"  # a copy, so the build's build/ and *.egg-info stay out of the checkout
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Warning" not in built.stdout + built.stderr, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("rlvr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "rlvr/data/quickstart.yaml",
        "rlvr/data/demo_completions.jsonl",
        "rlvr/data/gsm8k_sample.jsonl",
    } <= names
    assert "rlvr/sandbox/build_image.sh" in names and "rlvr/envs/__init__.py" in names

    target = tmp_path / "installed"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--quiet", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import rlvr.envs, rlvr.cli; print(rlvr.__file__); print(rlvr.envs.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert all(Path(line).is_relative_to(target) for line in where.stdout.split()), where.stdout
    cli = [str(target / "bin" / "rlvr"), "train"]
    helped = subprocess.run(
        [*cli, "--help"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert helped.returncode == 0 and helped.stdout.startswith("usage: rlvr train"), helped.stderr
    printed = subprocess.run(
        [*cli, "--print-config"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert printed.returncode == 0, printed.stderr
    assert (
        json.loads(printed.stdout)["env"]["suite"] == "rlvr/arithmetic-v0"
    )  # from the wheel's quickstart.yaml
