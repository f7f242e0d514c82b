"""Tree rollouts (TreePO): the tree's shape and shared prefixes, branching 1 = plain sampling, leaf log-probs against a
teacher-forced forward, early stops, the rollout over single-turn environments, and the advantages (hand cases, each
tree token trained once).

On the tiny random Llama of tests/conftest.py.
"""

from __future__ import annotations

import functools
import math

import gymnasium as gym
import pytest

torch = pytest.importorskip("torch", reason="torch is part of the models extra")

from rlvr.envs.base import RlvrEnv  # noqa: E402
from rlvr.envs.procedural.arithmetic import ArithmeticEnv  # noqa: E402
from rlvr.envs.rollout import Trajectory  # noqa: E402
from rlvr.envs.tree_rollout import tree_rollout  # noqa: E402
from rlvr.envs.types import Completion, Feedback, Sampling, Task  # noqa: E402
from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer.batch import build_batch, token_mask  # noqa: E402
from rlvr.trainer.engines.hf import HFEngine  # noqa: E402
from rlvr.trainer.engines.tree import TreeSample, TreeShape, generate_tree  # noqa: E402
from rlvr.trainer.tree_advantages import (  # noqa: E402
    distinct_tokens,
    leaf_advantages,
    node_advantages,
    train_once,
    tree_token_advantages,
)

CONVERSATIONS = [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "Count to five, slowly."}]]


@pytest.fixture(scope="module")
def prompts(tiny_engine: HFEngine) -> list[list[int]]:
    ids = [tiny_engine.prompt_ids(c) for c in CONVERSATIONS]
    assert len({len(p) for p in ids}) == 2  # left padding exercised
    return ids


def by_prompt(leaves: list[TreeSample]) -> dict[int, list[TreeSample]]:
    out: dict[int, list[TreeSample]] = {}
    for leaf in leaves:
        out.setdefault(leaf.prompt, []).append(leaf)
    return out


def children(leaves: list[TreeSample]) -> dict[int, set[int]]:
    """Node id -> the ids of its child nodes."""
    out: dict[int, set[int]] = {}
    for leaf in leaves:
        for parent, child in zip(leaf.path, leaf.path[1:], strict=False):
            out.setdefault(parent, set()).add(child)
    return out


def test_tree_shape_and_shared_prefixes(tiny_engine: HFEngine, prompts: list[list[int]]) -> None:
    s, shape = 3, TreeShape(segment_tokens=3, branching=2, depth=2, roots=2)
    sampling = Sampling(max_tokens=10, temperature=1.0, seed=0)
    leaves = generate_tree(tiny_engine, prompts, sampling, roots=2, segment_tokens=s, branching=2, depth=2)
    trees = by_prompt(leaves)
    assert sorted(trees) == [0, 1]
    for prompt, tree in trees.items():
        assert len(tree) == shape.leaves == 8  # nothing stops before the last branch point here
        assert len({leaf.tree for leaf in tree}) == 1
        for leaf in tree:
            assert leaf.completion.finish_reason == "length" and len(leaf.completion.token_ids) == 10
            assert len(leaf.path) == math.ceil(10 / s)  # one node per segment
        for level, expected in enumerate([2, 4, 8, 8]):  # roots, x2, x2, then no more branching
            assert len({leaf.path[level] for leaf in tree}) == expected, (prompt, level)
        for a in tree:
            for b in tree:
                shared = next(
                    (k for k, (x, y) in enumerate(zip(a.path, b.path, strict=False)) if x != y), len(a.path)
                )
                point = (
                    shared * s
                )  # tokens before the branch point are the same, the next one is sampled anew
                assert a.completion.token_ids[:point] == b.completion.token_ids[:point]
                assert a.completion.logprobs[:point] == b.completion.logprobs[:point]
    assert trees[0][0].tree != trees[1][0].tree
    assert not {n for leaf in trees[0] for n in leaf.path} & {n for leaf in trees[1] for n in leaf.path}


