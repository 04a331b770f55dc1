"""Meta-World families: splits equal Meta-World's own, our seeding and batching workarounds,
the scripted expert, success reporting and datasets."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import traceback
from concurrent.futures import ProcessPoolExecutor

import gymnasium as gym
import metaworld  # the dev extra installs it: a missing one fails, never skips
import numpy as np
import pytest

import icrl_bench
from icrl_bench import data
from icrl_bench.envs.metaworld_env import V3_ENVIRONMENTS, MetaWorldTask, class_name
from icrl_bench.errors import InvalidActionError, InvalidTaskError
from icrl_bench.kinds import METAWORLD

CHECKED = {
    "ML1-Reach-v0": "reach-v3",
    "ML1-Push-v0": "push-v3",
    "ML1-PickPlace-v0": "pick-place-v3",
}


def test_every_v3_environment_has_an_ml1_family() -> None:
    assert sorted(V3_ENVIRONMENTS) == sorted(metaworld.ALL_V3_ENVIRONMENTS)
    names = {s.name for s in icrl_bench.FAMILIES if s.kind is METAWORLD}
    assert len(names) == 50 + 2 and {"ML10-v0", "ML45-v0", *CHECKED} <= names
    for spec in icrl_bench.FAMILIES:
        if spec.kind is METAWORLD:
            assert spec.env_id in gym.registry and spec.horizon == 100


@pytest.mark.parametrize(("family", "env_name"), sorted(CHECKED.items()))
def test_ml1_splits_equal_metaworlds_own_and_differ(family: str, env_name: str) -> None:
    dist = icrl_bench.tasks(family)
    bench = metaworld.ML1(env_name, seed=0)
    for ours, theirs in ((dist.train, bench.train_tasks), (dist.test, bench.test_tasks)):
        assert len(ours) == len(theirs) == 50
        for a, b in zip(ours, theirs, strict=True):
            assert a.env_name == b.env_name
            np.testing.assert_array_equal(a.rand_vec, pickle.loads(b.data)["rand_vec"])
    # Meta-World's registered ML1-train silently uses the test tasks; ours never do
    assert not {t.rand_vec for t in dist.train} & {t.rand_vec for t in dist.test}


@pytest.mark.parametrize("family", sorted(CHECKED))
def test_check_env_and_expert_succeeds(family: str) -> None:
    from gymnasium.utils.env_checker import check_env

    test = icrl_bench.tasks(family).test
    env = gym.make(f"icrl_bench/{family}", task=test[0])
    check_env(env.unwrapped, skip_render_check=True)
    env.reset(seed=0)
    success = False
    for _ in range(100):
        _, _, term, trunc, info = env.step(env.unwrapped.oracle_action())
        success |= info["success"]
    assert success and trunc and not term


def test_the_task_moves_the_goal_that_rewards_and_success_follow() -> None:
    """Replaying task A's expert actions succeeds on A and not on B, and the rewards differ."""
    test = icrl_bench.tasks("ML1-Reach-v0").test
    a, b = test[0], test[1]
    env = gym.make("icrl_bench/ML1-Reach-v0", task=a)
    env.reset(seed=0)
    actions, rewards_a, success_a = [], [], False
    for _ in range(100):
        act = env.unwrapped.oracle_action()
        _, rew, _, _, info = env.step(act)
        actions.append(act)
        rewards_a.append(rew)
        success_a |= info["success"]
    other = gym.make("icrl_bench/ML1-Reach-v0", task=b)
    other.reset(seed=0)
    rewards_b, success_b = [], False
    for act in actions:
        _, rew, _, _, info = other.step(act)
        rewards_b.append(rew)
        success_b |= info["success"]
    assert success_a and not success_b
    assert sum(rewards_a) > sum(rewards_b)


