"""Time to in-context learning: train on DarkRoom-v0 and evaluate online-v1 at fixed intervals.

Usage: python bench/time_to_icl.py {ad,dpt} [--set KEY=VALUE ...] [--eval-every 1000]
       [--seeds 0 1 2] [--threshold 0.5] [--train-goals] [--keep-going] [--threads 2]
       [--family DarkRoom-v0 --dataset ID --protocol online-v1] [--tiny]

Trains the shipped DarkRoom-v0 config of AD or DPT (with ``--set`` overrides) on its training
dataset, which is generated first if the store lacks it (the recipe named by the config's
``dataset`` comment below: ``DATASETS``). Every ``--eval-every`` updates the model is evaluated
under ``online-v1`` (100 episodes on each of the 16 held-out test goals, for each evaluation
seed) and one line is printed: the update, the training wall time so far (evaluation time
excluded), the normalised final score (mean over seeds x tasks) and NAUC, and with
``--train-goals`` the same on the 65 training goals, so that the generalisation gap shows.

The result is the training wall time at which the normalised final score first reaches
``--threshold`` (target: 15 minutes on 2 cores), printed with its ratio to the target; the run
stops there unless ``--keep-going``. Dataset generation is timed separately and not counted.

``--family`` (with ``--dataset`` and ``--protocol``) runs the same loop on another family's
shipped config, to measure a recipe's learning curve there; bandit lines add the mean
cumulative regret.

``--tiny`` trains the smoke config on smoke data for 2 updates and evaluates 3 episodes after
each, with a threshold every model reaches: it checks that the script runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _tiny import parse_args
from torch import nn

FAMILY = "DarkRoom-v0"
TARGET_MINUTES = 15.0
#: method -> (variant, scale, recipe overrides) of the training dataset
DATASETS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "dpt": ("uniform-rollin", "paper", {"episodes": 2000}),
    "ad": ("histories", "streams", {}),
}


class Reached(Exception):
    """Raised from the evaluation hook to stop training once the threshold is reached."""


def scores(
    agent: Any, family: str, protocol: str, seeds: list[int], split: str, episodes: int | None
) -> tuple[float, float, np.ndarray, float | None]:
    """Normalised final score, NAUC (means over seeds x tasks), per-task final returns, and the
    mean cumulative regret on bandits (``episodes``: the protocol's when ``None``)."""
    from icrl_bench.eval import evaluate
    from icrl_bench.eval.metrics import final_score

    res = evaluate(agent, family, protocol, seeds=seeds, split=split, episodes=episodes)
    m = res.metrics()
    final = final_score(res.returns).mean(axis=0)
    regret = m["regret"]["mean"] if "regret" in m else None
    return m["normalized_final"]["mean"], m["nauc"]["mean"], final, regret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=sorted(DATASETS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--dataset", default=None, help="a dataset id instead of the default")
    parser.add_argument("--eval-every", type=int, default=1000, help="updates between evaluations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--train-goals", action="store_true", help="also evaluate train goals")
    parser.add_argument("--keep-going", action="store_true", help="train to the config's end")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="checkpoint directory (default: temporary)")
    parser.add_argument("--json", default=None, help="write the evaluation records here")
    parser.add_argument("--family", default=FAMILY, help="another family (needs --dataset)")
    parser.add_argument("--protocol", default="online-v1")
    # tiny: the threshold every model reaches, after each of 2 updates
    args = parse_args(parser, eval_every=1, seeds=[0], threshold=-1e9)
    episodes = 3 if args.tiny else None
    if args.tiny:
        args.set = [*args.set, "train.steps=2"]
    torch.set_num_threads(args.threads)
    os.environ.setdefault("ICRL_BENCH_HOME", tempfile.mkdtemp())

    from baselines.common.config import read_config
    from baselines.methods import method
    from icrl_bench import data

    spec = method(args.method)
    recipe = spec.load_recipe()
    every = f"train.checkpoint_every={args.eval_every}"
    fam = args.family
    if fam != FAMILY and args.dataset is None:
        parser.error("--family needs --dataset")
    raw = read_config(args.method, fam, sets=[*args.set, every], smoke=args.tiny)
    dataset = args.dataset
    t0 = time.perf_counter()
    if dataset is None:
        variant, scale, overrides = DATASETS[args.method]
        if args.tiny:
            scale, overrides = "smoke", {}
        dataset = data.generate(fam, variant, scale, seed=0, overrides=overrides)
    data_seconds = time.perf_counter() - t0
    print(
        f"{args.method} on {fam} ({args.protocol}): dataset {dataset} "
        f"({data_seconds:.0f} s, not counted); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"config: {json.dumps({k: raw[k] for k in ('model', 'train')})}")
    records: list[dict[str, Any]] = []
    clock: dict[str, Any] = {"train": 0.0, "since": time.perf_counter(), "reached": None}

    def on_save(step: int, model: nn.Module) -> None:
        clock["train"] += time.perf_counter() - clock["since"]
        agent = recipe.agent(model)
        record: dict[str, Any] = {"step": step, "train_seconds": round(clock["train"], 1)}
        nf, nauc, per_goal, regret = scores(agent, fam, args.protocol, args.seeds, "test", episodes)
        record.update(normalized_final=nf, nauc=nauc, per_goal=per_goal.round(2).tolist())
        line = (
            f"step {step:6d}  train {clock['train'] / 60:6.2f} min  test: normalized final "
            f"{nf:6.3f}  NAUC {nauc:6.3f}"
        )
        if regret is not None:
            record["regret"] = regret
            line += f"  regret {regret:6.2f}"
        if args.train_goals:
            tnf, tnauc, _, _ = scores(agent, fam, args.protocol, args.seeds[:1], "train", episodes)
            record.update(train_normalized_final=tnf, train_nauc=tnauc)
            line += f"  | train goals: {tnf:6.3f}  NAUC {tnauc:6.3f}"
        print(line, flush=True)
        if len(per_goal) <= 32:
            print(f"    per test task (final return): {per_goal.round(1).tolist()}", flush=True)
        records.append(record)
        if clock["reached"] is None and nf >= args.threshold:
            clock["reached"] = clock["train"]
            if not args.keep_going:
                raise Reached
        clock["since"] = time.perf_counter()

    out = Path(args.out or tempfile.mkdtemp())
    with contextlib.suppress(Reached):
        recipe.fit(spec.name, fam, dataset, raw, out, progress=False, on_save=on_save)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    reached = clock["reached"]
    if reached is None:
        print(
            f"normalized final never reached {args.threshold} "
            f"(best {max(r['normalized_final'] for r in records):.3f} in "
            f"{clock['train'] / 60:.1f} min of training)"
        )
    else:
        minutes = reached / 60
        print(
            f"time to normalized final >= {args.threshold}: {minutes:.1f} min of training "
            f"(target {TARGET_MINUTES:.0f} min): ratio {minutes / TARGET_MINUTES:.2f}"
        )


if __name__ == "__main__":
    main()
