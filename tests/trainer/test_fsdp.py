"""FSDP2 (`model.sharding=fsdp`) on CPU with gloo: one update at 2 ranks equals one process's update on the same
batch, the weights stream to an engine one full tensor at a time, two torchrun agents ("nodes") meet at a
c10d rendezvous, and the training loop checkpoints (sharded + an HF folder) and resumes exactly. The same with
LoRA (`model.lora_rank > 0`): the adapters' update, the merged weight stream, adapter checkpoints and resume.

The processes run `fsdp_worker.py` (next to this file); each launch pays for importing torch and transformers,
so every update case runs in one launch of each kind.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is part of the models extra")
pytest.importorskip("transformers", reason="transformers is part of the models extra")
pytest.importorskip("peft", reason="peft (LoRA) is part of the models extra")

if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is not available", allow_module_level=True)

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from fsdp_worker import CASES  # noqa: E402
from torchrun import finish as wait_for  # noqa: E402
from torchrun import start  # noqa: E402

from rlvr.trainer.lora import DEFAULT_TARGETS  # noqa: E402

WORKER = HERE / "fsdp_worker.py"
TOLERANCE = 1e-5
TIMEOUT_S = 240


def launch(
    mode: str, model_dir: str, out_dir: Path, *, torchrun: list[str] | None = None
) -> subprocess.Popen:
    """The worker alone (torchrun=None) or under `torchrun` with the given launcher arguments."""
    prefix = [sys.executable] + (["-m", "torch.distributed.run", *torchrun] if torchrun else [])
    out_dir.mkdir(parents=True, exist_ok=True)
    return start([*prefix, str(WORKER), mode, model_dir, str(out_dir)])


def finish(process: subprocess.Popen, what: str) -> None:
    """Wait for a launch; on a timeout (a collective that never completes) kill its whole process group."""
    wait_for(process, what, TIMEOUT_S)


TWO_RANKS = ["--standalone", "--nproc_per_node", "2"]


@pytest.fixture(scope="module")
def updates(small_llama: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Folders of the updated weights per case: (one process: plain and FSDP at world 1) and (FSDP, 2 ranks)."""
    root = tmp_path_factory.mktemp("fsdp-updates")
    single, multi = root / "single", root / "multi"
    runs = [
        (launch("update", small_llama, single), "the one-process update"),
        (launch("update", small_llama, multi, torchrun=TWO_RANKS), "the 2-rank FSDP update"),
    ]
    for process, what in runs:
        finish(process, what)
    return single, multi


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("case", list(CASES))
def test_fsdp_update_matches_one_process(case: str, updates: tuple[Path, Path], small_llama: str) -> None:
    from safetensors.torch import load_file

    single, multi = (torch.load(folder / f"{case}.pt", weights_only=True) for folder in updates)
    plain, plain_metrics = single["plain"]
    initial = load_file(Path(small_llama) / "model.safetensors")
    moved = max(float((plain[k] - initial[k]).abs().max()) for k in initial)
    assert moved > 100 * TOLERANCE, f"{case}: the update barely moved the weights ({moved:.2e})"
    for label, (state, metrics) in (("FSDP at 1 rank", single["fsdp"]), ("FSDP at 2 ranks", multi["fsdp"])):
        diff = max_difference(plain, state)
        assert diff < TOLERANCE, f"{case}: {label} differs from one plain process by {diff:.2e}"
        # AdamW's first steps hardly depend on the gradient's scale; its norm does (a wrong loss scale, counts
        # per rank instead of over all ranks, a reduce-scatter summing instead of averaging)
        for key in ("grad_norm", "optimizer_steps", "kl", "loss"):
            assert metrics[key] == pytest.approx(plain_metrics[key], rel=1e-4, abs=1e-7), f"{case}: {key}"
    if CASES[case].get("kl_coef"):
        assert plain_metrics["kl"] > 1e-4, "the reference equals the policy: the KL term tested nothing"


