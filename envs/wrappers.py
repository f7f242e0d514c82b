"""Wrappers: cross-cutting reward shaping and episode bookkeeping, each overriding one method.

Reward wrappers add one named component to `info["rewards"]` and to the reward, so the breakdown always sums to
the total, and raise `max_reward` by the most they can add (the reference-solution check reads it).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from rlvr.envs.spaces import TextSpace
from rlvr.envs.types import Completion, Message, as_completion
from rlvr.errors import ConfigError
from rlvr.verifiers.format_reward import FormatConfig, format_reward
from rlvr.verifiers.length import OverlongConfig, overlong_penalty

StepResult = tuple[Any, float, bool, bool, dict[str, Any]]


class RewardComponentWrapper(gym.Wrapper):
    """Adds component `self.component` = `self.component_reward(...)` to every step."""

    component: str = ""
    max_bonus: float = 0.0
    """The most this component adds to a perfect episode."""

    def step(self, action: str | Completion) -> StepResult:
        observation, reward, terminated, truncated, info = self.env.step(action)
        value = float(self.component_reward(as_completion(action), info))
        rewards = info.setdefault("rewards", {})
        if self.component in rewards:
            raise ConfigError(f"reward component {self.component!r} is already set; wrap an environment once")
        rewards[self.component] = value
        return observation, reward + value, terminated, truncated, info

    def component_reward(self, completion: Completion, info: dict[str, Any]) -> float:
        raise NotImplementedError

    @property
    def max_reward(self) -> float:
        return self.env.get_wrapper_attr("max_reward") + self.max_bonus


class FormatReward(RewardComponentWrapper, gym.utils.RecordConstructorArgs):
    """`format` = weight * the format score of the reply (verifiers/format_reward.py: one closed \\boxed{} by default)."""

    component = "format"

    def __init__(self, env: gym.Env, weight: float = 0.1, config: FormatConfig | dict | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, weight=weight, config=config)
        super().__init__(env)
        if isinstance(config, dict):
            config = FormatConfig(**config)
        self.config = config or FormatConfig(think=False)
        self.weight = float(weight)
        self.max_bonus = max(self.weight, 0.0)

    def component_reward(self, completion: Completion, info: dict[str, Any]) -> float:
        return self.weight * format_reward(completion.text, self.config).score


class OverlongShaping(RewardComponentWrapper, gym.utils.RecordConstructorArgs):
    """`overlong` = DAPO soft overlong punishment (DAPO eq. 13) of the reply's token count.

    The count comes from the Completion's token ids; a plain string is counted with `tokenizer` (anything with
    `encode(text, add_special_tokens=False)`); with neither, the step raises a ConfigError.
    """

    component = "overlong"

    def __init__(
        self,
        env: gym.Env,
        max_length: int,
        buffer: int,
        penalty_factor: float = 1.0,
        tokenizer: Any = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, max_length=max_length, buffer=buffer, penalty_factor=penalty_factor, tokenizer=tokenizer
        )
        super().__init__(env)
        self.config = OverlongConfig(max_length=max_length, buffer=buffer, penalty_factor=penalty_factor)
        self.tokenizer = tokenizer

    def component_reward(self, completion: Completion, info: dict[str, Any]) -> float:
        if completion.token_ids is not None:
            num_tokens = len(completion.token_ids)
        elif self.tokenizer is not None:
            num_tokens = len(self.tokenizer.encode(completion.text, add_special_tokens=False))
        else:
            raise ConfigError(
                "OverlongShaping needs the reply's length: step with a Completion carrying token_ids, "
                "or give the wrapper a tokenizer to count a plain string"
            )
        return overlong_penalty(num_tokens, self.config)


class MaxTurns(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Truncate the episode after `max_turns` steps (a finished task still ends as terminated)."""

    def __init__(self, env: gym.Env, max_turns: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, max_turns=max_turns)
        super().__init__(env)
        if not isinstance(max_turns, int) or max_turns < 1:
            raise ConfigError(f"max_turns must be an integer >= 1, got {max_turns!r}")
        self.max_turns = max_turns
        self.turns = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.turns = 0
        return self.env.reset(**kwargs)

    def step(self, action: str | Completion) -> StepResult:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.turns += 1
        if not terminated and self.turns >= self.max_turns:
            truncated = True
        return observation, reward, terminated, truncated, info


class PlainTextObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observations as plain text for base models without a chat template.

    Each message becomes `"{Role}: {content}\\n"` (a system message is written as-is, then a blank line) and a
    non-empty observation ends with `generation_prefix` ("Assistant:") so the model continues there.
    """

    def __init__(self, env: gym.Env, generation_prefix: str = "Assistant:") -> None:
        gym.utils.RecordConstructorArgs.__init__(self, generation_prefix=generation_prefix)
        super().__init__(env)
        self.generation_prefix = generation_prefix
        self.observation_space = TextSpace()

    def observation(self, observation: list[Message]) -> str:
        if not observation:
            return ""
        lines = []
        for message in observation:
            content = message.get("content") or ""
            if message["role"] == "system":
                lines.append(content + "\n\n")
            else:
                lines.append(f"{message['role'].capitalize()}: {content}\n")
        return "".join(lines) + self.generation_prefix


class EpisodeStatistics(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """On the last step, `info["episode"]` = {return, turns, rewards (each component summed), solved}."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        self._reset_totals()

    def _reset_totals(self) -> None:
        self.episode_return, self.turns, self.component_sums = 0.0, 0, {}

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._reset_totals()
        return self.env.reset(**kwargs)

    def step(self, action: str | Completion) -> StepResult:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.episode_return += reward
        self.turns += 1
        for name, value in info.get("rewards", {}).items():
            self.component_sums[name] = self.component_sums.get(name, 0.0) + value
        if terminated or truncated:
            info["episode"] = {
                "return": self.episode_return,
                "turns": self.turns,
                "rewards": dict(self.component_sums),
                "solved": bool(info.get("solved", False)),
                "truncated": bool(truncated),
            }
        return observation, reward, terminated, truncated, info
