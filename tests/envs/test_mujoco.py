"""MuJoCo locomotion families: published task sets, each task parameter's effect on the reward
or the dynamics, seeding and batching."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import mujoco  # noqa: F401  # CI installs it (the dev extra): a missing one fails, never skips
import numpy as np
import pytest

import icrl_bench
from icrl_bench.envs.mujoco_env import (
    DirectionTask,
    PhysicsTask,
    VelocityTask,
    default_physics,
)
from icrl_bench.errors import InvalidTaskError

SETS = Path(__file__).parents[2] / "icrl_bench" / "task_sets"
FAMILIES = [
    "HalfCheetahVel-v0",
    "HalfCheetahDir-v0",
    "AntDir-v0",
    "HopperParams-v0",
    "WalkerParams-v0",
]


def _first_step(family: str, task: object, action: np.ndarray) -> tuple[float, dict]:
    env = gym.make(f"icrl_bench/{family}", task=task)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(action)
    return reward, info


@pytest.mark.parametrize("family", FAMILIES)
def test_check_env_and_same_seed_rollouts(family: str) -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(gym.make(f"icrl_bench/{family}").unwrapped, skip_render_check=True)

    def rollout(seed: int) -> np.ndarray:
        env = gym.make(f"icrl_bench/{family}")
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = [obs]
        for _ in range(60):
            obs, rew, term, trunc, _ = env.step(env.action_space.sample())
            out.append(np.append(obs, rew))
            if term or trunc:
                obs, _ = env.reset()
        return np.concatenate(out)

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))


def test_published_task_sets() -> None:
    vel = json.loads((SETS / "HalfCheetahVel-v0.json").read_text())["tasks"]
    dist = icrl_bench.tasks("HalfCheetahVel-v0")
    assert [t.velocity for t in dist.train + dist.test] == [r["velocity"] for r in vel]
    walker = json.loads((SETS / "WalkerRandParams-v0.json").read_text())["tasks"]
    wd = icrl_bench.tasks("WalkerParams-v0")
    np.testing.assert_array_equal(np.asarray(wd.test[0].body_mass), walker[45]["body_mass"])
    cheetah_dir = icrl_bench.tasks("HalfCheetahDir-v0")
    assert [t.direction for t in cheetah_dir.train] == [1.0]
    assert [t.direction for t in cheetah_dir.test] == [-1.0]


def test_velocity_reward_peaks_at_the_target_velocity() -> None:
    action = np.full(6, 0.5, dtype=np.float32)
    rewards = {}
    for v in np.linspace(0.0, 3.0, 31):
        task = VelocityTask(family="HalfCheetahVel-v0", velocity=float(v))
        rewards[float(v)], info = _first_step("HalfCheetahVel-v0", task, action)
        expected = -abs(info["x_velocity"] - v) - 0.05 * float(np.square(action).sum())
        assert rewards[float(v)] == pytest.approx(expected, abs=1e-9)
    best = max(rewards, key=rewards.get)  # type: ignore[arg-type]
    assert abs(best - np.clip(info["x_velocity"], 0, 3)) <= 0.05 + 1e-9


def test_direction_flips_the_velocity_term() -> None:
    action = np.linspace(-1, 1, 6).astype(np.float32)
    fwd, info = _first_step("HalfCheetahDir-v0", DirectionTask("HalfCheetahDir-v0", 1.0), action)
    back, _ = _first_step("HalfCheetahDir-v0", DirectionTask("HalfCheetahDir-v0", -1.0), action)
    assert fwd - back == pytest.approx(2 * info["x_velocity"], abs=1e-9)


def test_ant_reward_follows_the_direction() -> None:
    action = np.linspace(-1, 1, 8).astype(np.float32)
    angle = 0.7
    a, info = _first_step("AntDir-v0", DirectionTask("AntDir-v0", angle), action)
    b, _ = _first_step("AntDir-v0", DirectionTask("AntDir-v0", angle + math.pi), action)
    along = info["x_velocity"] * math.cos(angle) + info["y_velocity"] * math.sin(angle)
    assert a - b == pytest.approx(2 * along, abs=1e-9)


def test_physics_tasks_set_the_model_and_the_default_reproduces_gymnasium() -> None:
    base = default_physics("hopper")
    default = PhysicsTask(family="HopperParams-v0", **{k: v.tolist() for k, v in base.items()})
    env = gym.make("icrl_bench/HopperParams-v0", task=default)
    ref = gym.make("Hopper-v5").unwrapped
    env.reset(seed=5)
    env.unwrapped._sim.reset(seed=None)  # both simulators fresh from reset (no warm start)
    ref.reset(seed=None)
    # same model: identical physics from the same state
    ref.set_state(env.unwrapped._sim.data.qpos.copy(), env.unwrapped._sim.data.qvel.copy())
    rng = np.random.default_rng(0)
    for _ in range(20):
        act = rng.uniform(-1, 1, 3).astype(np.float32)
        o1, r1, *_ = env.unwrapped._sim.step(act)
        o2, r2, *_ = ref.step(act)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
    heavy = icrl_bench.tasks("HopperParams-v0").test[0]
    env2 = gym.make("icrl_bench/HopperParams-v0", task=heavy)
    env2.reset(seed=0)
    np.testing.assert_array_equal(
        env2.unwrapped._sim.model.body_mass, np.asarray(heavy.body_mass).ravel()
    )
    assert not np.allclose(env2.unwrapped._sim.model.body_mass, base["body_mass"].ravel())


def test_bad_tasks_are_refused() -> None:
    with pytest.raises(InvalidTaskError, match="outside"):
        gym.make("icrl_bench/HalfCheetahVel-v0", task=VelocityTask("HalfCheetahVel-v0", 5.0))
    with pytest.raises(InvalidTaskError, match="\\+1 or -1"):
        gym.make("icrl_bench/HalfCheetahDir-v0", task=DirectionTask("HalfCheetahDir-v0", 0.5))
    bad = PhysicsTask(
        "HopperParams-v0",
        body_mass=[[1.0]],
        body_inertia=[[1.0]],
        dof_damping=[[1.0]],
        geom_friction=[[1.0]],
    )
    with pytest.raises(InvalidTaskError, match="shape"):
        gym.make("icrl_bench/HopperParams-v0", task=bad)
    with pytest.raises(InvalidTaskError, match="finite"):
        VelocityTask("HalfCheetahVel-v0", float("nan"))


def test_smoke_sac_datasets_generate_verify_and_load() -> None:
    from icrl_bench import data

    hist = data.load(data.generate("HalfCheetahVel-v0", "histories", "smoke", workers=2))
    hist.verify()
    assert hist.arrays["observations"].shape == (1600, 17)
    assert hist.arrays["actions"].shape == (1600, 6) and not hist.has_optimal_actions
    assert hist.manifest["reference_returns"]["oracle"] is None  # no SAC expert trained yet
    window = hist.sample_windows(3, 200, np.random.default_rng(0))
    assert window["actions"].shape == (3, 200, 6)
    expert = data.load(data.generate("HalfCheetahVel-v0", "expert", "smoke", workers=2))
    expert.verify()
    assert set(np.asarray(expert.arrays["history_kind"]).tolist()) == {3}
    # the same recipe and seed give the same bytes
    again = data.generate("HalfCheetahVel-v0", "histories", "smoke", workers=1, force=True)
    assert data.load(again).sha256 == hist.sha256
