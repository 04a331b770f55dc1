"""SAC experts: trained in parallel with the same returns as one at a time, and cached with the
number of episodes they trained for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from icrl_bench.data import sac
from icrl_bench.references import cache_path
from icrl_bench.registry import tasks

CHEETAH = "HalfCheetahVel-v0"


def test_parallel_experts_return_what_one_at_a_time_returns() -> None:
    test = list(tasks(CHEETAH).test)[:2]
    env_id = f"icrl_bench/{CHEETAH}"
    serial = sac.expert_returns(env_id, test, train_episodes=1, episodes=1, workers=1)
    parallel = sac.expert_returns(env_id, test, train_episodes=1, episodes=1, workers=2)
    assert serial.shape == (2,) and np.isfinite(serial).all()
    np.testing.assert_array_equal(parallel, serial)


def test_a_cached_expert_of_another_training_length_is_retrained(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = list(tasks(CHEETAH).test)
    calls: list[int] = []

    def fake(env_id: str, tasks_: list, train_episodes: int) -> np.ndarray:
        calls.append(train_episodes)
        return np.full(len(tasks_), float(train_episodes))

    monkeypatch.setattr(sac, "expert_returns", fake)
    first = sac.train_expert_references(CHEETAH, test, 200, train_episodes=50)
    again = sac.train_expert_references(CHEETAH, test, 200, train_episodes=50)
    assert calls == [50] and (first["return"] == 50).all() and (again["return"] == 50).all()
    other = sac.train_expert_references(CHEETAH, test, 200, train_episodes=500)
    assert calls == [50, 500] and (other["return"] == 500).all()
    cached = json.loads(cache_path(CHEETAH, test, 200, "expert").read_text())
    assert cached["train_episodes"] == [500]
