"""Collecting learning histories: the table of learners, the mixed (noisy) learner built on it,
and :func:`collect`, which runs a batch of learners on a batched env in lockstep."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from icrl_bench.data.sources import learners as lr
from icrl_bench.data.sources.base import Context, Learner, Step, make_context
from icrl_bench.envs.core import BatchedCore
from icrl_bench.tasks import Task


class MixedLearner(Learner):
    """A base learner in most envs, uniform-random actions in ``round(random_share * B)`` of them.

    This is the noisy setting of Filtering Learning Histories: a share of the learning histories
    is replaced by histories of the random policy.
    """

    def __init__(
        self,
        ctx: Context,
        rng: np.random.Generator,
        base: str = "q-learning",
        base_params: dict[str, Any] | None = None,
        random_share: float = 0.3,
    ) -> None:
        super().__init__(ctx, rng)
        self.inner = LEARNERS[base](ctx, rng, **(base_params or {}))
        self.noise = np.zeros(ctx.num_envs, dtype=bool)
        self.noise[rng.permutation(ctx.num_envs)[: round(random_share * ctx.num_envs)]] = True

    def act(self, state: np.ndarray, optimal: np.ndarray, progress: float) -> np.ndarray:
        """The base learner's action, or a uniform one in the random envs."""
        random = self.random_actions()
        mask = self.noise.reshape(-1, *([1] * (random.ndim - 1)))
        return np.where(mask, random, self.inner.act(state, optimal, progress))

    def update(self, step: Step) -> None:
        """The base learner learns in its own envs only."""
        self.inner.update(step._replace(alive=step.alive & ~self.noise))

    def end_episode(self, episode: int) -> None:
        """Forwarded to the base learner."""
        self.inner.end_episode(episode)

    def history_kind(self) -> np.ndarray:
        """1 for the random histories, 0 for the base learner's."""
        return self.noise.astype(np.int8)


LEARNERS: dict[str, type[Learner]] = {
    "mixed": MixedLearner,
    "random": lr.RandomLearner,
    "uniform-states": lr.UniformStateLearner,
    "cem": lr.CEMLearner,
    "oracle": lr.OracleLearner,
    "noisy-oracle": lr.NoisyOracle,
    "q-learning": lr.QLearner,
    "ucb": lr.UCBLearner,
    "thompson": lr.ThompsonLearner,
    "dirichlet-mix": lr.DirichletMixLearner,
}


@dataclass
class Collected:
    """Transitions of one batch, flattened in the order task, history, episode, step.

    Every array has the transition axis first. ``task``, ``history`` and ``episode`` are the local
    task position, the history number within its task, and the episode number within its history.
    """

    observations: np.ndarray
    next_observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    optimal_actions: np.ndarray | None
    task: np.ndarray
    history: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    history_kind: np.ndarray


def collect(
    env_id: str,
    tasks: Sequence[Task],
    histories: int,
    episodes: int,
    learner: str,
    learner_params: dict[str, Any],
    seed: Sequence[int],
    record_from: int = 0,
) -> Collected:
    """Run ``histories`` learners on each task for ``episodes`` episodes.

    Args:
        env_id: a registered discrete family.
        tasks: the tasks of this batch.
        histories: learners per task.
        episodes: episodes per history.
        learner: a key of :data:`LEARNERS`.
        learner_params: keyword arguments of the learner.
        seed: entropy for this batch; env ``i`` and the learner get independent streams.
        record_from: episodes before this one are run (the learner trains) but not recorded.

    Returns:
        The recorded transitions.
    """
    n = len(tasks) * histories
    batch_tasks = [t for t in tasks for _ in range(histories)]
    venv = gym.make_vec(
        env_id,
        num_envs=n,
        vectorization_mode="vector_entry_point",
        tasks=batch_tasks,
        autoreset_mode=AutoresetMode.DISABLED,
    )
    core: BatchedCore = venv.unwrapped._core  # type: ignore[attr-defined]
    root = np.random.SeedSequence(list(seed))
    env_seq, learner_seq = root.spawn(2)
    env_seeds = [int(s.generate_state(1)[0]) for s in env_seq.spawn(n)]
    act_space = venv.single_action_space
    ctx = make_context(core, n, episodes)
    has_oracle = getattr(core, "has_oracle", True)
    agent = LEARNERS[learner](ctx, np.random.default_rng(learner_seq), **learner_params)

    h = core.horizon
    kept = episodes - record_from
    shape = (kept, h, n)  # time-major, so that each step writes one contiguous row
    space = venv.single_observation_space
    obs_shape: tuple[int, ...] = tuple(space.shape or ())
    obs_buf = np.zeros((*shape, *obs_shape), dtype=space.dtype)
    next_buf = np.zeros_like(obs_buf)
    act_shape: tuple[int, ...] = tuple(act_space.shape or ())
    act_dtype = act_space.dtype if isinstance(act_space, gym.spaces.Box) else np.int64
    act_buf = np.zeros((*shape, *act_shape), dtype=act_dtype)
    opt_buf = np.zeros_like(act_buf)
    rew_buf = np.zeros(shape, dtype=np.float64)
    term_buf = np.zeros(shape, dtype=bool)
    trunc_buf = np.zeros(shape, dtype=bool)
    valid = np.zeros(shape, dtype=bool)

    obs, _ = venv.reset(seed=env_seeds)  # type: ignore[arg-type]  # a list seeds each env
    for ep in range(episodes):
        if ep:
            obs, _ = venv.reset()
        alive = np.ones(n, dtype=bool)
        e = ep - record_from
        for t in range(h):
            if agent.relocates:
                core.place_uniform(agent.rng)
                obs = core.observe()
            state = core.learner_state()
            optimal = core.oracle_action() if has_oracle else opt_buf[0, 0]
            actions = agent.act(state, optimal, (ep * h + t) / (episodes * h))
            next_obs, rewards, term, trunc, _ = venv.step(actions)
            agent.update(Step(state, actions, rewards, core.learner_state(), term, alive))
            if e >= 0:
                obs_buf[e, t] = obs
                next_buf[e, t] = next_obs
                act_buf[e, t] = actions
                opt_buf[e, t] = optimal
                rew_buf[e, t] = rewards
                term_buf[e, t] = term
                trunc_buf[e, t] = trunc
                valid[e, t] = alive
            alive &= ~(term | trunc)
            obs = next_obs
            if not alive.any():
                break
        agent.end_episode(ep)
    venv.close()

    # transitions in the order env (= task, history), episode, step
    env_index, ep_index, step_index = np.nonzero(valid.transpose(2, 0, 1))
    flat = {
        "observations": obs_buf,
        "next_observations": next_buf,
        "actions": act_buf,
        "rewards": rew_buf,
        "terminations": term_buf,
        "truncations": trunc_buf,
        "optimal_actions": opt_buf,
    }
    out = {k: v[ep_index, step_index, env_index] for k, v in flat.items()}
    return Collected(
        task=env_index // histories,
        history=env_index % histories,
        episode=ep_index,
        step=step_index,
        history_kind=agent.history_kind(),
        observations=out["observations"],
        next_observations=out["next_observations"],
        actions=out["actions"],
        rewards=out["rewards"],
        terminations=out["terminations"],
        truncations=out["truncations"],
        optimal_actions=out["optimal_actions"] if has_oracle else None,
    )
