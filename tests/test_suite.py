"""Baseline suites: the smoke suite end to end on the local pool (killed part-way and resumed)
and on a real local Ray cluster with the same results; failures isolated; the grid's jobs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from icrl_bench.cli import main
from icrl_bench.leaderboard import read_result, read_track, validate
from icrl_bench.suite import expand, read_state, read_suite, run_suite


def _results(run_dir: Path) -> dict[str, dict]:
    """Every results file of a run, without its provenance (git sha, creation time)."""
    out = {}
    for path in sorted((run_dir / "results").glob("*.json")):
        doc = json.loads(path.read_text())
        doc.pop("provenance")
        out[path.name] = doc
    return out


def _rows(lb: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted(lb.glob("*.csv")):
        with path.open() as f:
            rows += list(csv.DictReader(f))
    return rows


def test_the_grid_expands_into_jobs_with_shared_datasets(tmp_path: Path) -> None:
    doc = read_suite("smoke")
    jobs = expand(doc, tmp_path / "run", tmp_path / "lb")
    kinds = [j.kind for j in jobs]
    assert kinds == sorted(kinds, key=["data", "references", "train", "evaluate", "submit"].index)
    assert "references" not in kinds  # smoke runs of locomotion families go unscored
    data = [j for j in jobs if j.kind == "data"]
    # one training dataset per family, shared by the six baselines
    assert sorted(j.id for j in data) == [
        "data/DarkRoom-v0/ad-eps/smoke/seed0",
        "data/PointRobot-v0/histories/smoke/seed0",
    ]
    trains = [j for j in jobs if j.kind == "train"]
    assert len(trains) == 12 and all(
        j.deps == [data[0].id] or j.deps == [data[1].id] for j in trains
    )
    evals = [j for j in jobs if j.kind == "evaluate"]
    assert len(evals) == 12 + 4  # and the random and oracle agents on both families
    by_id = {j.id: j for j in jobs}
    for j in jobs:
        assert all(d in by_id for d in j.deps)
        if j.kind == "submit":
            assert by_id[j.deps[0]].kind == "evaluate"


def test_training_seeds_become_one_result_per_method_and_track(tmp_path: Path) -> None:
    """Three training seeds train three runs; one evaluate job takes all three checkpoints, so
    each (method, track) gets one result whose row aggregates over the runs."""
    doc = read_suite("smoke")
    doc["train_seeds"] = [0, 1, 2]
    jobs = expand(doc, tmp_path / "run", tmp_path / "lb")
    trains = [j for j in jobs if j.kind == "train"]
    assert len(trains) == 12 * 3
    evals = {j.id: j for j in jobs if j.kind == "evaluate"}
    assert len(evals) == 12 + 4
    ad = evals["evaluate/ad/DarkRoom-v0/ad-eps/online-v1"]
    agents = ad.argv[ad.argv.index("--agent") + 1 : ad.argv.index("--task")]
    assert [Path(a).name for a in agents] == [
        f"ad__DarkRoom-v0__ad-eps__seed{s}" for s in (0, 1, 2)
    ]
    assert ad.deps == [f"train/ad/DarkRoom-v0/ad-eps/seed{s}" for s in (0, 1, 2)]
    # a reference agent's row carries no suite notes: it is described by what it is
    ref = evals["evaluate/random/DarkRoom-v0/online-v1"]
    assert "--notes" not in ref.argv and "--notes" in ad.argv


def test_discrete_cpu_expands_per_method_data_and_protocols(tmp_path: Path) -> None:
    """The discrete-cpu suite: per-method data variants, a family's data overrides, per-method
    protocols, and a ``method@family`` override that reaches only that family's jobs, after the
    method's own overrides."""
    doc = read_suite("discrete-cpu")
    doc["overrides"] = {
        **doc.get("overrides", {}),
        "dpt": ["model.d_model=64"],
        "dpt@GaussianBandit-v0": ["model.context=5"],
    }
    jobs = expand(doc, tmp_path / "run", tmp_path / "lb")
    trains = {j.id: j for j in jobs if j.kind == "train"}
    # (ad, dpt, t2mir-ad, t2mir-dpt) + (ad, t2mir-ad) + 2 x (dpt, t2mir-dpt), 3 runs each
    assert len(trains) == 10 * 3
    assert trains["train/dpt/DarkRoom-v0/uniform-rollin/seed0"].deps == [
        "data/DarkRoom-v0/uniform-rollin/streams/seed0"
    ]
    assert trains["train/ad/DarkRoom-v0/histories/seed2"].deps == [
        "data/DarkRoom-v0/histories/streams/seed0"
    ]
    bandit_data = next(j for j in jobs if j.id.startswith("data/GaussianBandit-v0/"))
    assert "dirichlet-mix" in bandit_data.id and "histories=10" in bandit_data.argv
    evals = sorted(j.id for j in jobs if j.kind == "evaluate" and "DarkRoom10x10" in j.id)
    assert "evaluate/dpt/DarkRoom10x10-v0/uniform-rollin/offline-prompt-v2" in evals
    assert "evaluate/dpt/DarkRoom10x10-v0/uniform-rollin/online-v1" not in evals
    assert {
        "evaluate/random/DarkRoom10x10-v0/online-v1",
        "evaluate/random/DarkRoom10x10-v0/offline-prompt-v2",
    } <= set(evals)
    for job_id, job in trains.items():
        sets = [job.argv[i + 1] for i, a in enumerate(job.argv) if a == "--set"]
        assert "train.log_every=100" in sets
        narrowed = "model.context=5" in sets
        assert narrowed == job_id.startswith("train/dpt/GaussianBandit-v0/"), job_id
        if narrowed:  # after the method's own overrides, so it wins
            assert sets.index("model.context=5") > sets.index("model.d_model=64")


