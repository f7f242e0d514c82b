"""The `hf` engine: its logprobs against a plain forward pass, greedy decoding against `model.generate` and
against itself unpadded, n samples, seeds, stop strings, finish reasons, top-k/top-p, prompt ids, weight loading.

Mostly on a tiny random Llama (tests/trainer/conftest.py); the `slow` tests use the embedded SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is part of the models extra")

from rlvr.envs.types import Completion, Sampling  # noqa: E402
from rlvr.trainer.engines import Engine, TrainableEngine, make_engine  # noqa: E402
from rlvr.trainer.engines.hf import HFEngine  # noqa: E402

GREEDY = Sampling(max_tokens=24, temperature=0)
CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "You are a careful assistant who answers in full sentences."},
        {"role": "user", "content": "What is the capital of France, and why did it become the capital?"},
    ],
    [{"role": "user", "content": "Count to five."}],
]
EOS_BIAS = 10.0
"""Bias on the EOS logit of the `eos_engine` model: at temperature 0.7 rows end after a few to 40+ tokens."""


def ids(completions: list[Completion]) -> list[tuple[int, ...]]:
    return [c.token_ids for c in completions]


def forward_logprobs(
    model, prompt: list[int], completion: tuple[int, ...], temperature: float
) -> torch.Tensor:
    """log softmax(logits / T) of each completion token, from one forward pass over prompt + completion."""
    sequence = torch.tensor([prompt + list(completion)])
    with torch.no_grad():
        logits = model(input_ids=sequence).logits[0].float()  # (T, V)
    logp = torch.log_softmax(logits[len(prompt) - 1 : -1] / temperature, dim=-1)  # (C, V)
    return logp.gather(-1, torch.tensor(completion)[:, None])[:, 0]


@pytest.fixture(scope="module")
def eos_engine(tiny_model_folder: str) -> HFEngine:
    """The tiny model with a bias on the EOS logit, so sampled rows end at different steps."""
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    model = load_model(tiny_model_folder)
    tokenizer = load_tokenizer(tiny_model_folder)
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    head.weight = model.lm_head.weight
    with torch.no_grad():
        head.bias.zero_()
        head.bias[tokenizer.eos_token_id] = EOS_BIAS
    model.lm_head = head
    return HFEngine(model, tokenizer)


@pytest.mark.parametrize("temperature", [0.7, 0.0])
def test_logprobs_match_a_plain_forward_pass(eos_engine: HFEngine, temperature: float) -> None:
    sampling = Sampling(max_tokens=48, temperature=temperature, seed=0)
    completions = eos_engine.generate(CONVERSATIONS, sampling, n=2)
    prompts = [eos_engine.prompt_ids(c) for c in CONVERSATIONS for _ in range(2)]
    assert len({len(p) for p in prompts}) == 3  # left padding exercised
    if temperature > 0:
        assert len({len(c.token_ids) for c in completions}) >= 3  # rows end at different steps: pruning
        assert "stop" in {c.finish_reason for c in completions}
    for prompt, completion in zip(prompts, completions, strict=True):
        expected = forward_logprobs(eos_engine.model, prompt, completion.token_ids, temperature or 1.0)
        assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=1e-4, rtol=0)


def test_eos_is_the_last_token_and_not_in_the_text(eos_engine: HFEngine) -> None:
    eos = eos_engine.tokenizer.eos_token_id
    completions = eos_engine.generate(CONVERSATIONS, Sampling(max_tokens=48, temperature=0.7, seed=1), n=4)
    stopped = [c for c in completions if c.finish_reason == "stop"]
    assert stopped
    for completion in completions:
        assert eos not in completion.token_ids[:-1]
        assert eos_engine.tokenizer.eos_token not in completion.text
        if completion.finish_reason == "stop":
            assert completion.token_ids[-1] == eos
            assert completion.text == eos_engine.tokenizer.decode(completion.token_ids[:-1])
        else:
            assert len(completion.token_ids) == 48
        assert len(completion.logprobs) == len(completion.token_ids)


def test_greedy_alone_equals_greedy_in_a_padded_batch(tiny_engine: HFEngine) -> None:
    batched = tiny_engine.generate(CONVERSATIONS, GREEDY)
    alone = [tiny_engine.generate([c], GREEDY)[0] for c in CONVERSATIONS]
    assert ids(batched) == ids(alone)
    assert [c.text for c in batched] == [c.text for c in alone]


def test_greedy_equals_model_generate(tiny_engine: HFEngine) -> None:
    tokenizer = tiny_engine.tokenizer
    prompts = [tiny_engine.prompt_ids(c) for c in CONVERSATIONS[:2]]
    ours = tiny_engine.generate(CONVERSATIONS[:2], GREEDY)
    for prompt, completion in zip(prompts, ours, strict=True):
        output = tiny_engine.model.generate(
            torch.tensor([prompt]), do_sample=False, max_new_tokens=24, pad_token_id=tokenizer.pad_token_id
        )
        assert tuple(output[0, len(prompt) :].tolist()) == completion.token_ids
    width = max(len(p) for p in prompts)  # and as a left-padded batch
    batch = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    output = tiny_engine.model.generate(
        batch, attention_mask=mask, do_sample=False, max_new_tokens=24, pad_token_id=tokenizer.pad_token_id
    )
    assert [tuple(row) for row in output[:, width:].tolist()] == ids(ours)


def test_max_batch_size_splits_without_changing_results(
    tiny_model_folder: str, tiny_engine: HFEngine
) -> None:
    small = HFEngine(tiny_engine.model, tiny_engine.tokenizer, max_batch_size=2)
    assert ids(small.generate(CONVERSATIONS, GREEDY, n=2)) == ids(
        tiny_engine.generate(CONVERSATIONS, GREEDY, n=2)
    )
    with pytest.raises(ValueError, match="max_batch_size"):
        HFEngine(tiny_engine.model, tiny_engine.tokenizer, max_batch_size=0)


def test_n_samples_are_conversation_major(tiny_engine: HFEngine) -> None:
    greedy = tiny_engine.generate(CONVERSATIONS[:2], GREEDY, n=3)
    assert len(greedy) == 6
    tokens = ids(greedy)  # (logprobs may differ in the last bits from row to row: compare tokens)
    assert tokens[0] == tokens[1] == tokens[2]
    assert tokens[3] == tokens[4] == tokens[5]
    assert tokens[0] != tokens[3]
    assert tokens[0] == tiny_engine.generate(CONVERSATIONS[:1], GREEDY)[0].token_ids
    sampled = tiny_engine.generate(CONVERSATIONS[:2], Sampling(max_tokens=8, seed=0), n=3)
    assert len(set(ids(sampled[:3]))) == 3
    with pytest.raises(ValueError, match="n"):
        tiny_engine.generate(CONVERSATIONS, GREEDY, n=0)


def test_seeds(tiny_engine: HFEngine) -> None:
    def sample(seed: int | None) -> list[tuple[int, ...]]:
        return ids(tiny_engine.generate(CONVERSATIONS, Sampling(max_tokens=12, seed=seed)))

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)
    assert sample(None) != sample(None)


def test_stop_string_cuts_the_text(tiny_engine: HFEngine) -> None:
    sampling = Sampling(max_tokens=24, temperature=0.7, seed=2)
    full = tiny_engine.generate(CONVERSATIONS[:1], sampling)[0]
    pieces = [tiny_engine.tokenizer.decode([t]) for t in full.token_ids]
    stop = next(p for p in pieces[4:] if p.strip().isalpha() and len(p.strip()) >= 3).strip()
    cut = tiny_engine.generate(
        CONVERSATIONS[:1], Sampling(max_tokens=24, temperature=0.7, seed=2, stop=("@@never@@", stop))
    )[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.find(stop)]
    assert stop in tiny_engine.tokenizer.decode(cut.token_ids)
    assert stop not in tiny_engine.tokenizer.decode(cut.token_ids[:-1])  # it stopped on the completing token
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)]


def test_max_tokens_gives_length_and_exactly_max_tokens(tiny_engine: HFEngine) -> None:
    completions = tiny_engine.generate(CONVERSATIONS, Sampling(max_tokens=7, seed=0), n=2)
    for completion in completions:
        assert completion.finish_reason == "length"
        assert len(completion.token_ids) == len(completion.logprobs) == 7
        assert completion.text == tiny_engine.tokenizer.decode(completion.token_ids, skip_special_tokens=True)
        assert all(lp <= 0 for lp in completion.logprobs)


@pytest.mark.parametrize("cut", [{"top_k": 1}, {"top_p": 1e-6}, {"top_k": 1, "top_p": 0.5}])
def test_top_k_one_and_tiny_top_p_are_greedy(tiny_engine: HFEngine, cut: dict) -> None:
    sampled = tiny_engine.generate(
        CONVERSATIONS, Sampling(max_tokens=24, temperature=0.7, seed=0, **cut), n=2
    )
    assert ids(sampled) == ids(tiny_engine.generate(CONVERSATIONS, GREEDY, n=2))


def test_prompt_token_ids_equal_messages_and_tools_render(tiny_engine: HFEngine) -> None:
    prompts = [tiny_engine.prompt_ids(c) for c in CONVERSATIONS]
    text = tiny_engine.tokenizer.apply_chat_template(
        CONVERSATIONS[0], add_generation_prompt=True, tokenize=False
    )
    assert prompts[0] == tiny_engine.tokenizer.encode(text, add_special_tokens=False)
    from_ids = tiny_engine.generate(CONVERSATIONS, GREEDY, prompt_token_ids=prompts)
    assert ids(from_ids) == ids(tiny_engine.generate(CONVERSATIONS, GREEDY))
    tool = {
        "type": "function",
        "function": {"name": "add", "description": "Add", "parameters": {"type": "object", "properties": {}}},
    }
    with_tools = tiny_engine.generate(CONVERSATIONS, GREEDY, tools=[[tool], None, [tool]])
    assert len(with_tools) == 3 and all(c.finish_reason == "length" for c in with_tools)


def test_protocol_factory_describe_and_training_mode(tiny_model_folder: str, tiny_engine: HFEngine) -> None:
    assert isinstance(tiny_engine, Engine) and isinstance(tiny_engine, TrainableEngine)
    engine = make_engine("hf", tiny_model_folder, max_batch_size=4)
    assert isinstance(engine, HFEngine) and engine.max_batch_size == 4
    description = engine.describe()
    assert set(description) >= {"engine", "version", "model", "device", "dtype"}
    assert description["engine"] == "hf" and description["dtype"] == "float32"
    assert description["device"] == "cpu" and description["model"] == tiny_model_folder
    assert "transformers" in description["version"] and "torch" in description["version"]
    engine.model.train()
    engine.generate(CONVERSATIONS[:1], Sampling(max_tokens=2))
    assert engine.model.training  # the trainer's mode is restored
    engine.close()
    with pytest.raises(ValueError, match="tokenizer"):
        HFEngine(engine.model)


def test_load_weights_copies_into_the_model(tiny_model_folder: str, tiny_engine: HFEngine) -> None:
    from transformers import LlamaForCausalLM

    engine = HFEngine(tiny_model_folder)
    torch.manual_seed(1)
    other = LlamaForCausalLM(engine.model.config).eval()
    engine.load_weights(other.named_parameters())
    for name, tensor in other.state_dict().items():
        assert torch.equal(engine.model.state_dict()[name], tensor), name
    assert not torch.equal(
        engine.model.model.embed_tokens.weight, tiny_engine.model.model.embed_tokens.weight
    )
    reference = HFEngine(other, engine.tokenizer)
    assert ids(engine.generate(CONVERSATIONS, GREEDY)) == ids(reference.generate(CONVERSATIONS, GREEDY))
    engine.load_weights(engine.model.named_parameters())  # its own tensors: a no-op


@pytest.mark.slow
def test_smollm2_greedy_stops_on_eos_like_model_generate(smollm2_folder: str) -> None:
    engine = HFEngine(smollm2_folder)
    eos = engine.tokenizer.eos_token_id
    questions = [
        [{"role": "user", "content": "What is 2+3? Answer with the number only."}],
        [{"role": "user", "content": "Say hi."}],
    ]
    greedy = engine.generate(questions, Sampling(max_tokens=48, temperature=0))
    for conversation, completion in zip(questions, greedy, strict=True):
        prompt = engine.prompt_ids(conversation)
        assert completion.finish_reason == "stop" and completion.token_ids[-1] == eos
        assert "<|im_end|>" not in completion.text and completion.text.strip()
        output = engine.model.generate(
            torch.tensor([prompt]), do_sample=False, max_new_tokens=48, pad_token_id=eos
        )
        assert tuple(output[0, len(prompt) :].tolist()) == completion.token_ids
    sampled = engine.generate(questions, Sampling(max_tokens=32, temperature=0.7, seed=0), n=2)
    for index, completion in enumerate(sampled):
        prompt = engine.prompt_ids(questions[index // 2])
        expected = forward_logprobs(engine.model, prompt, completion.token_ids, 0.7)
        assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=1e-4, rtol=0)


def test_top_p_after_top_k_measures_the_mass_among_the_top_k() -> None:
    import math

    import torch

    from rlvr.envs.types import Sampling
    from rlvr.trainer.engines.hf import _sample

    # probs [0.5, 0.3, 0.2]; top_k=2 leaves [0.625, 0.375], and top_p=0.6 then keeps token 0 only
    logits = torch.tensor([[math.log(0.5), math.log(0.3), math.log(0.2)]]).repeat(200, 1)
    generator = torch.Generator().manual_seed(0)
    tokens, logprobs = _sample(logits, Sampling(temperature=1.0, top_k=2, top_p=0.6), generator)
    assert set(tokens.tolist()) == {0}
    assert logprobs[0].item() == pytest.approx(math.log(0.5))  # the sampling distribution's own log-prob
