"""Shared fixtures: every test runs with ICRL_BENCH_HOME in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

import icrl_bench

ALL_IDS = [spec.env_id for spec in icrl_bench.FAMILIES]
#: the families with NumPy dynamics (exact references): every per-id test runs on all of them
CORE_IDS = [spec.env_id for spec in icrl_bench.FAMILIES if not spec.measured_references]
#: per-id tests that also apply to simulator families run on the NumPy ones plus one MuJoCo and
#: one of the 52 Meta-World ids (each costs seconds to build); tests/envs/test_metaworld.py and
#: tests/envs/test_mujoco.py cover the rest
SAMPLE_IDS = [*CORE_IDS, "icrl_bench/HalfCheetahVel-v0", "icrl_bench/ML1-Reach-v0"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "icrl_home"
    monkeypatch.setenv("ICRL_BENCH_HOME", str(home))
    return home
