"""The workflow functions the CLI and the suite runner share (the others are covered through
tests/test_cli.py and tests/test_suite.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from icrl_bench import workflow
from icrl_bench.data import sac
from icrl_bench.registry import reference_returns


def test_references_train_a_locomotion_familys_experts_once(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[int] = []

    def fake(env_id: str, tasks: list, train_episodes: int) -> np.ndarray:
        trained.append(train_episodes)
        return np.linspace(-70.0, -20.0, len(tasks))

    monkeypatch.setattr(sac, "expert_returns", fake)
    first = workflow.references("HalfCheetahVel-v0", train_episodes=500)
    again = workflow.references("HalfCheetahVel-v0", train_episodes=500)
    assert trained == [500]  # the second call reads the cache
    assert first == again and len(first["oracle"]) == len(first["random"]) == 5
    np.testing.assert_allclose(first["oracle"], np.linspace(-70.0, -20.0, 5))
    assert "oracle" in reference_returns("HalfCheetahVel-v0")  # scoring now finds it


def test_references_of_an_exact_family_train_nothing(
    _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sac, "expert_returns", lambda *a, **k: pytest.fail("trained SAC"))
    refs = workflow.references("PointRobot-v0")
    assert set(refs) >= {"random", "oracle"} and len(refs["oracle"]) > 0
