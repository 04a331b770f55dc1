"""Bandit families: reward statistics, regret and references."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench

BANDIT_IDS = [s.env_id for s in icrl_bench.FAMILIES if "Bandit" in s.name]


@pytest.mark.parametrize("env_id", BANDIT_IDS)
def test_oracle_pulls_the_best_arm_and_earns_its_mean(env_id: str) -> None:
    test = list(icrl_bench.tasks(env_id).test)
    horizon = icrl_bench.family(env_id).horizon
    venv = gym.make_vec(
        env_id, num_envs=len(test), vectorization_mode="vector_entry_point", tasks=test
    )
    venv.reset(seed=0)
    core = venv.unwrapped._core
    means = core.mean_rewards(test)
    total = np.zeros(len(test))
    for _ in range(horizon):
        actions = venv.unwrapped.oracle_action()
        np.testing.assert_array_equal(actions, means.argmax(axis=1))
        assert np.all(core.regret(actions) == 0)
        _, rew, _, trunc, _ = venv.step(actions)
        total += rew
    assert trunc.all()
    ref = icrl_bench.reference_returns(env_id)
    np.testing.assert_allclose(ref["oracle"], horizon * means.max(axis=1))
    assert (ref["oracle"] > ref["random"]).all()
    # 200 tasks x horizon noisy pulls: the empirical total is close to the exact expectation
    np.testing.assert_allclose(total.mean(), ref["oracle"].mean(), rtol=0.01)


def test_gaussian_noise_has_variance_0_3() -> None:
    task = icrl_bench.tasks("GaussianBandit-v0").test[0]
    env = gym.make("icrl_bench/GaussianBandit-v0", task=task)
    env.reset(seed=0)
    rewards = np.array([env.step(0)[1] for _ in range(500)])
    assert abs(rewards.mean() - task.means[0]) < 0.1
    assert 0.24 < rewards.var() < 0.36


def test_bernoulli_rewards_are_binary() -> None:
    task = icrl_bench.tasks("BernoulliBandit-v0").test[0]
    env = gym.make("icrl_bench/BernoulliBandit-v0", task=task)
    env.reset(seed=0)
    rewards = {env.step(1)[1] for _ in range(100)}
    assert rewards <= {0.0, 1.0}
