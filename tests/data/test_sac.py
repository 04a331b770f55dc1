"""SAC experts: trained in parallel with the same returns as one at a time, and cached with the
number of episodes they trained for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from icrl_bench.data import sac
from icrl_bench.references import cache_path
from icrl_bench.registry import tasks

CHEETAH = "HalfCheetahVel-v0"


def test_parallel_experts_return_what_one_at_a_time_returns() -> None:
    test = list(tasks(CHEETAH).test)[:2]
    env_id = f"icrl_bench/{CHEETAH}"
    serial = sac.expert_returns(env_id, test, train_episodes=1, episodes=1, workers=1)
    parallel = sac.expert_returns(env_id, test, train_episodes=1, episodes=1, workers=2)
    assert serial.shape == (2,) and np.isfinite(serial).all()
    np.testing.assert_array_equal(parallel, serial)


def test_a_cached_expert_of_another_training_length_is_retrained(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = list(tasks(CHEETAH).test)
    calls: list[int] = []

    def fake(env_id: str, tasks_: list, train_episodes: int) -> np.ndarray:
        calls.append(train_episodes)
        return np.full(len(tasks_), float(train_episodes))

    monkeypatch.setattr(sac, "expert_returns", fake)
    first = sac.train_expert_references(CHEETAH, test, 200, train_episodes=50)
    again = sac.train_expert_references(CHEETAH, test, 200, train_episodes=50)
    assert calls == [50] and (first["return"] == 50).all() and (again["return"] == 50).all()
    other = sac.train_expert_references(CHEETAH, test, 200, train_episodes=500)
    assert calls == [50, 500] and (other["return"] == 500).all()
    cached = json.loads(cache_path(CHEETAH, test, 200, "expert").read_text())
    assert cached["train_episodes"] == [500]


def test_task_features_name_each_locomotion_task() -> None:
    import math

    from icrl_bench.envs.mujoco_env import LocomotionSpace, default_physics

    vel = LocomotionSpace(0, CHEETAH, 200, "velocity")
    np.testing.assert_allclose(vel.features(tasks(CHEETAH).test[0]), [2.106553], rtol=1e-6)
    ant = LocomotionSpace(0, "AntDir-v0", 200, "angle")
    angle = tasks("AntDir-v0").test[0]
    np.testing.assert_allclose(
        ant.features(angle), [math.cos(angle.direction), math.sin(angle.direction)], rtol=1e-6
    )
    hop = LocomotionSpace(0, "HopperParams-v0", 200, "hopper")
    task = tasks("HopperParams-v0").test[0]
    f = hop.features(task)
    n = sum(default_physics("hopper")[k].size for k in default_physics("hopper"))
    assert f.shape == (n,) and np.all(np.abs(f) <= 3.0 + 1e-6) and np.abs(f).max() > 0.1
    base = {k: v.tolist() for k, v in default_physics("hopper").items()}
    assert not hop.features(type(task)(family="HopperParams-v0", **base)).any()


def test_a_conditioned_env_shows_its_task_after_the_observation() -> None:
    import gymnasium as gym

    train = list(tasks(CHEETAH).train[:3])
    env = sac.TaskConditioned(gym.make(f"icrl_bench/{CHEETAH}"), train, seed=0)
    seen = set()
    for _ in range(12):
        obs, _ = env.reset()
        assert obs.shape == (18,) and env.observation_space.contains(obs)
        assert env.unwrapped.task in train and obs[-1] == np.float32(env.unwrapped.task.velocity)
        seen.add(env.unwrapped.task)
    assert seen == set(train)  # every reset draws one of its tasks
    obs, _ = env.reset(options={"task": train[1]})
    nxt, *_ = env.step(env.action_space.sample())
    assert obs[-1] == nxt[-1] == np.float32(train[1].velocity)


def test_conditioned_rollouts_end_whole_episodes_on_a_terminating_robot() -> None:
    chosen = list(tasks("HopperParams-v0").train[:2])
    got = sac.collect_conditioned_sac(
        "icrl_bench/HopperParams-v0",
        chosen,
        histories=2,
        episodes=3,
        params={"expert_share": 0.5, "medium_fraction": 0.5},
        seed=[0],
        train_episodes=1,  # no gradient step: an untrained policy falls early
    )
    assert got.observations.shape[1] == 11  # Hopper's own observation, without the features
    assert got.terminations.any()  # the untrained hopper falls
    assert set(got.history_kind.tolist()) <= {2, 3} and len(got.history_kind) == 4
    for t in range(2):
        for h in range(2):
            rows = (got.task == t) & (got.history == h)
            ends = got.terminations[rows] | got.truncations[rows]
            assert ends.sum() == 3 and ends[-1]  # three whole episodes
            assert (got.episode[rows] == np.cumsum(np.r_[0, ends[:-1]])).all()


def test_a_conditioned_dataset_is_the_same_for_the_same_recipe(_isolated_home: Path) -> None:
    from icrl_bench import data

    ref = data.generate(CHEETAH, "conditioned-medium-expert", "smoke", overrides={"histories": 2})
    first = {k: np.array(v) for k, v in data.load(ref).arrays.items()}
    data.generate(
        CHEETAH, "conditioned-medium-expert", "smoke", overrides={"histories": 2}, force=True
    )
    again = data.load(ref).arrays
    assert first["observations"].shape == (2 * 2 * 4 * 200, 17)
    assert first["history_task"].tolist() == [0, 0, 1, 1]
    for key, value in first.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
