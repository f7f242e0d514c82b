"""Nothing below the face imports the face: errors, atomic writes and the version sit at the bottom, and
`import rlvr.verifiers` / `import rlvr.sandbox` load neither Gymnasium, nor the environments, nor torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOTTOM = ("rlvr/errors.py", "rlvr/atomic.py", "rlvr/version.py")
LOWER_PACKAGES = ("sandbox", "verifiers", "envs", "trainer", "benchmarks")


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)


def rlvr_imports(path: Path) -> set[str]:
    """The rlvr modules a file imports (`from rlvr import x` counts as the face, `rlvr`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.split(".")[0] == "rlvr"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rlvr":
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ["rlvr.verifiers", "rlvr.sandbox", "rlvr.errors", "rlvr.atomic", "rlvr"])
def test_light_imports_load_no_gymnasium_envs_or_torch(module):
    result = python(
        f"import sys, {module}\n"
        "heavy = sorted({m.split('.')[0] if not m.startswith('rlvr.') else '.'.join(m.split('.')[:2]) "
        "for m in sys.modules} & {'gymnasium', 'torch', 'rlvr.envs', 'rlvr.trainer', 'rlvr.benchmarks'})\n"
        "print(heavy)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"import {module} loaded {result.stdout.strip()}"


@pytest.mark.parametrize(
    "code",
    [
        "import rlvr, gymnasium\nprint(gymnasium.make('rlvr/arithmetic-v0').spec.id)",
        "import gymnasium, rlvr\nprint(gymnasium.make('rlvr/arithmetic-v0').spec.id)",
        "import rlvr\nprint(rlvr.make('rlvr/arithmetic-v0').spec.id)",
        "import rlvr.envs, gymnasium\nprint(gymnasium.make('rlvr/arithmetic-v0').spec.id)",
    ],
)
def test_gymnasium_make_works_after_import_rlvr(code):
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "rlvr/arithmetic-v0"


@pytest.mark.parametrize("relative", BOTTOM)
def test_bottom_modules_import_nothing_else_of_rlvr(relative):
    assert rlvr_imports(ROOT / relative) == set()


@pytest.mark.parametrize("package", LOWER_PACKAGES)
def test_lower_packages_never_import_the_face(package):
    """Below the face, an rlvr import names a lower package or a bottom module, never `rlvr` or `rlvr.cli*`."""
    bottom = {"rlvr.errors", "rlvr.atomic", "rlvr.version"}
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = {
            name
            for name in rlvr_imports(path)
            if name not in bottom and (name == "rlvr" or name.split(".")[1] not in LOWER_PACKAGES)
        }
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"modules below the face import it: {offenders}"
