"""The reference agents: built by name for the families they fit, batched, seeded, cleared by
``reset``, and scored through ``icrl_bench.evaluate`` like any baseline (oracle 1, random 0,
the classic learners in between and learning within a trial)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench
from icrl_bench.eval.agents import (
    REFERENCE_AGENTS,
    REFERENCE_DESCRIPTIONS,
    Agent,
    LearnerAgent,
    OracleAgent,
    RandomAgent,
    reference_agent,
)
from icrl_bench.eval.metrics import normalized
from icrl_bench.registry import reference_returns, tasks

#: each learning agent with a family it applies to and one it does not
FITS = {
    "ucb": ("BernoulliBandit-v0", "DarkRoom-v0"),
    "thompson": ("GaussianBandit-v0", "PointRobot-v0"),
    "qlearning": ("DarkRoom-v0", "BernoulliBandit-v0"),
    "cem": ("PointRobot-v0", "DarkRoom-v0"),
}


def _venv(name: str, n: int) -> gym.vector.VectorEnv:
    test = list(tasks(name).test)
    chosen = [test[i % len(test)] for i in range(n)]
    return gym.make_vec(
        f"icrl_bench/{name}", num_envs=n, vectorization_mode="vector_entry_point", tasks=chosen
    )


def _norm(name: str, returns: np.ndarray) -> np.ndarray:
    ref = reference_returns(name)
    return normalized(returns, ref["random"], ref["oracle"])


def test_every_reference_agent_is_described_and_named_as_asked() -> None:
    assert set(REFERENCE_AGENTS) == set(REFERENCE_DESCRIPTIONS)
    for name in REFERENCE_AGENTS:
        fits = FITS.get(name, ("DarkRoom-v0",))[0]
        agent = reference_agent(name, fits, 10)
        assert isinstance(agent, Agent)
        assert agent.name == name  # the leaderboard's method name


@pytest.mark.parametrize("name", sorted(FITS))
def test_learning_agents_refuse_families_they_do_not_fit(name: str) -> None:
    good, bad = FITS[name]
    assert isinstance(reference_agent(name, good, 5), LearnerAgent)
    with pytest.raises(icrl_bench.IcrlBenchError, match=f"agent '{name}' applies to .*not {bad}"):
        reference_agent(name, bad, 5)


def test_unknown_agent_names_the_choices() -> None:
    with pytest.raises(icrl_bench.IcrlBenchError, match="unknown agent 'ppo'") as err:
        reference_agent("ppo", "DarkRoom-v0", 1)
    assert all(name in str(err.value) for name in REFERENCE_AGENTS)
    with pytest.raises(icrl_bench.IcrlBenchError):
        reference_agent("random", "NoSuchFamily-v0", 1)


def test_an_agent_needs_the_env_before_acting() -> None:
    agent = RandomAgent()
    agent.reset(4)
    with pytest.raises(RuntimeError, match="random needs attach"):
        agent.act(np.zeros((4, 1)))


@pytest.mark.parametrize(
    ("name", "agent"),
    [
        ("DarkRoom-v0", "random"),
        ("DarkRoom-v0", "oracle"),
        ("DarkRoom-v0", "qlearning"),
        ("BernoulliBandit-v0", "ucb"),
        ("LinearBandit-v0", "thompson"),
        ("PointRobot-v0", "cem"),
        ("PointRobot-v0", "random"),
    ],
)
@pytest.mark.parametrize("n", [1, 7])
def test_agents_act_for_the_whole_batch_inside_the_action_space(
    name: str, agent: str, n: int
) -> None:
    venv = _venv(name, n)
    a = reference_agent(agent, name, 3)
    a.seed(0)
    a.attach(venv)
    a.reset(n)
    obs, _ = venv.reset(seed=0)
    for _ in range(5):
        actions = np.asarray(a.act(obs))
        assert actions.shape == venv.action_space.shape
        assert venv.action_space.contains(actions.astype(venv.action_space.dtype))
        next_obs, rew, term, trunc, _ = venv.step(actions)
        a.observe(obs, actions, rew, next_obs, term, trunc)
        obs = next_obs
    venv.close()


def test_the_oracle_acts_on_each_envs_own_task() -> None:
    """One batch, different tasks: the oracle reaches every goal in the oracle's time."""
    res = icrl_bench.evaluate(OracleAgent(), "DarkRoom-v0", seeds=[0], episodes=1)
    ref = reference_returns("DarkRoom-v0")
    assert len(set(ref["oracle"].tolist())) > 1
    np.testing.assert_array_equal(res.returns[0, :, 0], ref["oracle"])


