"""Rejection-sampling fine-tuning: the SFT loss and its tokens, the filter, `rlvr rft` end to end, resume and
errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is in the models extra (part of dev)")

from rlvr.benchmarks.records import SampleRecord  # noqa: E402
from rlvr.cli import main  # noqa: E402
from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer.rft import filter_samples, keep_correct, read_examples  # noqa: E402
from rlvr.trainer.sft import (  # noqa: E402
    SFTConfig,
    SFTExample,
    encode_example,
    make_batch,
    mean_nll,
    nll_sum,
    sft,
)

SYSTEM = "Answer briefly."
QUESTIONS = [(3, "+", 4, 7), (9, "-", 2, 7), (6, "*", 5, 30), (8, "-", 9, -1), (2, "*", 2, 4), (7, "+", 1, 8)]


def prompt(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def examples() -> list[SFTExample]:
    return [SFTExample(prompt(f"What is {a} {op} {b}?"), f"{a} {op} {b} = {c}") for a, op, b, c in QUESTIONS]


def record(task: int, sample: int, completion: str, correct: bool, **fields) -> SampleRecord:
    values = dict(
        suite="s",
        task_index=task,
        task_id=f"t{task}",
        sample=sample,
        prompt=prompt(f"question {task}"),
        completion=completion,
        gold="7",
        extracted=None,
        correct=correct,
        score=float(correct),
        reason="correct" if correct else "wrong",
        reward=float(correct),
        rewards={"correct": float(correct)},
        finish_reason="stop",
        num_tokens=4,
    )
    return SampleRecord(**{**values, **fields})


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


@pytest.fixture
def tiny(tiny_model_folder):
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    return load_model(tiny_model_folder), load_tokenizer(tiny_model_folder)


# ---------------------------------------------------------------------------------------------------------
# SFT


def test_sft_tokens_are_those_the_rollout_scores(tiny_model_folder):
    """A kept completion trains on the ids and mask the RL rollout builds for the same reply (the prompt
    through the chat template with the generation prompt, the reply's ids, the end-of-sequence token)."""
    from rlvr.envs.registry import make
    from rlvr.envs.rollout import ReplayPolicy, rollout
    from rlvr.trainer.engines.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_folder)
    env = make("rlvr/arithmetic-v0", level=2, system_prompt=SYSTEM)
    reply = "7 - 3 = 4, so the answer is 4."
    policy = ReplayPolicy([[reply]], tokenizer=tokenizer, eos=True)
    trajectory = rollout([env], policy, options=[{"task_index": 5}], tokenizer=tokenizer)[0]
    row = encode_example(SFTExample(trajectory.messages[:-1], reply), tokenizer)
    assert row.token_ids == trajectory.token_ids
    assert row.mask == trajectory.mask
    assert row.token_ids[-1] == tokenizer.eos_token_id
    cut = encode_example(SFTExample(trajectory.messages[:-1], reply, stopped=False), tokenizer)
    assert cut.token_ids == trajectory.token_ids[:-1]  # a reply cut at max_tokens has no end to learn


def test_nll_masks_the_prompt_and_the_padding(tiny):
    """The batched, left-padded NLL equals a plain forward of each unpadded row, summed over its reply."""
    model, tokenizer = tiny
    rows = [encode_example(e, tokenizer) for e in examples()[:3]]
    with torch.no_grad():
        loss, tokens = nll_sum(model, make_batch(rows, tokenizer.pad_token_id))
        expected = 0.0
        for row in rows:
            ids = torch.tensor([row.token_ids])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            targets = ids[0, 1:]
            picked = logp.gather(-1, targets[:, None])[:, 0]
            expected -= float((picked * torch.tensor(row.mask[1:], dtype=torch.float)).sum())
    assert tokens == sum(sum(r.mask) for r in rows)
    assert float(loss) == pytest.approx(expected, rel=1e-4)


def test_micro_batches_give_the_update_of_the_whole_batch(tiny_model_folder):
    """Token mean over the optimiser batch: a step in micro-batches of 1 equals one with all rows at once."""
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(tiny_model_folder)
    weights = []
    for micro in (1, 6):
        model = load_model(tiny_model_folder)
        sft(model, tokenizer, examples(), SFTConfig(lr=1e-3, epochs=1, batch_size=6, micro_batch_size=micro))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_sft_lowers_the_nll_of_the_kept_completions(tiny):
    model, tokenizer = tiny
    rows = [encode_example(e, tokenizer) for e in examples()]
    before = mean_nll(model, rows, tokenizer.pad_token_id)
    result = sft(model, tokenizer, examples(), SFTConfig(lr=3e-2, epochs=4, batch_size=3, micro_batch_size=2))
    after = mean_nll(model, rows, tokenizer.pad_token_id)
    assert result.steps == 8 and result.examples == 6 and len(result.epoch_nll) == 4
    assert after < 0.5 * before, (before, after)
    assert result.epoch_nll[-1] < result.epoch_nll[0]