def test_weights_stream_one_full_tensor_at_a_time(updates: tuple[Path, Path]) -> None:
    """The vLLM path: each sharded parameter gathered when its turn comes, nothing held back by the stream."""
    _, multi = updates
    stream = torch.load(multi / "stream.pt", weights_only=True)
    last, _ = torch.load(multi / f"{list(CASES)[-1]}.pt", weights_only=True)["fsdp"]
    assert list(stream["sums"]) == list(last), "the stream must give every state-dict entry, in order"
    for name, total in stream["sums"].items():  # full tensors, not the local shards
        assert stream["sizes"][name] == last[name].nbytes, name
        assert total == pytest.approx(float(last[name].double().sum()), abs=1e-6), name
    largest, whole = max(stream["sizes"].values()), sum(stream["sizes"].values())
    assert stream["peak_bytes"] == largest < whole / 2


def test_lora_update_under_fsdp_matches_one_process(updates: tuple[Path, Path]) -> None:
    """LoRA with a KL reference (the sharded policy with its adapters off): the adapters after one update at 2
    ranks (and at 1) equal one plain process's, with the same gradient norm, KL and loss."""
    single, multi = (torch.load(folder / "lora.pt", weights_only=True) for folder in updates)
    plain, plain_metrics, _ = single["plain"]
    initial = single["initial"]
    assert plain.keys() == initial.keys() and all(".lora_" in k for k in plain)
    moved = max(float((plain[k] - initial[k]).abs().max()) for k in initial)
    assert moved > 100 * TOLERANCE, f"the update barely moved the adapters ({moved:.2e})"
    assert plain_metrics["kl"] > 1e-4, "the reference equals the policy: the KL term tested nothing"
    for label, (adapter, metrics, _) in (
        ("FSDP at 1 rank", single["fsdp"]),
        ("FSDP at 2 ranks", multi["fsdp"]),
    ):
        diff = max_difference(plain, adapter)
        assert diff < TOLERANCE, f"LoRA: {label} differs from one plain process by {diff:.2e}"
        for key in ("grad_norm", "optimizer_steps", "kl", "loss"):
            assert metrics[key] == pytest.approx(plain_metrics[key], rel=1e-4, abs=1e-7), f"LoRA: {key}"


def test_lora_weights_stream_merged_one_full_tensor_at_a_time(
    updates: tuple[Path, Path], small_llama: str
) -> None:
    """vLLM's stream under FSDP + LoRA: W + scale * B A under the base model's names, gathered tensor by tensor."""
    from safetensors.torch import load_file

    single, multi = updates
    _, _, plain = torch.load(single / "lora.pt", weights_only=True)["plain"]
    _, _, sharded = torch.load(multi / "lora.pt", weights_only=True)["fsdp"]
    base = load_file(Path(small_llama) / "model.safetensors")
    assert list(sharded) == list(plain) and sharded.keys() == base.keys()
    assert max_difference(plain, sharded) < TOLERANCE
    adapted = {k for k in base if not torch.equal(base[k], sharded[k])}
    assert adapted == {k for k in base if k.rsplit(".", 2)[-2] in DEFAULT_TARGETS}
    stream = torch.load(multi / "stream_lora.pt", weights_only=True)
    assert list(stream["sums"]) == list(sharded)
    for name, total in stream["sums"].items():
        assert stream["sizes"][name] == sharded[name].nbytes, name
        assert total == pytest.approx(float(sharded[name].double().sum()), abs=1e-6), name
    largest, whole = max(stream["sizes"].values()), sum(stream["sizes"].values())
    assert stream["peak_bytes"] == largest < whole / 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_nodes_meet_at_a_c10d_rendezvous(small_llama: str, tmp_path: Path) -> None:
    """Two torchrun agents of one process each (--nnodes 2), as on two machines: equal weights after a step."""
    endpoint = f"localhost:{free_port()}"
    agents = [
        launch(
            "step",
            small_llama,
            tmp_path,
            torchrun=[
                "--nnodes",
                "2",
                "--nproc_per_node",
                "1",
                "--node_rank",  # fixes which agent is rank 0; c10d would otherwise pick in arrival order
                str(node),
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                endpoint,
                "--rdzv-id",
                "rlvr-fsdp-test",
            ],
        )
        for node in range(2)
    ]
    for node, agent in enumerate(agents):
        finish(agent, f"torchrun agent {node} of 2")
    first, second = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert max_difference(first["state"], second["state"]) == 0.0
    assert first["metrics"]["grad_norm"] == second["metrics"]["grad_norm"] > 0