@pytest.mark.parametrize(
    "name", ["DarkRoom-v0", "DarkRoomHard-v0", "KeyToDoor-v0", "PointRobot-v0"]
)
def test_oracle_scores_one_and_random_about_zero(name: str) -> None:
    oracle = icrl_bench.evaluate(reference_agent("oracle", name, 2), name, seeds=[0], episodes=2)
    np.testing.assert_allclose(_norm(name, oracle.returns), 1.0)
    rand = icrl_bench.evaluate(reference_agent("random", name, 10), name, seeds=[0], episodes=10)
    assert abs(_norm(name, rand.returns).mean()) < 0.1


@pytest.mark.parametrize("agent", ["ucb", "thompson"])
@pytest.mark.parametrize("name", ["BernoulliBandit-v0", "GaussianBandit-v0", "LinearBandit-v0"])
def test_bandit_learners_beat_random_and_learn_within_the_trial(name: str, agent: str) -> None:
    learned = icrl_bench.evaluate(reference_agent(agent, name, 1), name, seeds=[0])
    rand = icrl_bench.evaluate(reference_agent("random", name, 1), name, seeds=[0])
    assert learned.regret is not None and rand.regret is not None
    assert learned.regret.sum(axis=-1).mean() < 0.6 * rand.regret.sum(axis=-1).mean()
    assert learned.regret[..., -50:].mean() < learned.regret[..., :50].mean()


def test_qlearning_and_cem_improve_across_the_trials_episodes() -> None:
    q = icrl_bench.evaluate(reference_agent("qlearning", "DarkRoom-v0", 60), "DarkRoom-v0",
                            seeds=[0], episodes=60)  # fmt: skip
    curve = _norm("DarkRoom-v0", q.returns).mean(axis=(0, 1))
    assert curve[:5].mean() < 0.25 < 0.5 < curve[-5:].mean()
    cem = icrl_bench.evaluate(reference_agent("cem", "PointRobot-v0", 40), "PointRobot-v0",
                              seeds=[0, 1], episodes=40)  # fmt: skip
    curve = _norm("PointRobot-v0", cem.returns).mean(axis=(0, 1))
    assert curve[-5:].mean() > curve[:5].mean() + 0.3


def test_reset_clears_what_a_learner_learned() -> None:
    """One agent object run twice gives what two fresh agents give: reset clears the context
    (Q-tables, arm counts) and the runner reseeds the agent's own stream."""
    for name, agent, n in (("DarkRoom-v0", "qlearning", 15), ("BernoulliBandit-v0", "thompson", 1)):
        reused = reference_agent(agent, name, n)
        first = icrl_bench.evaluate(reused, name, seeds=[3], episodes=n)
        second = icrl_bench.evaluate(reused, name, seeds=[3], episodes=n)
        fresh = icrl_bench.evaluate(reference_agent(agent, name, n), name, seeds=[3], episodes=n)
        np.testing.assert_array_equal(first.returns, second.returns)
        np.testing.assert_array_equal(first.returns, fresh.returns)


def test_reset_starts_a_new_trial_mid_way() -> None:
    """Q-learning that learned for 40 episodes acts like a beginner after reset."""
    name = "DarkRoom-v0"
    venv = _venv(name, 16)
    agent = reference_agent("qlearning", name, 40)
    agent.seed(0)
    agent.attach(venv)

    def trial(episodes: int, reset: bool) -> np.ndarray:
        if reset:
            agent.reset(16)
        returns = np.zeros((16, episodes))
        obs, _ = venv.reset(seed=1)
        for e in range(episodes):
            if e:
                obs, _ = venv.reset()
            done = np.zeros(16, dtype=bool)
            while not done.all():
                actions = agent.act(obs)
                next_obs, rew, term, trunc, _ = venv.step(actions)
                returns[:, e] += rew * ~done
                agent.observe(obs, actions, rew, next_obs, term, trunc)
                done |= term | trunc
                obs = next_obs
        return returns

    trained = trial(40, reset=True)
    late = trial(1, reset=False)[:, 0]  # the same learner, greedy by now
    early = trial(1, reset=True)[:, 0]  # a cleared learner explores again
    assert late.mean() > trained[:, :3].mean() + 3 and early.mean() < late.mean() - 3
    venv.close()
