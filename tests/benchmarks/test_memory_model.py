"""docs/SCALING.md's memory model: the shapes are Qwen2.5's, the model states it predicts are the ones
benchmarks/perf/memory.py counts, and the doc's fit table is what the model prints."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("memory_model", ROOT / "benchmarks/perf/memory_model.py")
memory_model = importlib.util.module_from_spec(spec)
sys.modules["memory_model"] = memory_model  # dataclasses look their module up there
spec.loader.exec_module(memory_model)


@pytest.mark.parametrize(
    ("name", "published"),
    [("0.5B", 0.49e9), ("1.5B", 1.54e9), ("7B", 7.61e9), ("14B", 14.7e9), ("32B", 32.76e9)],
)
def test_shapes_have_qwen25_parameter_counts(name, published):
    assert memory_model.QWEN25[name].params == pytest.approx(published, rel=0.01)


def test_model_state_is_what_a_real_model_holds():
    """16 B/param full, the adapters' count from a real peft model on a tiny shape."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from transformers import Qwen2Config, Qwen2ForCausalLM

    shape = memory_model.Shape("tiny", 64, 2, 4, 2, 128, vocab=256, tied=True)
    config = Qwen2Config(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == shape.params
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    adapted = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    assert sum(p.numel() for p in adapted.parameters() if p.requires_grad) == shape.lora_params(4)
    assert memory_model.model_state_bytes(shape, "fsdp", 2) == 16 * shape.params // 2


def test_the_docs_fit_table_is_the_models():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        memory_model.fit_table()
    rows = [line for line in printed.getvalue().splitlines() if line.startswith("| ") and "B |" in line]
    doc = (ROOT / "docs" / "SCALING.md").read_text(encoding="utf-8")
    assert len(rows) == 15 and all(row in doc for row in rows)
