"""DPT as the reference trains and evaluates it: uniform query states with all-optimal labels,
shuffled set contexts, coordinate embeddings, and an evaluation context of the last complete
episodes that stays fixed within an episode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.dpt import LEGACY, Config, DPTAgent, DPTModel, legacy_meta, make_sampler
from icrl_bench import data
from icrl_bench.registry import family

GRID = {"kind": "discrete", "n": 81}
ACTIONS = {"kind": "discrete", "n": 5}


@pytest.fixture(scope="module")
def rollin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A smoke ``uniform-rollin`` DarkRoom-v0 dataset: ``(home, dataset id)``."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ICRL_BENCH_HOME", str(home))
        yield str(home), data.generate("DarkRoom-v0", "uniform-rollin", "smoke", seed=0)


def _open(rollin: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> data.Dataset:
    home, dataset = rollin
    monkeypatch.setenv("ICRL_BENCH_HOME", home)
    return data.load(dataset)


def test_query_states_are_uniform_over_the_grid_and_labelled_by_the_task(
    rollin: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _open(rollin, monkeypatch)
    cfg = Config(context=20, d_model=16, n_layers=1, obs_coords=True, obs_table=False)
    sample = make_sampler(cfg, ds, 64, torch.device("cpu"))
    rng = np.random.default_rng(0)
    queries, labels, probs, tasks, outside = [], [], [], [], 0
    for _ in range(150):
        b = sample(rng)
        queries.append(b["query"].numpy())
        labels.append(b["label"].numpy())
        probs.append(b["label_probs"].numpy())
        tasks.append(b["task_index"][:, 0].numpy())
        outside += int((b["observations"] != b["query"][:, None]).all(1).sum())
    q, lab, p, t = (np.concatenate(x) for x in (queries, labels, probs, tasks))
    # uniform over the 81 cells: a chi-square test against the uniform distribution
    counts = np.bincount(q, minlength=81)
    expected = len(q) / 81
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 140, chi2  # 80 degrees of freedom: p ~ 1e-5 at 140
    assert outside > 0  # queries are not taken from the context window
    # every label is optimal for the query's task, and the soft label covers all optimal actions
    core, task_list = family("DarkRoom-v0").core(), ds.tasks()
    mask = core.optimal_action_mask([task_list[i] for i in t], q)
    assert mask[np.arange(len(q)), lab].all()
    assert np.allclose(p, mask / mask.sum(1, keepdims=True))
    assert (mask.sum(1) == 2).mean() > 0.3  # two shortest-path moves are common: x and y


def test_contexts_are_shuffled_sets(
    rollin: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shuffled context holds the same transitions as the window it came from, in another
    order; without positions the query's output does not depend on that order."""
    ds = _open(rollin, monkeypatch)
    cfg = Config(context=20, d_model=16, n_layers=2, obs_coords=True, obs_table=False)
    plain = Config(**{**cfg.__dict__, "shuffle": False})
    a = make_sampler(cfg, ds, 8, torch.device("cpu"))(np.random.default_rng(3))
    b = make_sampler(plain, ds, 8, torch.device("cpu"))(np.random.default_rng(3))
    assert not torch.equal(a["observations"], b["observations"])
    for key in ("observations", "actions", "next_observations"):
        assert torch.equal(a[key].sort(1).values, b[key].sort(1).values)
    torch.manual_seed(0)
    model = DPTModel(cfg, GRID, ACTIONS).eval()
    perm = torch.randperm(20)
    shuffled = {k: (v[:, perm] if v.dim() > 1 and v.shape[1] == 20 else v) for k, v in b.items()}
    with torch.no_grad():
        full, again = model(b)[:, -1], model(shuffled)[:, -1]
    assert torch.allclose(full, again, atol=1e-5)


