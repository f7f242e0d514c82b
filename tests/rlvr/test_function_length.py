"""No function or method of the project is over 80 lines, outside the perf scripts and the sandboxed harness program."""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 80
# Exempt by the project rule: perf scripts, and the harness program that runs inside the sandbox.
EXEMPT = ("benchmarks/perf/", "verifiers/code_harness_program.py")


def project_files() -> list[str]:
    """Every .py file of the project, relative to ROOT, less hidden folders (.git, .venv*), runs/ and EXEMPT."""
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        relative = Path(folder).relative_to(ROOT)
        subfolders[:] = [
            name for name in subfolders if not name.startswith(".") and (relative.parts or name != "runs")
        ]
        files += [(relative / name).as_posix() for name in names if name.endswith(".py")]
    return sorted(name for name in files if not name.startswith(EXEMPT))


def long_functions(source: str, filename: str) -> list[str]:
    """`filename:line name (N lines)` for each function or method in `source` longer than MAX_LINES."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_LINES:
                found.append(f"{filename}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_scan_covers_the_project_less_the_exemptions() -> None:
    files = project_files()
    assert {"sandbox/runner.py", "tests/rlvr/test_function_length.py", "verifiers/math_verifier.py"} <= set(
        files
    )
    assert not [name for name in files if name.startswith((*EXEMPT, "runs/", ".")) or "/." in name]


def test_long_functions_counts_lines_from_def_to_last_line() -> None:
    at_limit = "def at_limit():\n" + "    x = 1\n" * (MAX_LINES - 1)  # lines 1 to 80
    over = "class C:\n    async def over(self):\n" + "        x = 1\n" * MAX_LINES  # `over`: lines 82 to 162
    short = "    def short(self):\n        pass\n"
    found = long_functions(at_limit + over + short, "example.py")
    assert found == [f"example.py:{MAX_LINES + 2} over ({MAX_LINES + 1} lines)"]


def test_no_function_over_80_lines() -> None:
    offenders = []
    for name in project_files():
        offenders += long_functions((ROOT / name).read_text(encoding="utf-8"), name)
    assert not offenders, f"functions over {MAX_LINES} lines (split them):\n" + "\n".join(offenders)
