"""Multi-armed and linear bandit families, as in DPT (Lee et al., 2023).

As in DPT's own code, one episode is one whole trial of ``horizon`` pulls, and the observation is
a constant. In-context learning happens within the episode, and cumulative regret over the trial
is the headline metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from icrl_bench.envs.core import BatchedCore, CoreEnv, CoreVectorEnv
from icrl_bench.errors import InvalidTaskError
from icrl_bench.tasks import BanditTask, LinearBanditTask, Task


class _BanditCore(BatchedCore):
    """Shared arithmetic: per-env mean rewards ``[N, K]`` and a constant observation."""

    def __init__(self, num_envs: int, family: str, horizon: int, num_arms: int) -> None:
        super().__init__(num_envs, family, horizon)
        self.num_arms = int(num_arms)
        self.single_observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.single_action_space = spaces.Discrete(self.num_arms)
        self.means = np.zeros((self.num_envs, self.num_arms))
        # one uniform or standard-normal draw per step of the episode, drawn at reset
        self.draws = np.zeros((self.num_envs, self.horizon))
        self._obs = np.zeros((self.num_envs, 1), dtype=np.float32)

    def all_tasks(self) -> None:
        """Bandit families are continuous: there is no finite task list."""
        return None

    def observe(self) -> np.ndarray:
        """The constant observation, ``[N, 1]`` zeros."""
        return self._obs.copy()

    @property
    def num_learner_states(self) -> int:
        """A bandit has one state."""
        return 1

    def learner_state(self) -> np.ndarray:
        """Always state 0."""
        return np.zeros(self.num_envs, dtype=np.int64)

    def oracle_action(self) -> np.ndarray:
        """The best arm of each env."""
        return self.means.argmax(axis=1)

    def mean_rewards(self, tasks: Sequence[Task]) -> np.ndarray:
        """Mean reward of every arm, ``[len(tasks), K]``."""
        return np.array([self._task_means(t) for t in tasks]).reshape(len(tasks), self.num_arms)

    def _task_means(self, task: Task) -> np.ndarray:
        return np.asarray(task.means)  # type: ignore[attr-defined]

    def _write_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        self.means[idx] = self.mean_rewards(tasks)

    def regret(self, actions: np.ndarray) -> np.ndarray:
        """Expected per-step regret of ``actions``: best mean minus the pulled arm's mean."""
        rows = np.arange(self.num_envs)
        return self.means.max(axis=1) - self.means[rows, actions]

    def reference_returns(self, tasks: Sequence[Task]) -> dict[str, np.ndarray]:
        """Oracle pulls the best arm every step; random pulls a uniform arm."""
        means = self.mean_rewards(tasks)
        return {
            "random": self.horizon * means.mean(axis=1),
            "oracle": self.horizon * means.max(axis=1),
        }

    def _draw_index(self) -> np.ndarray:
        # clipped so that stepping an env that awaits its autoreset stays in bounds
        return np.minimum(self.t, self.horizon - 1)


