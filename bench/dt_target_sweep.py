"""Does the return-to-go target matter? Evaluate a DT or Meta-DT checkpoint with its target
return overridden, under each protocol.

Usage: python bench/dt_target_sweep.py CHECKPOINT --task PointRobot-v0 \\
           --protocols zero-shot-v1 online-v1 offline-prompt-v1 --targets ckpt -2 -4
       python bench/dt_target_sweep.py --tiny

DT and Meta-DT start every episode from one target return (``target: data-max`` takes the best
episode return in the training data, over all training tasks; Meta-DT's own code takes each test
task's best return from that task's dataset, which the protocols here do not give). On a family
whose tasks differ in their best return, the training maximum can be far from what a test task
allows; this script measures whether that is what holds a model back. ``ckpt`` keeps the
checkpoint's own target. Prints one line per (target, protocol): the normalised final score and
the mean return per test task, over evaluation seeds 0, 1, 2 (one run: no interval).
``--tiny`` trains a smoke Meta-DT on smoke PointRobot data (60 updates) and sweeps two targets.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _tiny import parse_args

from baselines.common.checkpoint import load_agent
from icrl_bench import data, workflow
from icrl_bench.eval.runner import evaluate


def sweep(
    ckpt: str, task: str, protocols: list[str], targets: list[str], episodes: int | None
) -> list[str]:
    """One result line per (target, protocol)."""
    agent = load_agent(ckpt, task, allow_partial=True).agent
    model = agent.model
    if not hasattr(model, "target"):
        raise SystemExit(f"{ckpt}: not a return-conditioned model (DT or Meta-DT)")
    lines = [f"{ckpt}: checkpoint target {float(model.target):.3f}"]
    own = float(model.target)
    for target in targets:
        model.target.fill_(own if target == "ckpt" else float(target))
        for protocol in protocols:
            result = evaluate(agent, task, protocol, seeds=[0, 1, 2], episodes=episodes)
            score = result.metrics()["normalized_final"]["mean"]
            per_task = np.round(result.returns.mean(axis=(0, 2)), 2).tolist()
            lines.append(
                f"target {target:>6} {protocol:<18} normalized final {score:+.3f}  "
                f"mean return per task {per_task}"
            )
    return lines


def _tiny_checkpoint(root: Path) -> str:
    ds_id = data.generate("PointRobot-v0", "histories", "smoke", seed=0)
    return str(workflow.train("meta-dt", "PointRobot-v0", ds_id, root / "meta-dt", smoke=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", nargs="?")
    parser.add_argument("--task", default="PointRobot-v0")
    parser.add_argument("--protocols", nargs="+", default=["zero-shot-v1", "online-v1"])
    parser.add_argument("--targets", nargs="+", default=["ckpt", "-2", "-4"])
    parser.add_argument("--episodes", type=int, default=None, help="override E (diagnostics)")
    args = parse_args(parser, argv, protocols=["zero-shot-v1"], targets=["ckpt", "-4"], episodes=1)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = _tiny_checkpoint(Path(tmp)) if args.tiny else args.checkpoint
        if not ckpt:
            parser.error("a checkpoint directory is required (or --tiny)")
        for line in sweep(ckpt, args.task, args.protocols, args.targets, args.episodes):
            print(line, flush=True)


if __name__ == "__main__":
    main()