def test_reset_seed_reaches_the_simulator() -> None:
    """Meta-World ignores reset(seed=...): ours seeds the simulator through env.seed()."""
    draws = []
    for seed in (5, 5, 6):
        env = gym.make("icrl_bench/ML1-Reach-v0")
        env.reset(seed=seed)
        draws.append(env.unwrapped._sim.np_random.random())
    assert draws[0] == draws[1] != draws[2]


def test_two_instances_with_one_seed_give_identical_rollouts() -> None:
    def rollout() -> np.ndarray:
        env = gym.make("icrl_bench/ML1-Push-v0")
        obs, _ = env.reset(seed=3)
        rng = np.random.default_rng(0)
        out = [obs]
        for _ in range(120):  # crosses an episode end
            obs, rew, term, trunc, _ = env.step(rng.uniform(-1, 1, 4))
            out.append(np.append(obs, rew))
            if term or trunc:
                obs, _ = env.reset()
        return np.concatenate(out)

    np.testing.assert_array_equal(rollout(), rollout())


@pytest.mark.parametrize("workers", [0, 2])
def test_vector_env_matches_single_envs_for_any_count(workers: int) -> None:
    """Meta-World's make_vec asserts unless tasks divide evenly; ours takes any count (here 3),
    in this process or in worker processes, with the same transitions as single envs."""
    test = list(icrl_bench.tasks("ML1-Reach-v0").test[:3])
    venv = gym.make_vec(
        "icrl_bench/ML1-Reach-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        tasks=test,
        workers=workers,
    )
    singles = [gym.make("icrl_bench/ML1-Reach-v0", task=t) for t in test]
    vobs, _ = venv.reset(seed=[7, 8, 9])
    sobs = [e.reset(seed=s)[0] for e, s in zip(singles, (7, 8, 9), strict=True)]
    np.testing.assert_array_equal(vobs, np.stack(sobs))
    rng = np.random.default_rng(1)
    for _ in range(105):  # crosses the 100-step truncation and the NEXT_STEP autoreset
        act = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
        vobs, vrew, _, vtrunc, vinfo = venv.step(act)
        for i, env in enumerate(singles):
            if env.unwrapped._t >= 100:
                obs, _ = env.reset()
                rew, trunc, succ = 0.0, False, False
            else:
                obs, rew, _, trunc, info = env.step(act[i])
                succ = info["success"]
            np.testing.assert_array_equal(vobs[i], obs)
            assert vrew[i] == rew and vtrunc[i] == trunc and vinfo["success"][i] == succ
    assert venv.unwrapped.task == test
    venv.close()


