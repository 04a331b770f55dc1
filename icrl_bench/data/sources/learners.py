"""The source learners, grouped by the families they serve: policies that do not learn (random,
uniform roll-in, oracle, noisy oracle), tabular Q-learning (grids), the cross-entropy method
(PointRobot) and the bandit learners. Each acts and learns for a whole batch of envs at once.
SAC, the locomotion source, is :mod:`icrl_bench.data.sac`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from icrl_bench.data.sources.base import Context, Learner, Step


# -- policies that do not learn ---------------------------------------------------------------
class RandomLearner(Learner):
    """Uniform-random actions (no learning)."""

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """Uniform over the actions."""
        return self.random_actions()


class UniformStateLearner(RandomLearner):
    """DPT's uniform roll-in: before every step the env is moved to a uniformly drawn state, then
    a uniform-random action is taken. Consecutive transitions are independent; an "episode" is
    ``horizon`` of them."""

    relocates = True


class OracleLearner(Learner):
    """The family's optimal policy, which knows the task."""

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """The oracle's action."""
        return optimal

    def history_kind(self) -> np.ndarray:
        """Expert rollouts."""
        return np.full(self.ctx.num_envs, 3, dtype=np.int8)


class NoisyOracle(Learner):
    """AD-epsilon's noise-distillation demonstrator.

    Discrete actions: with probability ``eps(progress)`` the action is uniform-random, otherwise
    the oracle's. Continuous actions: the oracle's action plus Gaussian noise whose standard
    deviation is ``eps(progress) * noise_scale`` times the half-width of the action box, clipped
    to the box.
    ``eps`` falls linearly with every step, from ``eps_start`` toward ``eps_end`` over the first
    ``decay_fraction`` of the history, and never below ``eps_floor``. AD-epsilon's Dark Room code
    aims at ``eps_end = 0`` and clamps at its floor (so with floor 0.5 it reaches the floor at 45%
    of the history and averages 0.6125); ``eps_end=None`` aims at the floor itself.
    """

    def __init__(
        self,
        ctx: Context,
        rng: np.random.Generator,
        eps_start: float = 1.0,
        eps_floor: float = 0.0,
        decay_fraction: float = 0.9,
        noise_scale: float = 1.0,
        eps_end: float | None = None,
    ) -> None:
        super().__init__(ctx, rng)
        self.eps_start, self.eps_floor, self.decay_fraction = eps_start, eps_floor, decay_fraction
        self.eps_end = eps_floor if eps_end is None else eps_end
        self.noise_scale = noise_scale

    def epsilon(self, progress: float | np.ndarray) -> Any:
        """The noise probability at ``progress`` (the fraction of the history's steps taken)."""
        frac = np.minimum(np.asarray(progress) / self.decay_fraction, 1.0)
        return np.maximum(self.eps_start + (self.eps_end - self.eps_start) * frac, self.eps_floor)

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """The oracle's action, replaced by a uniform one with probability ``eps`` (discrete)
        or perturbed by Gaussian noise of scale ``eps`` (continuous)."""
        space = self.ctx.action_space
        if isinstance(space, gym.spaces.Box):
            half = (space.high - space.low) / 2.0
            scale = half * self.noise_scale * self.epsilon(progress)
            noise = self.rng.standard_normal(optimal.shape) * scale
            return np.clip(optimal + noise, space.low, space.high).astype(space.dtype)
        noisy = self.rng.random(self.ctx.num_envs) < self.epsilon(progress)
        random = self.rng.integers(self.ctx.num_actions, size=self.ctx.num_envs)
        return np.where(noisy, random, optimal)


