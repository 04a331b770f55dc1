"""Algorithm Distillation: its two tokenisations, training targets, windows and agent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.ad import ADAgent, ADModel, Config, Token, loss_fn, make_sampler
from baselines.common.config import ConfigError
from icrl_bench import data, workflow
from icrl_bench.errors import IcrlBenchError
from tests.baselines.spaces import ACTIONS, BOX_ACTIONS, GRID_OBS, POINT_OBS


def _batch(b: int, t: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "observations": torch.randint(81, (b, t), generator=g),
        "actions": torch.randint(5, (b, t), generator=g),
        "rewards": torch.rand(b, t, generator=g),
    }


def test_transition_tokens_predict_each_next_action_from_the_one_before() -> None:
    model = ADModel(Config(context=6, d_model=16, n_layers=1, n_heads=2), GRID_OBS, ACTIONS)
    batch = _batch(3, 7)  # context + 1 transitions: the first only gives its action and reward
    out, targets = model(batch)
    assert out.shape == (3, 6, 5) and torch.equal(targets, batch["actions"][:, 1:])


def test_interleaved_tokens_read_each_action_from_its_state_token() -> None:
    cfg = Config(context=6, d_model=16, n_layers=1, n_heads=2, tokens="interleaved")
    model = ADModel(cfg, GRID_OBS, ACTIONS)
    batch = _batch(2, 6)
    out, targets = model(batch)
    assert out.shape == (2, 6, 5) and torch.equal(targets, batch["actions"])
    assert model.core.window == 3 * cfg.context  # three tokens per transition
    assert [int(k) for k in Token] == [0, 1, 2]  # rows of embed.kind in saved weights


def test_the_loss_falls_when_the_next_action_is_predictable() -> None:
    torch.manual_seed(0)
    model = ADModel(
        Config(context=8, d_model=16, n_layers=1, n_heads=2, dropout=0.0), GRID_OBS, ACTIONS
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = _batch(8, 9)
    batch["actions"] = batch["observations"] % 5  # the action is a function of the state
    first = loss_fn(model, batch)[0].item()
    for _ in range(60):
        loss, scalars = loss_fn(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first and scalars["accuracy"] > 0.5


def test_the_sampler_draws_context_plus_one_transitions() -> None:
    ds = data.load(data.generate("DarkRoom-v0", "histories", "smoke", seed=0))
    sample = make_sampler(Config(context=10), ds, 4, torch.device("cpu"))
    assert sample(np.random.default_rng(0))["actions"].shape == (4, 11)
    interleaved = make_sampler(Config(context=10, tokens="interleaved"), ds, 4, torch.device("cpu"))
    assert interleaved(np.random.default_rng(0))["actions"].shape == (4, 10)


@pytest.mark.parametrize(("obs_info", "act_info"), [(GRID_OBS, ACTIONS), (POINT_OBS, BOX_ACTIONS)])
def test_the_agent_starts_from_no_previous_action_and_keeps_its_window(
    obs_info: dict, act_info: dict
) -> None:
    model = ADModel(Config(context=4, d_model=16, n_layers=1, n_heads=2), obs_info, act_info)
    agent = ADAgent(model)
    agent.reset(2)
    assert agent.prev_action is not None
    if act_info["kind"] == "discrete":
        assert agent.prev_action.tolist() == [5, 5]  # the action table's "none" row
    else:
        assert not agent.prev_action.any()  # the middle of the box
    rng = np.random.default_rng(0)
    obs = rng.integers(81, size=2) if obs_info["kind"] == "discrete" else rng.random((2, 2))
    for _ in range(10):
        action = agent.act(obs)
        agent.observe(obs, action, np.ones(2), obs, np.zeros(2, bool), np.zeros(2, bool))
    assert len(agent.cache) <= model.core.window  # a sliding window, however long the trial
    assert torch.equal(agent.prev_reward, torch.ones(2))


def test_return_order_windows_end_with_the_best_of_sorted_episodes() -> None:
    ds = data.load(data.generate("PointRobot-v0", "histories", "smoke", seed=0))
    cfg = Config(context=40, episode_order="return")  # 2 episodes of 20 steps, plus one before
    batch = make_sampler(cfg, ds, 6, torch.device("cpu"), paired=True)(np.random.default_rng(0))
    assert batch["actions"].shape == (6, 41, 2)
    rewards = batch["rewards"][:, 1:].reshape(6, 2, 20).sum(-1)  # the two whole episodes
    assert (rewards[:, 0] <= rewards[:, 1]).all()  # ascending return
    assert (batch["step_index"][:, 1:].reshape(6, 2, 20) == torch.arange(20)).all()
    hist = batch["history_index"]
    assert (hist == hist[:, :1]).all() and torch.equal(hist[:3], hist[3:])  # paired by history
    with pytest.raises(ConfigError, match="multiple of the episode length"):
        make_sampler(Config(context=30, episode_order="return"), ds, 6, torch.device("cpu"))


def test_return_order_agent_rebuilds_its_context_from_episodes_sorted_by_return() -> None:
    torch.manual_seed(0)
    cfg = Config(context=6, d_model=16, n_layers=1, n_heads=2, episode_order="return")
    model = ADModel(cfg, POINT_OBS, BOX_ACTIONS).eval()
    agent = ADAgent(model)
    agent.reset(2)
    rng = np.random.default_rng(0)
    episodes = []
    for rewards in ([0.0, -1.0], [-3.0, -0.5], [-1.0, -2.0]):  # per env, one per episode
        obs = rng.random((2, 2)).astype(np.float32)
        steps = []
        for t in range(2):  # episodes of 2 steps: context 6 keeps the last 2 episodes
            a = agent.act(obs)
            done = np.full(2, t == 1)
            r = np.array(rewards, dtype=np.float32)
            agent.observe(obs, a, r, obs, np.zeros(2, bool), done)
            steps.append((obs, a, r))
        episodes.append(steps)
    # the kept episodes are the last two, by return ascending: env 0 has episode 2 (-6) then
    # episode 3 (-2); env 1 has episode 3 (-4) then episode 2 (-1)
    obs = rng.random((2, 2)).astype(np.float32)
    got = agent.logits(obs)
    order = {0: (1, 2), 1: (2, 1)}

    def column(k: int) -> torch.Tensor:
        per_env = [np.stack([s[k][e] for i in order[e] for s in episodes[i]]) for e in (0, 1)]
        return torch.as_tensor(np.stack(per_env))

    o, a, r = column(0), column(1), column(2)
    prev_a = torch.cat([torch.zeros(2, 1, 2), a], 1)
    prev_r = torch.cat([torch.zeros(2, 1), r], 1)
    all_obs = torch.cat([o, torch.as_tensor(obs)[:, None]], 1)
    want = model.head(model.core(model.step_tokens(all_obs, prev_a, prev_r))[:, -1])
    torch.testing.assert_close(got, want)


def test_return_order_agent_refuses_episodes_that_end_apart() -> None:
    cfg = Config(context=4, d_model=16, n_layers=1, n_heads=2, episode_order="return")
    agent = ADAgent(ADModel(cfg, POINT_OBS, BOX_ACTIONS))
    agent.reset(2)
    obs = np.zeros((2, 2), np.float32)
    with pytest.raises(IcrlBenchError, match="end together"):
        agent.observe(
            obs, agent.act(obs), np.zeros(2), obs, np.array([True, False]), np.zeros(2, bool)
        )


def test_a_context_that_does_not_fit_the_episodes_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    ds = data.generate("PointRobot-v0", "histories", "smoke", seed=0)
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"model.context \(30\) to be a multiple"):
        workflow.train("t2mir-ad", "PointRobot-v0", ds, out, sets=["model.context=30"], smoke=True)
    assert not out.exists()
