"""Length shaping: DAPO's soft overlong punishment and the truncation flag for overlong filtering."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OverlongConfig:
    """DAPO overlong shaping: `max_length` is L_max (tokens), `buffer` is L_cache, `penalty_factor` scales it."""

    max_length: int
    buffer: int
    penalty_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.max_length <= 0:
            raise ValueError(f"max_length must be a positive token count, got {self.max_length}")
        if not 0 < self.buffer <= self.max_length:
            raise ValueError(f"buffer must be in (0, max_length={self.max_length}], got {self.buffer}")
        if self.penalty_factor < 0:
            raise ValueError(f"penalty_factor must be >= 0, got {self.penalty_factor}")


def overlong_penalty(num_tokens: int, config: OverlongConfig) -> float:
    """DAPO soft overlong punishment (ALGORITHMS.md section 6), in [-penalty_factor, 0]:

    0 if |o| <= L_max - L_cache;  ((L_max - L_cache) - |o|) / L_cache  if L_max - L_cache < |o| <= L_max;  -1 beyond.
    """
    if num_tokens < 0:
        raise ValueError(f"num_tokens must be >= 0, got {num_tokens}")
    safe_length = config.max_length - config.buffer
    if num_tokens <= safe_length:
        return 0.0
    if num_tokens <= config.max_length:
        return config.penalty_factor * (safe_length - num_tokens) / config.buffer
    return -config.penalty_factor


def is_truncated(finish_reason: str | None) -> bool:
    """True when generation stopped at the length limit; such completions are dropped by overlong filtering."""
    return finish_reason == "length"