# -- grid families: tabular Q-learning --------------------------------------------------------
class QLearner(Learner):
    """Tabular Q-learning with epsilon-greedy exploration, one Q-table per env.

    Epsilon decays linearly from ``eps_start`` to ``eps_end`` over the first ``decay_fraction`` of
    the history's episodes. Greedy ties are broken uniformly at random.

    With ``freeze_after=k``, learning stops after ``k`` episodes and the learner then acts
    epsilon-greedily with ``frozen_eps`` from a frozen table: the Q-table of episode
    ``round(medium_fraction * k)`` in envs drawn as "medium", the final one in "expert" envs. Each
    env is expert with probability ``expert_share`` (``expert_kind`` records which, 1 = expert).
    """

    freezable = True

    def __init__(
        self,
        ctx: Context,
        rng: np.random.Generator,
        lr: float = 0.3,
        gamma: float = 0.9,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        decay_fraction: float = 0.7,
        freeze_after: int | None = None,
        medium_fraction: float = 0.5,
        expert_share: float = 1.0,
        frozen_eps: float = 0.1,
    ) -> None:
        super().__init__(ctx, rng)
        self.lr, self.gamma = lr, gamma
        self.eps_start, self.eps_end, self.decay_fraction = eps_start, eps_end, decay_fraction
        self.q = np.zeros((ctx.num_envs, ctx.core.num_learner_states, ctx.num_actions))
        self.rows = np.arange(ctx.num_envs)
        self.eps = eps_start
        self.freeze_after = freeze_after
        self.frozen = False
        self.schedule_episodes = ctx.episodes if freeze_after is None else freeze_after
        self.medium_at = None if freeze_after is None else round(medium_fraction * freeze_after)
        self.frozen_eps = frozen_eps
        self.expert_kind = rng.random(ctx.num_envs) < expert_share
        self.medium_q: np.ndarray | None = None

    def greedy(self, state: np.ndarray) -> np.ndarray:
        """Greedy actions with random tie-breaking."""
        q = self.q[self.rows, state]
        best = q == q.max(axis=1, keepdims=True)
        noise = self.rng.random(q.shape)
        return np.argmax(np.where(best, noise, -1.0), axis=1)

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """Epsilon-greedy in the current Q-table."""
        explore = self.rng.random(self.ctx.num_envs) < self.eps
        random = self.rng.integers(self.ctx.num_actions, size=self.ctx.num_envs)
        return np.where(explore, random, self.greedy(state))

    def update(self, step: Step) -> None:
        """One-step Q-learning backup for the envs still in their episode."""
        if self.frozen:
            return
        state, actions = step.state, step.actions
        bootstrap = np.where(step.terminated, 0.0, self.q[self.rows, step.next_state].max(axis=1))
        target = step.rewards + self.gamma * bootstrap
        current = self.q[self.rows, state, actions]
        self.q[self.rows, state, actions] = current + step.alive * self.lr * (target - current)

    def end_episode(self, episode: int) -> None:
        """Advance the exploration schedule; snapshot and freeze where configured."""
        done = episode + 1
        frac = min(done / max(self.decay_fraction * self.schedule_episodes, 1.0), 1.0)
        self.eps = self.eps_start + (self.eps_end - self.eps_start) * frac
        if self.medium_at is not None and done == self.medium_at:
            self.medium_q = self.q.copy()
        if self.freeze_after is not None and done == self.freeze_after:
            medium = self.q if self.medium_q is None else self.medium_q
            self.q = np.where(self.expert_kind[:, None, None], self.q, medium)
            self.frozen, self.eps = True, self.frozen_eps

    def history_kind(self) -> np.ndarray:
        """Learner histories, or medium/expert snapshot rollouts when frozen."""
        if self.freeze_after is None:
            return super().history_kind()
        return np.where(self.expert_kind, 3, 2).astype(np.int8)


# -- PointRobot: the cross-entropy method -----------------------------------------------------
class CEMLearner(Learner):
    """The cross-entropy method over a goal-seeking policy, for continuous goal-reaching tasks.

    The policy of an episode moves straight toward a target point ``theta`` (the action is
    ``theta - position``, clipped to the action box). Each episode draws ``theta`` from
    ``N(mu, sigma^2)``; after every ``population`` episodes, ``mu`` and ``sigma`` are refit to the
    ``elite`` best of them by return. The learner sees only its returns, never the goal, and its
    histories improve from random-like wandering to near-oracle returns, which is what a
    learning history needs. One learner per env, all vectorised.
    """

    def __init__(
        self,
        ctx: Context,
        rng: np.random.Generator,
        population: int = 6,
        elite: int = 2,
        init_std: float = 1.0,
        min_std: float = 0.02,
    ) -> None:
        super().__init__(ctx, rng)
        space = ctx.action_space
        if not isinstance(space, gym.spaces.Box):
            raise ValueError("the CEM learner needs a continuous action space")
        dim = int(np.prod(ctx.core.single_observation_space.shape or (1,)))
        self.population, self.elite, self.min_std = population, elite, min_std
        self.mu = np.zeros((ctx.num_envs, dim))
        self.std = np.full((ctx.num_envs, dim), init_std)
        self.thetas = np.zeros((ctx.num_envs, population, dim))
        self.returns = np.zeros((ctx.num_envs, population))
        self.slot = 0
        self._draw()

    def _draw(self) -> None:
        self.theta = self.mu + self.std * self.rng.standard_normal(self.mu.shape)

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """Move toward this episode's target."""
        space = self.ctx.action_space
        assert isinstance(space, gym.spaces.Box)
        return np.clip(self.theta - state, space.low, space.high).astype(space.dtype)

    def update(self, step: Step) -> None:
        """Accumulate the episode's return."""
        self.returns[:, self.slot] += step.alive * step.rewards

    def end_episode(self, episode: int) -> None:
        """Store the episode's target; refit the sampling distribution after a population."""
        self.thetas[:, self.slot] = self.theta
        self.slot += 1
        if self.slot == self.population:
            best = np.argsort(-self.returns, axis=1)[:, : self.elite]
            elite = np.take_along_axis(self.thetas, best[:, :, None], axis=1)
            self.mu = elite.mean(axis=1)
            self.std = np.maximum(elite.std(axis=1), self.min_std)
            self.returns[:] = 0.0
            self.slot = 0
        self._draw()


