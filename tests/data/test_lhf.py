"""Learning History Filtering weights."""

from __future__ import annotations

import numpy as np
import pytest

from icrl_bench import data
from icrl_bench.data.lhf import curve_scores, weights_from_scores


def test_improving_stable_history_outranks_flat_and_erratic_ones() -> None:
    e = np.linspace(0.0, 1.0, 100)
    rng = np.random.default_rng(0)
    improving = e + rng.normal(0, 0.02, 100)
    flat = np.full(100, 0.5) + rng.normal(0, 0.02, 100)
    erratic = e + rng.choice([-0.6, 0.6], size=100)  # improves on average, jumps every episode
    decaying = 1.0 - e
    scores = curve_scores(np.stack([improving, flat, erratic, decaying]))
    assert scores.argmax() == 0
    assert scores[0] > scores[1] and scores[0] > scores[2] and scores[0] > scores[3]
    w = weights_from_scores(scores)
    assert w.argmax() == 0 and np.isclose(w.mean(), 1.0)
    assert weights_from_scores(scores, keep=0.25).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_lhf_weights_down_weight_random_histories_of_a_noisy_mix() -> None:
    ds = data.load(data.generate("DarkRoom-v0", "noisy-mix", "smoke"))
    w = data.lhf_weights(ds)
    kind = np.asarray(ds.arrays["history_kind"])
    assert w[kind == 0].mean() > 3 * w[kind == 1].mean()
    windows = ds.sample_windows(256, 20, np.random.default_rng(0), weights=w)
    picked = kind[windows["history_index"][:, 0]]
    assert (picked == 1).mean() < 0.3  # below the 30% of uniform sampling


def test_bad_lhf_parameters() -> None:
    with pytest.raises(ValueError, match="keep"):
        weights_from_scores(np.ones(3), keep=0.0)
    with pytest.raises(ValueError, match="temperature"):
        weights_from_scores(np.ones(3), temperature=0.0)