def test_train_loop_checkpoints_and_resumes_exactly(tiny_model_folder: str, tmp_path: Path) -> None:
    """train() with fsdp at 2 ranks (KL reference, hf engine): 2 steps straight = 1 step, --resume, 1 step."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    first = [
        launch(mode, tiny_model_folder, out, torchrun=TWO_RANKS)
        for mode, out in (("train", straight), ("train-1", resumed))
    ]
    for process, what in zip(first, ("2 steps", "1 step"), strict=True):
        finish(process, f"train() with model.sharding=fsdp, {what}")
    finish(launch("resume", tiny_model_folder, resumed, torchrun=TWO_RANKS), "train --resume with fsdp")
    step = straight / "checkpoints" / "step-000002"
    assert (step / "sharded" / ".metadata").is_file()  # torch.distributed.checkpoint's index of the shards
    a, b = (load_file(run / "final" / "model.safetensors") for run in (straight, resumed))
    assert max_difference(a, b) == 0.0, "the resumed run differs from the straight one"
    initial = load_file(Path(tiny_model_folder) / "model.safetensors")
    assert any(not torch.equal(a[k], initial[k]) for k in initial), "training changed nothing"
    model = AutoModelForCausalLM.from_pretrained(straight / "final")  # a full HF folder, not shards
    assert sum(p.numel() for p in model.parameters()) == sum(t.numel() for t in initial.values())
    assert not (straight / "final" / "sharded").exists()
    lines = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    straight_lines = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2]
    assert lines[1]["loss"] == pytest.approx(straight_lines[1]["loss"], rel=1e-6)


def adapter_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def test_lora_train_loop_under_fsdp_checkpoints_the_adapter_and_resumes_exactly(
    tiny_model_folder: str, tmp_path: Path
) -> None:
    """train() with fsdp + LoRA at 2 ranks: step checkpoints hold the adapter only, 2 steps straight = 1 step,
    --resume, 1 step, and final/ is the merged model (transformers loads it) with the adapter beside it."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    first = [
        launch(mode, tiny_model_folder, out, torchrun=TWO_RANKS)
        for mode, out in (("lora-train", straight), ("lora-train-1", resumed))
    ]
    for process, what in zip(first, ("2 steps", "1 step"), strict=True):
        finish(process, f"train() with fsdp + LoRA, {what}")
    finish(launch("lora-resume", tiny_model_folder, resumed, torchrun=TWO_RANKS), "--resume with fsdp + LoRA")
    step = straight / "checkpoints" / "step-000002"
    names = {p.name for p in step.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "state.pt"} <= names
    assert not names & {"model.safetensors", "sharded"}
    base_bytes = (Path(tiny_model_folder) / "model.safetensors").stat().st_size
    assert (step / "adapter_model.safetensors").stat().st_size < base_bytes / 100
    adapter = adapter_weights(step)
    optimizer = torch.load(step / "optimizer.pt", weights_only=False)  # one process's format, whole tensors
    assert len(optimizer["state"]) == len(adapter)
    numel = sum(s["exp_avg"].numel() for s in optimizer["state"].values())
    assert numel == sum(t.numel() for t in adapter.values())
    for run in (straight, resumed):  # the step checkpoints and final/ of both runs: equal bit for bit
        assert max_difference(adapter, adapter_weights(run / "checkpoints" / "step-000002")) == 0.0
        assert max_difference(adapter, adapter_weights(run / "final" / "adapter")) == 0.0
    merged = load_file(straight / "final" / "model.safetensors")
    assert max_difference(merged, load_file(resumed / "final" / "model.safetensors")) == 0.0
    base = load_file(Path(tiny_model_folder) / "model.safetensors")
    assert merged.keys() == base.keys()  # the tied LM head stored once, as in the base
    expected = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_folder, dtype=torch.float32),
        straight / "final" / "adapter",
    ).merge_and_unload()
    loaded = AutoModelForCausalLM.from_pretrained(straight / "final", dtype=torch.float32)
    assert max_difference(expected.state_dict(), loaded.state_dict()) < 1e-6
    assert any(not torch.equal(merged[k], base[k]) for k in base), "training changed nothing"
    lines = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    straight_lines = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2]
    assert lines[1]["loss"] == straight_lines[1]["loss"] and lines[1]["kl"] == straight_lines[1]["kl"]
    assert straight_lines[1]["kl"] > 0  # the adapters moved: the policy left its reference (adapters off)


