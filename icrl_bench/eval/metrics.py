"""Metrics of raw evaluation returns, aggregated over runs x tasks with rliable.

A result's raw arrays are ``[runs, seeds, tasks, ...]``: independent training runs, each evaluated
under the protocol's evaluation seeds. Every metric is first computed per evaluation seed
(``[runs, seeds, tasks]``), then reduced to one score per run and task (:func:`per_run`): a learned
method's evaluation seeds are averaged within each run, while a reference agent, which is not
trained, counts each evaluation seed as a run. Aggregates and their confidence intervals are
rliable's stratified bootstrap over that ``[runs, tasks]`` matrix: runs are resampled within
every task, so the interval measures the variation between independent runs (Agarwal et al.,
NeurIPS 2021). One run gives a zero-width interval: there is no variation between runs to
measure.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np


def _rliable() -> Any:
    """``rliable.library``, imported on first use: it loads arch and scipy (about 2 s), which
    ``import icrl_bench`` and the CLI's quick commands should not pay for."""
    from rliable import library  # heavy third-party import, deferred (see the docstring)

    return library


def _rliable_metrics() -> Any:
    """``rliable.metrics``, imported on first use (see :func:`_rliable`)."""
    from rliable import metrics  # heavy third-party import, deferred (see _rliable)

    return metrics


#: bootstrap replicates for confidence intervals (fixed, with a fixed random state)
BOOTSTRAP_REPS = 2000
CI_SIZE = 0.95


