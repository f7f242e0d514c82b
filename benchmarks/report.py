"""The Markdown report of an evaluation directory: one table of metrics, breakdowns, and how each number was made."""

from __future__ import annotations

from typing import Any

VOTE_RULES = {"math": "math-verifier equivalence", "exact": "identical text"}


def percent(metric: dict[str, float]) -> str:
    """A metric's value and standard error in percent, as "61.3 ± 2.1"."""
    return f"{100 * metric['value']:.1f} ± {100 * metric['std_error']:.1f}"


def metrics_row(summary: dict[str, Any], names: list[str]) -> list[str]:
    return [percent(summary["metrics"][name]) if name in summary["metrics"] else "" for name in names]


def markdown_report(report: dict[str, Any]) -> str:
    """The report: metrics per suite (percent, ± standard error over problems), then each suite's details."""
    suites = list(report["suites"].values())
    lines = [f"# Evaluation ({report.get('date', '')}, rlvr {report.get('rlvr_version', '')})", ""]
    names = _ordered_names(suites)
    lines += _table(
        ["suite", "problems", *names],
        [[s["suite"], str(s["problems"]), *metrics_row(s, names)] for s in suites],
    )
    lines += ["", "Values in percent, ± the standard error of the mean over problems."]
    for summary in suites:
        lines += ["", *suite_details(summary)]
    return "\n".join(lines) + "\n"


def suite_details(summary: dict[str, Any]) -> list[str]:
    """A suite's provenance, sample statistics and breakdown tables."""
    prov = summary.get("provenance", {})
    sampling = prov.get("sampling", {})
    data = prov.get("data", {})
    engine = prov.get("engine", {})
    model = prov.get("model", {})
    stats = summary["samples"]
    source = (
        f"{data.get('path')} (sha256 {data.get('sha256')})"
        if data.get("sha256")
        else f"{data.get('hub_id')} @ {data.get('revision')}"
        if data.get("hub_id")
        else str(data.get("source"))
    )
    lines = [
        f"## {summary['suite']}",
        "",
        f"- environment: `{summary['env_id']}`; data: {source}",
        f"- problems: {summary['problems']} of {summary['problems_asked']} asked, n = {summary['n']} samples each",
        f"- model: {model.get('model')} ({model.get('path', model.get('model'))})",
        f"- engine: {engine.get('engine')} ({engine.get('version')})",
        f"- sampling: temperature {sampling.get('temperature')}, top_p {sampling.get('top_p')}, "
        f"max_tokens {sampling.get('max_tokens')}, seed {sampling.get('seed')}",
        f"- samples: {stats['samples']}, truncated {100 * stats['truncated']:.1f}%, mean tokens "
        f"{stats['mean_tokens']:.0f}; verdicts: "
        + ", ".join(f"{k} {v}" for k, v in stats["reasons"].items()),
    ]
    if any(name.startswith("maj@") for name in summary["metrics"]):
        lines.append(
            f"- maj@k: answers clustered by {VOTE_RULES.get(summary.get('vote'), 'their vote rule')}, "
            f"subset expectation {summary['maj_estimate']}"
        )
    timing = summary.get("timing", {})
    if timing.get("tokens_per_s"):
        lines.append(
            f"- this run: {timing['new_samples']} new samples in {timing['seconds']:.0f} s, "
            f"{timing['tokens_per_s']:.0f} generated tokens/s"
        )
    names = list(summary["metrics"])
    for field, table in summary.get("breakdowns", {}).items():
        lines += ["", f"By {field}:", ""]
        lines += _table(
            [field, "problems", *names],
            [[label, str(row["problems"]), *metrics_row(row, names)] for label, row in table.items()],
        )
    return lines


def _ordered_names(suites: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for summary in suites:
        names += [name for name in summary["metrics"] if name not in names]
    order = {"avg": 0, "pass": 1, "maj": 2}
    return sorted(names, key=lambda name: (order[name.split("@")[0]], int(name.split("@")[1])))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
