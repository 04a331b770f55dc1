"""WindowSampler: windows of consecutive transitions of one learning history, as tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.common.data import WindowSampler, dataset_ref
from icrl_bench import data


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> data.Dataset:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ICRL_BENCH_HOME", str(home))
        return data.load(data.generate("DarkRoom-v0", "histories", "smoke", seed=0))


def test_windows_are_consecutive_steps_of_one_history_in_order(ds: data.Dataset) -> None:
    batch = WindowSampler(ds, 30, torch.device("cpu"))(16, np.random.default_rng(0))
    assert batch["observations"].shape == (16, 30)
    hist = batch["history_index"]
    assert (hist == hist[:, :1]).all()
    # in history order: within an episode each next observation is the following observation
    same_episode = batch["episode_index"][:, 1:] == batch["episode_index"][:, :-1]
    follows = batch["next_observations"][:, :-1] == batch["observations"][:, 1:]
    assert follows[same_episode].all()
    steps = batch["step_index"]
    assert ((steps[:, 1:] == steps[:, :-1] + 1) | ~same_episode).all()


def test_paired_windows_share_a_history(ds: data.Dataset) -> None:
    windows = WindowSampler(ds, 10, torch.device("cpu"))
    batch = windows(8, np.random.default_rng(1), paired=True)
    hist = batch["history_index"][:, 0]
    assert torch.equal(hist[:4], hist[4:])
    with pytest.raises(ValueError, match="even size"):
        windows(7, np.random.default_rng(1), paired=True)


def test_returns_to_go_count_down_to_the_episode_end(ds: data.Dataset) -> None:
    batch = WindowSampler(ds, 25, torch.device("cpu"), returns_to_go=True)(
        8, np.random.default_rng(2)
    )
    rtg, rew = batch["returns_to_go"], batch["rewards"].float()
    same_episode = batch["episode_index"][:, 1:] == batch["episode_index"][:, :-1]
    step = rtg[:, :-1] - rtg[:, 1:]
    assert torch.allclose(step[same_episode], rew[:, :-1][same_episode], atol=1e-5)


def test_the_same_generator_draws_the_same_batch(ds: data.Dataset, tmp_path: Path) -> None:
    windows = WindowSampler(ds, 12, torch.device("cpu"))
    a, b = (windows(4, np.random.default_rng(5)) for _ in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert dataset_ref(ds) == {"id": ds.id, "sha256": ds.sha256}