# -- bandits: UCB, Thompson sampling, DPT's Dirichlet mixtures --------------------------------
class UCBLearner(Learner):
    """UCB1 on each env's arms: ``mean + c * sqrt(2 ln t / n)``, untried arms first.

    For the linear bandit it is LinUCB over the (privileged) arm features, with ridge ``lam``.
    """

    def __init__(
        self, ctx: Context, rng: np.random.Generator, c: float = 1.0, lam: float = 1.0
    ) -> None:
        super().__init__(ctx, rng)
        b, k = ctx.num_envs, ctx.num_actions
        self.c, self.lam = c, lam
        self.counts = np.zeros((b, k))
        self.sums = np.zeros((b, k))
        self.features: np.ndarray | None = getattr(ctx.core, "features", None)
        if self.features is not None:
            d = self.features.shape[-1]
            self.gram = np.tile(lam * np.eye(d), (b, 1, 1))
            self.xty = np.zeros((b, d))

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """The arm with the highest upper confidence bound (ties broken at random)."""
        if self.features is not None:
            inv = np.linalg.inv(self.gram)  # [B, d, d]
            theta = np.einsum("bij,bj->bi", inv, self.xty)
            mean = np.einsum("bkd,bd->bk", self.features, theta)
            width = np.sqrt(np.einsum("bkd,bde,bke->bk", self.features, inv, self.features))
            score = mean + self.c * width
        else:
            t = self.counts.sum(axis=1, keepdims=True) + 1.0
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = self.sums / self.counts
                score = mean + self.c * np.sqrt(2.0 * np.log(t) / self.counts)
            score = np.where(self.counts == 0, np.inf, score)
        return _argmax_random(score, self.rng)

    def update(self, step: Step) -> None:
        """Add the pulled arm's reward to its statistics."""
        rows, actions, alive = np.arange(self.ctx.num_envs), step.actions, step.alive
        np.add.at(self.counts, (rows, actions), alive.astype(float))
        np.add.at(self.sums, (rows, actions), alive * step.rewards)
        if self.features is not None:
            x = self.features[rows, actions] * alive[:, None]
            self.gram += np.einsum("bi,bj->bij", x, x)
            self.xty += x * step.rewards[:, None]


class ThompsonLearner(Learner):
    """Thompson sampling: Beta(1, 1) priors for Bernoulli arms, Gaussian otherwise.

    The Gaussian posterior uses prior ``N(prior_mean, prior_var)`` and the family's known noise
    variance.
    """

    def __init__(
        self,
        ctx: Context,
        rng: np.random.Generator,
        prior_mean: float = 0.5,
        prior_var: float = 1.0,
    ) -> None:
        super().__init__(ctx, rng)
        b, k = ctx.num_envs, ctx.num_actions
        self.counts = np.zeros((b, k))
        self.sums = np.zeros((b, k))
        self.prior_mean, self.prior_var = prior_mean, prior_var
        self.noise_var = float(getattr(ctx.core, "noise_std", 0.0)) ** 2
        self.bernoulli = self.noise_var == 0.0
        self.features = None  # arms are treated as independent

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """The arm whose posterior sample is highest."""
        if self.bernoulli:
            sample = self.rng.beta(1.0 + self.sums, 1.0 + self.counts - self.sums)
        else:
            precision = 1.0 / self.prior_var + self.counts / self.noise_var
            mean = (self.prior_mean / self.prior_var + self.sums / self.noise_var) / precision
            sample = mean + self.rng.standard_normal(mean.shape) / np.sqrt(precision)
        return _argmax_random(sample, self.rng)

    update = UCBLearner.update


def _argmax_random(score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    best = score == score.max(axis=1, keepdims=True)
    return np.argmax(np.where(best, rng.random(score.shape), -1.0), axis=1)


#: what produced a history, as stored in a dataset's ``history_kind`` array
class DirichletMixLearner(Learner):
    """DPT's bandit pretraining contexts: every history pulls arms i.i.d. from its own
    distribution ``(1 - c) * Dirichlet(1) + c * one-hot(a random arm)``, with the concentration
    ``c`` drawn per history from ``levels`` (DPT: 0, 0.1, ..., 1). The histories cover everything
    from near-uniform exploration to always pulling one arm, so the model sees contexts of every
    kind an online learner produces. It does not learn."""

    def __init__(
        self,
        ctx: Context,
        rng: np.random.Generator,
        levels: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    ) -> None:
        super().__init__(ctx, rng)
        b, k = ctx.num_envs, ctx.num_actions
        c = rng.choice(np.asarray(levels, dtype=np.float64), size=b)[:, None]
        one_hot = np.eye(k)[rng.integers(k, size=b)]
        self.probs = (1.0 - c) * rng.dirichlet(np.ones(k), size=b) + c * one_hot
        self.cdf = np.cumsum(self.probs, axis=1)

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """An arm drawn from each history's own distribution."""
        u = self.rng.random((self.ctx.num_envs, 1)) * self.cdf[:, -1:]
        return np.minimum((self.cdf < u).sum(axis=1), self.ctx.num_actions - 1)