def test_branching_one_equals_plain_sampling(tiny_engine: HFEngine, prompts: list[list[int]]) -> None:
    # Exact: with branching 1 the tree loop runs the same rows, forwards and generator draws as `_decode`.
    sampling = Sampling(max_tokens=12, temperature=0.9, seed=7)
    leaves = generate_tree(tiny_engine, prompts, sampling, roots=3, segment_tokens=4, branching=1, depth=2)
    plain = tiny_engine.generate(CONVERSATIONS, sampling, n=3)
    assert [leaf.completion for leaf in leaves] == plain
    assert [leaf.prompt for leaf in leaves] == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_leaf_logprobs_equal_a_teacher_forced_forward(
    tiny_model_folder: str, prompts: list[list[int]], temperature: float
) -> None:
    # float64 weights: in float32 the padded, batched decode differs from one unpadded forward by ~1e-5
    # (kernel reduction order, measured 1.3e-5), which would hide nothing but rounding; float64 checks the tree
    # logic (cache copies, positions, masks) itself at 1e-5.
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    model = load_model(tiny_model_folder).double()
    engine = HFEngine(model, load_tokenizer(tiny_model_folder))
    sampling = Sampling(max_tokens=10, temperature=temperature, seed=1)
    leaves = generate_tree(engine, prompts, sampling, roots=1, segment_tokens=3, branching=2, depth=2)
    for leaf in leaves:
        ids = prompts[leaf.prompt] + list(leaf.completion.token_ids)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].double()  # (T, V)
        n = len(leaf.completion.token_ids)
        logp = torch.log_softmax(logits[-n - 1 : -1] / temperature, dim=-1)
        expected = logp.gather(-1, torch.tensor(leaf.completion.token_ids)[:, None])[:, 0]
        got = torch.tensor(leaf.completion.logprobs, dtype=torch.float64)
        assert torch.allclose(got, expected, atol=1e-5, rtol=0)


def test_stopped_paths_do_not_branch(tiny_model_folder: str, prompts: list[list[int]]) -> None:
    from rlvr.trainer.engines.models import load_model, load_tokenizer

    model, tokenizer = load_model(tiny_model_folder), load_tokenizer(tiny_model_folder)
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    head.weight = model.lm_head.weight
    with torch.no_grad():
        head.bias.zero_()
        head.bias[tokenizer.eos_token_id] = 12.0  # rows end after 1 to 12 tokens
    model.lm_head = head
    engine = HFEngine(model, tokenizer)
    s, depth, branching = 2, 3, 2
    leaves = generate_tree(
        engine,
        prompts,
        Sampling(max_tokens=12, temperature=0.7, seed=3),
        roots=2,
        segment_tokens=s,
        branching=branching,
        depth=depth,
    )
    eos = tokenizer.eos_token_id
    assert any(leaf.completion.finish_reason == "stop" for leaf in leaves)
    assert len(leaves) < 2 * 2 * branching**depth  # some paths stopped before the last branch point
    for leaf in leaves:
        if leaf.completion.finish_reason == "stop":
            assert leaf.completion.token_ids[-1] == eos and eos not in leaf.completion.token_ids[:-1]
    kids = children(leaves)
    for leaf in leaves:
        for level, node in enumerate(leaf.path[:-1]):  # an inner node: branched iff its segment ends <= depth
            assert len(kids[node]) == (branching if level < depth else 1)
        assert leaf.path[-1] not in kids  # a stopped path has no children


def hand_tree(shapes: dict[str, tuple[tuple[int, ...], list[int]]]) -> list[TreeSample]:
    return [
        TreeSample(0, 100, Completion("x", tuple(ids), tuple([0.0] * len(ids))), path, 2)
        for path, ids in shapes.values()
    ]


def trajectories_of(leaves: list[TreeSample], prompt: tuple[int, ...] = (90, 91, 92)) -> list[Trajectory]:
    return [
        Trajectory(
            "e",
            "t",
            0,
            [],
            token_ids=[*prompt, *leaf.completion.token_ids],
            mask=[0] * len(prompt) + [1] * len(leaf.completion.token_ids),
            logprobs=[0.0] * (len(prompt) + len(leaf.completion.token_ids)),
            prompt_length=len(prompt),
        )
        for leaf in leaves
    ]


