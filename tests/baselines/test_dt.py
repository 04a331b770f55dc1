"""Decision Transformer: KV-cached acting equals the full forward pass, and the return-to-go
bookkeeping during evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.dt import Config, DTAgent, DTModel, Token, set_target
from icrl_bench.data.dataset import Dataset
from icrl_bench.errors import IcrlBenchError
from tests.baselines.spaces import ACTIONS, GRID_AND_POINT, GRID_OBS, trial

TOL = 1e-5


@GRID_AND_POINT
def test_cached_acting_equals_the_full_forward_pass(obs_info: dict, act_info: dict) -> None:
    torch.manual_seed(0)
    cfg = Config(context=6, d_model=32, n_layers=2, n_heads=2, dropout=0.0, return_scale=5.0)
    model = DTModel(cfg, obs_info, act_info).eval()
    model.target.fill_(7.0)
    agent = DTAgent(model)
    agent.reset(2)
    steps = 25
    tr = trial(steps, obs_info, act_info)
    # env 0's episode ends after step 9, env 1's after step 16: each restarts alone
    ends = {9: [True, False], 16: [False, True]}
    rtg, seg = np.zeros((2, steps), np.float32), np.zeros((2, steps), np.int64)
    cur_rtg, cur_seg = np.full(2, 7.0, np.float32), np.zeros(2, np.int64)
    with torch.no_grad():
        for t in range(steps):
            rtg[:, t], seg[:, t] = cur_rtg, cur_seg
            cached = agent.logits(tr["obs"][:, t])
            # the full pass: every token so far, R, s, a per step, with episode segments
            e = model.embed
            r = torch.as_tensor(rtg[:, : t + 1])
            x = e.interleave(
                {
                    Token.RETURN_TO_GO: e.rewards(r / cfg.return_scale),
                    Token.STATE: e.obs(torch.as_tensor(tr["obs"][:, : t + 1])),
                    Token.ACTION: e.action(torch.as_tensor(tr["actions"][:, : t + 1])),
                }
            )[:, :-1]  # up to s_t
            segments = torch.as_tensor(seg[:, : t + 1]).repeat_interleave(3, dim=1)[:, :-1]
            full = model.head(model.core(x, segments=segments)[:, -1])
            assert torch.allclose(cached, full, atol=TOL), (t, (cached - full).abs().max())
            done = np.array(ends.get(t, [False, False]))
            agent.observe(
                tr["obs"][:, t], tr["actions"][:, t], tr["rewards"][:, t], tr["obs"][:, t],
                done, np.zeros(2, bool),
            )  # fmt: skip
            cur_rtg = np.where(done, 7.0, cur_rtg - tr["rewards"][:, t]).astype(np.float32)
            cur_seg = cur_seg + done


def test_return_to_go_bookkeeping_during_evaluation() -> None:
    """Each episode starts at the target; every reward is subtracted; an env whose episode ends
    (terminated or truncated) restarts at the target while the others carry on."""
    cfg = Config(context=4, d_model=16, n_layers=1, n_heads=1, dropout=0.0)
    model = DTModel(cfg, GRID_OBS, ACTIONS).eval()
    model.target.fill_(10.0)
    agent = DTAgent(model)
    agent.reset(3)
    assert agent.rtg.tolist() == [10.0, 10.0, 10.0]
    obs = np.zeros(3, np.int64)
    rewards = [np.array([1.0, 0.0, 2.0]), np.array([0.5, 1.0, 0.0]), np.array([1.0, 1.0, 1.0])]
    terminated = [np.array([False, False, False]), np.array([True, False, False])]
    truncated = [np.array([False, False, False]), np.array([False, False, True])]
    agent.act(obs)
    agent.observe(obs, np.zeros(3, np.int64), rewards[0], obs, terminated[0], truncated[0])
    assert np.allclose(agent.rtg.numpy(), [9.0, 10.0, 8.0])
    agent.act(obs)
    agent.observe(obs, np.zeros(3, np.int64), rewards[1], obs, terminated[1], truncated[1])
    # env 0 terminated and env 2 was truncated: both restart at the target
    assert np.allclose(agent.rtg.numpy(), [10.0, 9.0, 10.0])
    assert agent.segment.tolist() == [1, 0, 1]
    agent.act(obs)
    agent.observe(obs, np.zeros(3, np.int64), rewards[2], obs, np.zeros(3, bool), np.zeros(3, bool))
    assert np.allclose(agent.rtg.numpy(), [9.0, 8.0, 9.0])
    # a new trial (zero-shot-v1 resets before every episode) starts from the target again
    agent.reset(3)
    assert agent.rtg.tolist() == [10.0, 10.0, 10.0] and agent.segment.tolist() == [0, 0, 0]


class _Episodes:
    """Just the arrays :func:`set_target` reads: five episodes of two steps, tasks 0, 0, 1, 2, 2."""

    episode_returns = Dataset.episode_returns

    def __init__(self) -> None:
        self.arrays = {
            "rewards": np.array([-1, -1, -5, -5, -3, -3, -9, -9, -7, -7], np.float32),
            "episode_offsets": np.arange(0, 12, 2),
            "task_index": np.repeat([0, 0, 1, 2, 2], 2),
        }


@pytest.mark.parametrize(
    ("target", "expected"), [("data-max", -2.0), ("task-median", -6.0), ("fixed", 4.0)]
)
def test_target_return_choices(target: str, expected: float) -> None:
    """data-max: the best episode (-2, task 0); task-median: the median of the tasks' bests
    (-2, -6, -14); fixed: ``target_return``, whatever the data holds."""
    cfg = Config(d_model=16, n_layers=1, n_heads=1, target=target, target_return=4.0)
    model = DTModel(cfg, GRID_OBS, ACTIONS)
    facts = set_target(model, _Episodes())  # type: ignore[arg-type]
    assert float(model.target) == facts["target_return"] == expected
    assert facts["best_episode_return"] == -2.0 and facts["task_median_best_return"] == -6.0


def test_dt_refuses_a_prompt() -> None:
    agent = DTAgent(DTModel(Config(d_model=16, n_layers=1, n_heads=1), GRID_OBS, ACTIONS))
    prompt = {"observations": np.zeros(3, np.int64)}
    with pytest.raises(IcrlBenchError, match="no prompt"):
        agent.reset(1, [prompt])