@pytest.mark.parametrize("offload", [False, True], ids=["on-device", "cpu_offload"])
def test_mixed_precision_bf16_compute_float32_master(small_llama: str, offload: bool) -> None:
    """model.dtype=bfloat16, master_dtype=float32 (FSDP at world size 1, in this process): the layers compute in
    bf16; the stored weights, their gradients and AdamW's moments are float32."""
    from torch.distributed.tensor import DTensor
    from transformers import LlamaForCausalLM

    from rlvr.trainer.distributed import Distributed
    from rlvr.trainer.sharding import FullyShard

    dist = Distributed(0, 1, "cpu")
    try:
        model = LlamaForCausalLM.from_pretrained(small_llama, dtype=torch.float32)
        FullyShard(dist, "bfloat16", cpu_offload=offload, gather=True).wrap(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        computed = []
        model.model.layers[0].mlp.register_forward_hook(lambda m, i, out: computed.append(out.dtype))
        model(input_ids=torch.randint(0, 256, (2, 8))).logits.float().mean().backward()
        optimizer.step()
        assert computed == [torch.bfloat16]
        for p in model.parameters():
            assert isinstance(p, DTensor) and p.dtype == p.grad.dtype == torch.float32
            assert optimizer.state[p]["exp_avg"].dtype == torch.float32
    finally:
        dist.close()


@pytest.mark.parametrize("offload", [False, True], ids=["on-device", "cpu_offload"])
def test_lora_under_fsdp_keeps_the_base_in_dtype_and_the_adapters_in_float32(
    small_llama: str, offload: bool
) -> None:
    """model.dtype=bfloat16 with LoRA (FSDP at world size 1, in this process): the frozen base is sharded in
    bf16, without gradients; the adapters are float32, and only they get gradients and AdamW moments, which
    survive the checkpoint's round trip (gathered whole, cut into shards again)."""
    from torch.distributed.tensor import DTensor
    from transformers import LlamaForCausalLM

    from rlvr.trainer.distributed import Distributed
    from rlvr.trainer.lora import apply_lora, trainable_parameters
    from rlvr.trainer.sharding import ShardedLoRA, gathered_optimizer_state, sharded_optimizer_state

    dist = Distributed(0, 1, "cpu")
    try:
        model = LlamaForCausalLM.from_pretrained(small_llama, dtype=torch.bfloat16)
        model = apply_lora(model, rank=4, alpha=8, targets=["q_proj", "v_proj"])
        ShardedLoRA(dist, "bfloat16", cpu_offload=offload, gather=True).wrap(model)
        optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-3)
        model(input_ids=torch.randint(0, 256, (2, 8))).logits.float().mean().backward()
        optimizer.step()
        for name, p in model.named_parameters():
            assert isinstance(p, DTensor), name
            if ".lora_" in name:
                assert p.dtype == p.grad.dtype == optimizer.state[p]["exp_avg"].dtype == torch.float32, name
            else:
                assert p.dtype == torch.bfloat16 and p.grad is None and p not in optimizer.state, name
        before = {
            id(p): {k: v.full_tensor() for k, v in s.items() if k != "step"}
            for p, s in optimizer.state.items()
        }
        saved = gathered_optimizer_state(optimizer)
        assert all(not isinstance(v, DTensor) for s in saved["state"].values() for v in s.values())
        optimizer.load_state_dict(sharded_optimizer_state(saved, optimizer))
        for p, state in optimizer.state.items():
            for key, value in before[id(p)].items():
                assert isinstance(state[key], DTensor) and state[key].placements == p.placements
                assert torch.equal(state[key].full_tensor(), value)
    finally:
        dist.close()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["model.sharding=zero3"], "model.sharding = 'zero3'"),
        (["model.dtype=bfloat16", "model.master_dtype=float32"], "model.master_dtype = 'float32'"),
        (["model.sharding=fsdp", "model.master_dtype=fp32"], "model.master_dtype = 'fp32'"),
        (["model.cpu_offload=true"], "model.cpu_offload = True"),
        (
            ["model.sharding=fsdp", "model.lora_rank=8", "model.master_dtype=bfloat16"],
            "model.master_dtype = 'bfloat16'",
        ),
    ],
)
def test_sharding_config_errors_name_the_field(overrides: list[str], named: str) -> None:
    from rlvr.errors import ConfigError
    from rlvr.trainer.config import load_config

    with pytest.raises(ConfigError, match="^" + named.replace("(", r"\(")):
        load_config(None, overrides)


