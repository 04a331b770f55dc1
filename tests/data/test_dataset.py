"""The store: windows, trajectories, slices, integrity checks and interrupted generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from icrl_bench import data
from icrl_bench.data.store import DatasetError
from icrl_bench.errors import UnknownIdError


@pytest.fixture
def darkroom() -> data.Dataset:
    return data.load(data.generate("DarkRoom-v0", "histories", "smoke"))


def test_arrays_are_read_only_memory_maps(darkroom: data.Dataset) -> None:
    assert isinstance(darkroom.arrays["observations"], np.memmap)
    with pytest.raises(ValueError):
        darkroom.arrays["rewards"][0] = 5.0
    darkroom.verify()


def test_windows_stay_in_one_history_and_carry_episode_indices(darkroom: data.Dataset) -> None:
    rng = np.random.default_rng(0)
    w = darkroom.sample_windows(512, 50, rng)  # 50 > 20 steps: every window spans episodes
    assert w["observations"].shape == (512, 50)
    assert (w["history_index"] == w["history_index"][:, :1]).all()
    ep, step = w["episode_index"], w["step_index"]
    new_episode = np.diff(ep, axis=1) != 0
    assert ((np.diff(ep, axis=1) == 0) | (np.diff(ep, axis=1) == 1)).all()
    assert (step[:, 1:][new_episode] == 0).all()  # an episode change restarts the step count
    assert (step[:, 1:][~new_episode] == step[:, :-1][~new_episode] + 1).all()
    assert new_episode.any(axis=1).all()
    # the windows are exactly the stored rows
    h = darkroom.history(int(w["history_index"][0, 0]))
    start = np.flatnonzero((h["episode_index"] == ep[0, 0]) & (h["step_index"] == step[0, 0]))[0]
    np.testing.assert_array_equal(h["actions"][start : start + 50], w["actions"][0])


def test_window_longer_than_any_history_is_an_error(darkroom: data.Dataset) -> None:
    with pytest.raises(DatasetError, match="no history holds a window"):
        darkroom.sample_windows(1, 10**6, np.random.default_rng(0))


def test_weights_select_histories(darkroom: data.Dataset) -> None:
    weights = np.zeros(darkroom.num_histories)
    weights[3] = 1.0
    w = darkroom.sample_windows(64, 10, np.random.default_rng(0), weights=weights)
    assert (w["history_index"] == 3).all()


def test_slices_are_thirds_of_each_history(darkroom: data.Dataset) -> None:
    rng = np.random.default_rng(0)
    for k, part in enumerate(data.SLICES):
        w = darkroom.sample_windows(256, 10, rng, part=part)
        assert (w["episode_index"] >= 20 * k).all() and (w["episode_index"] < 20 * (k + 1)).all()


def test_whole_trajectories(darkroom: data.Dataset) -> None:
    ep = darkroom.episode(5)
    assert len(ep["actions"]) == 20 and ep["truncations"][-1] and ep["step_index"][0] == 0
    assert (ep["episode_index"] == 5).all()
    hist = darkroom.history(1)
    assert len(hist["actions"]) == 60 * 20
    with pytest.raises(IndexError):
        darkroom.episode(darkroom.num_episodes)


def _corrupt_flip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-8])


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_corrupt_flip, "checksum mismatch in rewards.bin"),
        (_corrupt_truncate, "rewards.bin has .* bytes, expected"),
        (Path.unlink, "rewards.bin is missing"),
    ],
)
def test_verify_names_the_damaged_array(corrupt, message: str) -> None:  # type: ignore[no-untyped-def]
    dataset_id = data.generate("DarkRoom-v0", "random", "smoke")
    corrupt(data.load(dataset_id).path / "rewards.bin")
    with pytest.raises(DatasetError, match=message):
        data.load(dataset_id).verify()
    proc = subprocess.run(
        [sys.executable, "-m", "icrl_bench.cli", "data", "verify", dataset_id],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "rewards.bin" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_killed_generation_leaves_nothing_listed_and_can_rerun(tmp_path: Path) -> None:
    script = (
        "import os, signal\n"
        "from icrl_bench import data\n"
        "def kill(done, total):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "data.generate('DarkRoom-v0', 'histories', 'smoke', workers=1,\n"
        "              overrides={'tasks_per_chunk': 1}, on_chunk=kill)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=os.environ.copy())
    assert proc.returncode == -9
    root = data.store.datasets_root()
    assert any(p.name.startswith(".tmp-") for p in root.rglob("*"))  # the half-written staging
    assert data.list_datasets() == []
    with pytest.raises(UnknownIdError):
        data.load("DarkRoom-v0/histories-v0/smoke-seed0")
    dataset_id = data.generate(
        "DarkRoom-v0", "histories", "smoke", overrides={"tasks_per_chunk": 1}
    )
    data.load(dataset_id).verify()
    assert [m["id"] for m in data.list_datasets()] == [dataset_id]


def test_interrupted_regeneration_keeps_the_old_dataset() -> None:
    dataset_id = data.generate("DarkRoom-v0", "random", "smoke", overrides={"tasks_per_chunk": 1})
    before = json.loads((data.load(dataset_id).path / "manifest.json").read_text())

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        data.generate(
            "DarkRoom-v0",
            "random",
            "smoke",
            overrides={"tasks_per_chunk": 1},
            force=True,
            on_chunk=interrupt,
        )
    after = json.loads((data.load(dataset_id).path / "manifest.json").read_text())
    assert before == after
    data.load(dataset_id).verify()


def test_malformed_and_ambiguous_ids() -> None:
    with pytest.raises(UnknownIdError, match="malformed dataset id"):
        data.load("darkroom")
    data.generate("DarkRoom-v0", "random", "smoke", seed=0)
    data.generate("DarkRoom-v0", "random", "smoke", seed=1)
    with pytest.raises(UnknownIdError, match="ambiguous; name one of: smoke-seed0, smoke-seed1"):
        data.load("DarkRoom-v0/random-v0")
    assert data.load("DarkRoom-v0/random-v0/smoke-seed1").manifest["seed"] == 1


def test_minari_export_loads_with_minari(
    darkroom: data.Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import minari  # the dev extra installs it: a missing one fails, never skips

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    from icrl_bench.data.minari_export import default_minari_id, export_minari

    export_minari(darkroom.id)
    loaded = minari.load_dataset(default_minari_id(darkroom.id))
    assert loaded.total_episodes == darkroom.num_episodes
    assert loaded.total_steps == len(darkroom)
    meta = list(loaded.storage.get_episode_metadata(range(loaded.total_episodes)))
    tasks = darkroom.manifest["tasks"]
    for i, episode in enumerate(loaded.iterate_episodes()):
        ours = darkroom.episode(i)
        np.testing.assert_array_equal(episode.observations[:-1], ours["observations"])
        np.testing.assert_array_equal(episode.observations[-1], ours["next_observations"][-1])
        np.testing.assert_array_equal(episode.actions, ours["actions"])
        np.testing.assert_array_equal(episode.rewards, ours["rewards"])
        np.testing.assert_array_equal(episode.truncations, ours["truncations"])
        opts = meta[i]["options"]
        assert int(opts["history_index"]) == ours["history_index"][0]
        assert int(opts["episode_index"]) == ours["episode_index"][0]
        assert json.loads(opts["task"]) == tasks[int(ours["task_index"][0])]


def test_episode_sets_hold_distinct_whole_episodes_of_one_history(darkroom: data.Dataset) -> None:
    sets = darkroom.sample_episode_sets(64, 5, np.random.default_rng(0))
    assert sets["actions"].shape == (64, 5, 20) and sets["episode_returns"].shape == (64, 5)
    hist = sets["history_index"]
    assert (hist == sets["histories"][:, None, None]).all()
    assert (sets["step_index"] == np.arange(20)).all()  # whole episodes, from their first step
    ep = sets["episode_index"][:, :, 0]
    assert all(len(set(row)) == 5 for row in ep.tolist())  # distinct episodes
    # each episode is the stored one, with its return
    first = darkroom.history(int(sets["histories"][0]))
    rows = first["episode_index"] == ep[0, 0]
    np.testing.assert_array_equal(first["actions"][rows], sets["actions"][0, 0])
    assert sets["episode_returns"][0, 0] == pytest.approx(first["rewards"][rows].sum())
    again = darkroom.sample_episode_sets(8, 2, np.random.default_rng(1), histories=hist[:8, 0, 0])
    assert (again["histories"] == hist[:8, 0, 0]).all()


def test_episode_sets_need_one_episode_length_and_enough_episodes(
    darkroom: data.Dataset,
) -> None:
    with pytest.raises(DatasetError, match="no history holds 1000 episodes"):
        darkroom.sample_episode_sets(1, 1000, np.random.default_rng(0))
    off = np.array(darkroom.arrays["episode_offsets"])
    off[1] -= 1  # the first episode one step shorter
    darkroom.arrays = {**darkroom.arrays, "episode_offsets": off}
    with pytest.raises(DatasetError, match="episodes of 19 to 21 steps"):
        darkroom.sample_episode_sets(1, 2, np.random.default_rng(0))
