"""Model names: the embedded default, folders, hub ids, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr.errors import ConfigError
from rlvr.trainer.engines import make_engine
from rlvr.trainer.engines.models import DEFAULT_MODEL, resolve_model


def test_the_embedded_default_is_an_hf_folder_made_from_the_gguf(smollm2_folder):
    folder = Path(smollm2_folder)
    assert folder.name == DEFAULT_MODEL
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()
    assert resolve_model(DEFAULT_MODEL) == smollm2_folder  # made once, then reused


def test_folders_hub_ids_and_errors(tmp_path, tiny_model_folder):
    assert resolve_model(tiny_model_folder) == tiny_model_folder
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(ConfigError, match="neither a Hugging Face model folder"):
        resolve_model(tmp_path)
    with pytest.raises(ConfigError, match="neither a folder, a hub id"):
        resolve_model("no-such-model")
    with pytest.raises(ConfigError, match="unknown engine 'tgi'"):
        make_engine("tgi", tiny_model_folder)
