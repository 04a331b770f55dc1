"""Grid families: dynamics, exact oracle closed forms and random references."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench
from icrl_bench.kinds import GRID
from icrl_bench.tasks import GoalTask, KeyDoorTask

GRID_IDS = [s.env_id for s in icrl_bench.FAMILIES if s.kind is GRID]


def _vector_returns(env_id: str, tasks: list, policy: str, episodes: int, seed: int) -> np.ndarray:
    """Per-task mean episode return of ``policy`` over ``episodes`` episodes (NEXT_STEP resets)."""
    n = len(tasks)
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", tasks=tasks)
    rng = np.random.default_rng(seed)
    venv.reset(seed=seed)
    totals, finished = np.zeros(n), np.zeros(n, dtype=np.int64)
    pending = np.zeros(n, dtype=bool)
    while finished.min() < episodes:
        actions = venv.unwrapped.oracle_action() if policy == "oracle" else rng.integers(5, size=n)
        _, rew, term, trunc, _ = venv.step(actions)
        live = ~pending & (finished < episodes)
        totals += np.where(live, rew, 0.0)
        done = term | trunc
        finished += live & done
        pending = done
    return totals / episodes


def test_darkroom_oracle_return_is_horizon_plus_one_minus_distance() -> None:
    test = list(icrl_bench.tasks("DarkRoom-v0").test)
    measured = _vector_returns("icrl_bench/DarkRoom-v0", test, "oracle", 2, seed=0)
    dist = np.array([abs(t.goal[0] - 4) + abs(t.goal[1] - 4) for t in test])
    closed = 21.0 - np.maximum(dist, 1)  # reward on arrival and on every later step
    np.testing.assert_array_equal(measured, closed)
    np.testing.assert_array_equal(icrl_bench.reference_returns("DarkRoom-v0")["oracle"], closed)


@pytest.mark.parametrize("env_id", GRID_IDS)
def test_oracle_rollout_equals_reference_and_beats_random(env_id: str) -> None:
    test = list(icrl_bench.tasks(env_id).test)
    ref = icrl_bench.reference_returns(env_id)
    measured = _vector_returns(env_id, test, "oracle", 1, seed=0)
    np.testing.assert_array_equal(measured, ref["oracle"])
    assert (ref["oracle"] > ref["random"]).all()


@pytest.mark.parametrize("env_id", GRID_IDS)
def test_random_reference_matches_monte_carlo(env_id: str) -> None:
    test = list(icrl_bench.tasks(env_id).test)[:8]
    ref = icrl_bench.family(env_id).core().reference_returns(test)
    measured = _vector_returns(env_id, test, "random", 400, seed=1)
    # 400 episodes per task: the mean of a return bounded by the horizon is within a few % here
    np.testing.assert_allclose(measured.mean(), ref["random"].mean(), rtol=0.15, atol=0.02)


def test_walls_clip_and_noop_stays() -> None:
    env = gym.make(
        "icrl_bench/DarkRoom10x10-v0", task=GoalTask(family="DarkRoom10x10-v0", goal=(9, 9))
    )
    obs, _ = env.reset(seed=0)
    assert obs == 0  # start (0, 0)
    obs, *_ = env.step(1)  # x - 1 into the wall
    assert obs == 0
    obs, *_ = env.step(0)  # x + 1
    assert obs == 10
    obs, *_ = env.step(4)  # no-op
    assert obs == 10


def test_sparse_darkroom_terminates_on_the_goal_with_reward_one() -> None:
    env = gym.make(
        "icrl_bench/DarkRoomHard-v0", task=GoalTask(family="DarkRoomHard-v0", goal=(9, 8))
    )
    env.reset(seed=0)
    _, rew, term, trunc, _ = env.step(0)
    assert (rew, term, trunc) == (1.0, True, False)


def test_permuted_actions_follow_the_task() -> None:
    from icrl_bench.tasks import PermutationTask

    task = PermutationTask(family="DarkRoomPermuted-v0", permutation=(4, 3, 2, 1, 0))
    env = gym.make("icrl_bench/DarkRoomPermuted-v0", task=task)
    env.reset(seed=0)
    obs, *_ = env.step(4)  # performs meaning 0: x + 1
    assert obs == 9
    obs, *_ = env.step(0)  # performs the no-op
    assert obs == 9


def test_key_to_door_rewards_key_then_door() -> None:
    task = KeyDoorTask(family="KeyToDoor-v0", key=(1, 0), door=(0, 0))
    env = gym.make("icrl_bench/KeyToDoor-v0", task=task)
    env.reset(seed=0)
    assert env.step(4)[1:4] == (0.0, False, False)  # door before key: nothing
    assert env.step(0)[1:4] == (1.0, False, False)  # key
    assert env.step(0)[1:4] == (0.0, False, False)
    assert env.step(1)[1:4] == (0.0, False, False)
    assert env.step(1)[1:4] == (1.0, True, False)  # door with the key ends the episode
    same = KeyDoorTask(family="KeyToDoor-v0", key=(0, 1), door=(0, 1))
    env.reset(options={"task": same})
    assert env.step(2)[1:3] == (1.0, False)
    assert env.step(4)[1:3] == (1.0, True)
