"""Shared fixtures: every test runs with ICRL_BENCH_HOME in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

import icrl_bench

ALL_IDS = [spec.env_id for spec in icrl_bench.FAMILIES]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "icrl_home"
    monkeypatch.setenv("ICRL_BENCH_HOME", str(home))
    return home
