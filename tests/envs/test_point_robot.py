"""PointRobot: dynamics, reward, the exact oracle and the Monte-Carlo random reference."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench
from icrl_bench.errors import InvalidActionError, InvalidTaskError
from icrl_bench.tasks import PointGoalTask

ID = "icrl_bench/PointRobot-v0"


def _rollout(tasks: list, policy: str, episodes: int, seed: int, noise: float = 0.0) -> np.ndarray:
    n = len(tasks)
    venv = gym.make_vec(ID, num_envs=n, vectorization_mode="vector_entry_point", tasks=tasks)
    rng = np.random.default_rng(seed)
    venv.reset(seed=seed)
    totals = np.zeros(n)
    for _ in range(episodes):
        for _ in range(20):
            if policy == "oracle":
                act = venv.unwrapped.oracle_action() + noise * rng.standard_normal((n, 2))
            else:
                act = rng.uniform(-0.1, 0.1, size=(n, 2))
            _, rew, _, trunc, _ = venv.step(act)
            totals += rew
        assert trunc.all()
        venv.step(np.zeros((n, 2)))  # NEXT_STEP autoreset step (reward 0)
    return totals / episodes


def test_published_goals_and_split() -> None:
    dist = icrl_bench.tasks(ID)
    assert len(dist.train) == 45 and len(dist.test) == 5
    assert dist.train[0].goal == (-0.7460603339237981, 0.933435676964006)  # reference file, row 0
    assert all(max(abs(g) for g in t.goal) <= 1 for t in dist.train + dist.test)


def test_reward_is_minus_the_distance_and_peaks_at_the_goal() -> None:
    goal = (0.05, -0.08)
    env = gym.make(ID, task=PointGoalTask(family="PointRobot-v0", goal=goal))
    env.reset(seed=0)
    obs, rew, *_ = env.step(np.array([0.05, -0.08]))
    assert rew == pytest.approx(0.0, abs=1e-7)  # on the goal: the maximum
    np.testing.assert_allclose(obs, goal, atol=1e-7)
    obs, rew, *_ = env.step(np.array([0.1, 0.0]))
    assert rew == pytest.approx(-0.1, abs=1e-7)
    # moves are clipped to 0.1 per axis
    obs, _, *_ = env.step(np.array([5.0, -5.0]))
    np.testing.assert_allclose(obs, [0.25, -0.18], atol=1e-6)


def test_oracle_is_exact_and_optimal() -> None:
    test = list(icrl_bench.tasks(ID).test)
    ref = icrl_bench.reference_returns(ID)
    measured = _rollout(test, "oracle", 1, seed=0)
    np.testing.assert_allclose(measured, ref["oracle"], rtol=1e-6)
    # no perturbation of the oracle does better
    for seed in range(3):
        assert (_rollout(test, "oracle", 1, seed=seed, noise=0.03) <= measured + 1e-6).all()


def test_random_reference_matches_monte_carlo() -> None:
    test = list(icrl_bench.tasks(ID).test)
    ref = icrl_bench.reference_returns(ID)
    measured = _rollout(test, "random", 400, seed=1)
    np.testing.assert_allclose(measured, ref["random"], rtol=0.05)
    assert (ref["oracle"] > ref["random"]).all()


def test_bad_actions_and_tasks_are_refused() -> None:
    env = gym.make(ID)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(InvalidActionError, match="shape"):
        env.step(np.array([0.1, 0.0, 0.0]))
    with pytest.raises(InvalidTaskError, match="outside"):
        gym.make(ID, task=PointGoalTask(family="PointRobot-v0", goal=(1.5, 0.0)))
    with pytest.raises(InvalidTaskError, match="finite"):
        PointGoalTask(family="PointRobot-v0", goal=(float("nan"), 0.0))
