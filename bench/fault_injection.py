"""Kill ``icrl-bench data generate`` and ``icrl-bench train`` with SIGKILL at random points and
count what that broke.

Usage: python bench/fault_injection.py [--runs 20] [--seed 0] [--only generate|train] [--tiny]

Each run starts the command in a fresh process and kills it (and only it: its children are left
to fend for themselves, as after a real kill -9) at a random point: ``data generate`` after a
random 0.5-4 s (it takes about 4.5 s on the idle machine).
``train`` is killed either during start-up (a quarter of the runs) or once its checkpoint records
a random number of updates (10-140 of 150), a random 0-50 ms later, so that some kills land in
a save. After each kill the script checks:

* lost data: a dataset or checkpoint that was complete before is damaged, or the killed one is
  present but does not verify (a dataset must be absent or whole; a checkpoint must load and
  record the step its weights hold, never claiming more);
* orphans: a child process of the killed one (a ``data generate`` pool worker) still alive 5 s
  after the kill;
* stale temporary files: ``.tmp-*``/``.old-*`` dataset directories or ``*.tmp`` files left after
  the same command is run again to completion.

Prints one line per run and a summary; exits 1 if any count is not 0. Runs on CPU in a
temporary ``ICRL_BENCH_HOME`` (about 10 s per run). ``--tiny``: one kill of each, of a smaller
generation (100 episodes) and training (30 updates, saved every 5).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from _tiny import parse_args

FAMILY = "DarkRoom-v0"
KEEP = f"{FAMILY}/histories-v0/smoke-seed1"  # a complete dataset that must survive every kill


@dataclass(frozen=True)
class Sizes:
    """How much each killed command does, and when the kills land."""

    episodes: int = 1000  # of `data generate` (about 4.5 s on the idle machine)
    generate_kill: tuple[float, float] = (0.5, 4.0)  # seconds after its start
    steps: int = 150  # of `train`
    save_every: int = 10


TINY = Sizes(episodes=100, generate_kill=(0.3, 1.5), steps=30, save_every=5)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "icrl_bench.cli", *args]


def _digest(directory: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(directory.rglob("*")):
        if p.is_file() and not p.name.startswith(".verified"):
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _kill(
    cmd: list[str],
    env: dict[str, str],
    delay: float,
    when: Callable[[], bool] | None = None,
) -> tuple[bool, list[psutil.Process]]:
    """Start ``cmd`` and SIGKILL it ``delay`` s after ``when()`` first holds (after its start
    when ``when`` is None): whether it was killed (not finished first), and its child processes
    at the moment of death."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = None if when is not None else time.monotonic() + delay
    children: list[psutil.Process] = []
    parent = psutil.Process(proc.pid)
    while proc.poll() is None and (deadline is None or time.monotonic() < deadline):
        if deadline is None and when is not None and when():
            deadline = time.monotonic() + delay
        try:
            children = parent.children(recursive=True) or children
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        return False, []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True, children


def _step(out: Path) -> int:
    """The step a checkpoint directory records (0 while there is none)."""
    try:
        return int(json.loads((out / "checkpoint.json").read_text()).get("step", 0))
    except (OSError, ValueError):
        return 0


def _orphans(children: list[psutil.Process]) -> int:
    end = time.monotonic() + 5.0
    alive = children
    while alive and time.monotonic() < end:
        alive = [c for c in alive if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.1)
    for c in alive:  # clean up after counting
        c.kill()
    return len(alive)


def _stale(root: Path) -> int:
    temp_dirs = [p for p in root.rglob(".tmp-*")] + [p for p in root.rglob(".old-*")]
    temp_files = [p for p in root.rglob("*.tmp")]
    return len(temp_dirs) + len(temp_files)


def run_generate(
    home: Path, rng: np.random.Generator, env: dict[str, str], sizes: Sizes
) -> tuple[int, int, int, int]:
    from icrl_bench import data
    from icrl_bench.data.store import DatasetError

    keep = home / "datasets" / KEEP
    before = _digest(keep)
    seed = int(rng.integers(2, 10**6))
    ds_id = f"{FAMILY}/histories-v0/smoke-seed{seed}"
    cmd = _cli(
        "data", "generate", FAMILY, "--variant", "histories", "--seed", str(seed),
        "--workers", "2", "--set", "tasks_per_chunk=1", "--set", f"episodes={sizes.episodes}",
    )  # fmt: skip
    killed, children = _kill(cmd, env, float(rng.uniform(*sizes.generate_kill)))
    orphans = _orphans(children)
    lost = int(_digest(keep) != before)
    target = home / "datasets" / ds_id
    if (target / "manifest.json").exists():
        try:
            data.load(ds_id, verify=False).verify()
        except DatasetError:
            lost += 1
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # the next run
    return lost, orphans, _stale(home / "datasets"), (len(children) if killed else -1)


