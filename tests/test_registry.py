"""The registry: ids, fixed splits and their published sources."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench
from icrl_bench.errors import UnknownIdError
from tests.conftest import ALL_IDS, CORE_IDS

# First 16 hex digits of the sha256 of each split. A change here changes every published score:
# it needs a new family version, not an edit of this table.
PINNED = {
    "GaussianBandit-v0": ("f0fd098e25beacfa", "2f13a24ede7cf347"),
    "BernoulliBandit-v0": ("b3e3a75c09de76b6", "f698d5ec1ea8958d"),
    "LinearBandit-v0": ("f892034ba2ff4973", "4256a3cb88479298"),
    "DarkRoom-v0": ("fc64917e51f25710", "dedd89cffd4ef04c"),
    "DarkRoom10x10-v0": ("ef0450d13e6ec1bb", "80f69d238bd68aa7"),
    "DarkRoomLarge-v0": ("162c9866a601fc56", "ec9e0323c6c189dc"),
    "DarkRoomHard-v0": ("3f02d6e59c6ad60c", "954a4fe89eafb6ff"),
    "DarkRoomPermuted-v0": ("78ca9ad9224faccb", "bb13685fbedaea67"),
    "KeyToDoor-v0": ("de931c28f8661cc5", "adcb5acd8838412c"),
    "PointRobot-v0": ("f538bb00917c40eb", "5362bd0a64b6b891"),
    "ML1-Reach-v0": ("998dfe33454b9360", "fb30fdb8af4681bb"),
    "ML1-Push-v0": ("8c8446780ad86866", "4315ec2e73c46b04"),
    "ML1-PickPlace-v0": ("a6767c17d847030e", "1b1fdde8a0d6c586"),
}

SIZES = {
    "GaussianBandit-v0": (1000, 200),
    "BernoulliBandit-v0": (1000, 200),
    "LinearBandit-v0": (1000, 200),
    "DarkRoom-v0": (65, 16),
    "DarkRoom10x10-v0": (80, 20),
    "DarkRoomLarge-v0": (180, 45),
    "DarkRoomHard-v0": (231, 58),
    "DarkRoomPermuted-v0": (108, 12),
    "KeyToDoor-v0": (6233, 328),
    "PointRobot-v0": (45, 5),
    "ML1-Reach-v0": (50, 50),
    "ML1-Push-v0": (50, 50),
    "ML1-PickPlace-v0": (50, 50),
}


def test_every_family_is_registered_and_pinned() -> None:
    for env_id in ALL_IDS:
        assert env_id in gym.registry
    # every NumPy family, and three of the Meta-World ones (building a split costs seconds)
    assert {i.split("/")[1] for i in CORE_IDS} | set(CHECKED_ML1) == set(PINNED)


CHECKED_ML1 = ("ML1-Reach-v0", "ML1-Push-v0", "ML1-PickPlace-v0")


@pytest.mark.parametrize("env_id", [*CORE_IDS, *(f"icrl_bench/{n}" for n in CHECKED_ML1)])
def test_splits_are_disjoint_sized_and_pinned(env_id: str) -> None:
    name = env_id.split("/")[1]
    dist = icrl_bench.tasks(env_id)
    assert (len(dist.train), len(dist.test)) == SIZES[name]
    assert not set(dist.train) & set(dist.test)
    assert len(set(dist.train)) == len(dist.train) or name.endswith("Bandit-v0")
    hashes = dist.split_hashes()
    assert (hashes["train"][:16], hashes["test"][:16]) == PINNED[name]
    for task in (*dist.train[:3], *dist.test[:3]):
        assert icrl_bench.Task.from_json(task.to_json()) == task
        hash(task)  # frozen and hashable


def test_darkroom10x10_test_goals_are_reference_tasks_80_to_99() -> None:
    ref = Path(__file__).parents[1] / "icrl_bench" / "task_sets" / "DarkRoom-v0.json"
    goals = [tuple(g) for g in json.loads(ref.read_text())["goals"]]
    dist = icrl_bench.tasks("icrl_bench/DarkRoom10x10-v0")
    assert [t.goal for t in dist.test] == goals[80:100]
    assert [t.goal for t in dist.train] == goals[:80]


def test_finite_families_split_covers_the_whole_task_space() -> None:
    for name, total in [("DarkRoom-v0", 81), ("DarkRoomPermuted-v0", 120), ("KeyToDoor-v0", 6561)]:
        dist = icrl_bench.tasks(name)
        assert len(set(dist.train) | set(dist.test)) == total


def test_sample_uses_only_the_given_rng() -> None:
    dist = icrl_bench.tasks("GaussianBandit-v0")
    a = dist.sample(4, np.random.default_rng(5))
    b = dist.sample(4, np.random.default_rng(5))
    assert a == b and len(a) == 4
    assert all(t.family == "GaussianBandit-v0" for t in a)


def test_unknown_ids_name_the_problem() -> None:
    with pytest.raises(UnknownIdError, match="did you mean DarkRoom-v0"):
        icrl_bench.tasks("icrl_bench/DarkRom-v0")
    with pytest.raises(gym.error.Error):
        gym.make("icrl_bench/NoSuchFamily-v0")
