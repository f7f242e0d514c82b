"""A record per training task of its groups' outcomes, and pass-rate estimates from it (issue 16).

A task is keyed by `(env_id, task_index)`. Each observed group updates the task's totals (groups, samples,
solved) and its *last* group (samples, solved, outcome, step). History resampling reads the last outcome
(SRPO: retire what came back all correct); the curriculum and the knapsack allocation read `pass_rate`.

Pass rate of task i, env e (a Beta prior, posterior mean of the last group):

    p_i = (a_e + s_i) / (a_e + b_e + n_i)           s_i, n_i: solved and samples of task i's last group
    a_e = k * m_e,  b_e = k * (1 - m_e)             k = prior_strength (default 2: the prior weighs 2 samples)
    m_e = (1 + sum_i s_i) / (2 + sum_i n_i)         pooled over the last groups of env e's seen tasks

The last group rather than all groups: the policy moves, and Knapsack-RL (arXiv 2509.25849) estimates p_i from
the task's previous rollouts too. The prior's mean is fitted to the environment's current pooled pass rate
(Laplace-smoothed, so Beta(1, 1) before anything is seen): an unseen task looks like an average task of its
environment, and a task seen once all wrong gets a small but non-zero p (never exactly 0 or 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

from rlvr.errors import ConfigError

Key = tuple[str, int]
ALL_CORRECT, ALL_WRONG, MIXED = "all_correct", "all_wrong", "mixed"
STATE_VERSION = 1


@dataclass
class TaskRecord:
    """What one task's groups came back with. `solved` counts are sums of accuracies in [0, 1]."""

    groups: int = 0
    samples: int = 0
    solved: float = 0.0
    last_samples: int = 0
    last_solved: float = 0.0
    last_step: int = -1  # the step whose group was observed last

    @property
    def outcome(self) -> str:
        """The last group's outcome: all_correct, all_wrong or mixed."""
        if self.last_solved >= self.last_samples:
            return ALL_CORRECT
        return ALL_WRONG if self.last_solved <= 0 else MIXED


