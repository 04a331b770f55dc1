"""The suite runner's Ray executor on a real local Ray cluster (two CPUs): a tiny suite (one
baseline at its smoke budget and two reference agents on DarkRoom-v0) finishes every job and gives
the same results files and leaderboard rows as the local process pool."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import ray
import yaml

from icrl_bench.suite import read_state, run_suite

TINY = {
    "name": "ray-tiny",
    "description": "the Ray executor's test: AD at its smoke budget and two reference agents",
    "baselines": ["ad"],
    "reference_agents": ["random", "oracle"],
    "protocols": ["online-v1"],
    "train_seeds": [0],
    "eval_seeds": [0, 1, 2],
    "smoke": True,
    "submit_to": "run-dir",
    "families": {"DarkRoom-v0": {"variant": "ad-eps", "scale": "smoke"}},
}
#: one dataset, one training run, three evaluations and three submissions
JOBS = 8


def _results(run_dir: Path) -> dict[str, dict]:
    """Every results file of a run, without what differs between two runs of the same code
    (the creation time)."""
    out = {}
    for path in sorted((run_dir / "results").glob("*.json")):
        doc = json.loads(path.read_text())
        doc["provenance"].pop("created")
        out[path.name] = doc
    return out


def _rows(run_dir: Path) -> list[dict[str, str]]:
    """The leaderboard rows of a run, without their submission date."""
    rows = []
    for path in sorted((run_dir / "leaderboards").glob("*.csv")):
        with path.open() as f:
            rows += [{k: v for k, v in row.items() if k != "date"} for row in csv.DictReader(f)]
    return sorted(rows, key=lambda r: r["method"])


@pytest.fixture
def ray_cluster() -> object:
    """A local Ray cluster of two CPUs, shut down after the test."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_the_ray_executor_matches_the_local_pool(tmp_path: Path, ray_cluster: object) -> None:
    suite = tmp_path / "ray-tiny.yaml"
    suite.write_text(yaml.safe_dump(TINY))
    finished: list[str] = []
    remote = run_suite(
        str(suite),
        run_dir=tmp_path / "ray",
        executor="ray",
        workers=2,
        progress=False,
        on_job=lambda job, outcome: finished.append(job),
    )
    assert ray.is_initialized()  # the executor joined this cluster and left it running
    assert len(remote.jobs) == JOBS and remote.ok, remote.state
    assert sorted(finished) == sorted(j.id for j in remote.jobs)
    state = read_state(tmp_path / "ray")["jobs"]
    assert {s["state"] for s in state.values()} == {"done"}
    assert all(Path(s["log"]).is_file() for s in state.values())

    local = run_suite(str(suite), run_dir=tmp_path / "local", executor="local", progress=False)
    assert local.ok, local.state

    a, b = _results(tmp_path / "local"), _results(tmp_path / "ray")
    assert sorted(a) == sorted(b) and len(a) == 3  # ad, random, oracle
    for name in a:
        assert a[name] == b[name], name
    rows = _rows(tmp_path / "ray")
    assert [r["method"] for r in rows] == ["ad", "oracle", "random"]
    assert rows == _rows(tmp_path / "local")
    assert (tmp_path / "ray" / "leaderboards" / "README.md").is_file()
