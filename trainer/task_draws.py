"""What a step trains on: which tasks are drawn and how many samples each gets (issue: data scheduling).

    tasks = TaskDraws.from_config(config, suite, dist)
    suite, draws, sizes = tasks.draw(prompts, step)   # the stage's suite, its tasks, a group size per task
    tasks.observe(drawn_groups, step)                 # every rank's groups: the history, the level curriculum
    tasks.metrics(step); tasks.state_dict() / load_state_dict(...)   # logs; the checkpoint

The pieces, each off by default (then a step draws `prompts` tasks of `env.suite` uniformly, as `Suite.sample`,
`group_size` samples each):
- `env.stages`: a list of {suite, steps}: stage k draws from its own suite for its steps (the last one's steps
  0: until the end); SRPO's training in stages by domain.
- `env.history_resampling` (SRPO): a task whose last group was all correct leaves the pool, for good or for
  `env.retire_epochs` epochs; all-wrong ones stay (scheduling.py).
- `env.curriculum: pass_rate`: tasks weighted by f(estimated pass rate) (`env.curriculum_weight`).
- `env.pass_rates`: `rlvr eval` results on training tasks seed the history before step 1 (pass_rate_prepass.py).
- `env.level_curriculum: ID`: the `level` override of environment ID moves up 1..5 when the rolling accuracy of
  its samples reaches `env.level_threshold` over `env.level_window` samples.
- `rollout.allocation: knapsack` (Knapsack-RL): the budget prompts x group_size is split over the drawn tasks as
  group sizes in [min_group, max_group] maximising sum_i Value(n_i, p_i) (knapsack.py); a task given 0 is dropped.

The history is the same on every rank: each step's groups of all ranks are observed in rank order.
"""

from __future__ import annotations

from typing import Any

from rlvr.envs.suite import Draw, Suite, parse_entries
from rlvr.errors import ConfigError
from rlvr.trainer.knapsack import allocate, candidate_count
from rlvr.trainer.pass_rate_prepass import read_prepass
from rlvr.trainer.scheduling import LevelCurriculum, TaskSampler
from rlvr.trainer.task_history import TaskHistory

STAGE_SEED = 7919
"""Stage k's suite draws with the run's suite seed + k * STAGE_SEED."""