class TaskHistory:
    """Per-task records, grouped by environment; JSON-able state for the checkpoint."""

    def __init__(self, prior_strength: float = 2.0) -> None:
        if not prior_strength > 0:
            raise ConfigError(
                f"prior_strength must be > 0 (samples the prior weighs), got {prior_strength!r}"
            )
        self.prior_strength = float(prior_strength)
        self._records: dict[str, dict[int, TaskRecord]] = {}
        self._last_totals: dict[str, list[float]] = {}  # env -> [sum of last_solved, sum of last_samples]
        self._all_correct: dict[str, dict[int, int]] = {}  # env -> {task index: last step}, for retirement

    def observe(self, key: Key, accuracies: Sequence[float], step: int) -> str:
        """Record a group of `key` (its samples' accuracies in [0, 1]) seen at `step`; returns its outcome."""
        env_id, index = key
        accuracies = [float(a) for a in accuracies]
        if not accuracies or any(not 0.0 <= a <= 1.0 for a in accuracies):
            raise ConfigError(f"a group of {key} needs accuracies in [0, 1], got {accuracies!r}")
        record = self._records.setdefault(env_id, {}).setdefault(int(index), TaskRecord())
        totals = self._last_totals.setdefault(env_id, [0.0, 0.0])
        totals[0] += sum(accuracies) - record.last_solved
        totals[1] += len(accuracies) - record.last_samples
        record.groups += 1
        record.samples += len(accuracies)
        record.solved += sum(accuracies)
        record.last_samples, record.last_solved, record.last_step = len(accuracies), sum(accuracies), step
        solved_all = self._all_correct.setdefault(env_id, {})
        if record.outcome == ALL_CORRECT:
            solved_all[int(index)] = step
        else:
            solved_all.pop(int(index), None)
        return record.outcome

    def record(self, key: Key) -> TaskRecord | None:
        return self._records.get(key[0], {}).get(int(key[1]))

    def seen(self, env_id: str) -> dict[int, TaskRecord]:
        """The records of `env_id`'s seen tasks by task index (do not modify)."""
        return self._records.get(env_id, {})

    def all_correct(self, env_id: str) -> dict[int, int]:
        """Task index -> step of the last group, for `env_id`'s tasks whose last group was all correct."""
        return self._all_correct.get(env_id, {})

    def __len__(self) -> int:
        return sum(len(records) for records in self._records.values())

    def prior(self, env_id: str) -> tuple[float, float]:
        """(a, b) of the Beta prior of `env_id`'s tasks: mean m_e (pooled, Laplace-smoothed), strength k."""
        solved, samples = self._last_totals.get(env_id, (0.0, 0.0))
        mean = (1.0 + solved) / (2.0 + samples)
        return self.prior_strength * mean, self.prior_strength * (1.0 - mean)

    def pass_rate(self, key: Key) -> float:
        """p = (a + s_last) / (a + b + n_last); the prior's mean a / (a + b) for an unseen task."""
        a, b = self.prior(key[0])
        record = self.record(key)
        if record is None:
            return a / (a + b)
        return (a + record.last_solved) / (a + b + record.last_samples)

    def pass_rates(self, keys: Iterable[Key]) -> list[float]:
        return [self.pass_rate(key) for key in keys]

    def forget(self, env_id: str) -> None:
        """Drop `env_id`'s records (its tasks changed, e.g. a level curriculum moved to the next level)."""
        for table in (self._records, self._last_totals, self._all_correct):
            table.pop(env_id, None)

    def pass_rates_histogram(self, bins: int = 10) -> list[int]:
        """Seen tasks per equal-width bin of [0, 1] by their last group's solved fraction (1.0: last bin)."""
        if bins < 1:
            raise ConfigError(f"bins must be >= 1, got {bins!r}")
        counts = [0] * bins
        for records in self._records.values():
            for r in records.values():
                counts[min(int(r.last_solved / r.last_samples * bins), bins - 1)] += 1
        return counts

    def outcome_counts(self) -> dict[str, int]:
        """Seen tasks by their last group's outcome."""
        counts = {ALL_CORRECT: 0, ALL_WRONG: 0, MIXED: 0}
        for records in self._records.values():
            for r in records.values():
                counts[r.outcome] += 1
        return counts

    def state_dict(self) -> dict[str, Any]:
        """JSON-able: {"version": 1, "prior_strength": k, "fields": [TaskRecord field names],
        "records": {env_id: {"index": [...], field: [...], ...}}, "last_totals": {env_id: [solved, samples]}}
        (one column per field; the running totals as summed, so a resumed prior is the same to the last
        bit)."""
        names = [f.name for f in fields(TaskRecord)]
        records = {}
        for env_id, table in self._records.items():
            if not table:
                continue
            indices = sorted(table)
            columns: dict[str, list[Any]] = {"index": indices}
            for name, column in zip(
                names, zip(*(astuple(table[i]) for i in indices), strict=True), strict=True
            ):
                columns[name] = list(column)
            records[env_id] = columns
        return {
            "version": STATE_VERSION,
            "prior_strength": self.prior_strength,
            "fields": names,
            "records": records,
            "last_totals": {env_id: list(totals) for env_id, totals in self._last_totals.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the records with those of `state_dict()`; derived tables are rebuilt."""
        if state.get("version") != STATE_VERSION:
            raise ConfigError(
                f"task history state version {state.get('version')!r}; expected {STATE_VERSION}"
            )
        self.prior_strength = float(state["prior_strength"])
        self._records, self._last_totals, self._all_correct = {}, {}, {}
        for env_id, columns in state["records"].items():
            table = self._records.setdefault(env_id, {})
            for row, index in enumerate(columns["index"]):
                table[int(index)] = TaskRecord(*(columns[name][row] for name in state["fields"]))
            self._last_totals[env_id] = [float(x) for x in state["last_totals"][env_id]]
            self._all_correct[env_id] = {i: r.last_step for i, r in table.items() if r.outcome == ALL_CORRECT}
