"""`rlvr compare`: several evaluation directories side by side, a Markdown table per suite and a pass@k plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlvr.atomic import write_text_atomic
from rlvr.benchmarks.evaluator import SUMMARY_FILE
from rlvr.benchmarks.report import metrics_row
from rlvr.errors import DataError


def load_summary(folder: Path) -> dict[str, Any]:
    """The summary.json of an evaluation directory; DataError saying what to run when it is missing or bad."""
    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        raise DataError(f"{path} does not exist: pass directories written by `rlvr eval --out DIR`")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); rerun `rlvr eval` to rewrite it") from exc
    if not isinstance(report, dict) or not isinstance(report.get("suites"), dict):
        raise DataError(f"{path} has no 'suites' object: it was not written by `rlvr eval`")
    return report


def suite_names(reports: Sequence[dict[str, Any]]) -> list[str]:
    """Every suite of the reports, in first-seen order."""
    names: list[str] = []
    for report in reports:
        names += [name for name in report["suites"] if name not in names]
    return names


def comparison_table(reports: Sequence[dict[str, Any]], names: Sequence[str]) -> str:
    """One table per suite: a row per run, a column per metric (percent ± standard error)."""
    suites = suite_names(reports)
    lines: list[str] = []
    for suite in suites:
        present = [
            (name, r["suites"][suite]) for name, r in zip(names, reports, strict=True) if suite in r["suites"]
        ]
        metrics: list[str] = []
        for _, summary in present:
            metrics += [m for m in summary["metrics"] if m not in metrics]
        lines += [f"### {suite}", "", "| run | model | problems | " + " | ".join(metrics) + " |"]
        lines.append("|" + "|".join("---" for _ in range(3 + len(metrics))) + "|")
        for name, summary in present:
            model = summary.get("provenance", {}).get("model", {}).get("model", "")
            row = [name, str(model), str(summary["problems"]), *metrics_row(summary, metrics)]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_pass_at_k(reports: Sequence[dict[str, Any]], names: Sequence[str], path: Path) -> Path:
    """pass@k (solid) and maj@k (dashed) against k, one panel per suite, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = suite_names(reports)
    fig, axes = plt.subplots(1, len(suites), figsize=(4.2 * len(suites), 3.6), squeeze=False)
    for ax, suite in zip(axes[0], suites, strict=True):
        for index, (name, report) in enumerate(zip(names, reports, strict=True)):
            summary = report["suites"].get(suite)
            if summary is None:
                continue
            colour = f"C{index % 10}"
            for kind, style in (("pass", "-o"), ("maj", "--s")):
                points = sorted(
                    (int(m.split("@")[1]), v["value"])
                    for m, v in summary["metrics"].items()
                    if m.startswith(kind + "@")
                )
                if points:
                    ks, values = zip(*points, strict=True)
                    label = f"{name} {kind}@k"
                    ax.plot(ks, [100 * v for v in values], style, color=colour, label=label, markersize=4)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("percent")
        ax.set_title(suite)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def compare_runs(
    folders: Sequence[Path], out_dir: Path, names: Sequence[str] | None = None
) -> tuple[str, list[Path]]:
    """Write compare.md and compare.png to `out_dir`; returns the table and the files written."""
    reports = [load_summary(folder) for folder in folders]
    names = list(names) if names else [Path(folder).resolve().name for folder in folders]
    if len(names) != len(reports):
        raise DataError(f"got {len(names)} names for {len(reports)} directories")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = comparison_table(reports, names)
    markdown = write_text_atomic(out_dir / "compare.md", "# Comparison\n\n" + table)
    plot = plot_pass_at_k(reports, names, out_dir / "compare.png")
    return table, [markdown, plot]
