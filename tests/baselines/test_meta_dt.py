"""Meta-DT: the self-guided prompt selector, and the agent's cached prompt plus recomputed
window equal the training forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.meta_dt import Config, MetaDTAgent, MetaDTModel, select_segment
from tests.baselines.spaces import ACTIONS, BOX_ACTIONS, GRID_AND_POINT, GRID_OBS, POINT_OBS, trial

TOL = 1e-5


def test_selector_returns_the_segment_with_the_largest_error() -> None:
    rng = np.random.default_rng(0)
    k = 3
    for _ in range(50):
        t = int(rng.integers(k, 12))
        errors = torch.as_tensor(rng.random((4, t)), dtype=torch.float32)
        lengths = rng.integers(k, t + 1, size=4)
        valid = torch.as_tensor(np.arange(t)[None, :] < lengths[:, None])
        start = select_segment(errors, valid, k)
        for i in range(4):  # brute force over every k-step segment inside the episode
            sums = [float(errors[i, s : s + k].sum()) for s in range(int(lengths[i]) - k + 1)]
            assert int(start[i]) == int(np.argmax(sums))
    # a spike of error is found wherever it is
    errors = torch.zeros(1, 10)
    errors[0, 6] = 5.0
    assert select_segment(errors, torch.ones(1, 10, dtype=torch.bool), 2).item() in (5, 6)
    # episodes shorter than k give the start 0
    short = torch.tensor([[True, True, False, False]])
    assert select_segment(torch.rand(1, 4), short, 3).item() == 0


def _episode(steps: int, obs_info: dict, act_info: dict, seed: int) -> dict[str, np.ndarray]:
    tr = trial(steps, obs_info, act_info, seed)
    return {
        "observations": tr["obs"][:, :-1],
        "next_observations": tr["obs"][:, 1:],
        "actions": tr["actions"],
        "rewards": tr["rewards"],
    }


def _training_batch(
    ep: dict[str, np.ndarray], t: int, cfg: Config, target: float
) -> dict[str, torch.Tensor]:
    """The training layout of the window ending at step ``t``: ``history + context`` steps,
    those before the episode's start padded as another episode."""
    total = cfg.history + cfg.context
    steps = np.arange(t - total + 1, t + 1)
    take = np.clip(steps, 0, None)
    out = {k: torch.as_tensor(v[:, take]) for k, v in ep.items()}
    cum = np.concatenate([np.zeros((2, 1)), np.cumsum(ep["rewards"], axis=1)], axis=1)
    out["returns_to_go"] = torch.as_tensor(target - cum[:, take], dtype=torch.float32)
    out["episode_index"] = torch.as_tensor(np.where(steps < 0, -5, 0)[None].repeat(2, 0))
    return out


@pytest.mark.parametrize("prompted", [False, True], ids=["zero-shot", "prompted"])
@GRID_AND_POINT
def test_cached_prompt_and_window_equal_the_training_forward(
    obs_info: dict, act_info: dict, prompted: bool
) -> None:
    torch.manual_seed(0)
    cfg = Config(
        context=5, d_model=32, n_layers=2, n_heads=2, dropout=0.0, return_scale=4.0,
        history=3, latent=8, wm_hidden=16, prompt_length=4,
    )  # fmt: skip
    model = MetaDTModel(cfg, obs_info, act_info).eval()
    model.target.fill_(6.0)
    agent = MetaDTAgent(model)
    prompt_ep = _episode(12, obs_info, act_info, seed=1)
    prompts = [{k: v[i] for k, v in prompt_ep.items()} for i in range(2)] if prompted else None
    agent.reset(2, prompts)
    ep = _episode(14, obs_info, act_info, seed=2)
    with torch.no_grad():
        for t in range(14):  # past the 5-step window and the 3-step history
            cached = agent.logits(ep["observations"][:, t])
            batch = _training_batch(ep, t, cfg, 6.0)
            if prompted:
                assert agent.prompt is not None
                batch["prompt_observations"] = agent.prompt["observations"]
                batch["prompt_actions"] = agent.prompt["actions"]
                batch["prompt_returns_to_go"] = agent.prompt["returns_to_go"]
                batch["prompt_keep"] = torch.ones(2, dtype=torch.bool)
            full, _, _ = model(batch)
            assert torch.allclose(cached, full[:, -1], atol=TOL), (
                t,
                (cached - full[:, -1]).abs().max(),
            )
            agent.observe(
                ep["observations"][:, t], ep["actions"][:, t], ep["rewards"][:, t],
                ep["next_observations"][:, t], np.zeros(2, bool), np.zeros(2, bool),
            )  # fmt: skip


def test_the_prompt_is_the_max_error_segment_of_the_agents_best_episode() -> None:
    """Few-shot under online-v1: after an episode, an env's prompt is the k-step segment of its
    best episode so far on which the world model errs most."""
    torch.manual_seed(1)
    cfg = Config(
        context=4, d_model=16, n_layers=1, n_heads=1, dropout=0.0, history=2, latent=4,
        wm_hidden=8, prompt_length=3,
    )  # fmt: skip
    model = MetaDTModel(cfg, POINT_OBS, BOX_ACTIONS).eval()
    agent = MetaDTAgent(model)
    agent.reset(2)
    ep = _episode(8, POINT_OBS, BOX_ACTIONS, seed=3)
    for t in range(8):
        agent.logits(ep["observations"][:, t])
        last = np.array([t == 7, False])  # only env 0 ends its episode
        agent.observe(
            ep["observations"][:, t], ep["actions"][:, t], ep["rewards"][:, t],
            ep["next_observations"][:, t], last, np.zeros(2, bool),
        )  # fmt: skip
    assert agent.prompt is not None and agent.prompt["present"].tolist() == [True, False]
    e = {k: torch.as_tensor(v[:1]) for k, v in ep.items()}
    with torch.no_grad():
        err = model.step_errors(
            e["observations"], e["actions"], e["rewards"], e["next_observations"],
            torch.ones(1, 8, dtype=torch.bool),
        )[0]  # fmt: skip
    best = int(np.argmax([float(err[s : s + 3].sum()) for s in range(6)]))
    chosen = agent.prompt["observations"][0]
    assert torch.allclose(chosen, e["observations"][0, best : best + 3])
    rewards = e["rewards"][0, best : best + 3]
    expected_rtg = rewards.flip(0).cumsum(0).flip(0)
    assert torch.allclose(agent.prompt["returns_to_go"][0], expected_rtg)


def test_an_episode_shorter_than_the_history_prompts_without_error() -> None:
    """An episode that ends before ``history`` steps (a goal next to the start) is padded in
    front like any other: re-prompting from it used to fail on mismatched shapes."""
    torch.manual_seed(0)
    cfg = Config(context=4, d_model=16, n_layers=1, history=4, prompt_length=5, dropout=0.0)
    agent = MetaDTAgent(MetaDTModel(cfg, GRID_OBS, ACTIONS).eval())
    agent.reset(2)
    obs = np.array([3, 40])
    for t in range(3):
        agent.act(obs)
        ended = np.array([t == 2, t == 2])
        agent.observe(obs, np.array([1, 2]), np.array([0.0, 1.0]), obs + 1, ended, ~ended & False)
    assert agent.prompt is not None and bool(agent.prompt["present"].all())
    assert agent.act(obs).shape == (2,)
