"""User environments wherever an id is accepted: `module:id`, the `rlvr.envs` entry-point group, suites that mix
them with weights, overrides checked against the environment, and held-out overrides kept to their own id."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rlvr.envs.registry import make, resolve
from rlvr.envs.suite import Suite
from rlvr.errors import ConfigError
from rlvr.trainer.config import load_config
from rlvr.trainer.run_envs import run_environments

RLVR = shutil.which("rlvr", path=str(Path(sys.executable).parent)) or "rlvr"

USER_MODULE = """
import rlvr
from rlvr.envs import SingleTurnEnv, Task


class Echo(SingleTurnEnv):
    def __init__(self, split="train", size=5):
        offset = 100 if split == "test" else 0
        super().__init__([Task(f"echo-{i}", f"Say {i + offset}.", str(i + offset)) for i in range(size)])

    def score(self, task, completion):
        return {"correct": float(completion.text.strip() == task.answer)}, None

    def reference_action(self):
        return self.task.answer


class NoSplit(Echo):
    def __init__(self):
        super().__init__()


rlvr.register("{ns}/echo-v0", Echo, description="say the number")
rlvr.register("{ns}/nosplit-v0", NoSplit)
"""


@pytest.fixture(scope="module")
def user_module(tmp_path_factory) -> str:
    """A module of the user's on sys.path (as `python -m` puts the current folder there)."""
    folder = tmp_path_factory.mktemp("userenvs")
    (folder / "testlab_envs.py").write_text(USER_MODULE.replace("{ns}", "testlab"))
    sys.path.insert(0, str(folder))
    yield "testlab_envs"
    sys.path.remove(str(folder))


def test_module_colon_id_imports_the_module_and_makes_the_env(user_module):
    assert resolve(f"{user_module}:testlab/echo-v0") == "testlab/echo-v0"
    env = make(f"{user_module}:testlab/echo-v0", size=2)
    assert len(env.unwrapped.tasks) == 2
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_x'"):
        resolve("no_such_module_x:testlab/echo-v0")
    with pytest.raises(ConfigError, match="close: testlab/echo-v0"):
        resolve(f"{user_module}:testlab/echo-v9")


def test_a_suite_mixes_module_ids_plain_ids_and_weights(user_module):
    suite = Suite.parse(
        f"{user_module}:testlab/echo-v0:3, rlvr/arithmetic-v0",
        overrides={f"{user_module}:testlab/echo-v0": {"size": 3}, "rlvr/arithmetic-v0": {"level": 1}},
    )
    assert suite.ids == ["testlab/echo-v0", "rlvr/arithmetic-v0"]
    assert [e.weight for e in suite.entries] == [3.0, 1.0]
    assert suite.num_tasks("testlab/echo-v0") == 3  # the override keyed by the id as written reached it
    assert suite.entries[1].overrides == {"level": 1}
    keyed_plain = Suite.parse(f"{user_module}:testlab/echo-v0", overrides={"testlab/echo-v0": {"size": 4}})
    assert keyed_plain.num_tasks("testlab/echo-v0") == 4


def test_an_override_the_environment_does_not_take_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"rlvr/countdown-v0 takes no 'level'; it takes: .*split"):
        make("rlvr/countdown-v0", level=2)
    with pytest.raises(ConfigError, match="takes no 'colour'"):
        Suite.parse("rlvr/arithmetic-v0", overrides={"rlvr/arithmetic-v0": {"colour": 1}})


def test_quickstart_eval_overrides_do_not_reach_another_environment():
    """`rlvr train env.suite=rlvr/countdown-v0` crashed: the quickstart's arithmetic-only overrides hit countdown."""
    config = load_config(quickstart(), ["env.suite=rlvr/countdown-v0"])
    environments = run_environments(config.env)
    assert environments.held_out_id == "rlvr/countdown-v0"
    assert environments.held_out_overrides == {"split": "test"}
    make(environments.held_out_id, **environments.held_out_overrides).close()
    default = run_environments(load_config(quickstart(), []).env)
    assert default.held_out_id == "rlvr/arithmetic-v0"
    assert default.held_out_overrides == {"split": "test", "level": 2, "system_prompt": "Answer briefly."}