@pytest.mark.parametrize(
    ("field", "value"), [("lr", 0.0), ("epochs", 0), ("batch_size", 0), ("micro_batch_size", 1.5)]
)
def test_sft_config_is_checked(field, value):
    with pytest.raises(ConfigError, match=field):
        SFTConfig(**{field: value})


# ---------------------------------------------------------------------------------------------------------
# The filter


def test_the_filter_keeps_the_verified_correct_distinct_completions_k_per_task():
    records = [
        record(0, 0, "3 + 4 = 7", True),
        record(0, 1, "3 + 4 = 8", False),
        record(0, 2, " 3 + 4 = 7\n", True),  # the same reply
        record(0, 3, "It is 7.", True),
        record(0, 4, "7, surely.", True),  # a third distinct one: over k = 2
        record(
            1, 0, "The answer is 7 and", True, finish_reason="length"
        ),  # cut: its answer may be an accident
        record(1, 1, "7", True, turns=2),  # a record holds only the last turn
        record(2, 0, "no", False),
        record(3, 0, "7", True),
    ]
    kept, stats = filter_samples(records, k=2)
    assert [(r.task_index, r.sample) for r in kept] == [(0, 0), (0, 3), (3, 0)]
    assert all(r.correct for r in kept)
    assert (stats.samples, stats.tasks, stats.correct, stats.kept, stats.tasks_kept) == (9, 4, 7, 3, 2)
    assert (stats.duplicates, stats.over_k, stats.truncated, stats.multi_turn) == (1, 1, 1, 1)
    assert stats.reasons == {"correct": 7, "wrong": 2}
    everything, _ = filter_samples(records)  # no k: every distinct correct completion
    assert [(r.task_index, r.sample) for r in everything] == [(0, 0), (0, 3), (0, 4), (3, 0)]


def test_keep_correct_writes_sample_records_and_protects_an_edited_file(tmp_path):
    samples = write_jsonl(
        tmp_path / "samples.jsonl", [record(0, 0, "7", True).to_json(), record(0, 1, "8", False).to_json()]
    )
    kept = tmp_path / "kept.jsonl"
    keep_correct(samples, kept, None)
    rows = [json.loads(line) for line in kept.read_text().splitlines()]
    assert [r["completion"] for r in rows] == ["7"] and rows[0]["correct"] is True
    keep_correct(samples, kept, None)  # the same rows again: nothing to protect
    kept.write_text(kept.read_text().replace('"7"', '"seven"'))
    with pytest.raises(ConfigError, match="differs"):
        keep_correct(samples, kept, None)
    keep_correct(samples, kept, None, overwrite=True)
    assert '"seven"' not in kept.read_text()
    assert [e.completion for e in read_examples(kept)] == ["7"]


# ---------------------------------------------------------------------------------------------------------
# The command, end to end


