"""Which tasks a step trains on (issue 16 items 1-2): SRPO history resampling, a pass-rate curriculum, and a
level curriculum for procedural environments. Budget allocation per task is in knapsack.py.

`TaskSampler.sample(count, step)` draws like `Suite.sample`: an environment by the suite's weights, then a
task of it, from the suite's own generator (so `suite_rng` in the checkpoint covers it). With neither option
on it is draw for draw `Suite.sample`. Then, within the environment:

- History resampling (SRPO, arXiv 2504.14286): a task whose last group came back all correct is *retired*: not
  drawn for `retire_epochs` epochs after that step (0: for good). All-wrong and mixed tasks stay. An epoch of
  environment e is the steps one pass over its tasks takes in expectation:
  `epoch_steps(e) = ceil(num_tasks(e) / (draws_per_step * P(e)))`, P(e) its suite probability. Steps, not
  draws, so every rank of a distributed run (each drawing its own share) retires the same tasks.
  If every task of an environment is retired, its draws fall back to uniform over all of its tasks, with one
  warning per environment: the run goes on (its mixture unchanged) rather than stop mid-training.
- Curriculum (`env.curriculum: pass_rate`): task i is drawn with probability proportional to
  `max(f(p_i), eps)`, p_i the history's pass rate (task_history.py). Default f (`variance`): p (1 - p),
  which favours the middle band: 2 p (1 - p) is the chance that two samples of the task disagree, i.e. that
  its group carries a gradient. Kimi k1.5's prioritised sampling (arXiv 2501.12599, "Sampling strategies")
  is `kimi`: 1 - p; it puts the most weight on never-solved tasks, whose groups are all wrong (zero
  advantage), so it is not the default. Unseen tasks all weigh f(prior mean): a draw picks "an unseen task"
  (then one uniformly, without listing them) or a seen one by weight, so a step costs O(seen tasks), not
  O(num_tasks).
Both compose: a retired task weighs 0.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from rlvr.envs.suite import Draw, Suite
from rlvr.errors import ConfigError
from rlvr.trainer.task_history import TaskHistory

WEIGHTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "variance": lambda p: p * (1.0 - p),  # Bernoulli variance: peaks at p = 0.5
    "kimi": lambda p: 1.0 - p,  # Kimi k1.5 prioritised sampling: proportional to 1 - success rate
}
"""Curriculum weight functions f(p), by name (`env.curriculum_weight`)."""


def epoch_steps(num_tasks: int, draws_per_step: int, probability: float) -> int:
    """Steps of one expected pass over an environment: ceil(num_tasks / (draws_per_step * probability))."""
    return max(1, math.ceil(num_tasks / (draws_per_step * probability)))


def kth_free(k: int, taken: np.ndarray) -> int:
    """The k-th (0-based) non-negative integer not in `taken` (sorted, distinct): k + #taken below it.

    `taken[j] - j` counts the free integers below taken[j]; those with a count <= k lie below the answer."""
    return k + int(np.searchsorted(taken - np.arange(len(taken)), k, side="right"))


class TaskSampler:
    """Draws a suite's tasks, skipping retired ones and/or weighting by f(pass rate) (module docstring)."""

    def __init__(
        self,
        suite: Suite,
        history: TaskHistory,
        *,
        history_resampling: bool = False,
        retire_epochs: int = 0,
        draws_per_step: int = 1,
        curriculum: str = "none",
        weight: str | Callable[[np.ndarray], np.ndarray] = "variance",
        eps: float = 1e-3,
    ) -> None:
        if retire_epochs < 0 or draws_per_step < 1:
            raise ConfigError(
                f"env.retire_epochs={retire_epochs} must be >= 0 (0: for good) and draws per step "
                f"{draws_per_step} >= 1"
            )
        if curriculum not in ("none", "pass_rate"):
            raise ConfigError(f"env.curriculum={curriculum!r}: expected none or pass_rate")
        if isinstance(weight, str) and weight not in WEIGHTS:
            raise ConfigError(f"env.curriculum_weight={weight!r}: expected one of {sorted(WEIGHTS)}")
        if not eps > 0:
            raise ConfigError(f"curriculum eps={eps!r} must be > 0 (every task keeps a chance)")
        self.suite, self.history = suite, history
        self.history_resampling = history_resampling
        self.retire_epochs, self.draws_per_step = retire_epochs, draws_per_step
        named = WEIGHTS.get(weight) if isinstance(weight, str) else weight
        self.weight = None if curriculum == "none" else named
        self.eps = eps
        self.fallbacks = 0  # draws that fell back to uniform: every task of their environment was retired
        self._warned: set[str] = set()

    def retired(self, env_id: str, step: int) -> np.ndarray:
        """Sorted indices of `env_id`'s tasks retired at `step` (empty without history resampling).

        Retired: the last group, seen at step s, was all correct, and
        step <= s + retire_epochs * epoch_steps."""
        if not self.history_resampling:
            return np.zeros(0, dtype=np.int64)
        solved = self.history.all_correct(env_id)
        if self.retire_epochs:
            e = self.suite.ids.index(env_id)
            span = self.retire_epochs * epoch_steps(
                self.suite.num_tasks(env_id), self.draws_per_step, float(self.suite.probabilities[e])
            )
            solved = {i: s for i, s in solved.items() if step <= s + span}
        n = self.suite.num_tasks(env_id)
        return np.array(sorted(i for i in solved if i < n), dtype=np.int64)

    def sample(self, count: int, step: int) -> list[Draw]:
        """`count` draws at `step`: environment by weight, then a task (see the module docstring)."""
        tables: dict[str, Callable[[], int]] = {}
        draws = []
        for _ in range(count):  # the same generator calls as Suite.sample when no option is on
            env_id = self.suite.entries[
                int(self.suite.rng.choice(len(self.suite.entries), p=self.suite.probabilities))
            ].id
            if env_id not in tables:
                tables[env_id] = self._drawer(env_id, step)
            draws.append(Draw(env_id, tables[env_id]()))
        return draws

    def _drawer(self, env_id: str, step: int) -> Callable[[], int]:
        """A function drawing one task index of `env_id` at `step` (the tables are built once per step)."""
        n, rng, retired = self.suite.num_tasks(env_id), self.suite.rng, self.retired(env_id, step)
        if self.weight is None:
            if len(retired) == n:
                return self._fallback(env_id, n)
            return lambda: kth_free(int(rng.integers(n - len(retired))), retired)
        seen = self.history.seen(env_id)
        indices = np.array(sorted(i for i in seen if i < n), dtype=np.int64)  # (S,)
        a, b = self.history.prior(env_id)
        p = np.array(
            [(a + seen[i].last_solved) / (a + b + seen[i].last_samples) for i in indices], dtype=float
        )
        w = np.maximum(self.weight(p), self.eps) if len(p) else np.zeros(0)  # (S,) f(p_i)
        w[np.isin(indices, retired)] = 0.0
        unseen, w0 = n - len(indices), max(float(self.weight(np.array([a / (a + b)]))[0]), self.eps)
        cumulative = np.cumsum(w)
        total = unseen * w0 + (float(cumulative[-1]) if len(w) else 0.0)
        if total <= 0:
            return self._fallback(env_id, n)
        last = int(np.flatnonzero(w)[-1]) if np.any(w) else -1

        def draw() -> int:
            u = float(rng.random()) * total
            if u < unseen * w0 or last < 0:  # an unseen task, uniformly among them
                return kth_free(min(int(u / w0), unseen - 1), indices)
            j = int(np.searchsorted(cumulative, u - unseen * w0, side="right"))
            return int(indices[min(j, last)])

        return draw

    def _fallback(self, env_id: str, n: int) -> Callable[[], int]:
        """Uniform over all of `env_id`'s tasks, warned once: every one of them is retired."""
        if env_id not in self._warned:
            self._warned.add(env_id)
            warnings.warn(
                f"every task of {env_id} is retired (all solved by history resampling); drawing its tasks "
                "uniformly again. Set env.retire_epochs > 0 to bring them back, or drop it from env.suite",
                RuntimeWarning,
                stacklevel=3,
            )

        def draw() -> int:
            self.fallbacks += 1
            return int(self.suite.rng.integers(n))

        return draw

    def metrics(self, step: int) -> dict[str, float]:
        """`scheduling/retired` (tasks retired now), `scheduling/fallbacks` (draws so far)."""
        retired = sum(len(self.retired(env_id, step)) for env_id in self.suite.ids)
        return {"scheduling/retired": float(retired), "scheduling/fallbacks": float(self.fallbacks)}