class GaussianBanditCore(_BanditCore):
    """Means ``U[0, 1]`` per arm; reward = mean of the pulled arm + ``N(0, noise_std**2)``."""

    task_type: ClassVar[type[Task]] = BanditTask

    def __init__(
        self, num_envs: int, family: str, horizon: int, num_arms: int, noise_std: float
    ) -> None:
        super().__init__(num_envs, family, horizon, num_arms)
        self.noise_std = float(noise_std)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Arm means drawn i.i.d. from ``U[0, 1]``."""
        means = rng.uniform(0.0, 1.0, size=(n, self.num_arms))
        return tuple(BanditTask(family=self.family, means=tuple(m)) for m in means)

    def check_task(self, task: Task) -> None:
        """Needs ``num_arms`` means in [0, 1]."""
        means = np.asarray(task.means)  # type: ignore[attr-defined]
        if means.shape != (self.num_arms,) or means.min() < 0.0 or means.max() > 1.0:
            raise InvalidTaskError(
                f"{self.family}: needs {self.num_arms} arm means in [0, 1], got {task.means}"  # type: ignore[attr-defined]
            )

    def _reset(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        for i, rng in zip(idx.tolist(), rngs, strict=True):
            self.draws[i] = rng.standard_normal(self.horizon)

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(self.num_envs)
        noise = self.draws[rows, self._draw_index()]
        rewards = self.means[rows, actions] + self.noise_std * noise
        return rewards, np.zeros(self.num_envs, dtype=bool)


class BernoulliBanditCore(_BanditCore):
    """Means ``Beta(1, 1)`` per arm; reward is 1 with the pulled arm's mean, else 0."""

    task_type = BanditTask

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Arm means drawn i.i.d. from ``Beta(1, 1)``."""
        means = rng.beta(1.0, 1.0, size=(n, self.num_arms))
        return tuple(BanditTask(family=self.family, means=tuple(m)) for m in means)

    check_task = GaussianBanditCore.check_task

    def _reset(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        for i, rng in zip(idx.tolist(), rngs, strict=True):
            self.draws[i] = rng.random(self.horizon)

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(self.num_envs)
        u = self.draws[rows, self._draw_index()]
        rewards = (u < self.means[rows, actions]).astype(np.float64)
        return rewards, np.zeros(self.num_envs, dtype=bool)


class LinearBanditCore(GaussianBanditCore):
    """Arm ``k`` has features ``x_k``; its mean reward is ``x_k @ theta`` plus Gaussian noise."""

    task_type = LinearBanditTask

    def __init__(
        self, num_envs: int, family: str, horizon: int, num_arms: int, dim: int, noise_std: float
    ) -> None:
        super().__init__(num_envs, family, horizon, num_arms, noise_std)
        self.dim = int(dim)
        # arm features of every env, for learners with privileged access (LinUCB)
        self.features = np.zeros((self.num_envs, self.num_arms, self.dim))

    def _write_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        super()._write_tasks(idx, tasks)
        self.features[idx] = [t.features for t in tasks]  # type: ignore[attr-defined]

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Features and theta drawn i.i.d. ``N(0, 1/dim)`` per coordinate."""
        scale = 1.0 / np.sqrt(self.dim)
        out = []
        for _ in range(n):
            features = rng.normal(0.0, scale, size=(self.num_arms, self.dim))
            theta = rng.normal(0.0, scale, size=self.dim)
            out.append(
                LinearBanditTask(
                    family=self.family,
                    features=tuple(tuple(row) for row in features.tolist()),
                    theta=tuple(theta.tolist()),
                )
            )
        return tuple(out)

    def check_task(self, task: Task) -> None:
        """Needs ``num_arms`` feature vectors of length ``dim`` and a theta of length ``dim``."""
        feats = np.asarray(task.features)  # type: ignore[attr-defined]
        if feats.shape != (self.num_arms, self.dim):
            raise InvalidTaskError(
                f"{self.family}: features must be [{self.num_arms}, {self.dim}], got {feats.shape}"
            )

    def _task_means(self, task: Task) -> np.ndarray:
        return np.asarray(task.features) @ np.asarray(task.theta)  # type: ignore[attr-defined]


_DOC = """
    ## Action Space
    ``Discrete(K)``: the arm to pull.

    ## Observation Space
    ``Box(0, 1, (1,), float32)``: the constant 0; everything about the task must be learned from
    rewards.

    ## Rewards
    {rewards}

    ## Episode End
    One episode is one trial of ``horizon`` pulls; it truncates after the last pull and never
    terminates.

    ## Task
    {task}

    ## Version History
    * v0: first release.
"""


class GaussianBanditEnv(CoreEnv):
    __doc__ = "Gaussian multi-armed bandit (``icrl_bench/GaussianBandit-v0``)." + _DOC.format(
        rewards="The pulled arm's mean plus Gaussian noise of variance 0.3 (std 0.5477).",
        task="``BanditTask(means=...)``: 5 arm means drawn from U[0, 1].",
    )
    core_cls = GaussianBanditCore


class GaussianBanditEnvVector(CoreVectorEnv):
    """Batched :class:`GaussianBanditEnv`."""

    core_cls = GaussianBanditCore


class BernoulliBanditEnv(CoreEnv):
    __doc__ = "Bernoulli multi-armed bandit (``icrl_bench/BernoulliBandit-v0``)." + _DOC.format(
        rewards="1 with probability equal to the pulled arm's mean, else 0.",
        task="``BanditTask(means=...)``: 5 arm means drawn from Beta(1, 1).",
    )
    core_cls = BernoulliBanditCore


class BernoulliBanditEnvVector(CoreVectorEnv):
    """Batched :class:`BernoulliBanditEnv`."""

    core_cls = BernoulliBanditCore


class LinearBanditEnv(CoreEnv):
    __doc__ = "Linear bandit (``icrl_bench/LinearBandit-v0``)." + _DOC.format(
        rewards="``features[a] @ theta`` plus Gaussian noise of variance 0.3.",
        task="``LinearBanditTask(features, theta)``: 10 arms with 2-d features; features and "
        "theta drawn i.i.d. N(0, 1/2) per coordinate.",
    )
    core_cls = LinearBanditCore


class LinearBanditEnvVector(CoreVectorEnv):
    """Batched :class:`LinearBanditEnv`."""

    core_cls = LinearBanditCore


__all__: list[Any] = [
    "BernoulliBanditEnv",
    "GaussianBanditEnv",
    "LinearBanditEnv",
]
