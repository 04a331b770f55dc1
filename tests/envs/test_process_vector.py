"""The process-backed vector env of the simulator families (here HalfCheetahVel-v0, the cheapest
to build): the same transitions as single envs in every autoreset mode, seeding, partial resets,
tasks, and failures that raise instead of hanging."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import icrl_bench
from icrl_bench.envs.process_vector import ProcessVectorEnv, default_workers
from icrl_bench.errors import InvalidActionError, InvalidTaskError

ID = "icrl_bench/HalfCheetahVel-v0"
HORIZON = 5  # short episodes, so that a few steps cross the autoreset
N = 3


@pytest.fixture(scope="module")
def test_tasks() -> list:
    return list(icrl_bench.tasks(ID).test[:N])


def _vec(tasks: list, workers: int = 2, **kwargs: object) -> ProcessVectorEnv:
    venv = gym.make_vec(
        ID,
        num_envs=len(tasks),
        vectorization_mode="vector_entry_point",
        tasks=tasks,
        workers=workers,
        max_episode_steps=HORIZON,
        **kwargs,
    )
    assert isinstance(venv.unwrapped, ProcessVectorEnv)
    return venv  # type: ignore[return-value]


def _singles(tasks: list) -> list[gym.Env]:
    return [gym.make(ID, task=t, max_episode_steps=HORIZON) for t in tasks]


def _actions(steps: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(0)
    for _ in range(steps):
        yield rng.uniform(-1, 1, (N, 6)).astype(np.float32)


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail a test that blocks for more than 30 s instead of hanging the suite."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("the vector env hung")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("workers", [0, 2])
def test_same_step_autoreset_matches_single_envs(test_tasks: list, workers: int) -> None:
    """SAME_STEP: an ended env reports its last observation in ``final_obs`` and already holds
    the next episode's first one, which is what a single env's next ``reset()`` gives."""
    venv = _vec(test_tasks, workers, autoreset_mode=AutoresetMode.SAME_STEP)
    singles = _singles(test_tasks)
    vobs, _ = venv.reset(seed=[10, 11, 12])
    sobs = [e.reset(seed=10 + i)[0] for i, e in enumerate(singles)]
    np.testing.assert_array_equal(vobs, np.stack(sobs))
    ended = 0
    for act in _actions(2 * HORIZON + 2):
        vobs, vrew, vterm, vtrunc, info = venv.step(act)
        for i, env in enumerate(singles):
            obs, rew, term, trunc, _ = env.step(act[i])
            assert vrew[i] == rew and vterm[i] == term and vtrunc[i] == trunc
            if term or trunc:
                ended += 1
                assert info["_final_obs"][i]
                np.testing.assert_array_equal(info["final_obs"][i], obs)
                obs, _ = env.reset()
            np.testing.assert_array_equal(vobs[i], obs)
    assert ended == 2 * N
    venv.close()


def test_next_step_autoreset_matches_single_envs(test_tasks: list) -> None:
    """NEXT_STEP (the default): the step after an episode's end resets, with reward 0."""
    venv = _vec(test_tasks)
    singles = _singles(test_tasks)
    venv.reset(seed=5)  # an int seeds env i with 5 + i
    for i, env in enumerate(singles):
        env.reset(seed=5 + i)
    pending = np.zeros(N, dtype=bool)
    resets = 0
    for act in _actions(2 * HORIZON + 3):
        vobs, vrew, vterm, vtrunc, _ = venv.step(act)
        for i, env in enumerate(singles):
            if pending[i]:
                obs, _ = env.reset()
                rew, term, trunc = 0.0, False, False
                resets += 1
            else:
                obs, rew, term, trunc, _ = env.step(act[i])
            np.testing.assert_array_equal(vobs[i], obs)
            assert (vrew[i], vterm[i], vtrunc[i]) == (rew, term, trunc)
        pending = vterm | vtrunc
    assert resets == 2 * N
    venv.close()


def test_disabled_autoreset_and_partial_resets(test_tasks: list) -> None:
    """DISABLED: the caller resets the envs it chooses (``reset_mask``); the others go on."""
    venv = _vec(test_tasks, autoreset_mode=AutoresetMode.DISABLED)
    singles = _singles(test_tasks)
    venv.reset(seed=[1, 2, 3])
    for i, env in enumerate(singles):
        env.reset(seed=1 + i)
    acts = list(_actions(4))
    for act in acts[:2]:
        venv.step(act)
        for i, env in enumerate(singles):
            env.step(act[i])
    mask = np.array([False, True, False])
    vobs, _ = venv.reset(seed=[0, 42, 0], options={"reset_mask": mask})
    np.testing.assert_array_equal(vobs[1], singles[1].reset(seed=42)[0])
    for act in acts[2:]:
        vobs, vrew, *_ = venv.step(act)
        for i, env in enumerate(singles):
            obs, rew, *_ = env.step(act[i])
            np.testing.assert_array_equal(vobs[i], obs)
            assert vrew[i] == rew
    venv.close()


