"""Killed runs: a killed ``data generate`` leaves no live workers and no leftovers after the next
run; a training run killed part-way is refused by ``evaluate`` unless evaluated as a partial run
(then marked on the leaderboard), and resuming it with another config is refused before any
file is touched. bench/fault_injection.py repeats the kills 20 times each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from icrl_bench import data
from icrl_bench.leaderboard import read_track, render, submit
from tests.hostile import run_cli

DS = "DarkRoom-v0/histories-v0/smoke-seed0"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "icrl_bench.cli", *args]


def test_killed_generate_leaves_no_workers_and_no_leftovers(_isolated_home: Path) -> None:
    cmd = _cli(
        "data", "generate", "DarkRoom-v0", "--variant", "histories", "--seed", "7",
        "--workers", "2", "--set", "tasks_per_chunk=1", "--set", "episodes=1000",
    )  # fmt: skip
    env = {**os.environ, "ICRL_BENCH_HOME": str(_isolated_home)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent, workers = psutil.Process(proc.pid), []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        workers = parent.children(recursive=True)
        time.sleep(0.02)
    time.sleep(0.5)  # let the workers start on chunks
    assert proc.poll() is None and len(workers) == 2, "generation ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=5)
    for p in alive:
        p.kill()
    assert not alive, f"{len(alive)} pool workers outlived their killed parent"
    base = _isolated_home / "datasets" / "DarkRoom-v0" / "histories-v0"
    assert not (base / "smoke-seed7").exists()  # never a dataset that looks complete
    assert list(base.glob(".tmp-*"))  # the kill left its staging directory ...
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    assert not list(base.glob(".tmp-*")) and not list(base.glob(".old-*"))  # ... cleaned now
    data.load("DarkRoom-v0/histories-v0/smoke-seed7")


def _train(out: Path, *sets: str) -> list[str]:
    return _cli(
        "train", "ad", "--task", "DarkRoom-v0", "--dataset", DS, "--smoke", "--out", str(out),
        "--no-progress", "--set", "train.steps=2000", "--set", "train.checkpoint_every=10",
        *(x for s in sets for x in ("--set", s)),
    )  # fmt: skip


def test_killed_training_is_partial_until_resumed(_isolated_home: Path, tmp_path: Path) -> None:
    data.generate("DarkRoom-v0", "histories", "smoke", seed=0)
    out = tmp_path / "run"
    env = {**os.environ, "ICRL_BENCH_HOME": str(_isolated_home)}
    proc = subprocess.Popen(_train(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    meta_path, deadline = out / "checkpoint.json", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if meta_path.exists() and json.loads(meta_path.read_text()).get("step", 0) >= 20:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    meta = json.loads(meta_path.read_text())
    assert 20 <= meta["step"] < meta["steps"] == 2000
    home = {"ICRL_BENCH_HOME": str(_isolated_home)}

    # evaluate refuses it in one line ...
    refused = run_cli("evaluate", "--agent", str(out), "--task", "DarkRoom-v0", env=home)
    refused.assert_refused(
        f"training stopped at update {meta['step']:,} of 2,000", "--allow-partial"
    )
    # ... unless asked for a partial run, which the result and the leaderboard say
    result = tmp_path / "partial.json"
    evaluate = ["evaluate", "--agent", str(out), "--task", "DarkRoom-v0", "--out", str(result)]
    proc2 = subprocess.run(
        _cli(*evaluate, "--allow-partial"), env=env, capture_output=True, text=True
    )
    assert proc2.returncode == 0, proc2.stderr
    doc = json.loads(result.read_text())
    assert doc["config"]["partial"] == {"0": meta["step"]}
    assert doc["notes"].startswith(f"partial training (seed 0 at {meta['step']:,} of 2,000")
    board = tmp_path / "lb"
    track, row = submit(result, board)
    readme = render(board, plots=False).read_text()
    assert "| 1 ⚠ partial |" in readme and read_track(board / f"{track}.csv")[0] == row

    # resuming with another config is refused before any file is touched
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    changed = run_cli(*_train(out, "train.lr=5e-4")[3:], env=home)
    changed.assert_refused("holds a run with train.lr=0.001, not 0.0005")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("field", ["model.d_model=16", "train.batch_size=8"])
def test_check_resume_names_the_difference(field: str, tmp_path: Path) -> None:
    from baselines.common.config import ConfigError
    from baselines.common.pipeline import check_resume

    section, rest = field.split(".", 1)
    key, value = rest.split("=")
    config = {"model": {"d_model": 32}, "train": {"batch_size": 16, "steps": 10}}
    meta = {"method": "ad", "version": "2", "env_id": "x", "dataset": {"id": "d", "sha256": "s"}}
    previous = {**meta, "config": config}
    new_config = json.loads(json.dumps(config))
    new_config[section][key] = int(value)
    with pytest.raises(ConfigError, match=f"{section}.{key}="):
        check_resume(tmp_path, previous, {**meta, "config": new_config})
    longer = json.loads(json.dumps(config))
    longer["train"]["steps"] = 99  # training longer is a resume, not another run
    check_resume(tmp_path, previous, {**meta, "config": longer})
