"""The source learners' shared parts: the batch context, the step record, the learner base
class and the history labels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from icrl_bench.envs.core import BatchedCore, random_actions


@dataclass
class Context:
    """What a learner is told about the batch it controls.

    Attributes:
        core: the batched core (privileged: task, full state, oracle).
        num_envs: ``B = tasks x histories``.
        num_actions: size of a discrete action space (0 for a continuous one).
        horizon: steps per episode.
        episodes: episodes per history.
        action_space: the single-env action space.
    """

    core: BatchedCore
    num_envs: int
    num_actions: int
    horizon: int
    episodes: int
    action_space: gym.Space[Any]


def make_context(core: BatchedCore, num_envs: int, episodes: int) -> Context:
    """The :class:`Context` of ``num_envs`` envs of ``core``'s family."""
    space = core.single_action_space
    num_actions = int(space.n) if isinstance(space, gym.spaces.Discrete) else 0
    return Context(core, num_envs, num_actions, core.horizon, episodes, space)


class Step(NamedTuple):
    """One step of every env, as a source learner learns from it (arrays ``[B, ...]``).

    Attributes:
        state: learner states before the step.
        actions: the actions taken.
        rewards: the rewards received.
        next_state: learner states after the step.
        terminated: the episode ended in a terminal state (no bootstrap).
        alive: the env's episode was running (steps of ended episodes are ignored).
    """

    state: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_state: np.ndarray
    terminated: np.ndarray
    alive: np.ndarray


class Learner(ABC):
    """A batch of ``B`` independent learners, one per env."""

    #: move every env to a uniform state before each step (:class:`UniformStateLearner`)
    relocates = False
    #: accepts ``freeze_after`` (trains, then records from frozen snapshots)
    freezable = False

    def __init__(self, ctx: Context, rng: np.random.Generator) -> None:
        self.ctx = ctx
        self.rng = rng

    def random_actions(self) -> np.ndarray:
        """Uniform-random actions ``[B, ...]``: an index, or a point of the action box."""
        return random_actions(self.ctx.action_space, self.ctx.num_envs, self.rng)

    @abstractmethod
    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """Actions ``[B]`` given learner states, the oracle's actions and the history progress.

        ``progress`` is the fraction of the history's nominal steps already taken, in ``[0, 1)``.
        """

    def update(self, step: Step) -> None:  # noqa: B027 - optional hook (see the docstring)
        """Learn from one step of every env; ``alive`` marks envs whose episode was running."""

    def end_episode(self, episode: int) -> None:  # noqa: B027 - optional hook
        """Called after episode ``episode`` (0-based) of every history."""

    def history_kind(self) -> np.ndarray:
        """Per-env label of what produced the history (see :data:`HISTORY_KINDS`), int8 ``[B]``."""
        return np.zeros(self.ctx.num_envs, dtype=np.int8)


HISTORY_KINDS = {0: "learner", 1: "random", 2: "medium", 3: "expert"}