def test_in_process_and_worker_processes_agree(test_tasks: list) -> None:
    runs = []
    for workers in (0, 2, 3):
        venv = _vec(test_tasks, workers)
        out = [venv.reset(seed=7)[0]]
        for act in _actions(HORIZON + 2):
            obs, rew, *_ = venv.step(act)
            out += [obs, rew[:, None]]
        venv.close()
        runs.append(np.concatenate(out, axis=1))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_tasks_are_per_env_and_settable_at_reset(test_tasks: list) -> None:
    venv = _vec(test_tasks)
    assert venv.unwrapped.task == [None] * N  # nothing in force before the first reset
    venv.reset(seed=0)
    assert venv.unwrapped.task == test_tasks
    swapped = test_tasks[::-1]
    venv.reset(seed=0, options={"task": swapped})
    assert venv.unwrapped.task == swapped
    venv.reset()  # tasks stick across resets
    assert venv.unwrapped.task == swapped
    with pytest.raises(InvalidTaskError, match="got 2 tasks for 3 envs"):
        venv.reset(options={"task": swapped[:2]})
    with pytest.raises(InvalidTaskError, match="a sequence of 3 tasks"):
        venv.reset(options={"task": swapped[0]})
    assert venv.unwrapped.task == swapped  # a refused reset changed nothing
    with pytest.raises(ValueError, match="unknown reset options"):
        venv.reset(options={"colour": 1})
    with pytest.raises(ValueError, match="got 2 seeds for 3 envs"):
        venv.reset(seed=[1, 2])
    venv.close()


def test_step_before_reset_and_bad_arguments() -> None:
    venv = gym.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point", workers=0)
    with pytest.raises(gym.error.ResetNeeded):
        venv.step(np.zeros((2, 6), np.float32))
    venv.close()
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        gym.make_vec(ID, num_envs=0, vectorization_mode="vector_entry_point")


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICRL_BENCH_WORKERS", raising=False)
    assert default_workers(1) == 0  # one env runs in this process
    # one process per core: the calling process steps a share itself
    assert default_workers(10_000) == (os.cpu_count() or 1) - 1
    monkeypatch.setenv("ICRL_BENCH_WORKERS", "3")
    assert default_workers(8) == 3 and default_workers(2) == 1
    monkeypatch.setenv("ICRL_BENCH_WORKERS", "0")
    assert default_workers(8) == 0


def test_an_error_in_a_worker_is_raised_in_the_caller(test_tasks: list) -> None:
    venv = _vec(test_tasks)
    venv.reset(seed=0)
    bad = np.zeros((N, 6), np.float32)
    bad[-1, 0] = np.nan  # the last env, in the last worker
    with pytest.raises(InvalidActionError, match="finite"):
        venv.step(bad)
    venv.close()


def test_the_env_is_usable_after_a_worker_refused_an_action(
    test_tasks: list, deadline: None
) -> None:
    venv = _vec(test_tasks)
    venv.reset(seed=0)
    bad = np.zeros((N, 6), np.float32)
    bad[0, 0] = np.nan  # the first env: the second worker's reply is still on its way
    with pytest.raises(InvalidActionError):
        venv.step(bad)
    obs, _ = venv.reset(seed=3)
    fresh = _vec(test_tasks, workers=0)
    np.testing.assert_array_equal(obs, fresh.reset(seed=3)[0])
    venv.close()
    fresh.close()


def _kill_a_worker(venv: ProcessVectorEnv) -> None:
    proc = venv.unwrapped._procs[-1]
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=10)
    assert not proc.is_alive()


def test_a_crashed_worker_raises_instead_of_hanging(test_tasks: list, deadline: None) -> None:
    venv = _vec(test_tasks)
    venv.reset(seed=0)
    _kill_a_worker(venv)
    start = time.monotonic()
    with pytest.raises((OSError, EOFError, RuntimeError)):
        venv.step(np.zeros((N, 6), np.float32))
    assert time.monotonic() - start < 10
    venv.close()  # closing a broken env does not hang either


def test_a_crashed_worker_gives_an_error_that_names_it(test_tasks: list, deadline: None) -> None:
    venv = _vec(test_tasks)
    venv.reset(seed=0)
    _kill_a_worker(venv)
    with pytest.raises(Exception, match=r"(?i)worker") as err:
        venv.step(np.zeros((N, 6), np.float32))
    assert "died" in str(err.value) or "exit" in str(err.value)
    venv.close()