def test_continuous_cpu_expands_three_runs_per_method_and_its_prompted_tracks(
    tmp_path: Path,
) -> None:
    """The continuous-cpu suite: Meta-DT, T2MIR-AD and T2MIR-DPT on PointRobot-v0, DT and
    Meta-DT on HalfCheetahVel-v0, 3 runs each at its CPU budget, evaluated under the
    demonstration-prompt track beside the others; HalfCheetahVel's scores wait for its SAC
    expert references, trained by one job."""
    jobs = expand(read_suite("continuous-cpu"), tmp_path / "run", tmp_path / "lb")
    trains = {j.id: j for j in jobs if j.kind == "train"}
    assert sorted(trains) == sorted(
        [
            f"train/{m}/PointRobot-v0/histories/seed{s}"
            for m in ("meta-dt", "t2mir-ad", "t2mir-dpt")
            for s in (0, 1, 2)
        ]
        + [
            f"train/{m}/HalfCheetahVel-v0/conditioned-expert/seed{s}"
            for m in ("dt", "meta-dt")
            for s in (0, 1, 2)
        ]
    )
    refs = [j for j in jobs if j.kind == "references"]
    assert [j.id for j in refs] == ["references/HalfCheetahVel-v0"]
    for j in jobs:
        if j.kind == "evaluate":
            assert (refs[0].id in j.deps) == ("HalfCheetahVel-v0" in j.id)
    for job in trains.values():
        sets = [job.argv[i + 1] for i, a in enumerate(job.argv) if a == "--set"]
        assert {"train.steps=2000", "model.d_model=64", "train.batch_size=64"} <= set(sets)
    evals = {j.id for j in jobs if j.kind == "evaluate"}
    for agent in ("meta-dt/PointRobot-v0/histories", "random/PointRobot-v0"):
        assert f"evaluate/{agent}/offline-prompt-v3" in evals
    assert "evaluate/t2mir-ad/PointRobot-v0/histories/online-v1" in evals
    prompts = {j.id for j in jobs if j.kind == "data" and "/prompt/" in j.id}
    assert "data/PointRobot-v0/expert/prompt/seed0" in prompts  # v3's demonstrations


