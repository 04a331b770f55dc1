"""Metrics against independent hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from icrl_bench.eval import metrics


def test_iqm_matches_a_hand_computation() -> None:
    # 8 values sorted: 0 0 0 0 1 1 1 100; the middle half (drop 2 each side) is 0 0 1 1
    scores = np.array([[0.0, 0.0, 0.0, 100.0], [1.0, 1.0, 1.0, 0.0]])
    assert metrics.iqm(scores) == pytest.approx(0.5)
    # 1..8: the middle half is 3 4 5 6
    assert metrics.iqm(np.arange(1.0, 9.0).reshape(2, 4)) == pytest.approx(4.5)


def test_aggregate_point_estimates_and_intervals() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(0.5, 0.2, size=(5, 16))
    agg = metrics.aggregate(scores)
    assert agg["mean"] == pytest.approx(scores.mean())
    flat = np.sort(scores.ravel())
    assert agg["iqm"] == pytest.approx(flat[20:60].mean())  # 80 values: drop 20 each side
    for name in ("mean", "iqm"):
        assert agg[f"{name}_low"] <= agg[name] <= agg[f"{name}_high"]
        assert agg[f"{name}_high"] - agg[f"{name}_low"] > 0
    # reproducible, and the global NumPy stream is left as it was
    np.random.seed(7)
    expected_next = np.random.RandomState(7).rand()
    assert metrics.aggregate(scores) == agg
    assert np.random.rand() == expected_next


def test_interval_of_constant_scores_is_degenerate() -> None:
    agg = metrics.aggregate(np.full((3, 4), 2.0))
    assert agg["mean_low"] == agg["mean"] == agg["mean_high"] == 2.0


def test_final_score_normalized_and_nauc() -> None:
    returns = np.zeros((1, 2, 20))
    returns[0, 0, :] = np.linspace(0, 10, 20)
    returns[0, 1, 10:] = 5.0
    final = metrics.final_score(returns)  # last 10% = last 2 episodes
    assert final[0, 0] == pytest.approx(returns[0, 0, -2:].mean())
    assert final[0, 1] == 5.0
    norm = metrics.normalized(returns, random=np.array([0.0, 0.0]), oracle=np.array([10.0, 5.0]))
    assert norm[0, 1, -1] == 1.0 and norm[0, 1, 0] == 0.0
    assert metrics.nauc(norm)[0, 1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="oracle > random"):
        metrics.normalized(returns, np.array([1.0, 1.0]), np.array([1.0, 2.0]))


def test_cumulative_regret_success_and_curve() -> None:
    regret = np.full((2, 3, 10), 0.1)
    assert metrics.cumulative_regret(regret) == pytest.approx(np.full((2, 3), 1.0))
    success = np.array([[[1, 0, 1, 1]]], dtype=float)
    assert metrics.success_rate(success)[0, 0] == 0.75
    curve = metrics.learning_curve(np.arange(24.0).reshape(2, 3, 4))
    assert curve.tolist() == [10.0, 11.0, 12.0, 13.0]
    mean, low, high = metrics.curve_with_ci(np.random.default_rng(0).random((3, 5, 7)))
    assert mean.shape == low.shape == high.shape == (7,)
    assert (low <= mean).all() and (mean <= high).all()


def test_probability_of_improvement() -> None:
    rng = np.random.default_rng(1)
    worse = rng.random((5, 10))
    assert metrics.probability_of_improvement(worse + 2.0, worse) == 1.0
    assert metrics.probability_of_improvement(worse, worse + 2.0) == 0.0
    assert metrics.probability_of_improvement(worse, worse) == pytest.approx(0.5)


def test_fast_iqm_equals_rliables_iqm() -> None:
    """The bootstrap's IQM is rliable's ``aggregate_iqm`` to the last bit, for any size."""
    from rliable import metrics as rmetrics

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4, 5, 7, 16, 48, 80, 101, 250):
        for shape in ((n,), (3, n)):
            x = rng.normal(size=shape)
            assert metrics.fast_iqm(x) == pytest.approx(rmetrics.aggregate_iqm(x), abs=1e-12)


def test_probability_of_improvement_agrees_with_rliable() -> None:
    """The vectorised P(X > Y) is rliable's, for different run counts and with ties."""
    from rliable import metrics as rmetrics

    rng = np.random.default_rng(2)
    for runs_x, runs_y, tasks in ((3, 5, 16), (1, 3, 7), (5, 5, 40), (2, 1, 3)):
        x = rng.integers(0, 4, size=(runs_x, tasks)).astype(float)  # small integers: many ties
        y = rng.integers(0, 4, size=(runs_y, tasks)).astype(float)
        ours = metrics.probability_of_improvement(x, y)
        assert ours == pytest.approx(rmetrics.probability_of_improvement(x, y), abs=1e-12)
        z = rng.normal(size=(runs_x, tasks))
        w = rng.normal(size=(runs_y, tasks))
        ours = metrics.probability_of_improvement(z, w)
        assert ours == pytest.approx(rmetrics.probability_of_improvement(z, w), abs=1e-12)


def test_probability_of_improvement_interval_is_rliables_bootstrap() -> None:
    """The interval is rliable's stratified bootstrap of its own P(X > Y) over both methods' runs
    (fewer replicates here, to keep rliable's scipy-per-task version fast)."""
    from rliable import library as rly
    from rliable import metrics as rmetrics

    rng = np.random.default_rng(3)
    x, y = rng.normal(0.3, 1.0, size=(3, 12)), rng.normal(0.0, 1.0, size=(5, 12))
    p, low, high = metrics.probability_of_improvement_ci(x, y, reps=200)
    with metrics._bootstrap_rng(0) as rs:
        point, ci = rly.get_interval_estimates(
            {"p": [x, y]},
            lambda a, b: np.array([rmetrics.probability_of_improvement(a, b)]),
            reps=200,
            random_state=rs,
        )
    assert p == pytest.approx(point["p"][0], abs=1e-12)
    assert (low, high) == pytest.approx((ci["p"][0, 0], ci["p"][1, 0]), abs=1e-12)
    assert low <= p <= high and high - low > 0


def test_per_run_averages_seeds_or_counts_them_as_runs() -> None:
    scores = np.arange(24.0).reshape(2, 3, 4)  # [runs, seeds, tasks]
    assert metrics.per_run(scores).tolist() == scores.mean(axis=1).tolist()
    assert metrics.per_run(scores, seeds_are_runs=True).shape == (6, 4)
    with pytest.raises(ValueError, match="runs, seeds, tasks"):
        metrics.per_run(np.zeros((3, 4)))


def test_performance_profile_of_one_track_is_rliables() -> None:
    from rliable import library as rly

    rng = np.random.default_rng(4)
    scores = rng.random((3, 10))
    taus = np.linspace(0, 1, 11)
    prof, low, high = metrics.performance_profile([scores], taus, reps=100)
    assert prof == pytest.approx(rly.score_distributions(scores, taus))
    assert (low <= prof + 1e-12).all() and (prof <= high + 1e-12).all()
    # two tracks weigh the same whatever their task counts
    other = np.ones((2, 50))
    pooled = metrics.score_distribution([scores, other], taus)
    expected = (rly.score_distributions(scores, taus) + rly.score_distributions(other, taus)) / 2
    assert pooled == pytest.approx(expected)
