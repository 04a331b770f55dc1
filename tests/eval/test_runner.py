"""The protocol runner: shapes, scale (random = 0, oracle = 1), context handling, determinism."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

import icrl_bench
from icrl_bench.eval import evaluate, reference_agent, setting
from icrl_bench.eval.agents import Agent, OracleAgent, RandomAgent
from icrl_bench.eval.metrics import normalized
from icrl_bench.eval.runner import PROMPT_KEYS
from icrl_bench.registry import reference_returns, tasks

# the NumPy families with an exact oracle (simulator families are measured, see tests/envs)
GRIDS = [s.name for s in icrl_bench.FAMILIES if not s.is_bandit and not s.measured_references]
BANDITS = [s.name for s in icrl_bench.FAMILIES if s.is_bandit]


class CountingAgent(RandomAgent):
    """A random agent that records how the runner drives it."""

    def __init__(self) -> None:
        super().__init__()
        self.resets: list[tuple[int, bool]] = []
        self.prompts: Sequence[Mapping[str, np.ndarray]] | None = None
        self.steps = 0

    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        super().reset(num_envs, prompts)
        self.resets.append((num_envs, prompts is not None))
        self.prompts = prompts

    def observe(self, *args: np.ndarray) -> None:
        self.steps += 1


def test_agents_satisfy_the_protocol() -> None:
    assert isinstance(OracleAgent(), Agent)
    assert isinstance(reference_agent("qlearning", "DarkRoom-v0", 10), Agent)


@pytest.mark.parametrize("name", GRIDS)
def test_oracle_scores_one_and_random_zero_on_every_grid(name: str) -> None:
    ref = reference_returns(name)
    oracle = evaluate(OracleAgent(), name, "online-v1", seeds=[0], episodes=3)
    n = len(tasks(name).test)
    assert oracle.returns.shape == (1, n, 3)
    assert np.allclose(normalized(oracle.returns, ref["random"], ref["oracle"]), 1.0)
    rand = evaluate(RandomAgent(), name, "online-v1", seeds=[0, 1], episodes=20)
    norm = normalized(rand.returns, ref["random"], ref["oracle"]).mean()
    assert abs(norm) < 0.1, norm


@pytest.mark.parametrize("name", BANDITS)
def test_bandit_regret(name: str) -> None:
    oracle = evaluate(OracleAgent(), name, "online-v1", seeds=[0])
    horizon = icrl_bench.family(name).horizon
    assert oracle.regret is not None and oracle.regret.shape == (1, len(tasks(name).test), horizon)
    assert np.allclose(oracle.regret, 0.0)
    ucb = evaluate(reference_agent("ucb", name, 1), name, "online-v1", seeds=[0])
    rand = evaluate(RandomAgent(), name, "online-v1", seeds=[0])
    assert ucb.regret is not None and rand.regret is not None
    assert ucb.regret.sum(axis=2).mean() < 0.5 * rand.regret.sum(axis=2).mean()
    # the regret is that of the recorded pulls, and it falls as UCB learns
    assert ucb.actions is not None and ucb.actions.shape == ucb.regret.shape
    assert ucb.regret[..., -50:].mean() < ucb.regret[..., :50].mean()


def test_zero_shot_bandit_records_regret() -> None:
    res = evaluate(RandomAgent(), "BernoulliBandit-v0", "zero-shot-v1", seeds=[0])
    assert res.regret is not None and res.regret.sum() > 0


def test_online_context_is_reset_once_per_trial() -> None:
    agent = CountingAgent()
    res = evaluate(agent, "DarkRoom-v0", "online-v1", seeds=[0, 1], episodes=5)
    # both seeds x 16 test tasks run as one batch of 32 trials, reset once
    assert agent.resets == [(32, False)]
    assert agent.steps == 5 * 20  # DarkRoom episodes always last 20 steps
    assert res.returns.shape == (2, 16, 5)


def test_zero_shot_clears_context_before_every_episode() -> None:
    agent = CountingAgent()
    evaluate(agent, "DarkRoom-v0", "zero-shot-v1", seeds=[0])
    episodes = setting("DarkRoom-v0", "zero-shot-v1").episodes
    assert agent.resets == [(16, False)] * episodes


def test_offline_prompt_comes_from_the_test_task() -> None:
    agent = CountingAgent()
    res = evaluate(agent, "DarkRoom-v0", "offline-prompt-v1", seeds=[3], episodes=2)
    assert agent.resets == [(16, True)]
    assert agent.prompts is not None and len(agent.prompts) == 16
    assert res.prompt_dataset == ["DarkRoom-v0/random-v0/prompt-seed3"]
    assert len(res.prompt_sha256[0]) == 64
    from icrl_bench import data

    ds = data.load(res.prompt_dataset[0])
    assert ds.tasks() == list(tasks("DarkRoom-v0").test)
    for h, prompt in enumerate(agent.prompts):
        assert len(prompt["actions"]) == 20  # one full random episode of the task
        assert np.array_equal(prompt["actions"], ds.history(h)["actions"])
        # labels that would reveal the task (optimal actions, task index) are not passed on
        assert set(prompt) == set(PROMPT_KEYS)
        assert "optimal_actions" not in prompt and "task_index" not in prompt


def test_success_recorded_on_sparse_families() -> None:
    res = evaluate(OracleAgent(), "DarkRoomHard-v0", "online-v1", seeds=[0], episodes=2)
    assert res.success is not None and res.success.min() == 1.0
    res = evaluate(RandomAgent(), "KeyToDoor-v0", "online-v1", seeds=[0], episodes=5)
    assert res.success is not None
    assert np.array_equal(res.success, (res.returns >= 2.0).astype(float))


@pytest.mark.parametrize("agent", ["random", "qlearning"])
def test_same_seeds_give_identical_returns(agent: str) -> None:
    runs = [
        evaluate(
            reference_agent(agent, "DarkRoom-v0", 30), "DarkRoom-v0", seeds=[4, 5], episodes=30
        )
        for _ in range(2)
    ]
    assert np.array_equal(runs[0].returns, runs[1].returns)
    other = evaluate(
        reference_agent(agent, "DarkRoom-v0", 30), "DarkRoom-v0", seeds=[6, 7], episodes=30
    )
    assert not np.array_equal(runs[0].returns, other.returns)


def test_qlearning_learns_in_context() -> None:
    res = evaluate(reference_agent("qlearning", "DarkRoom-v0", 100), "DarkRoom-v0", seeds=[0])
    ref = reference_returns("DarkRoom-v0")
    norm = normalized(res.returns, ref["random"], ref["oracle"]).mean(axis=(0, 1))
    assert norm[-10:].mean() > 0.6 > norm[:10].mean()


def test_bad_arguments() -> None:
    with pytest.raises(KeyError, match="unknown protocol"):
        evaluate(RandomAgent(), "DarkRoom-v0", "online-v9")
    with pytest.raises(ValueError, match="at least one seed"):
        evaluate(RandomAgent(), "DarkRoom-v0", seeds=[])
    with pytest.raises(icrl_bench.IcrlBenchError, match="bandit families"):
        reference_agent("ucb", "DarkRoom-v0", 1)
