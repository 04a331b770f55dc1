"""The batched agent interface, and the reference agents that use it.

Every agent, a trained baseline or a classic learner, is evaluated through the same runner with
the same interface. The reference agents here are the leaderboard's first rows: they show the
protocol's scale (random = 0 and oracle = 1 when normalised) and what classic learners reach.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from icrl_bench.data.sources import LEARNERS, Learner, Step, make_context
from icrl_bench.envs.core import BatchedCore, random_actions
from icrl_bench.errors import IcrlBenchError
from icrl_bench.registry import family


@runtime_checkable
class Agent(Protocol):
    """A batched in-context agent: ``num_envs`` trials at once, one per env.

    The runner calls ``reset`` at the start of a trial (and, under ``zero-shot-v1``, before every
    episode), then alternates ``act`` and ``observe``. No weights may change during evaluation:
    everything an agent learns about a task must live in its context.

    Optional hooks, called by the runner when present:

    * ``seed(seed: int)``: seed the agent's own random stream before a trial;
    * ``attach(env)``: give privileged access to the vector env (the oracle and the reference
      learners use it; a trained baseline must not).
    """

    name: str

    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """Start new trials in ``num_envs`` envs and clear all context.

        Args:
            num_envs: batch size.
            prompts: for prompted protocols, one prompt per env: a dict of arrays
                (``observations``, ``actions``, ``rewards``, ``next_observations``,
                ``terminations``, ``truncations``, ``episode_index``) from the env's task.
        """
        ...

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions for every env, shape ``[num_envs, ...]``."""
        ...

    def observe(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Append one transition of every env to the context.

        ``next_obs`` is the true last observation of an episode that just ended; the runner
        then resets that env, and the next ``act`` sees the new episode's first observation.
        A class that subclasses the protocol and keeps no context inherits this no-op.
        """
        return None


class _PrivilegedAgent(Agent):
    """Base of the reference agents: they read the task and state from the env's core."""

    name = "reference"

    def __init__(self) -> None:
        self._core: BatchedCore | None = None
        self._rng = np.random.default_rng(0)
        self.num_envs = 0

    def seed(self, seed: int) -> None:
        """Seed the agent's own stream."""
        self._rng = np.random.default_rng([seed, 0xA6E])

    def attach(self, env: gym.vector.VectorEnv) -> None:
        """Keep a handle on the env's core (the task and the oracle)."""
        self._core = env.unwrapped._core  # type: ignore[attr-defined]

    @property
    def core(self) -> BatchedCore:
        """The attached core."""
        if self._core is None:
            raise RuntimeError(f"{self.name} needs attach(env) before acting")
        return self._core

    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """Start new trials."""
        self.num_envs = num_envs

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions for every env (each reference agent defines its own)."""
        raise NotImplementedError

    # observe: the protocol's no-op (stateless agents ignore transitions)


class RandomAgent(_PrivilegedAgent):
    """Uniform-random actions."""

    name = "random"

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Uniform over the actions."""
        return random_actions(self.core.single_action_space, self.num_envs, self._rng)


class OracleAgent(_PrivilegedAgent):
    """The family's optimal policy, which knows the task."""

    name = "oracle"

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The oracle's action."""
        return self.core.oracle_action()


class LearnerAgent(_PrivilegedAgent):
    """A classic learner (UCB, Thompson sampling, tabular Q-learning) run online.

    It uses the same vectorised implementation as the dataset sources. Its statistics (arm
    counts, Q-table) are its context: they are cleared by ``reset`` and updated by ``observe``.

    Args:
        learner: a key of :data:`icrl_bench.data.sources.LEARNERS`.
        name: the method name on the leaderboard.
        episodes: episodes per trial (drives the exploration schedule of Q-learning).
        **params: the learner's parameters.
    """

    def __init__(self, learner: str, name: str, episodes: int = 1, **params: Any) -> None:
        super().__init__()
        self.learner_name = learner
        self.name = name
        self.episodes = episodes
        self.params = params
        self._learner: Learner | None = None
        self._state: np.ndarray | None = None
        self._episode = np.zeros(0, dtype=np.int64)

    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """A fresh learner per env."""
        super().reset(num_envs, prompts)
        ctx = make_context(self.core, num_envs, self.episodes)
        self._learner = LEARNERS[self.learner_name](ctx, self._rng, **self.params)
        self._episode = np.zeros(num_envs, dtype=np.int64)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The learner's action in its current (privileged) state."""
        assert self._learner is not None
        self._state = self.core.learner_state()
        progress = float(self._episode.mean()) / max(self.episodes, 1)
        return self._learner.act(self._state, self.core.oracle_action(), progress)

    def observe(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Learn from the transition; advance the schedule when every env ended an episode."""
        assert self._learner is not None and self._state is not None
        # the env has already stepped: the core holds the next state (or the reset state of
        # an env whose episode just ended, where the backup does not bootstrap)
        next_state = self.core.learner_state()
        done = terminated | truncated
        step = Step(self._state, action, reward, next_state, terminated | done, np.ones_like(done))
        self._learner.update(step)
        before = int(self._episode.min())
        self._episode += done
        if int(self._episode.min()) > before:
            self._learner.end_episode(before)


#: the reference agents :func:`reference_agent` builds, each with the line that describes it on
#: the leaderboard (they are not trained: their evaluation seeds are their runs)
REFERENCE_DESCRIPTIONS: dict[str, str] = {
    "random": "reference: uniformly random actions",
    "oracle": "reference: the optimal policy that knows the task (Meta-World: its scripted "
    "expert; locomotion: a SAC expert per task)",
    "ucb": "reference: UCB1 (LinUCB on the linear bandit), learning online within the trial",
    "thompson": "reference: Thompson sampling on the bandit, learning online within the trial",
    "qlearning": "reference: tabular Q-learning online across the trial's episodes (lr 0.3, "
    "gamma 0.9, epsilon 1 to 0.05 over 70% of the episodes)",
    "cem": "reference: the cross-entropy method online across the trial's episodes "
    "(population 6, elite 2)",
}
#: the names :func:`reference_agent` builds
REFERENCE_AGENTS = tuple(REFERENCE_DESCRIPTIONS)
#: the learning reference agents, with the families they apply to (a family's kind lists them
#: in ``reference_agents``)
LEARNING_AGENTS = {
    "ucb": "the bandit families",
    "thompson": "the bandit families",
    "qlearning": "the grid families",
    "cem": "PointRobot",
}


def reference_agent(name: str, env_id: str, episodes: int) -> _PrivilegedAgent:
    """Build a reference agent by name for a family.

    Args:
        name: ``random``, ``oracle``, ``ucb``, ``thompson``, ``qlearning`` or ``cem``.
        env_id: the family (bandit agents only apply to bandits, Q-learning to grids, the
            cross-entropy method to PointRobot).
        episodes: episodes per trial under the protocol.
    """
    spec = family(env_id)
    if name in LEARNING_AGENTS and name not in spec.kind.reference_agents:
        where = LEARNING_AGENTS[name]
        raise IcrlBenchError(f"agent {name!r} applies to {where}, not {spec.name}")
    if name == "random":
        return RandomAgent()
    if name == "oracle":
        return OracleAgent()
    if name == "cem":
        return LearnerAgent("cem", "cem", episodes, population=6, elite=2)
    if name in ("ucb", "thompson"):
        return LearnerAgent(name, name, episodes)
    if name == "qlearning":
        params = {"lr": 0.3, "gamma": 0.9, "eps_start": 1.0, "eps_end": 0.05}
        return LearnerAgent("q-learning", "qlearning", episodes, decay_fraction=0.7, **params)
    raise IcrlBenchError(
        f"unknown agent {name!r}; reference agents: {', '.join(REFERENCE_AGENTS)} "
        "(or a checkpoint directory)"
    )
