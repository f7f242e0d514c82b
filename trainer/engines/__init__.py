"""Policy engines: `hf` (transformers, CPU or GPU), `vllm` (GPU; the CPU build for generation) and `openai`
(any OpenAI-compatible server). `make_engine(name, model, **options)` builds one by name."""

from __future__ import annotations

from typing import Any

from rlvr.errors import ConfigError
from rlvr.trainer.engines.base import Engine, TrainableEngine

ENGINES = {
    "hf": "rlvr.trainer.engines.hf:HFEngine",
    "vllm": "rlvr.trainer.engines.vllm_engine:VLLMEngine",
    "openai": "rlvr.trainer.engines.openai_engine:OpenAIEngine",
}


def make_engine(name: str, model: Any, **options: Any) -> Engine:
    """The engine `name` ("hf", "vllm" or "openai") for `model` (a path, an id, or a loaded model for hf)."""
    import importlib

    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; choose one of {sorted(ENGINES)}")
    module_name, _, class_name = ENGINES[name].partition(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    return engine_class(model, **options)


__all__ = ["ENGINES", "Engine", "TrainableEngine", "make_engine"]
