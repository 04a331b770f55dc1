"""T2MIR: top-k routing, the load-balancing loss, the contrastive loss on two synthetic tasks,
and KV-cached acting with MoE blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.ad import ADAgent
from baselines.dpt import DPTAgent
from baselines.t2mir import (
    ADConfig,
    DPTConfig,
    MoE,
    MoESettings,
    T2MIRFeedForward,
    balance_loss,
    info_nce,
    make_ad,
    make_dpt,
    route,
)
from tests.baselines.spaces import GRID_AND_POINT, random_values

TOL = 1e-5


def test_routing_respects_top_k() -> None:
    torch.manual_seed(0)
    logits = torch.randn(200, 6)
    weights, idx = route(logits, 2)
    assert weights.shape == idx.shape == (200, 2)
    assert torch.allclose(weights.sum(-1), torch.ones(200))
    assert (idx[:, 0] != idx[:, 1]).all()
    # the chosen experts are the two largest logits
    assert idx.sort(-1).values.equal(logits.topk(2, -1).indices.sort(-1).values)
    # an MoE output depends only on the chosen experts: changing any other one changes nothing
    moe = MoE(8, 8, n_experts=6, top_k=2, hidden=16, noisy=False, dropout=0.0).eval()
    x = torch.randn(50, 8)
    with torch.no_grad():
        gate = moe.router(x)
        out, _, chosen = moe.mix(x, gate)
        unused = [e for e in range(6) if not (chosen == e).any()]
        if not unused:  # make one expert unused by construction
            gate[:, 5] = -1e9
            out, _, chosen = moe.mix(x, gate)
            unused = [5]
        for p in moe.experts[unused[0]].parameters():
            p.add_(torch.randn_like(p))
        again, _, _ = moe.mix(x, gate)
    assert torch.allclose(out, again)
    assert ((chosen == unused[0]).sum() == 0).item()


def test_balance_loss_is_lowest_when_experts_are_used_uniformly() -> None:
    n, k, experts = 120, 2, 6
    # uniform: every expert gets the same number of tokens and the same total weight
    uniform_idx = torch.stack([torch.arange(n) % experts, (torch.arange(n) + 1) % experts], 1)
    half = torch.full((n, k), 0.5)
    skewed_idx = torch.stack([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)], 1)
    assert balance_loss(half, uniform_idx, experts).item() == pytest.approx(0.0, abs=1e-6)
    assert balance_loss(half, skewed_idx, experts).item() > 1.0
    # and minimising it (with the smooth load of noisy gating, as the token MoE trains) spreads
    # a router that starts out sending every token to experts 0 and 1
    torch.manual_seed(0)
    moe = MoE(8, 8, n_experts=experts, top_k=k, hidden=8, noisy=True, dropout=0.0).train()
    with torch.no_grad():
        moe.router.net[2].bias.copy_(torch.tensor([3.0, 3.0, 0, 0, 0, 0]))
    opt = torch.optim.Adam(moe.router.parameters(), lr=0.05)
    x = torch.randn(256, 8)
    losses = []
    for _ in range(150):
        weights, idx = route(moe.router(x), k)
        loss = balance_loss(weights, idx, experts, moe.router.load(k))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.3 * losses[0], (losses[0], losses[-10:])
    with torch.no_grad():
        _, idx = route(moe.router.eval()(x), k)
    used = torch.bincount(idx.flatten(), minlength=experts)
    assert (used > 0).all(), used  # every expert is back in use


def test_contrastive_loss_separates_two_synthetic_tasks() -> None:
    """Windows of two tasks (token distributions with different means): a few hundred steps of
    the InfoNCE loss on the task router's pooled distribution make same-task windows alike and
    the two tasks apart."""
    torch.manual_seed(0)
    d, t = 16, 10
    ffn = T2MIRFeedForward(d, MoESettings(task_experts=8, ema_tau=0.05), dropout=0.0)
    means = torch.randn(2, d)
    params = [*ffn.task.router.parameters(), ffn.bilinear]
    opt = torch.optim.Adam(params, lr=0.01)

    def batch() -> torch.Tensor:  # windows [A, B, A', B']: i and i + 2 share a task
        tasks = torch.tensor([0, 1, 0, 1])
        return means[tasks][:, None, :] + 0.5 * torch.randn(4, t, d)

    def pooled(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ffn.train()
        ffn(x)
        assert ffn.task_probs is not None and ffn.task_keys is not None
        return ffn.task_probs.mean(1), ffn.task_keys.mean(1)

    losses = []
    for _ in range(300):
        q, k = pooled(batch())
        loss = info_nce(q, k, ffn.bilinear)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20]), (losses[:3], losses[-3:])
    with torch.no_grad():
        q, _ = pooled(batch())
    sim = torch.nn.functional.cosine_similarity(q[:, None], q[None, :], dim=-1)
    same = (sim[0, 2] + sim[1, 3]) / 2
    across = (sim[0, 1] + sim[0, 3] + sim[1, 2] + sim[2, 3]) / 4
    assert same > across + 0.2, (float(same), float(across))


@GRID_AND_POINT
def test_t2mir_ad_cached_logits_equal_full_forward(obs_info: dict, act_info: dict) -> None:
    torch.manual_seed(1)
    cfg = ADConfig(context=8, d_model=32, n_layers=2, n_heads=2, dropout=0.0, expert_hidden=16)
    model = make_ad(cfg, obs_info, act_info).eval()
    agent = ADAgent(model)
    agent.reset(2)
    rng = np.random.default_rng(0)
    steps = 20
    obs = random_values(rng, obs_info, (2, steps))
    act = random_values(rng, act_info, (2, steps))
    rew = rng.random((2, steps)).astype(np.float32)
    none = model.none_actions(2, torch.device("cpu"))[:, None]
    with torch.no_grad():
        for t in range(steps):
            cached = agent.logits(obs[:, t])
            prev_a = torch.cat([none, torch.as_tensor(act[:, :t])], dim=1)
            prev_r = torch.cat([torch.zeros(2, 1), torch.as_tensor(rew[:, :t])], dim=1)
            x = model.step_tokens(torch.as_tensor(obs[:, : t + 1]), prev_a, prev_r)
            full = model.head(model.core(x)[:, -1])
            assert torch.allclose(cached, full, atol=TOL), (t, (cached - full).abs().max())
            agent.observe(obs[:, t], act[:, t], rew[:, t], obs[:, t], *(np.zeros(2, bool),) * 2)


@GRID_AND_POINT
def test_t2mir_dpt_cached_logits_equal_full_forward(obs_info: dict, act_info: dict) -> None:
    torch.manual_seed(2)
    cfg = DPTConfig(
        context=6, d_model=32, n_layers=2, n_heads=2, expert_hidden=16, eval_context="sliding"
    )
    model = make_dpt(cfg, obs_info, act_info).eval()
    agent = DPTAgent(model)
    agent.reset(2)
    rng = np.random.default_rng(1)
    steps = 15
    obs = random_values(rng, obs_info, (2, steps + 1))
    act = random_values(rng, act_info, (2, steps))
    rew = rng.random((2, steps)).astype(np.float32)
    o, a, r = torch.as_tensor(obs), torch.as_tensor(act), torch.as_tensor(rew)
    with torch.no_grad():
        for t in range(steps):
            cached = agent.logits(obs[:, t])
            ctx = model.context_tokens(o[:, :t], a[:, :t], r[:, :t], o[:, 1 : t + 1])
            x = torch.cat([ctx, model.query_tokens(o[:, t : t + 1])], dim=1)
            full = model.head(model.core(x, positions=model.positions(0, t + 1, x.device))[:, -1])
            assert torch.allclose(cached, full, atol=TOL), (t, (cached - full).abs().max())
            agent.observe(obs[:, t], act[:, t], rew[:, t], obs[:, t + 1], *(np.zeros(2, bool),) * 2)