def run_train(
    home: Path, rng: np.random.Generator, env: dict[str, str], sizes: Sizes
) -> tuple[int, int, int, int]:
    out = home / "ckpt" / f"run{int(rng.integers(10**9))}"
    cmd = _cli(
        "train", "ad", "--task", FAMILY, "--dataset", KEEP, "--smoke", "--out", str(out),
        "--no-progress", "--set", f"train.steps={sizes.steps}",
        "--set", f"train.checkpoint_every={sizes.save_every}",
    )  # fmt: skip
    if rng.random() < 0.25:  # during start-up and data loading
        killed, children = _kill(cmd, env, float(rng.uniform(0.5, 4.0)))
    else:  # during training: a random number of updates in, at a random moment of a step
        saves = sizes.steps // sizes.save_every
        target = int(rng.integers(1, saves)) * sizes.save_every
        killed, children = _kill(
            cmd, env, float(rng.uniform(0.0, 0.05)), when=lambda: _step(out) >= target
        )
    orphans = _orphans(children)
    lost = 0
    if (out / "checkpoint.json").exists():
        meta = json.loads((out / "checkpoint.json").read_text())  # must parse: written atomically
        if (out / "train_state.pt").exists():
            import torch

            state = torch.load(out / "train_state.pt", weights_only=False)
            lost += int(meta["step"] > int(state["step"]))  # never claims more than it holds
        evaluate = subprocess.run(
            _cli(
                "evaluate",
                "--agent",
                str(out),
                "--task",
                FAMILY,
                "--seeds",
                "0",
                "--episodes",
                "2",
                "--out",
                str(out / "r.json"),
            ),
            env=env,
            capture_output=True,
            text=True,
        )
        finished = meta["step"] >= meta["steps"]
        lost += int(evaluate.returncode != 0 if finished else evaluate.returncode != 2)
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # resume to the end
    meta = json.loads((out / "checkpoint.json").read_text())
    lost += int(meta["step"] != meta["steps"])
    return lost, orphans, _stale(out), (len(children) if killed else -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="kills per command")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["generate", "train"], default=None)
    args = parse_args(parser, runs=1)  # tiny: one small kill of each command
    sizes = TINY if args.tiny else Sizes()
    rng = np.random.default_rng(args.seed)
    totals: dict[str, tuple[int, int, int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**os.environ, "ICRL_BENCH_HOME": str(home), "PYTHONWARNINGS": "ignore"}
        os.environ["ICRL_BENCH_HOME"] = str(home)
        subprocess.run(
            _cli("data", "generate", FAMILY, "--variant", "histories", "--seed", "1"),
            env=env,
            check=True,
            capture_output=True,
        )
        kinds = [args.only] if args.only else ["generate", "train"]
        print(f"{args.runs} SIGKILLs per command, {os.cpu_count()} cores, home {home}")
        for kind in kinds:
            counts = np.zeros(3, dtype=int)
            killed = 0
            for i in range(args.runs):
                start = time.perf_counter()
                run = run_generate if kind == "generate" else run_train
                *got, seen = run(home, rng, env, sizes)
                counts += got
                killed += seen >= 0
                how = f"killed with {seen} children" if seen >= 0 else "finished before the kill"
                print(
                    f"  {kind} {i + 1:>2} ({how}): lost data {got[0]}, orphans {got[1]}, stale "
                    f"temporary files {got[2]} ({time.perf_counter() - start:.1f} s)",
                    flush=True,
                )
            totals[kind] = (killed, *counts)
    ok = True
    for kind, (killed, lost, orphans, stale) in totals.items():
        print(
            f"{kind}: {args.runs} runs, {killed} killed before they finished: runs that lost data "
            f"{lost}, left orphans {orphans}, left stale temporary files {stale}"
        )
        ok = ok and lost == orphans == stale == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