def test_an_fsdp_config_with_float32_masters_loads() -> None:
    from rlvr.trainer.config import load_config

    overrides = [
        "model.sharding=fsdp",
        "model.dtype=bfloat16",
        "model.master_dtype=float32",
        "model.cpu_offload=1",
    ]
    with pytest.raises(Exception, match="cpu_offload"):  # 1 is not a bool
        load_config(None, overrides)
    model = load_config(None, [*overrides[:-1], "model.cpu_offload=true"]).model
    assert (model.sharding, model.dtype, model.master_dtype, model.cpu_offload) == (
        "fsdp",
        "bfloat16",
        "float32",
        True,
    )


def one_process_config(model_dir: str, out: Path, *extra: str):
    import trainer_envs

    from rlvr.trainer.config import load_config

    overrides = [
        f"model.name={model_dir}",
        "model.device=cpu",
        "model.sharding=fsdp",
        f"env.suite={trainer_envs.PARITY_ID}",
        "env.eval_tasks=0",
        "rollout.prompts_per_step=1",
        "rollout.group_size=4",
        "rollout.max_tokens=4",
        "optim.lr=0.001",
        "run.steps=1",
        f"run.output_dir={out}",
        "run.progress=false",
        "run.plot=false",
    ]
    return load_config(None, [*overrides, *extra])


def test_train_loop_with_fsdp_in_one_process(tiny_model_folder: str, tmp_path: Path) -> None:
    """model.sharding=fsdp without torchrun (a one-process group): a step, a sharded checkpoint, final/."""
    from safetensors.torch import load_file

    from rlvr.trainer.loop import train

    train(one_process_config(tiny_model_folder, tmp_path))
    assert not torch.distributed.is_initialized()  # the group made for FSDP is closed with the run
    assert (tmp_path / "checkpoints" / "step-000001" / "sharded" / ".metadata").is_file()
    trained, initial = (
        load_file(Path(d) / "model.safetensors") for d in (tmp_path / "final", tiny_model_folder)
    )
    assert trained.keys() == initial.keys()
    assert any(not torch.equal(trained[k], initial[k]) for k in initial)


def test_a_lora_checkpoint_written_under_fsdp_resumes_without_it(
    tiny_model_folder: str, tmp_path: Path
) -> None:
    """The adapter checkpoint of fsdp + LoRA is a one-process LoRA checkpoint: 1 step under fsdp, --resume with
    model.sharding=none for a 2nd, equals 2 steps under fsdp (FSDP in one process equals the plain model)."""
    from rlvr.trainer.loop import train

    lora = ["model.lora_rank=4", "model.lora_alpha=8", "optim.lr=0.01", "algorithm.kl_coef=0.1"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(one_process_config(tiny_model_folder, straight, "run.steps=2", *lora))
    train(one_process_config(tiny_model_folder, split, *lora))
    train(
        one_process_config(tiny_model_folder, split, "run.steps=2", "model.sharding=none", *lora), resume=True
    )
    a, b = (adapter_weights(run / "checkpoints" / "step-000002") for run in (straight, split))
    assert max_difference(a, b) < TOLERANCE
    assert max_difference(a, adapter_weights(split / "checkpoints" / "step-000001")) > 100 * TOLERANCE