def test_a_held_out_goal_cell_is_embedded_like_any_other() -> None:
    """With coordinates and no table there are no per-cell parameters: every cell's vector is
    the same affine map of its (x, y), so a cell that was never a training goal is not an
    untrained table row."""
    torch.manual_seed(0)
    cfg = Config(context=8, d_model=16, n_layers=1, obs_coords=True, obs_table=False)
    emb = DPTModel(cfg, GRID, ACTIONS).embed.obs
    assert not hasattr(emb, "table")
    cells = torch.arange(81)
    with torch.no_grad():
        vectors = emb(cells[None])[0]  # [81, d]
    xy = torch.stack([cells // 9, cells % 9], 1).float() / 8
    design = torch.cat([xy, torch.ones(81, 1)], 1)
    solution = torch.linalg.lstsq(design, vectors).solution
    assert torch.allclose(design @ solution, vectors, atol=1e-5)
    # a per-cell table, by contrast, is free per cell
    table = DPTModel(Config(context=8, d_model=16, n_layers=1), GRID, ACTIONS).embed.obs
    with torch.no_grad():
        tv = table(cells[None])[0]
    fit = torch.linalg.lstsq(design, tv).solution
    assert not torch.allclose(design @ fit, tv, atol=1e-3)


def _steps(n: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    obs = rng.integers(81, size=(n, t))
    return obs, rng.integers(5, size=(n, t)), (rng.random((n, t)) < 0.2).astype(float)


def test_the_evaluation_context_is_fixed_within_an_episode() -> None:
    torch.manual_seed(0)
    cfg = Config(
        context=12, d_model=16, n_layers=2, obs_coords=True, obs_table=False, context_episodes=2
    )
    agent = DPTAgent(DPTModel(cfg, GRID, ACTIONS))
    agent.reset(2)
    rng = np.random.default_rng(0)
    probe = np.array([40, 3])
    horizon = 5
    seen = []
    for episode in range(4):
        obs, act, rew = _steps(2, horizon, rng)
        during = []
        for t in range(horizon):
            during.append(agent.logits(probe))
            # the context is the last two complete episodes (10 steps), at most `context`
            assert len(agent.cache) == min(episode, 2) * horizon
            last = t == horizon - 1
            done = np.array([last, last])
            agent.observe(obs[:, t], act[:, t], rew[:, t], obs[:, t], done & False, done)
        # the context did not change while the episode ran
        assert all(torch.equal(during[0], d) for d in during[1:]), episode
        seen.append(during[0])
    assert not torch.equal(seen[1], seen[2])  # it changes between episodes
    # the first episode of a trial starts from an empty context
    agent.reset(2)
    agent.logits(probe)
    assert len(agent.cache) == 0


def test_padded_contexts_of_different_lengths_equal_each_trial_alone() -> None:
    """Trials whose episodes end at different steps keep contexts of different lengths; the
    padded batch gives every trial what it would get alone."""
    torch.manual_seed(0)
    cfg = Config(
        context=10, d_model=16, n_layers=2, obs_coords=True, obs_table=False, context_episodes=2
    )
    model = DPTModel(cfg, GRID, ACTIONS)
    batch, alone = DPTAgent(model), [DPTAgent(model), DPTAgent(model)]
    batch.reset(2)
    for a in alone:
        a.reset(1)
    rng = np.random.default_rng(1)
    obs, act, rew = _steps(2, 9, rng)
    ends = {2: [True, False], 6: [False, True], 8: [True, False]}
    for t in range(9):
        done = np.array(ends.get(t, [False, False]))
        no = np.zeros(2, dtype=bool)
        together = batch.logits(obs[:, t])
        for i, a in enumerate(alone):
            own = a.logits(obs[i : i + 1, t])
            assert torch.allclose(together[i], own[0], atol=1e-5), (t, i)
            a.observe(obs[i : i + 1, t], act[i : i + 1, t], rew[i : i + 1, t], obs[i : i + 1, t],
                      no[i : i + 1], done[i : i + 1])  # fmt: skip
        batch.observe(obs[:, t], act[:, t], rew[:, t], obs[:, t], no, done)


def test_version_1_checkpoints_keep_their_behaviour() -> None:
    meta = {"version": "1", "config": {"model": {"context": 20}}}
    model = legacy_meta(meta)["config"]["model"]
    assert model["eval_context"] == "sliding" and model["query"] == "window"
    assert set(LEGACY) <= set(model)
    assert legacy_meta({**meta, "version": "2"}) == {**meta, "version": "2"}


def test_episode_noise_is_drawn_per_episode(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = Config(context=8, d_model=16, n_layers=1, obs_coords=True, episode_noise=1.0)
    agent = DPTAgent(DPTModel(cfg, GRID, ACTIONS))
    agent.reset(2)
    probe = np.array([10, 20])
    first = agent.logits(probe)
    bias = agent.bias.clone()  # type: ignore[union-attr]
    assert torch.equal(agent.logits(probe), first)  # held within the episode
    agent.observe(probe, np.zeros(2, int), np.zeros(2), probe, np.zeros(2, bool),
                  np.array([True, False]))  # fmt: skip
    assert agent.bias is not None
    assert not torch.equal(agent.bias[0], bias[0]) and torch.equal(agent.bias[1], bias[1])


@pytest.mark.parametrize("positions", ["none", "rope"])
def test_reading_fewer_prefixes_gives_the_same_outputs(positions: str) -> None:
    """``query_every=k`` reads the query after every k-th prefix: exactly the outputs the full
    layout gives for those prefixes (queries see only their prefix and themselves)."""
    torch.manual_seed(0)
    cfg = Config(context=12, d_model=16, n_layers=2, obs_coords=True, positions=positions)
    model = DPTModel(cfg, GRID, ACTIONS).eval()
    rng = np.random.default_rng(0)
    obs, act, rew = _steps(3, 12, rng)
    batch = {
        "observations": torch.as_tensor(obs),
        "actions": torch.as_tensor(act),
        "rewards": torch.as_tensor(rew, dtype=torch.float32),
        "next_observations": torch.as_tensor(obs),
        "query": torch.as_tensor(rng.integers(81, size=3)),
    }
    with torch.no_grad():
        full = model(batch)
        model.cfg.query_every = 5
        sparse = model(batch)
    assert full.shape[1] == 13 and sparse.shape[1] == 4  # prefixes 0, 5, 10, 12
    assert torch.allclose(sparse, full[:, [0, 5, 10, 12]], atol=1e-5)


def test_reward_gated_tokens_carry_the_rewarded_transition_only() -> None:
    """``reward_gated`` adds ``r * (f(a) + g(s'))`` to a context token: a transition without
    reward is embedded as without the option, a rewarded one differs by that term, so that even
    evenly spread attention over the context carries where rewards were found."""
    torch.manual_seed(0)
    plain = DPTModel(Config(context=6, d_model=16, n_layers=1, obs_coords=True), GRID, ACTIONS)
    cfg = Config(context=6, d_model=16, n_layers=1, obs_coords=True, reward_gated=True)
    gated = DPTModel(cfg, GRID, ACTIONS)
    gated.load_state_dict(plain.state_dict(), strict=False)  # shared parts equal
    obs = torch.tensor([[3, 40, 80, 7, 9, 10]])
    act = torch.tensor([[0, 1, 2, 3, 4, 0]])
    rew = torch.tensor([[0.0, 1.0, 0.0, 0.5, 0.0, 0.0]])
    nxt = torch.tensor([[4, 41, 79, 8, 10, 11]])
    with torch.no_grad():
        a = plain.context_tokens(obs, act, rew, nxt)
        b = gated.context_tokens(obs, act, rew, nxt)
        term = gated.gated_action(act) + gated.gated_next(nxt)
    unrewarded = rew[0] == 0
    assert torch.equal(a[0, unrewarded], b[0, unrewarded])
    assert torch.allclose(b - a, rew[..., None] * term, atol=1e-6)
    assert not torch.allclose(b[0, 1], a[0, 1])