@contextlib.contextmanager
def _bootstrap_rng(seed: int) -> Iterator[np.random.RandomState]:
    """A reproducible bootstrap: rliable 1.2's StratifiedBootstrap draws its resampling indices
    from NumPy's *global* generator (its ``random_state`` only reaches arch), so the global
    state is seeded for the call and restored afterwards; arch's FutureWarning about
    ``random_state`` is silenced."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield np.random.RandomState(seed)
    finally:
        np.random.set_state(saved)


def learning_curve(returns: np.ndarray) -> np.ndarray:
    """Mean return per episode index over every leading axis (runs, seeds, tasks):
    ``[episodes]``."""
    returns = np.asarray(returns, dtype=np.float64)
    return returns.reshape(-1, returns.shape[-1]).mean(axis=0)


def final_score(returns: np.ndarray) -> np.ndarray:
    """Mean return over the last 10% of episodes (at least one): ``[..., tasks, episodes]`` ->
    ``[..., tasks]``."""
    returns = np.asarray(returns, dtype=np.float64)
    k = max(1, returns.shape[-1] // 10)
    return returns[..., -k:].mean(axis=-1)


def normalized(returns: np.ndarray, random: np.ndarray, oracle: np.ndarray) -> np.ndarray:
    """``(R - random) / (oracle - random)`` per task; ``returns`` is ``[..., tasks, episodes]``."""
    returns = np.asarray(returns, dtype=np.float64)
    random = np.asarray(random, dtype=np.float64)
    span = np.asarray(oracle, dtype=np.float64) - random
    if (span <= 0).any():
        raise ValueError("every task needs oracle > random to normalise")
    return (returns - random[:, None]) / span[:, None]


def nauc(norm_returns: np.ndarray) -> np.ndarray:
    """Normalised area under the in-context learning curve: mean normalised return over all
    episodes (trapezoid-free, every episode weighs the same): ``[..., tasks]``."""
    return np.asarray(norm_returns, dtype=np.float64).mean(axis=-1)


def cumulative_regret(regret: np.ndarray) -> np.ndarray:
    """Total expected regret over the trial: ``[..., tasks, horizon]`` -> ``[..., tasks]``."""
    return np.asarray(regret, dtype=np.float64).sum(axis=-1)


def success_rate(success: np.ndarray) -> np.ndarray:
    """Fraction of successful episodes: ``[..., tasks, episodes]`` -> ``[..., tasks]``."""
    return np.asarray(success, dtype=np.float64).mean(axis=-1)


def per_run(scores: np.ndarray, seeds_are_runs: bool = False) -> np.ndarray:
    """Per-seed scores ``[runs, seeds, tasks, ...]`` as the ``[runs, tasks, ...]`` matrix that
    rliable bootstraps.

    Args:
        scores: one score (or curve) per run, evaluation seed and task.
        seeds_are_runs: a reference agent's: it is not trained, so each evaluation seed is a
            run (the result is ``[runs * seeds, tasks, ...]``). Otherwise the evaluation seeds
            are averaged within each training run.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim < 3:
        raise ValueError(f"expected [runs, seeds, tasks, ...] scores, got {scores.ndim} dims")
    if seeds_are_runs:
        return scores.reshape(-1, *scores.shape[2:])
    return scores.mean(axis=1)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all entries (rliable's definition)."""
    return float(fast_iqm(np.asarray(scores, dtype=np.float64)))


def fast_iqm(scores: np.ndarray) -> float:
    """rliable's ``aggregate_iqm`` (``scipy.stats.trim_mean(x, 0.25, axis=None)``) without
    scipy's per-call argument handling: the same partition and mean, about 20x faster, which
    matters inside the bootstrap's thousands of calls."""
    x = np.asarray(scores, dtype=np.float64).ravel()
    n = x.size
    low = int(0.25 * n)
    high = n - low
    part = np.partition(x, (low, high - 1))
    return float(part[low:high].mean())


def aggregate(scores: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean and IQM of a ``[seeds, tasks]`` score matrix, each with a 95% stratified-bootstrap CI.

    Returns:
        ``{"mean", "mean_low", "mean_high", "iqm", "iqm_low", "iqm_high"}``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    funcs: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "mean": lambda x: np.array([_rliable_metrics().aggregate_mean(x)]),
        "iqm": lambda x: np.array([fast_iqm(x)]),
    }
    out: dict[str, float] = {}
    for name, func in funcs.items():
        with _bootstrap_rng(seed) as rs:
            point, ci = _rliable().get_interval_estimates(
                {"x": scores},
                func,
                reps=BOOTSTRAP_REPS,
                confidence_interval_size=CI_SIZE,
                random_state=rs,
            )
        out[name] = float(point["x"][0])
        out[f"{name}_low"] = float(ci["x"][0, 0])
        out[f"{name}_high"] = float(ci["x"][1, 0])
    return out


def curve_with_ci(
    runs: np.ndarray, reps: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean curve of ``[runs, tasks, points]`` runs with a 95% stratified-bootstrap band.

    Returns:
        ``(mean, low, high)``, each ``[points]``.
    """
    runs = np.asarray(runs, dtype=np.float64)
    with _bootstrap_rng(seed) as rs:
        point, ci = _rliable().get_interval_estimates(
            {"x": runs},
            lambda x: x.mean(axis=(0, 1)),
            reps=reps,
            confidence_interval_size=CI_SIZE,
            random_state=rs,
        )
    return point["x"], ci["x"][0], ci["x"][1]


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y): the probability that a run of method X beats a run of Y on a random task.

    rliable's ``metrics.probability_of_improvement`` (per task, the Mann-Whitney U statistic
    over every pair of runs divided by the number of pairs, ties counting one half; then the
    mean over tasks), computed in one vectorised step instead of one scipy call per task, which
    matters inside a bootstrap of thousands of replicates.

    Args:
        scores_x: ``[runs_x, tasks]``.
        scores_y: ``[runs_y, tasks]`` over the same tasks.
    """
    x = np.asarray(scores_x, dtype=np.float64)
    y = np.asarray(scores_y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected [runs, tasks] scores over the same tasks: {x.shape}, {y.shape}")
    diff = x[:, None, :] - y[None, :, :]  # [runs_x, runs_y, tasks]
    wins = (diff > 0).mean(axis=(0, 1)) + 0.5 * (diff == 0).mean(axis=(0, 1))
    return float(wins.mean())


def probability_of_improvement_ci(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0
) -> tuple[float, float, float]:
    """:func:`probability_of_improvement` with its 95% confidence interval, from rliable's
    stratified bootstrap that resamples each method's runs independently within every task.

    Returns:
        ``(p, low, high)``.
    """
    x = np.asarray(scores_x, dtype=np.float64)
    y = np.asarray(scores_y, dtype=np.float64)
    with _bootstrap_rng(seed) as rs:
        point, ci = _rliable().get_interval_estimates(
            {"x,y": [x, y]},
            lambda a, b: np.array([probability_of_improvement(a, b)]),
            reps=reps,
            confidence_interval_size=CI_SIZE,
            random_state=rs,
        )
    return float(point["x,y"][0]), float(ci["x,y"][0, 0]), float(ci["x,y"][1, 0])


def score_distribution(tracks: list[np.ndarray], taus: np.ndarray) -> np.ndarray:
    """A performance profile pooled over tracks: for every threshold, the fraction of runs x
    tasks whose score exceeds it (rliable's ``score_distributions``), averaged over the tracks
    so that each track weighs the same whatever its number of tasks.

    Args:
        tracks: one ``[runs, tasks]`` score matrix per track.
        taus: the thresholds.
    """
    taus = np.asarray(taus, dtype=np.float64)
    return np.mean([(np.asarray(t)[..., None] > taus).mean(axis=(0, 1)) for t in tracks], axis=0)


def performance_profile(
    tracks: list[np.ndarray], taus: np.ndarray, reps: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`score_distribution` with a 95% band from rliable's stratified bootstrap (each
    track's runs resampled within every task, independently of the other tracks).

    Returns:
        ``(profile, low, high)``, each ``[len(taus)]``.
    """
    arrays = [np.asarray(t, dtype=np.float64) for t in tracks]
    with _bootstrap_rng(seed) as rs:
        point, ci = _rliable().get_interval_estimates(
            {"p": arrays},
            lambda *a: score_distribution(list(a), taus),
            reps=reps,
            confidence_interval_size=CI_SIZE,
            random_state=rs,
        )
    return point["p"], ci["p"][0], ci["p"][1]


def summarize(
    returns: np.ndarray,
    random: np.ndarray,
    oracle: np.ndarray,
    regret: np.ndarray | None = None,
    success: np.ndarray | None = None,
    seeds_are_runs: bool = False,
) -> dict[str, Any]:
    """Every metric of one result, as stored in leaderboard rows.

    Args:
        returns: ``[runs, seeds, tasks, episodes]``.
        random: per-task random reference returns.
        oracle: per-task oracle reference returns.
        regret: bandits: expected per-step regret, shaped as ``returns`` with ``horizon`` last.
        success: shaped as ``returns``, where defined.
        seeds_are_runs: the evaluation seeds are the runs (a reference agent; see
            :func:`per_run`).
    """
    norm = normalized(returns, random, oracle)
    scores: Mapping[str, np.ndarray] = {
        "final_return": final_score(returns),
        "normalized_final": final_score(norm),
        "nauc": nauc(norm),
        **({"regret": cumulative_regret(regret)} if regret is not None else {}),
        **({"success_rate": success_rate(success)} if success is not None else {}),
    }
    out: dict[str, Any] = {
        name: aggregate(per_run(s, seeds_are_runs)) for name, s in scores.items()
    }
    out["curve"] = learning_curve(returns).tolist()
    out["normalized_curve"] = learning_curve(norm).tolist()
    return out
