"""Contracts every registered family must meet, parametrised over the registry."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import icrl_bench
from tests.conftest import CORE_IDS, SAMPLE_IDS


def _rollout_digest(env: gym.Env, seed: int, steps: int) -> str:
    """sha256 over a random-action rollout with resets, actions drawn from a seeded space."""
    h = hashlib.sha256()
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    h.update(np.asarray(obs).tobytes())
    h.update(json.dumps(env.unwrapped.task.to_dict(), sort_keys=True).encode())
    for _ in range(steps):
        obs, rew, term, trunc, _ = env.step(env.action_space.sample())
        h.update(np.asarray(obs).tobytes() + np.float64(rew).tobytes() + bytes([term, trunc]))
        if term or trunc:
            obs, _ = env.reset()
            h.update(json.dumps(env.unwrapped.task.to_dict(), sort_keys=True).encode())
    return h.hexdigest()


@pytest.mark.parametrize("env_id", SAMPLE_IDS)
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", SAMPLE_IDS)
def test_same_seed_two_instances_are_identical(env_id: str) -> None:
    a = _rollout_digest(gym.make(env_id), seed=3, steps=600)
    b = _rollout_digest(gym.make(env_id), seed=3, steps=600)
    c = _rollout_digest(gym.make(env_id), seed=4, steps=600)
    assert a == b
    assert a != c


def test_module_prefixed_ids_work_in_a_fresh_interpreter() -> None:
    """``gym.make("icrl_bench:icrl_bench/<Id>")`` without importing icrl_bench first."""
    script = (
        "import json, sys\n"
        "import gymnasium as gym\n"
        "ids = json.loads(sys.argv[1])\n"
        "envs = {i: gym.make('icrl_bench:' + i) for i in ids}  # icrl_bench not imported yet\n"
        "from tests.envs.test_core import _rollout_digest\n"
        "print(json.dumps({i: _rollout_digest(e, 3, 600) for i, e in envs.items()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(SAMPLE_IDS)],
        capture_output=True,
        text=True,
        check=True,
    )
    fresh = json.loads(out.stdout)
    for env_id in SAMPLE_IDS:
        assert fresh[env_id] == _rollout_digest(gym.make(env_id), seed=3, steps=600), env_id


def _single_envs(env_id: str, tasks: list | None, seed: int, n: int) -> list[gym.Env]:
    envs = []
    for i in range(n):
        kwargs = {} if tasks is None else {"task": tasks[i]}
        env = gym.make(env_id, **kwargs)
        env.reset(seed=seed + i)
        envs.append(env)
    return envs


@pytest.mark.parametrize("with_tasks", [True, False], ids=["fixed-tasks", "drawn-tasks"])
@pytest.mark.parametrize("env_id", CORE_IDS)
def test_vector_env_matches_single_envs_across_autoresets(env_id: str, with_tasks: bool) -> None:
    n, seed = 5, 11
    dist = icrl_bench.tasks(env_id)
    tasks = list(dist.test[:n]) if with_tasks else None
    horizon = icrl_bench.family(env_id).horizon
    kwargs = {} if tasks is None else {"tasks": tasks}
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    singles = _single_envs(env_id, tasks, seed, n)
    vobs, _ = venv.reset(seed=seed)
    first = [e.unwrapped._core.observe()[0] for e in singles]
    np.testing.assert_array_equal(vobs, np.stack(first))
    assert [e.unwrapped.task for e in singles] == venv.unwrapped.task

    rng = np.random.default_rng(0)
    pending = np.zeros(n, dtype=bool)
    episodes_done = 0
    # a fraction of oracle actions makes sparse and terminating families actually terminate
    for step in range(3 * horizon + 7):
        space = venv.single_action_space
        if isinstance(space, gym.spaces.Box):
            actions = rng.uniform(space.low, space.high, size=(n, *space.shape))
        else:
            actions = rng.integers(space.n, size=n)
        if step % 2:
            actions = venv.unwrapped.oracle_action()
        vobs, vrew, vterm, vtrunc, _ = venv.step(actions)
        for i, env in enumerate(singles):
            if pending[i]:  # NEXT_STEP autoreset: the vector env reset this env on this step
                obs, _ = env.reset()
                rew, term, trunc = 0.0, False, False
                assert env.unwrapped.task == venv.unwrapped.task[i]
            else:
                obs, rew, term, trunc, _ = env.step(actions[i])
            np.testing.assert_array_equal(vobs[i], obs)
            assert vrew[i] == rew and vterm[i] == term and vtrunc[i] == trunc, (step, i)
        pending = vterm | vtrunc
        episodes_done += int(pending.sum())
    assert episodes_done >= n  # every env went through at least one autoreset


@pytest.mark.parametrize("env_id", SAMPLE_IDS)
def test_task_option_and_kwarg_set_the_task(env_id: str) -> None:
    dist = icrl_bench.tasks(env_id)
    t0, t1 = dist.test[0], dist.test[1]
    env = gym.make(env_id, task=t0)
    env.reset(seed=0)
    assert env.unwrapped.task == t0
    env.reset()
    assert env.unwrapped.task == t0  # sticky
    env.reset(options={"task": t1.to_dict()})  # a plain dict is accepted too
    assert env.unwrapped.task == t1
    env.reset(options={"task": None})
    assert env.unwrapped.task in dist.train


def test_same_step_autoreset_reports_final_obs() -> None:
    from gymnasium.vector import AutoresetMode

    venv = gym.make_vec(
        "icrl_bench/DarkRoom-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    venv.reset(seed=0)
    for _ in range(19):
        _, _, term, trunc, info = venv.step(np.zeros(3, dtype=np.int64))
        assert not (term | trunc).any() and "final_obs" not in info
    obs, _, _, trunc, info = venv.step(np.zeros(3, dtype=np.int64))
    assert trunc.all() and info["_final_obs"].all()
    assert (info["final_obs"] == 8 * 9 + 4).all()  # walked from (4, 4) to the wall at x = 8
    assert (obs == 4 * 9 + 4).all()  # already reset to the centre