def test_bad_actions_and_tasks_are_refused() -> None:
    env = gym.make("icrl_bench/ML1-Reach-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(InvalidActionError, match="finite"):
        env.step(np.array([np.nan, 0, 0, 0]))
    with pytest.raises(InvalidTaskError, match="not one of its environments"):
        gym.make(
            "icrl_bench/ML1-Reach-v0",
            task=MetaWorldTask(family="ML1-Reach-v0", env_name="push-v3", rand_vec=(0.0,) * 6),
        )
    far = MetaWorldTask(family="ML1-Reach-v0", env_name="reach-v3", rand_vec=(9.0,) * 6)
    with pytest.raises(InvalidTaskError, match="outside"):
        gym.make("icrl_bench/ML1-Reach-v0", task=far)


def test_smoke_datasets_generate_verify_and_load() -> None:
    for variant in ("expert", "ad-eps", "noisy-mix", "random"):
        ds = data.load(data.generate("ML1-Reach-v0", variant, "smoke", progress=False))
        ds.verify()
        assert ds.arrays["observations"].shape == (1600, 39)
        assert ds.arrays["actions"].shape == (1600, 4) and ds.has_optimal_actions
        window = ds.sample_windows(4, 50, np.random.default_rng(0))
        assert window["observations"].shape == (4, 50, 39)
    expert = data.load("ML1-Reach-v0/expert-v0/smoke-seed0")
    random = data.load("ML1-Reach-v0/random-v0/smoke-seed0")
    assert expert.episode_returns().mean() > 2 * random.episode_returns().mean()
    np.testing.assert_array_equal(expert.arrays["actions"], expert.arrays["optimal_actions"])


ALL_MW = [s.env_id for s in icrl_bench.FAMILIES if s.kind is METAWORLD]


def _light_check(env_id: str) -> str | None:
    """What every Meta-World id must satisfy, at a fraction of ``check_env``'s cost; returns
    the failure's traceback, or None.

    Most of an id's cost is building Meta-World's own benchmark for its split (about 1.6 s for
    an ML1 id, 10 s for ML10, 40 s for ML45); on top of that this builds one env, resets it
    four times and steps it 13 times: the split (sizes, disjoint, its classes), the spaces,
    observations inside the observation space, typed step results with ``info["success"]``,
    same-seed replay on the same instance, the task option and the scripted expert. The three
    ids in ``CHECKED`` also get the full ``check_env`` above.
    """
    try:
        name = env_id.split("/")[1]
        dist = icrl_bench.tasks(env_id)
        train_classes = {t.env_name for t in dist.train}
        test_classes = {t.env_name for t in dist.test}
        if name.startswith("ML1-"):
            assert (len(dist.train), len(dist.test)) == (50, 50)
            assert {class_name(c) for c in train_classes | test_classes} == {name[4:-3]}
        else:  # ML10 / ML45 hold out whole classes for testing, 50 goals each
            count = int(name[2:-3])
            assert len(train_classes) == count and len(test_classes) == 5
            assert not train_classes & test_classes
            assert len(dist.train) == 50 * count and len(dist.test) == 50 * 5
        assert not set(dist.train) & set(dist.test)

        env = gym.make(env_id)
        obs_space, act_space = env.observation_space, env.action_space
        assert isinstance(act_space, gym.spaces.Box) and act_space.shape == (4,)
        assert act_space.dtype == np.float32 and (act_space.low == -1).all()
        assert (act_space.high == 1).all()
        assert isinstance(obs_space, gym.spaces.Box) and obs_space.shape == (39,)
        assert obs_space.dtype == np.float32
        actions = np.random.default_rng(0).uniform(-1, 1, (6, 4)).astype(np.float32)

        def rollout(seed: int) -> np.ndarray:
            obs, info = env.reset(seed=seed)
            assert isinstance(info, dict) and obs_space.contains(obs), obs
            assert env.unwrapped.task in dist.train  # drawn from the train split
            out = [obs]
            for act in actions:
                obs, rew, term, trunc, info = env.step(act)
                assert obs_space.contains(obs), obs
                assert isinstance(rew, float) and np.isfinite(rew)
                assert isinstance(term, bool) and isinstance(trunc, bool) and not trunc
                assert isinstance(info["success"], bool | np.bool_)
                out.append(np.append(obs, rew))
            return np.concatenate(out)

        np.testing.assert_array_equal(rollout(3), rollout(3))
        env.reset(seed=0, options={"task": dist.test[0]})
        assert env.unwrapped.task == dist.test[0]
        expert = env.unwrapped.oracle_action()
        assert expert.shape == (4,) and np.isfinite(expert).all()
        obs, *_ = env.step(expert)
        assert obs_space.contains(obs)
        env.close()
        return None
    except Exception:
        return traceback.format_exc()


def test_every_metaworld_id_builds_resets_steps_and_replays() -> None:
    """All 52 ids (50 ML1, ML10, ML45) through :func:`_light_check`, in two processes."""
    assert len(ALL_MW) == 52
    # the longest first, so that the two processes end together
    order = ["icrl_bench/ML45-v0", "icrl_bench/ML10-v0", *(i for i in ALL_MW if "/ML1-" in i)]
    assert sorted(order) == sorted(ALL_MW)
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        failures = {i: e for i, e in zip(order, pool.map(_light_check, order), strict=True) if e}
    assert not failures, "\n".join(f"{i}:\n{e}" for i, e in failures.items())