class LevelCurriculum:
    """A level for a procedural environment (`rlvr/arithmetic-v0`'s `level` 1-5) that moves up once the
    mean accuracy of the last `window` samples at the current level reaches `threshold`; the window then
    restarts."""

    def __init__(
        self, levels: Iterable[int] = (1, 2, 3, 4, 5), window: int = 64, threshold: float = 0.8
    ) -> None:
        self.levels = list(levels)
        if not self.levels or window < 1 or not 0.0 < threshold <= 1.0:
            raise ConfigError(
                f"level curriculum needs levels (got {self.levels}), window >= 1 (got {window}) and a "
                f"threshold in (0, 1] (got {threshold})"
            )
        self.window, self.threshold = window, threshold
        self._index = 0
        self._recent: deque[float] = deque(maxlen=window)

    @property
    def level(self) -> int:
        return self.levels[self._index]

    def observe(self, accuracies: float | Iterable[float]) -> bool:
        """Add sample accuracies at the current level; True when the level just moved up."""
        self._recent.extend(
            [float(accuracies)] if isinstance(accuracies, (int, float)) else map(float, accuracies)
        )
        full = len(self._recent) == self.window
        if full and self._index + 1 < len(self.levels) and sum(self._recent) / self.window >= self.threshold:
            self._index += 1
            self._recent.clear()
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "recent": list(self._recent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["level"] not in self.levels:
            raise ConfigError(f"saved level {state['level']!r} is not one of {self.levels}")
        self._index = self.levels.index(state["level"])
        self._recent = deque(state["recent"], maxlen=self.window)
