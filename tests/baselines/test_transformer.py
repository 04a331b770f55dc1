"""The shared core: KV-cached step-by-step inference equals a full forward pass (with segments,
and for AD and DPT with discrete and continuous actions)."""

from __future__ import annotations

import pytest
import torch

from baselines.ad import ADAgent, ADModel
from baselines.ad import Config as ADConfig
from baselines.common.transformer import SHARED, CausalTransformer, KVCache
from baselines.dpt import Config as DPTConfig
from baselines.dpt import DPTAgent, DPTModel, query_mask
from tests.baselines import spaces
from tests.baselines.spaces import ACTIONS, BANDIT_OBS, BOX_ACTIONS, GRID_OBS, POINT_OBS, trial

TOL = 1e-5


def test_cache_matches_full_forward_with_a_sliding_window() -> None:
    torch.manual_seed(0)
    model = CausalTransformer(32, 2, 4, window=16).eval()
    x = torch.randn(3, 50, 32)
    cache = KVCache()
    with torch.no_grad():
        full = model(x)  # one pass, sliding-window attention over all 50 tokens
        for t in range(50):
            step = model(x[:, t : t + 1], cache=cache)
            assert torch.allclose(step, full[:, t : t + 1], atol=TOL), t
        assert len(cache) == 16  # the last 15 kept plus the newest
        # several tokens at once (a prompt) continue the same computation
        more = torch.randn(3, 7, 32)
        both = model(torch.cat([x, more], dim=1))[:, 50:]
        assert torch.allclose(model(more, cache=cache), both, atol=TOL)


def test_segments_in_the_cache_match_a_full_forward() -> None:
    """Tokens see only their own segment (and SHARED ones); a segment change in the cache (an
    env whose episode restarts) equals the full pass with the same segment ids."""
    torch.manual_seed(3)
    model = CausalTransformer(32, 2, 4, window=9).eval()
    x = torch.randn(2, 30, 32)
    seg = torch.zeros(2, 30, dtype=torch.long)
    seg[0, 11:] = 1  # env 0 restarts at token 11, env 1 at 23
    seg[1, 23:] = 1
    seg[:, :3] = SHARED  # a prompt both envs' tokens may read while it is in the window
    cache = KVCache()
    with torch.no_grad():
        full = model(x, segments=seg)
        for t in range(30):
            step = model(x[:, t : t + 1], cache=cache, segments=seg[:, t : t + 1])
            assert torch.allclose(step, full[:, t : t + 1], atol=TOL), t
        # the restart hides the earlier segment: env 0's token 11 equals a fresh start there
        alone = model(x[:1, 11:12])
        assert torch.allclose(full[:1, 11:12], alone, atol=TOL)
        # and a segment id changes nothing inside one segment
        assert torch.allclose(model(x[:, 3:11], segments=seg[:, 3:11]), model(x[:, 3:11]), atol=TOL)


@pytest.mark.parametrize("tokens", ["transition", "interleaved"])
@pytest.mark.parametrize(
    ("obs_info", "act_info"),
    [(GRID_OBS, ACTIONS), (BANDIT_OBS, ACTIONS), (POINT_OBS, BOX_ACTIONS)],
    ids=["grid", "bandit", "continuous"],
)
def test_ad_cached_logits_equal_full_forward(tokens: str, obs_info: dict, act_info: dict) -> None:
    torch.manual_seed(1)
    cfg = ADConfig(context=12, tokens=tokens, d_model=32, n_layers=2, n_heads=2, dropout=0.0)
    model = ADModel(cfg, obs_info, act_info).eval()
    agent = ADAgent(model)
    agent.reset(2)
    tr = trial(40, obs_info, act_info)
    obs, act, rew = (torch.as_tensor(tr[k]) for k in ("obs", "actions", "rewards"))
    none = model.none_actions(2, torch.device("cpu"))[:, None]
    with torch.no_grad():
        for t in range(40):  # past the 12-step window
            cached = agent.logits(tr["obs"][:, t])
            # the full forward pass over the whole trial so far
            if tokens == "transition":
                prev_a = torch.cat([none, act[:, :t]], dim=1)
                prev_r = torch.cat([torch.zeros(2, 1), rew[:, :t]], dim=1)
                x = model.step_tokens(obs[:, : t + 1], prev_a, prev_r)
            else:
                a = torch.cat([act[:, :t], none], 1)
                r = torch.cat([rew[:, :t], torch.zeros(2, 1)], 1)
                x = model.sequence(obs[:, : t + 1], a, r)[:, :-2]  # ends with s_t
            full = model.head(model.core(x)[:, -1])
            assert torch.allclose(cached, full, atol=TOL), (t, (cached - full).abs().max())
            spaces.observe_step(agent, tr, t)


@pytest.mark.parametrize(
    ("obs_info", "act_info", "coords"),
    [
        (GRID_OBS, ACTIONS, False),
        (GRID_OBS, ACTIONS, True),
        (BANDIT_OBS, ACTIONS, False),
        (POINT_OBS, BOX_ACTIONS, False),
    ],
    ids=["grid", "grid-coords", "bandit", "continuous"],
)
def test_dpt_cached_logits_equal_full_forward(obs_info: dict, act_info: dict, coords: bool) -> None:
    torch.manual_seed(2)
    cfg = DPTConfig(
        context=10, d_model=32, n_layers=2, n_heads=2, obs_coords=coords, eval_context="sliding"
    )
    model = DPTModel(cfg, obs_info, act_info).eval()
    agent = DPTAgent(model)
    agent.reset(2)
    tr = trial(30, obs_info, act_info)
    obs, act, rew = (torch.as_tensor(tr[k]) for k in ("obs", "actions", "rewards"))
    with torch.no_grad():
        for t in range(30):  # past the 10-transition window
            cached = agent.logits(tr["obs"][:, t])
            # the full forward pass: every context transition so far, then the query
            ctx = model.context_tokens(obs[:, :t], act[:, :t], rew[:, :t], obs[:, 1 : t + 1])
            x = torch.cat([ctx, model.query_tokens(obs[:, t : t + 1])], dim=1)
            full = model.head(model.core(x, positions=model.positions(0, t + 1, x.device))[:, -1])
            if t <= cfg.context:  # and, inside the window, the training layout agrees
                batch = {
                    "observations": obs[:, :t],
                    "actions": act[:, :t],
                    "rewards": rew[:, :t],
                    "next_observations": obs[:, 1 : t + 1],
                    "query": obs[:, t],
                }
                assert torch.allclose(model(batch)[:, t], full, atol=TOL)
            assert torch.allclose(cached, full, atol=TOL), (t, (cached - full).abs().max())
            spaces.observe_step(agent, tr, t)


def test_query_mask_shows_each_query_its_prefix() -> None:
    m = query_mask(3)
    assert m.shape == (7, 7)
    assert m[:3, :3].equal(torch.ones(3, 3, dtype=torch.bool).tril())
    assert not m[:3, 3:].any()
    for j in range(4):  # q_j sees c_1..c_j and itself
        assert m[3 + j, :3].tolist() == [i < j for i in range(3)]
        assert m[3 + j, 3:].tolist() == [k == j for k in range(4)]
