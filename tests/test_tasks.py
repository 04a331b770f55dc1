"""Task values and the errors that bad tasks, actions and vector setups raise."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench
from icrl_bench.errors import InvalidActionError, InvalidTaskError
from icrl_bench.tasks import GoalTask


def test_unknown_task_kind_is_rejected() -> None:
    with pytest.raises(InvalidTaskError, match="unknown task kind"):
        icrl_bench.Task.from_dict({"kind": "Maze", "family": "DarkRoom-v0"})


def test_task_from_another_family_is_rejected() -> None:
    bandit = icrl_bench.tasks("GaussianBandit-v0").test[0]
    with pytest.raises(InvalidTaskError, match="DarkRoom-v0 needs a GoalTask"):
        gym.make("icrl_bench/DarkRoom-v0", task=bandit)
    other_room = GoalTask(family="DarkRoomLarge-v0", goal=(1, 1))
    env = gym.make("icrl_bench/DarkRoom-v0")
    with pytest.raises(InvalidTaskError, match="family 'DarkRoomLarge-v0', not 'DarkRoom-v0'"):
        env.reset(options={"task": other_room})


@pytest.mark.parametrize(
    ("env_id", "task", "message"),
    [
        ("DarkRoom-v0", {"kind": "GoalTask", "goal": [9, 0]}, r"goal \(9, 0\) is outside"),
        ("DarkRoom-v0", {"kind": "GoalTask", "goal": [0, -1]}, "goal"),
        ("DarkRoom-v0", {"kind": "GoalTask", "goal": [1, 2, 3]}, "goal"),
        ("KeyToDoor-v0", {"kind": "KeyDoorTask", "key": [0, 0], "door": [3, 12]}, "door"),
        (
            "DarkRoomPermuted-v0",
            {"kind": "PermutationTask", "permutation": [0, 1, 2, 3]},
            "reorder",
        ),
        (
            "DarkRoomPermuted-v0",
            {"kind": "PermutationTask", "permutation": [0, 0, 1, 2, 3]},
            "perm",
        ),
    ],
)
def test_out_of_range_tasks_are_rejected(env_id: str, task: dict, message: str) -> None:
    data = {"family": env_id, **task}
    with pytest.raises(InvalidTaskError, match=message):
        gym.make(f"icrl_bench/{env_id}", task=data)
    env = gym.make(f"icrl_bench/{env_id}")
    with pytest.raises(InvalidTaskError, match=message):
        env.reset(options={"task": data})


def test_out_of_range_bandit_means_are_rejected() -> None:
    bad = {"kind": "BanditTask", "family": "GaussianBandit-v0", "means": [0.1, 0.2, 1.5, 0, 0]}
    with pytest.raises(InvalidTaskError, match="arm means in"):
        gym.make("icrl_bench/GaussianBandit-v0", task=bad)


@pytest.mark.parametrize("action", [5, -1, 2.5, "up", [1, 2], True])
def test_invalid_actions_are_rejected(action: object) -> None:
    env = gym.make("icrl_bench/DarkRoom-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(InvalidActionError):
        env.step(action)


def test_invalid_vector_actions_are_rejected() -> None:
    venv = gym.make_vec(
        "icrl_bench/DarkRoom-v0", num_envs=3, vectorization_mode="vector_entry_point"
    )
    venv.reset(seed=0)
    with pytest.raises(InvalidActionError, match="3 integers"):
        venv.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(InvalidActionError, match=r"\[0, 5\)"):
        venv.step(np.array([0, 1, 7]))


def test_make_vec_with_the_wrong_number_of_tasks_is_rejected() -> None:
    test = list(icrl_bench.tasks("DarkRoom-v0").test)
    with pytest.raises(InvalidTaskError, match="got 3 tasks for 4 envs"):
        gym.make_vec(
            "icrl_bench/DarkRoom-v0",
            num_envs=4,
            vectorization_mode="vector_entry_point",
            tasks=test[:3],
        )
    venv = gym.make_vec(
        "icrl_bench/DarkRoom-v0", num_envs=4, vectorization_mode="vector_entry_point"
    )
    with pytest.raises(InvalidTaskError, match="got 5 tasks for 4 envs"):
        venv.reset(options={"task": test[:5]})
    with pytest.raises(InvalidTaskError, match="needs a sequence"):
        venv.reset(options={"task": test[0]})


def test_rejected_reset_leaves_the_env_unchanged() -> None:
    t0 = icrl_bench.tasks("DarkRoom-v0").test[0]
    env = gym.make("icrl_bench/DarkRoom-v0", task=t0)
    env.reset(seed=0)
    with pytest.raises(InvalidTaskError):
        env.reset(options={"task": GoalTask(family="DarkRoom-v0", goal=(99, 99))})
    assert env.unwrapped.task == t0