def test_smoke_suite_resumes_after_a_kill_and_matches_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner is killed part-way through the smoke suite; --resume finishes it without
    redoing finished jobs or duplicating rows; a run on a real local Ray cluster gives the same
    results files."""
    env = {**os.environ, "ICRL_BENCH_HOME": str(tmp_path / "home")}
    local = tmp_path / "local"
    cmd = [sys.executable, "-m", "icrl_bench.cli", "run-suite", "smoke"]
    proc = subprocess.Popen(
        [*cmd, "--run-dir", str(local), "--no-progress"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    done: dict[str, float] = {}
    while time.time() < deadline and proc.poll() is None:
        jobs = (read_state(local) or {}).get("jobs", {})
        done = {j: s for j, s in jobs.items() if s["state"] == "done"}
        if any(j.startswith("train/") for j in done):
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the suite ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    jobs = read_state(local)["jobs"]
    done = {j for j, s in jobs.items() if s["state"] == "done"}
    assert done and len(done) < 46
    logs = {j: Path(jobs[j]["log"]).stat().st_mtime_ns for j in done}

    monkeypatch.setenv("ICRL_BENCH_HOME", env["ICRL_BENCH_HOME"])
    report = run_suite("smoke", run_dir=local, resume=True, progress=False)
    assert report.ok, [(j, s) for j, s in report.state.items() if s["state"] != "done"]
    assert not set(report.ran) & done  # finished jobs were not run again
    assert {j: Path(report.state[j]["log"]).stat().st_mtime_ns for j in done} == logs
    rows = _rows(local / "leaderboards")
    ids = [r["result_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 16  # one row per evaluation, none twice
    assert (local / "leaderboards" / "README.md").exists()

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = tmp_path / "ray"
        argv = ["run-suite", "smoke", "--executor", "ray", "--run-dir", str(remote)]
        assert main([*argv, "--no-progress"]) == 0
    finally:
        ray.shutdown()
    a, b = _results(local), _results(remote)
    assert a.keys() == b.keys() and len(a) == 16
    for name in a:
        assert a[name] == b[name], name


def test_a_failed_job_is_reported_and_the_rest_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = {
        "name": "broken",
        "baselines": ["ad", "dt"],
        "reference_agents": ["random"],
        "eval_seeds": [0, 1, 2],
        "smoke": True,
        "submit_to": "run-dir",
        "families": {"DarkRoom-v0": {"variant": "ad-eps", "scale": "smoke"}},
        "overrides": {"dt": ["model.context=-1"]},  # a bad config value
    }
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(suite))
    run = tmp_path / "run"
    assert main(["run-suite", str(path), "--run-dir", str(run), "--no-progress"]) == 1
    out = capsys.readouterr()
    state = read_state(run)["jobs"]
    failed = state["train/dt/DarkRoom-v0/ad-eps/seed0"]
    assert failed["state"] == "failed"
    assert "config key 'model.context' must be an integer in [1, 2**16], got -1" in failed["error"]
    assert "must be an integer in [1, 2**16], got -1" in Path(failed["log"]).read_text()
    assert failed["log"] in out.out  # the summary names the log
    assert state["evaluate/dt/DarkRoom-v0/ad-eps/online-v1"]["state"] == "skipped"
    # everything that does not depend on it finished and was submitted
    for job in ("train/ad/DarkRoom-v0/ad-eps/seed0", "submit/ad/DarkRoom-v0/ad-eps/online-v1",
                "submit/random/DarkRoom-v0/online-v1"):  # fmt: skip
        assert state[job]["state"] == "done", job
    assert len(_rows(run / "leaderboards")) == 2
    # a finished run is not silently redone
    assert main(["run-suite", str(path), "--run-dir", str(run), "--no-progress"]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_suite_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    for doc, message in [
        ({"families": {"DarkRoom-v0": {}}, "baselines": ["ppo"]}, "unknown baseline 'ppo'"),
        ({"families": {}}, "'families' must map"),
        ({"families": {"DarkRoom-v0": {}}, "eval_seeds": "0"}, "eval_seeds must be"),
        ({"families": {"DarkRoom-v0": {}}, "colour": 1}, "unknown key 'colour'"),
    ]:
        bad.write_text(yaml.safe_dump(doc))
        assert main(["run-suite", str(bad), "--run-dir", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err
    assert main(["run-suite", "nonexistent"]) == 2
    assert "no suite 'nonexistent'" in capsys.readouterr().err


_RUNNER = """
import os, sys, time
from icrl_bench.suite import LocalExecutor

ex = LocalExecutor(2)
ex.pool.submit(time.sleep, 600)
print(ex.pool.submit(os.getpid).result(), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal")
def test_local_workers_die_with_a_killed_runner() -> None:
    runner = subprocess.Popen([sys.executable, "-c", _RUNNER], stdout=subprocess.PIPE, text=True)
    assert runner.stdout is not None
    worker = int(runner.stdout.readline())
    assert _alive(worker)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "a pool worker outlived its killed runner"


def test_gpu_reproduction_script_runs_tiny_on_cpu(tmp_path: Path) -> None:
    """``bench/reproduce_gpu.sh --tiny`` runs all three GPU reproduction suites end to end at
    the smallest size: three training runs per method, one submittable result per (method,
    track), each on the run directory's leaderboard."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "ICRL_BENCH_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        ["bash", str(root / "bench" / "reproduce_gpu.sh"), "--tiny", "--workers", "2",
         "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    suites = tmp_path / "home" / "suites"
    expected = {
        "reproduce-ad-eps-tiny": ["DarkRoom-v0__online-v1"],
        "reproduce-dpt-tiny": [
            "DarkRoom10x10-v0__offline-prompt-v2",
            "DarkRoom10x10-v0__online-v1",
            "GaussianBandit-v0__online-v1",
        ],
        "reproduce-dicp-tiny": ["DarkRoom-v0__online-v1", "KeyToDoor-v0__online-v1"],
    }
    for suite, tracks in expected.items():
        board = suites / suite / "leaderboards"
        for track in tracks:
            rows = read_track(board / f"{track}.csv")
            assert [r["runs"] for r in rows] == ["3"], (suite, track)
            assert "tiny check run" in rows[0]["notes"]
        results = sorted((suites / suite / "results").glob("*.json"))
        assert len(results) == len(tracks)
        for path in results:
            validate(read_result(path))  # ready to submit
