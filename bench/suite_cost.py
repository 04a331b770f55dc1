"""Measured cost of a suite's training on this machine, in CPU-hours.

Usage: python bench/suite_cost.py [SUITE ...] [--updates 3] [--threads 2] [--flops] [--tiny]

For every distinct (baseline, family) of the suite's training jobs, trains the suite's exact
config (its overrides included, ``--smoke`` when the suite uses it) twice on a small dataset of
the same family, for 1 and for ``1 + updates`` updates, and takes the difference: seconds per
update at the published batch and model size, without start-up. Multiplied by the config's
``train.steps`` and the suite's training seeds, this gives the training cost; evaluation is
reported separately by the suite runner and is small beside it. The timing datasets are random
rollouts (the same shapes as the suite's data, generated in seconds); MuJoCo families use them
instead of SAC histories. Prints one line per config and the totals.

With ``--flops`` it also counts the floating-point operations of one update (forward and
backward, torch's ``FlopCounterMode``, at batch 2 times half the config's batch: the count is
linear in the batch) and prints each config's achieved FLOP/s on this CPU and the suite's total
FLOPs, the basis of docs/scaling.md's expected GPU time. Attention is counted through the math
backend (torch's counter does not see the CPU's fused kernel), over the full T x T score matrix.
``--no-timing`` counts without timing. ``--tiny`` times one update of the first baseline on the
suite's first family, to check the script runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _tiny import parse_args

from baselines.common.config import read_config
from baselines.methods import method as baseline
from icrl_bench import data
from icrl_bench.registry import family
from icrl_bench.suite import read_suite


def timing_dataset(fam: str, method: str, window: int) -> str:
    """A small dataset of ``fam`` whose histories hold a ``window``-step window."""
    spec = family(fam)
    needs_labels = baseline(method).needs_labels
    variant = "ad-eps" if needs_labels and spec.kind != "bandit" else "random"
    episodes = max(4, -(-window // spec.horizon) + 2)
    overrides = {"episodes": episodes, "tasks": 4, "histories": 2}
    if spec.kind == "bandit":
        overrides = {"tasks": 8, "histories": 2}
    # one seed per size: a dataset id names one recipe
    return data.generate(fam, variant, "smoke", seed=episodes, overrides=overrides)


def trainer(method: str, fam: str, sets: list[str], smoke: bool) -> tuple[Callable[..., None], int]:
    """A function training the config for ``steps`` updates (extra ``--set`` values allowed) in
    a throwaway directory, and the config's batch size."""
    train = baseline(method).train
    raw = read_config(method, fam, None, sets, smoke)
    model = raw["model"]
    window = int(model.get("context", 20)) + int(model.get("history", 0)) + 1
    dataset = timing_dataset(fam, method, window)

    def run(steps: int, *more: str) -> None:
        extra = [f"train.steps={steps}", "train.warmup_steps=1", "train.checkpoint_every=100000"]
        cfg = read_config(method, fam, None, [*sets, *extra, *more], smoke)
        with tempfile.TemporaryDirectory() as out:
            train(family(fam).env_id, dataset, cfg, out, progress=False)

    return run, int(raw["train"]["batch_size"])


def seconds_per_update(
    method: str, fam: str, sets: list[str], smoke: bool, updates: int, refine: bool = True
) -> float:
    """Seconds per training update of a config, start-up excluded (``refine``: time more
    updates where they are too fast to rise above start-up noise)."""
    run, _ = trainer(method, fam, sets, smoke)

    def timed(steps: int) -> float:
        start = time.perf_counter()
        run(steps)
        return time.perf_counter() - start

    base = timed(1)
    per = (timed(1 + updates) - base) / updates
    if (
        refine and per * updates < 5.0
    ):  # fast updates: time enough of them to rise above start-up noise
        more = min(200, max(updates, int(10.0 / max(per, 0.02))))
        per = (timed(1 + more) - base) / more
    return max(per, 0.0)


def flops_per_update(method: str, fam: str, sets: list[str], smoke: bool) -> float:
    """Floating-point operations of one training update (forward + backward) of a config."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    run, batch = trainer(method, fam, sets, smoke)

    def count(steps: int) -> int:
        # the counter does not see the CPU's fused attention kernel: count it as the math backend
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            run(steps, "train.batch_size=2")  # 2: paired batches need an even size
        return int(counter.get_total_flops())

    return float(count(2) - count(1)) * batch / 2


def main() -> None:
    """Measure every suite named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", default=["discrete", "continuous"])
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--families", nargs="*", default=None, help="only these families")
    parser.add_argument("--flops", action="store_true", help="also count FLOPs per update")
    parser.add_argument("--no-timing", action="store_true", help="count FLOPs only (with --flops)")
    args = parse_args(parser, updates=1)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("ICRL_BENCH_HOME", str(Path(tempfile.mkdtemp()) / "home"))
    for name in args.suites:
        doc = read_suite(name)
        seeds = len(doc.get("train_seeds", [0]))
        total, total_flops = 0.0, 0.0
        print(f"suite {name}: {seeds} training seed(s), {args.threads} threads")
        families = list(doc["families"].items())[: 1 if args.tiny else None]
        for fam, fs in families:
            if args.families and fam not in args.families:
                continue
            fs = fs or {}
            methods = fs.get("baselines") or doc.get("baselines") or []
            for method in methods[: 1 if args.tiny else None]:
                over = doc.get("overrides") or {}
                sets = [str(s) for k in ("all", method, f"{method}@{fam}") for s in over.get(k, [])]
                steps = int(
                    read_config(method, fam, None, sets, bool(doc.get("smoke")))["train"].get(
                        "steps", 10_000
                    )
                )
                smoke = bool(doc.get("smoke")) or args.tiny
                line = f"  {method:10} {fam:20}"
                per = 0.0
                if not args.no_timing:
                    per = seconds_per_update(
                        method, fam, sets, smoke, args.updates, refine=not args.tiny
                    )
                    hours = per * steps * seeds * args.threads / 3600
                    total += hours
                    line += f" {per:7.3f} s/update x {steps:>7} x {seeds} = {hours:8.2f} CPU-h"
                if args.flops:
                    flops = flops_per_update(method, fam, sets, smoke)
                    total_flops += flops * steps * seeds
                    line += f" {flops / 1e9:10.1f} GFLOP/update"
                    if per > 0:
                        line += f" ({flops / per / 1e9:.1f} GFLOP/s here)"
                print(line)
        if not args.no_timing:
            print(f"suite {name}: training {total:.1f} CPU-hours on this machine")
        if args.flops:
            print(f"suite {name}: training {total_flops / 1e18:.2f} EFLOP (forward + backward)")


if __name__ == "__main__":
    main()
