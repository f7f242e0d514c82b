"""Run logging: metrics.jsonl always, TensorBoard and wandb when asked, samples.jsonl, and the curves plot."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from rlvr.atomic import write_text_atomic
from rlvr.errors import ConfigError


class RunLogger:
    """Appends one JSON line per step to `metrics.jsonl` (flushed each step, so a killed run keeps its log)."""

    def __init__(
        self,
        output_dir: Path,
        *,
        tensorboard: bool = False,
        wandb: bool = False,
        project: str = "rlvr",
        config: dict[str, Any] | None = None,
        resume_step: int = 0,
    ) -> None:
        self.output_dir = output_dir
        self.metrics_path = output_dir / "metrics.jsonl"
        self.samples_path = output_dir / "samples.jsonl"
        if resume_step:  # a fresh run starts in a folder without a run (`run_dir.check_output_dir`)
            _truncate_after(self.metrics_path, resume_step)
            _truncate_after(self.samples_path, resume_step)
        self._tb = None
        self._wandb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise ConfigError(
                    "run.tensorboard needs the tensorboard package: pip install rlvr[tracking]"
                ) from exc
            self._tb = SummaryWriter(str(output_dir / "tensorboard"))
        if wandb:
            try:
                import wandb as wandb_module
            except ImportError as exc:
                raise ConfigError("run.wandb needs the wandb package: pip install rlvr[tracking]") from exc
            self._wandb = wandb_module.init(
                project=project, config=config, dir=str(output_dir), resume="allow"
            )

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        record = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        numeric = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        if self._tb is not None:
            for key, value in numeric.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(numeric, step=step)

    def samples(self, step: int, rows: list[dict[str, Any]]) -> None:
        with self.samples_path.open("a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({"step": step, **row}, ensure_ascii=False) + "\n")

    def history(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        with self.metrics_path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def plot_curves(history: list[dict[str, Any]], path: Path, evals: list[dict[str, Any]] | None = None) -> Path:
    """curves.png: training reward and accuracy per step, and the held-out greedy accuracy points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("reward/mean", "reward"), ("accuracy", "train accuracy (sampled)")):
        values = [h.get(key, math.nan) for h in history]
        axes[0].plot(steps, values, marker=".", label=label)
    axes[0].set_xlabel("step")
    axes[0].set_title("training batches")
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    if evals:
        axes[1].plot([e["step"] for e in evals], [e["accuracy"] for e in evals], marker="o", color="C2")
        for e in evals:
            axes[1].annotate(
                f"{e['accuracy']:.2f}", (e["step"], e["accuracy"]), textcoords="offset points", xytext=(0, 6)
            )
    axes[1].set_xlabel("step")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title("held-out greedy accuracy")
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value


def _truncate_after(path: Path, step: int) -> None:
    """On resume from checkpoint `step`, drop the log lines of later steps (they will be redone)."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and json.loads(line).get("step", 0) <= step]
    write_text_atomic(path, "".join(lines))