def test_advantages_hand_case_balanced() -> None:
    # q -> n0 -> {n1 -> {a, b}, n2 -> {c, d}}; R = (1, 0, 0, 0). V(q) = 1/4, V(n1) = 1/2, V(n2) = 0.
    leaves = hand_tree(
        {
            "a": ((0, 1, 3), [1, 2, 3, 4, 7]),
            "b": ((0, 1, 4), [1, 2, 3, 4, 8]),
            "c": ((0, 2, 5), [1, 2, 5, 6, 9]),
            "d": ((0, 2, 6), [1, 2, 5, 6, 10]),
        }
    )
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])
    leaf = leaf_advantages(rewards, leaves)
    # A_a = ((1 - 1/4) + (1 - 1/2)) / 2 (q and n0 are one sub-group), A_b = ((0 - 1/4) + (0 - 1/2)) / 2, ...
    assert torch.allclose(leaf, torch.tensor([0.625, -0.375, -0.125, -0.125]))
    nodes = node_advantages(leaf, leaves)
    # A(n) = mean of its leaves' A_i = (V(n) - V(q)) / 2 here
    assert nodes == pytest.approx({0: 0.0, 1: 0.125, 2: -0.125, 3: 0.625, 4: -0.375, 5: -0.125, 6: -0.125})
    out = tree_token_advantages(trajectories_of(leaves), leaves, rewards, whiten=False)
    assert out.mask.tolist() == [
        [0, 0, 0, 1, 1, 1, 1, 1],  # a trains n0, n1, n3
        [0, 0, 0, 0, 0, 0, 0, 1],  # b trains n4
        [0, 0, 0, 0, 0, 1, 1, 1],  # c trains n2, n5
        [0, 0, 0, 0, 0, 0, 0, 1],  # d trains n6
    ]
    assert out.advantages[0, 3:].tolist() == pytest.approx([0.0, 0.0, 0.125, 0.125, 0.625])
    assert out.advantages[2, 5:].tolist() == pytest.approx([-0.125, -0.125, -0.125])
    assert out.advantages[1, 7].item() == pytest.approx(-0.375)


def test_advantages_hand_case_early_stop_and_lone_leaf() -> None:
    # c stopped inside n2 (no branch): q -> n0 -> {n1 -> {a, b}, n2 = c}; R = (1, 0, 1). V(q) = 2/3, V(n1) = 1/2.
    leaves = hand_tree(
        {"a": ((0, 1, 3), [1, 2, 3, 4, 7]), "b": ((0, 1, 4), [1, 2, 3, 4, 8]), "c": ((0, 2), [1, 2, 5])}
    )
    rewards = torch.tensor([1.0, 0.0, 1.0])
    leaf = leaf_advantages(rewards, leaves)
    expected = [((1 - 2 / 3) + (1 - 1 / 2)) / 2, ((0 - 2 / 3) + (0 - 1 / 2)) / 2, 1 - 2 / 3]  # c: q only
    assert leaf.tolist() == pytest.approx(expected)
    nodes = node_advantages(leaf, leaves)
    assert nodes[0] == pytest.approx(sum(expected) / 3) and nodes[1] == pytest.approx(-1 / 12)
    out = tree_token_advantages(trajectories_of(leaves), leaves, rewards, whiten=False)
    assert out.mask.sum().item() == distinct_tokens(leaves) == 7  # n0 2 + n1 2 + n3 1 + n4 1 + n2 1
    assert out.mask[2].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]  # c is left-padded by 2; n0 is trained in a's row
    assert out.advantages[2, 7].item() == pytest.approx(1 / 3)
    dropped = tree_token_advantages(
        trajectories_of(leaves), leaves, rewards, whiten=False, skip=[True, False, False]
    )
    assert dropped.mask[0].sum() == 0 and dropped.mask[1].tolist() == [
        0,
        0,
        0,
        1,
        1,
        1,
        1,
        1,
    ]  # b takes n0, n1
    lone = hand_tree({"a": ((0, 1), [1, 2, 3])})  # a prompt with one leaf: no baseline
    assert leaf_advantages(torch.tensor([1.0]), lone).tolist() == [0.0]


def test_whitened_advantages_over_trained_tokens() -> None:
    leaves = hand_tree({"a": ((0, 1), [1, 2, 3, 4]), "b": ((0, 2), [1, 2, 5]), "c": ((3, 4), [6, 7, 8])})
    out = tree_token_advantages(trajectories_of(leaves), leaves, torch.tensor([1.0, 0.0, 0.5]))
    trained = out.advantages[out.mask > 0]
    assert trained.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert trained.std().item() == pytest.approx(1.0, abs=1e-3)
    assert (out.advantages[out.mask == 0] == 0).all()


