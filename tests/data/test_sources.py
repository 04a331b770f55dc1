"""Dataset sources: the classic learners learn, collected transitions come in the order task,
history, episode, step with the right counts, and the same seed gives the same output."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench
from icrl_bench.data.sources import (
    LEARNERS,
    Collected,
    NoisyOracle,
    collect,
    make_context,
)
from icrl_bench.envs.core import random_actions
from icrl_bench.registry import reference_returns, tasks

DARK = "icrl_bench/DarkRoom-v0"
DARK_HORIZON = 20  # DarkRoom episodes always run the full horizon


def _episode_returns(c: Collected, n_tasks: int, histories: int, episodes: int) -> np.ndarray:
    """``[tasks, histories, episodes]`` sums of rewards."""
    out = np.zeros((n_tasks, histories, episodes))
    np.add.at(out, (c.task, c.history, c.episode), c.rewards)
    return out


def _bandit_regret(name: str, chosen: list, c: Collected) -> np.ndarray:
    """Cumulative expected regret of each trial (one history, one episode per task)."""
    means = icrl_bench.family(name).core().mean_rewards(chosen)
    pulls = c.actions.reshape(len(chosen), -1)
    return (means.max(axis=1)[:, None] - means[np.arange(len(chosen))[:, None], pulls]).sum(axis=1)


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Discrete(5),
        gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
        gym.spaces.Box(np.array([0.0, -5.0]), np.array([0.5, -4.0]), dtype=np.float64),
    ],
)
def test_random_actions_stay_in_the_space(space: gym.Space) -> None:
    acts = random_actions(space, 64, np.random.default_rng(0))
    assert acts.shape == (64, *(space.shape or ()))
    assert all(space.contains(a if acts.ndim > 1 else int(a)) for a in acts)
    if isinstance(space, gym.spaces.Box):
        assert acts.dtype == space.dtype
    else:  # every arm comes up, not only a corner of the space
        assert set(acts.tolist()) == set(range(5))


def test_collect_orders_task_history_episode_step_with_the_right_counts() -> None:
    chosen = list(tasks("DarkRoom-v0").test[:3])
    c = collect(DARK, chosen, histories=2, episodes=4, learner="random", learner_params={},
                seed=[0])  # fmt: skip
    n = 3 * 2 * 4 * DARK_HORIZON
    for name in ("observations", "next_observations", "actions", "rewards", "terminations",
                 "truncations", "task", "history", "episode", "step"):  # fmt: skip
        assert len(getattr(c, name)) == n, name
    assert c.optimal_actions is not None and len(c.optimal_actions) == n
    # lexicographic order: task, then history, then episode, then step
    keys = np.stack([c.task, c.history, c.episode, c.step])
    order = np.lexsort(keys[::-1])
    np.testing.assert_array_equal(order, np.arange(n))
    np.testing.assert_array_equal(np.bincount(c.task), [2 * 4 * DARK_HORIZON] * 3)
    np.testing.assert_array_equal(c.step, np.tile(np.arange(DARK_HORIZON), 3 * 2 * 4))
    # within an episode each transition starts where the last one ended; the last truncates
    same_ep = np.diff(c.step) == 1
    np.testing.assert_array_equal(c.observations[1:][same_ep], c.next_observations[:-1][same_ep])
    assert c.truncations[c.step == DARK_HORIZON - 1].all()
    assert not c.truncations[c.step < DARK_HORIZON - 1].any()
    assert c.history_kind.shape == (3 * 2,)
    assert set(c.history_kind.tolist()) == {0}  # learner histories


def test_each_history_runs_on_its_own_task() -> None:
    """The oracle's return of every recorded episode is that task's oracle reference, so the
    task index of every transition names the task it was collected on."""
    chosen = list(tasks("DarkRoom-v0").test[:6])
    c = collect(DARK, chosen, 2, 2, "oracle", {}, seed=[1])
    oracle = reference_returns("DarkRoom-v0")["oracle"][:6]
    assert len(set(oracle.tolist())) > 1  # the check tells the tasks apart
    np.testing.assert_allclose(
        _episode_returns(c, 6, 2, 2), np.broadcast_to(oracle[:, None, None], (6, 2, 2))
    )
    np.testing.assert_array_equal(c.actions, c.optimal_actions)
    assert set(c.history_kind.tolist()) == {3}  # expert rollouts


def test_record_from_drops_the_first_episodes_but_runs_them() -> None:
    chosen = list(tasks("DarkRoom-v0").test[:2])
    full = collect(DARK, chosen, 1, 5, "q-learning", {}, seed=[4])
    tail = collect(DARK, chosen, 1, 5, "q-learning", {}, seed=[4], record_from=3)
    assert len(tail.rewards) == 2 * 2 * DARK_HORIZON
    np.testing.assert_array_equal(np.unique(tail.episode), [0, 1])
    # the kept episodes are exactly episodes 3 and 4 of the full run
    kept = full.episode >= 3
    np.testing.assert_array_equal(tail.actions, full.actions[kept])
    np.testing.assert_array_equal(tail.observations, full.observations[kept])


def test_same_seed_gives_identical_output_and_another_seed_differs() -> None:
    chosen = list(tasks("DarkRoom-v0").test[:4])
    a, b = (collect(DARK, chosen, 2, 6, "q-learning", {}, seed=[7, 1]) for _ in range(2))
    for name in Collected.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        np.testing.assert_array_equal(x, y, err_msg=name)
    other = collect(DARK, chosen, 2, 6, "q-learning", {}, seed=[8, 1])
    assert not np.array_equal(a.actions, other.actions)


def test_q_learning_improves_over_episodes_on_darkroom() -> None:
    chosen = list(tasks("DarkRoom-v0").test[:8])
    c = collect(DARK, chosen, 2, 100, "q-learning", {}, seed=[0])
    ref = reference_returns("DarkRoom-v0")
    rand, best = ref["random"][:8, None, None], ref["oracle"][:8, None, None]
    norm = ((_episode_returns(c, 8, 2, 100) - rand) / (best - rand)).mean(axis=(0, 1))
    assert norm[:10].mean() < 0.2 < 0.6 < norm[-10:].mean(), norm


@pytest.mark.parametrize(
    ("name", "learner"),
    [
        ("BernoulliBandit-v0", "ucb"),
        ("BernoulliBandit-v0", "thompson"),
        ("GaussianBandit-v0", "ucb"),
        ("GaussianBandit-v0", "thompson"),
        ("LinearBandit-v0", "ucb"),  # LinUCB over the arm features
    ],
)
def test_bandit_learners_have_less_regret_than_random(name: str, learner: str) -> None:
    chosen = list(tasks(name).test[:20])
    env_id = f"icrl_bench/{name}"
    learned = _bandit_regret(name, chosen, collect(env_id, chosen, 1, 1, learner, {}, seed=[0]))
    rand = _bandit_regret(name, chosen, collect(env_id, chosen, 1, 1, "random", {}, seed=[0]))
    assert learned.mean() < 0.5 * rand.mean(), (learned.mean(), rand.mean())
    # it learns within the trial: fewer bad pulls late than early
    c = collect(env_id, chosen, 1, 1, learner, {}, seed=[1])
    means = icrl_bench.family(name).core().mean_rewards(chosen)
    pulls = c.actions.reshape(len(chosen), -1)
    step_regret = means.max(axis=1)[:, None] - means[np.arange(len(chosen))[:, None], pulls]
    assert step_regret[:, -50:].mean() < step_regret[:, :50].mean()


def test_cem_improves_on_point_robot() -> None:
    chosen = list(tasks("PointRobot-v0").test)
    c = collect("icrl_bench/PointRobot-v0", chosen, 2, 60, "cem", {}, seed=[0])
    ret = _episode_returns(c, len(chosen), 2, 60).mean(axis=(0, 1))
    ref = reference_returns("PointRobot-v0")
    assert ret[:6].mean() < ref["random"].mean() + 5.0
    assert ret[-6:].mean() > ret[:6].mean() + 5.0
    assert c.optimal_actions is not None


def test_mixed_learner_replaces_a_share_of_histories_with_random_ones() -> None:
    chosen = list(tasks("DarkRoom-v0").test[:5])
    params = {"base": "oracle", "random_share": 0.4}
    c = collect(DARK, chosen, 2, 1, "mixed", params, seed=[3])
    kind = c.history_kind  # per (task, history): 1 = random, 0 = the base learner
    assert kind.shape == (10,) and int(kind.sum()) == 4
    returns = _episode_returns(c, 5, 2, 1).reshape(10)
    oracle = np.repeat(reference_returns("DarkRoom-v0")["oracle"][:5], 2)
    np.testing.assert_allclose(returns[kind == 0], oracle[kind == 0])
    assert (returns[kind == 1] < oracle[kind == 1]).all()


def test_noisy_oracle_epsilon_schedule() -> None:
    core = icrl_bench.family("DarkRoom-v0").core()
    ctx = make_context(core, 1, 10)
    rng = np.random.default_rng(0)
    # AD-epsilon's Dark Room schedule: aims at 0, clamps at the floor 0.5 (reached at 45%)
    ad = NoisyOracle(ctx, rng, eps_start=1.0, eps_floor=0.5, decay_fraction=0.9, eps_end=0.0)
    assert ad.epsilon(0.0) == 1.0
    assert ad.epsilon(0.45) == pytest.approx(0.5)
    assert ad.epsilon(0.3) == pytest.approx(1.0 - 0.3 / 0.9)
    assert ad.epsilon(0.99) == 0.5
    grid = np.linspace(0.0, 1.0, 100_001)
    assert float(ad.epsilon(grid).mean()) == pytest.approx(0.6125, abs=1e-4)
    # eps_end left out aims at the floor itself
    plain = NoisyOracle(ctx, rng, eps_start=1.0, eps_floor=0.2, decay_fraction=0.5)
    assert plain.epsilon(0.25) == pytest.approx(0.6)
    assert plain.epsilon(0.5) == pytest.approx(0.2) == plain.epsilon(0.9)


def test_noisy_oracle_becomes_the_oracle_as_noise_falls() -> None:
    chosen = list(tasks("DarkRoom-v0").test[:4])
    params = {"eps_start": 1.0, "eps_floor": 0.0, "decay_fraction": 0.5}
    c = collect(DARK, chosen, 2, 20, "noisy-oracle", params, seed=[2])
    assert c.optimal_actions is not None
    agree = c.actions == c.optimal_actions
    assert agree[c.episode >= 10].all()  # eps is 0 over the second half of each history
    assert agree[c.episode < 2].mean() < 0.5


def test_every_learner_name_builds_on_a_family_it_fits() -> None:
    fits = {"cem": "PointRobot-v0", "ucb": "BernoulliBandit-v0", "thompson": "BernoulliBandit-v0",
            "dirichlet-mix": "BernoulliBandit-v0"}  # fmt: skip
    for learner in LEARNERS:
        name = fits.get(learner, "DarkRoom-v0")
        chosen = list(tasks(name).test[:2])
        horizon = icrl_bench.family(name).horizon
        c = collect(f"icrl_bench/{name}", chosen, 1, 1, learner, {}, seed=[0])
        assert 0 < len(c.rewards) <= 2 * horizon, learner
        space = gym.make(f"icrl_bench/{name}").action_space
        assert all(space.contains(a) for a in c.actions[:20]), learner
