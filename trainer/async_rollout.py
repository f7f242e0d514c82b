"""Asynchronous one-step-off-policy rollouts (`rollout.async: true`): step t+1's groups are generated on a
worker thread, with its own copy of the policy, while step t's update runs.

    worker = RolloutWorker(generate, engine_copy, staleness=1)
    worker.submit(step, weights)        # generate `step`'s groups with these weights (a snapshot)
    groups = worker.result(step)        # wait for them; a worker that died raises, it never hangs
    worker.pending_state() / restore_pending(...)   # the in-flight step's groups, in the checkpoint

The schedule with `staleness` s (`rollout.async_staleness`, 0 or 1):
- s = 1: before step t's update the worker is given the current weights, theta_{t-1}, and starts step t+1;
  step t+1 then trains theta_t on samples of theta_{t-1}: one step off-policy. The update's pi_old is the
  behaviour policy, the log-probs the engine recorded while sampling (`UpdateSettings.behaviour_old`), so the
  ratio corrects the staleness; `algorithm.engine_correction` handles what differs between engine and trainer.
- s = 0: step t's rollouts start only after update t-1 (the synchronous loop, through the same worker): it
  equals `rollout.async: false` (tested), which is what makes the asynchronous path checkable.

Torch ops release the GIL, so the worker's decoding and the main thread's forward/backward overlap on the CPU
cores (`time/overlap_frac` is the share of the update time the worker was generating).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch

from rlvr.errors import ConfigError

WAIT_S = 3600.0
"""The longest wait for one step's rollouts before it is an error (a stuck worker must not hang a run)."""


class WorkerDied(ConfigError):
    """The rollout worker stopped with an error: one line, the worker's own error."""


class RolloutWorker:
    """One background thread that generates one step's groups at a time (see the module docstring)."""

    def __init__(self, generate: Callable[[int], Any], engine: Any, *, staleness: int = 1) -> None:
        if staleness not in (0, 1):
            raise ConfigError(f"rollout.async_staleness = {staleness!r} is invalid: expected 0 or 1")
        self.generate, self.engine, self.staleness = generate, engine, staleness
        self._thread: threading.Thread | None = None
        self._step: int | None = None
        self._result: Any = None
        self._error: BaseException | None = None
        self._consumed = False
        self.busy_s = 0.0  # seconds the worker spent generating in the last job
        self.wait_s = 0.0  # seconds the trainer waited for it

    def submit(self, step: int, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load `weights` (copied now, so the trainer may change its own) and start generating `step`."""
        self.wait()
        self.engine.load_weights((name, tensor.detach().clone()) for name, tensor in weights)
        self._step, self._result, self._error, self._consumed = step, None, None, False
        self._thread = threading.Thread(target=self._run, args=(step,), name=f"rollouts-{step}", daemon=True)
        self._thread.start()

    def result(self, step: int, timeout: float = WAIT_S) -> Any:
        """The groups of `step` (submitted before); raises WorkerDied if the worker failed or timed out."""
        if self._step != step:
            raise RuntimeError(f"step {step}'s rollouts were never submitted (the worker has {self._step})")
        began = time.perf_counter()
        self.wait(timeout)
        self.wait_s = time.perf_counter() - began
        if self._error is not None:
            raise WorkerDied(f"the rollout worker failed at step {step}: {self._error}") from self._error
        self._consumed = True
        return self._result

    def pending_step(self) -> int | None:
        """The step submitted (or restored) and not yet taken, else None."""
        return None if self._consumed else self._step

    def metrics(self) -> dict[str, float]:
        """`async/generation_s` (the worker), `async/wait_s` (the trainer), and the overlap: the share of the
        worker's generation that ran while the trainer did something else."""
        overlap = 1.0 - self.wait_s / self.busy_s if self.busy_s > 0 else 0.0
        return {
            "async/generation_s": self.busy_s,
            "async/wait_s": self.wait_s,
            "async/overlap_frac": min(1.0, max(0.0, overlap)),
        }

    def wait(self, timeout: float = WAIT_S) -> None:
        if self._thread is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise WorkerDied(f"the rollout worker did not finish step {self._step} within {timeout:.0f} s")
        self._thread = None

    def pending_state(self) -> dict[str, Any] | None:
        """The finished in-flight step and its groups, for the checkpoint (None when nothing is in flight)."""
        if self.pending_step() is None:
            return None
        self.wait()
        if self._error is not None:
            raise WorkerDied(
                f"the rollout worker failed at step {self._step}: {self._error}"
            ) from self._error
        return {"step": self._step, "groups": self._result}

    def restore_pending(self, state: dict[str, Any] | None) -> None:
        """Take a checkpoint's in-flight step as if the worker had just generated it."""
        if state is not None:
            self._step, self._result, self._error, self._consumed = (
                state["step"],
                state["groups"],
                None,
                False,
            )

    def close(self) -> None:
        try:
            self.wait()
        except WorkerDied:
            pass

    def _run(self, step: int) -> None:
        started = time.perf_counter()
        try:
            self._result = self.generate(step)
        except BaseException as exc:  # handed to the main thread, which raises it
            self._error = exc
        finally:
            self.busy_s = time.perf_counter() - started