class _Chatty(gym.Env):
    """A bare Gymnasium env that never ends an episode and declares no turn limit."""

    def reset(self, *, seed=None, options=None):
        return [{"role": "user", "content": "hi"}], {}

    def step(self, action):
        return [{"role": "user", "content": "more"}], 0.0, False, False, {}


class _TwoTurns(RlvrEnv):
    def evaluate(self, completion: Completion) -> Feedback:
        return Feedback(reply=[{"role": "user", "content": "again"}], rewards={"correct": 0.0}, done=False)


def test_tree_rollout_scores_each_leaf_and_trains_each_token_once(tiny_engine: HFEngine) -> None:
    shape = TreeShape(segment_tokens=3, branching=2, depth=1, roots=2)
    envs = [ArithmeticEnv(level=1) for _ in range(2 * shape.leaves)]
    sample_tree = functools.partial(
        generate_tree, tiny_engine, roots=2, segment_tokens=3, branching=2, depth=1
    )
    out = tree_rollout(
        envs,
        sample_tree,
        leaves=shape.leaves,
        tokenizer=tiny_engine.tokenizer,
        options=[{"task_index": i // shape.leaves} for i in range(len(envs))],
        groups=[i // shape.leaves for i in range(len(envs))],
        sampling=Sampling(max_tokens=8, seed=0),
    )
    assert len(out.trajectories) == len(out.leaves) == 8
    for k, (trajectory, leaf) in enumerate(zip(out.trajectories, out.leaves, strict=True)):
        assert trajectory.group == leaf.prompt == k // shape.leaves
        assert trajectory.task_index == leaf.prompt and len(trajectory.turns) == 1 and trajectory.terminated
        assert tuple(trajectory.token_ids[trajectory.prompt_length :]) == leaf.completion.token_ids
        assert trajectory.turns[0].completion == leaf.completion
    rewards = torch.tensor([t.reward for t in out.trajectories])
    result = tree_token_advantages(out.trajectories, out.leaves, rewards)
    assert result.mask.sum().item() == distinct_tokens(out.leaves)  # each distinct tree token once
    width = result.mask.shape[1]
    for leaf in out.leaves:  # every node's tokens are trained in exactly one row, the whole span
        for node, start, end in leaf.spans():
            rows = []
            for r, other in enumerate(out.leaves):
                first = width - len(other.completion.token_ids)
                if node in other.path and result.mask[r, first + start : first + end].any():
                    assert result.mask[r, first + start : first + end].all()
                    rows.append(r)
            assert len(rows) == 1, (node, rows)
    once = train_once(out.trajectories, out.leaves)
    assert torch.equal(token_mask(once), result.mask)
    assert torch.equal(build_batch(once, result.advantages, pad_id=0).loss_mask, result.mask)
    assert [t.mask for t in out.trajectories] != [t.mask for t in once]  # copies; the originals are kept


def test_tree_rollout_refuses_multi_turn_environments(tiny_engine: HFEngine) -> None:
    sample_tree = functools.partial(
        generate_tree, tiny_engine, roots=1, segment_tokens=2, branching=2, depth=1
    )
    task = Task("t0", "hi", "1")
    envs = [_TwoTurns([task], max_turns=3) for _ in range(2)]
    with pytest.raises(ConfigError, match="single-turn"):
        tree_rollout(envs, sample_tree, leaves=2, tokenizer=tiny_engine.tokenizer)
    undeclared = [_Chatty() for _ in range(2)]  # no turn limit to read: refused after the first step instead
    with pytest.raises(ConfigError, match="went on after turn 1"):
        tree_rollout(
            undeclared,
            sample_tree,
            leaves=2,
            tokenizer=tiny_engine.tokenizer,
            sampling=Sampling(max_tokens=4, seed=0),
        )


def test_shape_from_group_size() -> None:
    assert TreeShape.for_group(8, 16, 2, 2) == TreeShape(16, 2, 2, roots=2)
    with pytest.raises(ConfigError, match="multiple of branching"):
        TreeShape.for_group(6, 16, 2, 2)
    with pytest.raises(ConfigError, match="branching"):
        TreeShape(16, 0, 1)