def test_held_out_rules(user_module):
    base = load_config(quickstart(), [f"env.suite={user_module}:testlab/echo-v0", "env.eval_overrides={}"])
    assert run_environments(base.env).held_out_overrides == {"split": "test"}
    flat = load_config(quickstart(), ["env.eval_overrides={level: 1}"])
    with pytest.raises(ConfigError, match="do not say which environment"):
        run_environments(flat.env)
    named = load_config(quickstart(), ["env.eval_env=rlvr/arithmetic-v0", "env.eval_overrides={level: 1}"])
    assert run_environments(named.env).held_out_overrides == {"split": "test", "level": 1}
    no_split = load_config(quickstart(), [f"env.suite={user_module}:testlab/nosplit-v0"])
    with pytest.raises(ConfigError, match="has neither a `split` nor a `seed`"):
        run_environments(no_split.env)
    game = load_config(
        quickstart(), ["env.suite=rlvr/guess-number-v0", "env.overrides={rlvr/guess-number-v0: {seed: 7}}"]
    )
    assert run_environments(game.env).held_out_overrides == {"seed": 7 + 10**9}  # another random stream
    gcd = run_environments(load_config(quickstart(), ["env.suite=rlvr/rg-gcd-v0"]).env)
    assert gcd.held_out_overrides == {"seed": 10**9}
    no_eval = load_config(quickstart(), [f"env.suite={user_module}:testlab/nosplit-v0", "env.eval_tasks=0"])
    assert run_environments(no_eval.env).held_out_overrides == {}


def test_train_with_a_bad_environment_fails_before_the_model_loads(tmp_path):
    """One line, exit 2, in well under the seconds a model load takes."""
    for override, message in [
        ("env.suite=rlvr/no-such-env-v0", "no environment 'rlvr/no-such-env-v0'"),
        ("env.overrides={rlvr/arithmetic-v0: {colour: 1}}", "takes no 'colour'"),
    ]:
        result = subprocess.run(
            [RLVR, "train", override, f"run.output_dir={tmp_path / 'run'}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("rlvr: error:"), result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


PLUGIN = {
    "okplug/__init__.py": USER_MODULE.replace("{ns}", "okplug"),
    "okplug-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: okplug\nVersion: 0.1\n",
    "okplug-0.1.dist-info/entry_points.txt": "[rlvr.envs]\nokplug = okplug\n",
    "brokenplug/__init__.py": "raise RuntimeError('this plugin is broken')\n",
    "brokenplug-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: brokenplug\nVersion: 0.1\n",
    "brokenplug-0.1.dist-info/entry_points.txt": "[rlvr.envs]\nbroken = brokenplug\n",
}


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """An installed package (a dist-info with an `rlvr.envs` entry point) on PYTHONPATH, and a broken one."""
    site = tmp_path_factory.mktemp("site")
    for relative, text in PLUGIN.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    return site


def test_an_installed_plugin_is_found_with_no_flag(plugin_site, tmp_path):
    env = {"PYTHONPATH": str(plugin_site), "PATH": str(Path(sys.executable).parent)}
    listed = subprocess.run([RLVR, "envs", "list"], capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "okplug/echo-v0" in listed.stdout.split() and "rlvr/arithmetic-v0" in listed.stdout.split()
    assert "plugin 'broken'" in listed.stderr and "this plugin is broken" in listed.stderr  # a warning only
    checked = subprocess.run(
        [RLVR, "envs", "check", "okplug/echo-v0"], capture_output=True, text=True, timeout=120, env=env
    )
    assert checked.returncode == 0 and checked.stdout.strip().endswith("PASSED"), checked.stdout
    code = "import rlvr, gymnasium\nprint(gymnasium.make('okplug/echo-v0').spec.id)"
    made = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert made.returncode == 0 and made.stdout.strip() == "okplug/echo-v0", made.stderr


def quickstart() -> Path:
    from rlvr.trainer.config import default_config_path

    return default_config_path()


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")))
def test_every_example_config_has_a_held_out_environment(path):
    environments = run_environments(load_config(path, []).env)
    assert set(environments.held_out_overrides) & {"split", "seed"}
