"""Every script in bench/ runs at its ``--tiny`` size: exit 0 and its result line printed.

The scripts measure on real workloads for minutes; ``--tiny`` shrinks each to seconds, so that
an API change that breaks a script fails here rather than when someone next measures. The
scripts run two at a time (the CI machine's two cores), all started by one module fixture.
``bench/reproduce_gpu.sh --tiny`` trains three suites and takes minutes: it is not run here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
#: script (and arguments) -> a pattern of the line that carries its result, longest first
SCRIPTS: dict[str, str] = {
    "fault_injection.py": r"train: 1 runs, 1 killed .*lost data 0, left orphans 0, left stale",
    "time_to_icl.py ad": r"time to normalized final .* ratio [\d.]+",
    "suite_cost.py": r"suite \w+: training [\d.]+ CPU-hours",
    "train_precision.py": r"bf16 +[\d,]+ transitions/s +[\d.]+x fp32",
    "train_throughput.py": r"ratio: [\d.]+x",
    "train_throughput.py --family PointRobot-v0 --methods ad dpt dt meta-dt": (
        r"meta-dt \(PointRobot-v0 config(.|\n)*ratio: [\d.]+x"
    ),
    "kv_cache.py": r"speed-up +[\d.]+x",
    "sim_vector_throughput.py": r"HalfCheetahVel-v0: .*ratio [\d.]+x",
    "env_throughput.py": r"ratio: \d+x",
    "data_throughput.py": r"histories: .*ratio \d+x",
    "eval_throughput.py": r"ratio: \d+x .*returns identical",
    "dataset_memory.py": r"growth: .*% of the dataset",
    "per_task.py": r"oracle +[\d.]+ .*final +[\d.]+ \(\+1\.000\)",
    "dt_target_sweep.py": r"target +-4 zero-shot-v1 +normalized final [-+][\d.]+",
}


def _run(script: str) -> subprocess.CompletedProcess[str]:
    name, *args = script.split()
    env = {**os.environ, "ICRL_BENCH_HOME": tempfile.mkdtemp(prefix="bench-home-")}
    return subprocess.run(
        [sys.executable, str(BENCH / name), *args, "--tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def runs() -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(SCRIPTS, pool.map(_run, SCRIPTS), strict=True))


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_bench_script_runs_tiny(
    script: str, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = runs[script]
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(SCRIPTS[script], done.stdout), done.stdout[-2000:]


def test_every_bench_script_is_covered() -> None:
    scripts = {p.name for p in BENCH.glob("*.py") if not p.name.startswith("_")}
    assert scripts == {s.split()[0] for s in SCRIPTS}
