"""Learning History Filtering (LHF): weight learning histories by improvement and stability.

For every history ``h`` we take its performance curve ``p_1 .. p_E``: the episode returns,
normalised per task as ``(R - random) / (oracle - random)`` with the family's exact references.
(A history of fewer than four episodes, such as a bandit trial, is cut into ten blocks of steps
and ``p_b`` is the mean reward of block ``b``, normalised the same way per step.) Then

* improvement ``I_h = mean(last 10% of p) - mean(first 10% of p)``,
* instability ``U_h = std(p_{e+1} - p_e)``, the spread of episode-to-episode changes,
* score ``s_h = I_h - lam * U_h``,
* weight ``w_h = H * softmax(s / temperature)_h`` (mean weight 1).

Improving, stable histories get the largest weights; flat or erratic ones the smallest.
``keep`` turns the weights into a filter: the top ``keep`` fraction of histories by score get
weight 1 and the rest 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from icrl_bench.data.dataset import Dataset


def curve_scores(curves: np.ndarray, lam: float = 1.0) -> np.ndarray:
    """LHF scores ``I - lam * U`` of performance curves ``[H, E]`` (E >= 2)."""
    curves = np.asarray(curves, dtype=np.float64)
    n = curves.shape[1]
    k = max(1, round(0.1 * n))
    improvement = curves[:, -k:].mean(axis=1) - curves[:, :k].mean(axis=1)
    instability = np.diff(curves, axis=1).std(axis=1)
    return improvement - lam * instability


def weights_from_scores(
    scores: np.ndarray, temperature: float = 0.1, keep: float | None = None
) -> np.ndarray:
    """Softmax weights with mean 1, or a 0/1 filter of the top ``keep`` fraction."""
    scores = np.asarray(scores, dtype=np.float64)
    if keep is not None:
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"keep must lie in (0, 1], got {keep}")
        order = np.argsort(-scores, kind="stable")
        out = np.zeros_like(scores)
        out[order[: max(1, round(keep * len(scores)))]] = 1.0
        return out
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = (scores - scores.max()) / temperature
    w = np.exp(z)
    return w * (len(w) / w.sum())


def performance_curves(ds: Dataset) -> np.ndarray:
    """Normalised performance curve of every history, ``[H, E]`` (see the module docstring)."""
    refs = ds.manifest["reference_returns"]
    random = np.asarray(refs["random"])
    oracle = np.asarray(refs["oracle"])
    span = np.maximum(oracle - random, 1e-12)
    task = np.asarray(ds.arrays["history_task"])
    h_off = np.asarray(ds.arrays["history_offsets"])
    e_off = np.asarray(ds.arrays["episode_offsets"])
    eps_per_hist = np.diff(np.searchsorted(e_off, h_off))
    if eps_per_hist.min() >= 4 and (eps_per_hist == eps_per_hist[0]).all():
        returns = ds.episode_returns().reshape(ds.num_histories, -1)
        return (returns - random[task, None]) / span[task, None]
    # short histories: ten blocks of steps per history, normalised per step
    rewards = np.asarray(ds.arrays["rewards"], dtype=np.float64)
    lengths = np.diff(h_off)
    if (lengths < 10).any() or (lengths != lengths[0]).any():
        raise ValueError("LHF on short histories needs equal-length histories of >= 10 steps")
    blocks = rewards.reshape(ds.num_histories, 10, -1).mean(axis=2)
    horizon = float(ds.manifest["horizon"])
    return (blocks * horizon - random[task, None]) / span[task, None]


def lhf_weights(
    ds: Dataset, lam: float = 1.0, temperature: float = 0.1, keep: float | None = None
) -> np.ndarray:
    """Per-history sampling weights for :meth:`Dataset.sample_windows` (``weights=``).

    Args:
        ds: a dataset of learning histories.
        lam: weight of instability against improvement.
        temperature: softmax temperature over scores (lower is sharper).
        keep: if given, return a 0/1 filter keeping this fraction of histories instead.
    """
    return weights_from_scores(curve_scores(performance_curves(ds), lam), temperature, keep)
