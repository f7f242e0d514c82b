"""Fixtures shared by the test packages: the embedded SmolLM2 folder, a tiny random Llama with its tokenizer, an
engine on it."""

from __future__ import annotations

import pytest

from rlvr.errors import ConfigError


@pytest.fixture(scope="session")
def smollm2_folder() -> str:
    """The HF folder of the embedded default model (SmolLM2-135M-Instruct), converted once into the cache."""
    pytest.importorskip("transformers", reason="transformers is part of the dev extra")
    from rlvr.trainer.engines.models import resolve_model

    try:
        return resolve_model("smollm2-135m-instruct")
    except ConfigError as exc:
        pytest.skip(f"the embedded model is not available: {exc}")


@pytest.fixture(scope="session")
def tiny_model_folder(smollm2_folder: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random LlamaForCausalLM (2 layers, hidden 32) with SmolLM2's tokenizer, saved as an HF folder.

    `initializer_range` is 0.5 (not 0.02) so the next-token distribution is far from uniform: greedy choices have
    clear margins, and padding's rounding differences cannot flip them.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlvr.trainer.engines.models import load_tokenizer

    tokenizer = load_tokenizer(smollm2_folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        initializer_range=0.5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_folder: str):
    from rlvr.trainer.engines.hf import HFEngine

    return HFEngine(tiny_model_folder)


@pytest.fixture(scope="session")
def small_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random Llama (vocab 256, 2 layers, untied head) saved as an HF folder, for the torchrun tests (DDP,
    FSDP); no tokenizer is needed for an update."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("small-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)