class TaskDraws:
    """The tasks and group sizes of each step, from the run's scheduling options (module docstring)."""

    def __init__(self, stages: list[tuple[Suite, int]], config: Any, world_size: int) -> None:
        env, r = config.env, config.rollout
        self.stages, self.config, self.world_size = stages, config, world_size
        self.history = TaskHistory()
        if env.pass_rates:  # a pre-pass: each task's samples are one group seen before step 1
            splits = {e.id: e.overrides.get("split") for suite, _ in stages for e in suite.entries}
            for key, accuracies in read_prepass(env.pass_rates, splits).items():
                self.history.observe(key, accuracies, step=0)
        draws_per_step = r.prompts_per_step
        if r.allocation == "knapsack":
            draws_per_step = world_size * self._candidates(r.prompts_per_step // world_size)
        self.samplers = [
            TaskSampler(
                suite,
                self.history,
                history_resampling=env.history_resampling,
                retire_epochs=env.retire_epochs,
                draws_per_step=draws_per_step,
                curriculum=env.curriculum,
                weight=env.curriculum_weight,
            )
            for suite, _ in stages
        ]
        self.level = None
        if env.level_curriculum:
            self.level = LevelCurriculum(window=env.level_window, threshold=env.level_threshold)
            self._apply_level()
        self.sizes: list[int] = []

    @classmethod
    def from_config(cls, config: Any, suite: Suite, rank: int, world_size: int) -> TaskDraws:
        """One stage, `suite` (the run's `env.suite`), or the suites of `env.stages` (each its own draws)."""
        stages = [(suite, 0)]
        if config.env.stages:
            seed = config.run.seed * 1000 + rank
            stages = [
                (
                    Suite(parse_entries(s["suite"], config.env.overrides), seed=seed + k * STAGE_SEED),
                    s["steps"],
                )
                for k, s in enumerate(config.env.stages)
            ]
        return cls(stages, config, world_size)

    def stage(self, step: int) -> int:
        """The stage of `step` (1-based): the first whose cumulative steps reach it, or the last."""
        end = 0
        for index, (_, steps) in enumerate(self.stages):
            end += steps
            if steps == 0 or step <= end:
                return index
        return len(self.stages) - 1

    def draw(self, prompts: int, step: int) -> tuple[Suite, list[Draw], list[int]]:
        """This rank's tasks of `step` and their group sizes (`group_size` each, or the knapsack's split)."""
        stage = self.stage(step)
        r = self.config.rollout
        if r.allocation != "knapsack":
            draws = self.samplers[stage].sample(prompts, step)
            return self.stages[stage][0], draws, [r.group_size] * len(draws)
        draws = self.samplers[stage].sample(self._candidates(prompts), step)
        rates = self.history.pass_rates([(d.env_id, d.task_index) for d in draws])
        sizes = allocate(rates, prompts * r.group_size, r.min_group, self._max_group())
        kept = [(d, n) for d, n in zip(draws, sizes, strict=True) if n > 0]
        self.sizes = [n for _, n in kept]
        return self.stages[stage][0], [d for d, _ in kept], self.sizes

    def observe(self, groups_of_ranks: list[list[tuple[tuple[str, int], list[float]]]], step: int) -> None:
        """Record every rank's groups of `step` ((env_id, task_index), sample accuracies), in rank order."""
        for groups in groups_of_ranks:
            for key, accuracies in groups:
                self.history.observe(key, accuracies, step)
                at_level = self.level is not None and key[0] == self._level_env()
                if at_level and self.level.observe(accuracies):  # moved up a level
                    self.history.forget(key[0])  # the indices now name other tasks
                    self._apply_level()

    def metrics(self, step: int) -> dict[str, float]:
        out = dict(self.samplers[self.stage(step)].metrics(step))
        out["scheduling/stage"] = float(self.stage(step) + 1)
        for name, count in self.history.outcome_counts().items():
            out[f"history/{name}"] = float(count)
        for index, count in enumerate(self.history.pass_rates_histogram(10)):
            out[f"curriculum/pass_rate_hist/{index / 10:.1f}"] = float(count)
        if self.level is not None:
            out["curriculum/level"] = float(self.level.level)
        if self.sizes:
            out["groups/size_mean"] = sum(self.sizes) / len(self.sizes)
            out["groups/size_max"] = float(max(self.sizes))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": self.history.state_dict(),
            "level": None if self.level is None else self.level.state_dict(),
            "stage_rngs": [suite.rng.bit_generator.state for suite, _ in self.stages],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history.load_state_dict(state["history"])
        if self.level is not None and state.get("level") is not None:
            self.level.load_state_dict(state["level"])
            self._apply_level()
        for (suite, _), rng in zip(self.stages, state["stage_rngs"], strict=True):
            suite.rng.bit_generator.state = rng

    def _candidates(self, prompts: int) -> int:
        r = self.config.rollout
        return candidate_count(prompts, r.group_size, r.min_group, self._max_group(), r.overprovision)

    def _max_group(self) -> int:
        r = self.config.rollout
        return r.max_group or 4 * r.group_size

    def _level_env(self) -> str:
        from rlvr.envs.plugins import split_module

        return split_module(self.config.env.level_curriculum)[1]

    def _apply_level(self) -> None:
        """Set the level override of the level-curriculum environment in every stage's suite that has it."""
        env_id = self._level_env()
        found = False
        for suite, _ in self.stages:
            entry = next((e for e in suite.entries if e.id == env_id), None)
            if entry is not None:
                suite.set_overrides(env_id, {**entry.overrides, "level": self.level.level})
                found = True
        if not found:
            raise ConfigError(
                f"env.level_curriculum = {self.config.env.level_curriculum!r} is not in the training suite; "
                "name one of its environments (one with a `level`, e.g. rlvr/arithmetic-v0)"
            )
