"""Scoring: normalised scores (oracle 1, random 0), bandits scored from the pulled arms,
success, headline scores per run, and the errors of unscorable input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import icrl_bench
from icrl_bench.errors import MissingReferenceError
from icrl_bench.eval.agents import OracleAgent, RandomAgent
from icrl_bench.eval.scoring import (
    arm_means,
    bandit_scores,
    headline_scores,
    is_bandit,
    normalized_scores,
    score,
    success_source,
    with_runs_axis,
)
from icrl_bench.references import RANDOM_EPISODES, cache_path
from icrl_bench.registry import reference_returns, tasks

DARK = "DarkRoom-v0"
BANDIT = "BernoulliBandit-v0"


def _constant(name: str, which: str, seeds: int = 2, episodes: int = 10) -> np.ndarray:
    """``[seeds, tasks, episodes]`` returns equal to a reference on every task."""
    ref = reference_returns(name)[which]
    return np.broadcast_to(ref[None, :, None], (seeds, len(ref), episodes)).copy()


def test_the_references_themselves_score_one_and_zero() -> None:
    oracle = score(DARK, _constant(DARK, "oracle"), seeds_are_runs=True)
    for metric in ("normalized_final", "nauc"):
        assert oracle[metric] == {k: pytest.approx(1.0) for k in oracle[metric]}
    rand = score(DARK, _constant(DARK, "random"), seeds_are_runs=True)
    assert rand["normalized_final"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert rand["final_return"]["mean"] == pytest.approx(reference_returns(DARK)["random"].mean())
    assert oracle["normalized_curve"] == pytest.approx([1.0] * 10)
    assert "regret" not in oracle and "success_rate" not in oracle  # DarkRoom defines neither


def test_evaluated_oracle_and_random_agents_score_one_and_about_zero() -> None:
    oracle = icrl_bench.evaluate(OracleAgent(), "PointRobot-v0", seeds=[0, 1], episodes=2)
    assert oracle.metrics(seeds_are_runs=True)["normalized_final"]["mean"] == pytest.approx(1.0)
    rand = icrl_bench.evaluate(RandomAgent(), DARK, seeds=[0, 1, 2], episodes=20)
    summary = score(DARK, rand.returns, seeds_are_runs=True)
    assert abs(summary["normalized_final"]["mean"]) < 0.15
    assert summary["normalized_final"]["mean_low"] <= summary["normalized_final"]["mean"]
    assert summary["normalized_final"]["mean"] <= summary["normalized_final"]["mean_high"]


def test_final_return_is_the_last_tenth_and_nauc_the_whole_curve() -> None:
    ref = reference_returns(DARK)
    returns = np.zeros((1, len(ref["oracle"]), 20))
    returns[..., -2:] = ref["oracle"][None, :, None]  # random-like, then the oracle's last 10%
    returns[..., :-2] = ref["random"][None, :, None]
    out = score(DARK, returns)
    assert out["normalized_final"]["mean"] == pytest.approx(1.0)
    assert out["nauc"]["mean"] == pytest.approx(2 / 20)
    assert out["final_return"]["mean"] == pytest.approx(ref["oracle"].mean())
    assert len(out["curve"]) == 20


def test_one_runs_seeds_are_averaged_and_show_no_interval() -> None:
    rng = np.random.default_rng(0)
    ref = reference_returns(DARK)
    returns = rng.uniform(ref["random"], ref["oracle"], size=(3, 4, 16)).transpose(0, 2, 1)
    one_run = score(DARK, returns)["normalized_final"]
    assert one_run["mean_low"] == pytest.approx(one_run["mean"])
    assert one_run["mean_high"] == pytest.approx(one_run["mean"])
    as_runs = score(DARK, returns, seeds_are_runs=True)["normalized_final"]
    assert as_runs["mean"] == pytest.approx(one_run["mean"])
    assert as_runs["mean_low"] < as_runs["mean"] < as_runs["mean_high"]


def test_success_sources_and_the_success_rate() -> None:
    assert success_source(DARK) is None
    assert success_source("DarkRoomHard-v0") == "termination"
    assert success_source("KeyToDoor-v0") == "termination"
    assert success_source("ML1-Reach-v0") == "info"
    assert success_source(BANDIT) is None
    res = icrl_bench.evaluate(OracleAgent(), "DarkRoomHard-v0", seeds=[0], episodes=2)
    assert res.success is not None
    out = score("DarkRoomHard-v0", res.returns, success=res.success)
    assert out["success_rate"]["mean"] == 1.0
    half = np.zeros_like(res.success)
    half[..., 1] = 1.0
    out = score("DarkRoomHard-v0", res.returns, success=half)
    assert out["success_rate"]["mean"] == pytest.approx(0.5)


def test_bandits_are_scored_from_the_pulled_arms() -> None:
    assert is_bandit(BANDIT) and not is_bandit(DARK)
    means = arm_means(BANDIT)
    n, horizon = means.shape[0], icrl_bench.family(BANDIT).horizon
    assert n == len(tasks(BANDIT).test)
    best = np.broadcast_to(means.argmax(axis=1)[None, :, None], (2, n, horizon))
    regret, expected = bandit_scores(BANDIT, best)
    assert regret.shape == (2, n, horizon) and np.allclose(regret, 0.0)
    np.testing.assert_allclose(expected[0, :, 0], horizon * means.max(axis=1))
    ignored = np.full((2, n, 1), -1e9)  # sampled rewards are not trusted: returns are ignored
    out = score(BANDIT, ignored, actions=best, seeds_are_runs=True)
    assert out["regret"]["mean"] == 0.0
    assert out["normalized_final"]["mean"] == pytest.approx(1.0)
    worst = np.broadcast_to(means.argmin(axis=1)[None, :, None], (2, n, horizon))
    regret, _ = bandit_scores(BANDIT, worst)
    gap = means.max(axis=1) - means.min(axis=1)
    np.testing.assert_allclose(regret.sum(axis=-1)[0], horizon * gap)
    assert normalized_scores(BANDIT, ignored, worst, seeds_are_runs=True).mean() < 0


def test_headline_scores_per_run() -> None:
    means = arm_means(BANDIT)
    n, horizon = means.shape[0], icrl_bench.family(BANDIT).horizon
    rng = np.random.default_rng(1)
    arms = rng.integers(0, means.shape[1], size=(2, 3, n, horizon))  # [runs, seeds, tasks, T]
    head = headline_scores(BANDIT, "online-v1", np.zeros((2, 3, n, 1)), arms)
    regret, _ = bandit_scores(BANDIT, arms)
    assert head.shape == (2, n)
    np.testing.assert_allclose(head, -regret.sum(axis=-1).mean(axis=1))  # higher is better
    as_runs = headline_scores(BANDIT, "online-v1", np.zeros((3, n, 1)), arms[0], True)
    np.testing.assert_allclose(as_runs, -regret[0].sum(axis=-1))
    oracle = _constant(DARK, "oracle", seeds=3)
    np.testing.assert_allclose(headline_scores(DARK, "online-v1", oracle), 1.0)
    np.testing.assert_allclose(normalized_scores(DARK, oracle, seeds_are_runs=True), 1.0)
    assert headline_scores(DARK, "online-v1", oracle, seeds_are_runs=True).shape == (3, 16)


def test_with_runs_axis() -> None:
    assert with_runs_axis(None) is None
    assert with_runs_axis(np.zeros((2, 3, 4))).shape == (1, 2, 3, 4)
    assert with_runs_axis(np.zeros((5, 2, 3, 4))).shape == (5, 2, 3, 4)


def test_unscorable_input_is_refused_with_the_reason() -> None:
    n = len(tasks(BANDIT).test)
    horizon = icrl_bench.family(BANDIT).horizon
    for call in (
        lambda: score(BANDIT, np.zeros((1, n, 1))),
        lambda: headline_scores(BANDIT, "online-v1", np.zeros((1, n, 1))),
        lambda: normalized_scores(BANDIT, np.zeros((1, n, 1))),
    ):
        with pytest.raises(ValueError, match="scored from the pulled arms"):
            call()
    with pytest.raises(ValueError, match=r"arms must lie in \[0, "):
        bandit_scores(BANDIT, np.full((1, n, horizon), 99))
    with pytest.raises(ValueError, match=r"arms must lie in"):
        bandit_scores(BANDIT, np.full((1, n, horizon), -1))
    with pytest.raises(ValueError, match=f"expected \\[seeds, {n}, horizon\\] arms"):
        bandit_scores(BANDIT, np.zeros((1, n - 1, horizon), dtype=int))
    with pytest.raises(icrl_bench.IcrlBenchError):
        score("NoSuchFamily-v0", np.zeros((1, 1, 1)))


def test_a_locomotion_family_without_its_expert_says_how_to_train_it() -> None:
    name = "HalfCheetahVel-v0"
    test = list(tasks(name).test)
    # the random reference is cached as measured, so that no rollout runs here
    path = cache_path(name, test, icrl_bench.family(name).horizon, f"random{RANDOM_EPISODES}")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"return": [-300.0] * len(test)}))
    returns = np.zeros((1, len(test), 2))
    with pytest.raises(MissingReferenceError, match="icrl-bench data references HalfCheetahVel"):
        score("HalfCheetahVel-v0", returns)
    with pytest.raises(MissingReferenceError):
        headline_scores("HalfCheetahVel-v0", "online-v1", returns)


def test_the_train_split_is_scored_against_its_own_references() -> None:
    ref = reference_returns(DARK, "train")
    returns = np.broadcast_to(ref["oracle"][None, :, None], (1, len(ref["oracle"]), 3))
    out = score(DARK, returns, split="train")
    assert out["normalized_final"]["mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError):  # a train-split shape against the test references
        score(DARK, returns)