def test_rft_round_writes_its_files_and_a_loadable_model_and_a_rerun_skips_it(
    smollm2_folder, tmp_path, capsys
):
    out = tmp_path / "rft"
    args = [
        "rft",
        "--model",
        smollm2_folder,
        "--env",
        "rlvr/arithmetic-v0",
        "--env-kwargs",
        "{level: 2, system_prompt: Answer briefly.}",
        "--tasks",
        "6",
        "--n",
        "2",
        "--max-tokens",
        "16",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    round_1 = out / "round-1"
    samples = [json.loads(line) for line in (round_1 / "samples.jsonl").read_text().splitlines()]
    assert sorted((s["task_index"], s["sample"]) for s in samples) == [
        (t, j) for t in range(6) for j in range(2)
    ]
    assert all(s["prompt"][0]["content"] == "Answer briefly." for s in samples)
    kept = [json.loads(line) for line in (round_1 / "kept.jsonl").read_text().splitlines()]
    correct = {(s["task_index"], s["sample"]) for s in samples if s["correct"]}
    assert kept and {(r["task_index"], r["sample"]) for r in kept} <= correct
    info = json.loads((round_1 / "model" / "rft.json").read_text())
    assert info["filter"]["kept"] == len(kept) and info["sft"]["examples"] == len(kept)
    summary = json.loads((out / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [1]

    # the round's model is an HF folder `rlvr eval` loads
    evaluation = ["eval", "--model", str(round_1 / "model"), "--suite", "rlvr/arithmetic-v0", "--n", "1"]
    evaluation += [
        "--k",
        "1",
        "--limit",
        "2",
        "--max-tokens",
        "8",
        "--out",
        str(tmp_path / "eval"),
        "--quiet",
    ]
    assert main(evaluation) == 0

    weights = round_1 / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # the finished round is skipped: no model is loaded, nothing is rewritten
    assert "round 1: finished earlier, skipped" in capsys.readouterr().err
    assert weights.stat().st_mtime_ns == stamp

    assert main([*args, "--lr", "3e-5"]) == 2  # other settings into the same folder
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "differing: sft.lr" in err and "--overwrite" in err


def test_the_sft_stage_alone_writes_a_model_with_a_lower_nll(tiny_model_folder, tmp_path, capsys):
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    rows = [{"prompt": e.prompt, "completion": e.completion} for e in examples()]
    data = write_jsonl(tmp_path / "kept.jsonl", rows)
    out = tmp_path / "model"
    args = ["rft", "sft", "--data", str(data), "--model", tiny_model_folder, "--out", str(out)]
    args += ["--lr", "3e-2", "--epochs", "4", "--train-batch-size", "3", "--quiet"]
    assert main(args) == 0
    tokenizer = load_tokenizer(out)
    encoded = [encode_example(e, tokenizer) for e in examples()]
    before = mean_nll(load_model(tiny_model_folder), encoded, tokenizer.pad_token_id)
    assert mean_nll(load_model(out), encoded, tokenizer.pad_token_id) < 0.5 * before
    assert json.loads((out / "rft.json").read_text())["sft"]["epochs"] == 4
    capsys.readouterr()
    assert main(args) == 2  # never written over without --overwrite
    assert "already exists" in capsys.readouterr().err


def bad_inputs(tmp_path: Path, model: str) -> dict[str, tuple[list[str], str]]:
    wrong = write_jsonl(tmp_path / "wrong.jsonl", [record(0, j, "8", False).to_json() for j in range(3)])
    torn = write_jsonl(tmp_path / "torn.jsonl", [record(0, 0, "7", True).to_json(), '{"task_index": 1'])
    not_records = write_jsonl(tmp_path / "rows.jsonl", [{"completion": "7"}])
    bad_row = write_jsonl(
        tmp_path / "bad.jsonl", [{"prompt": prompt("q"), "completion": "7"}, {"prompt": "q"}]
    )
    sft = ["rft", "sft", "--model", model, "--out", str(tmp_path / "m"), "--data"]
    rft = ["rft", "--model", model, "--out", str(tmp_path / "o"), "--env"]
    return {
        "missing data": ([*sft, str(tmp_path / "none.jsonl")], "none.jsonl: no such file"),
        "empty data": ([*sft, str(write_jsonl(tmp_path / "empty.jsonl", []))], "holds no rows"),
        "malformed sft row": ([*sft, str(bad_row)], "bad.jsonl:2 needs `prompt`"),
        "no correct sample": (
            ["rft", "filter", "--samples", str(wrong), "--out", str(tmp_path / "k.jsonl")],
            "no verified-correct completion to keep among 3 samples of 1 tasks (verdicts: wrong 3",
        ),
        "torn samples": (["rft", "filter", "--samples", str(torn), "--out", "k"], "torn.jsonl:2 is not JSON"),
        "not sample records": (
            ["rft", "filter", "--samples", str(not_records), "--out", "k"],
            "rows.jsonl:1 is not a sample record",
        ),
        "unknown env": ([*rft, "rlvr/arithmetc-v0"], "no environment 'rlvr/arithmetc-v0'"),
        "unknown env keyword": (
            [*rft, "rlvr/arithmetic-v0", "--env-kwargs", "{levle: 2}"],
            "takes no 'levle'",
        ),
        "env kwargs not a mapping": ([*rft, "rlvr/arithmetic-v0", "--env-kwargs", "[2]"], "YAML mapping"),
        "no env": (["rft", "--model", model], "needs --model and --env"),
        "bad k": ([*rft, "rlvr/arithmetic-v0", "--k", "0"], "k must be an integer >= 1"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing data",
        "empty data",
        "malformed sft row",
        "no correct sample",
        "torn samples",
        "not sample records",
        "unknown env",
        "unknown env keyword",
        "env kwargs not a mapping",
        "no env",
        "bad k",
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys, tiny_model_folder):
    args, message = bad_inputs(tmp_path, tiny_model_folder)[case]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlvr: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "m").exists()  # nothing written before the check
