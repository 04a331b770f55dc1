"""Per-task returns of a results file, so that a mean does not hide the tasks a method fails.

Usage: python bench/per_task.py RESULT.json [--markdown]
       python bench/per_task.py --tiny

For each test task of the result's family (in the split's order) prints the task, its exact
random and oracle returns, the mean first-episode return, the final return (mean over the last
10% of episodes, as the leaderboard's "final"), its normalised value, and the lowest and highest
final return over the result's runs (a learned result: training runs, evaluation seeds averaged
within each; a reference agent: its evaluation seeds). Reads schema-1 and schema-2 files
(``.json`` or ``.json.gz``). Bandits have no per-task random/oracle return and are refused.
``--tiny`` first writes a result of the oracle on DarkRoom-v0 (3 episodes) and reads that.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _tiny import parse_args

from icrl_bench.eval.metrics import final_score, per_run
from icrl_bench.eval.results import upgrade
from icrl_bench.eval.scoring import is_bandit, with_runs_axis
from icrl_bench.leaderboard import SubmissionError, read_result
from icrl_bench.registry import reference_returns, tasks


def read(path: Path) -> dict[str, Any]:
    """A results document (``.json`` or ``.json.gz``, any schema version) as schema 2."""
    return upgrade(read_result(path))


def per_task(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per test task: task, random, oracle, first, final, normalised final, run range."""
    env_id = doc["env_id"]
    split = doc["tasks"]["split"]
    returns = with_runs_axis(np.asarray(doc["returns"], dtype=np.float64))  # [runs, seeds, T, E]
    ref = reference_returns(env_id, split)
    if "oracle" not in ref:
        raise LookupError(
            f"no expert references for {env_id} in this home "
            f"(make them: icrl-bench data references {env_id})"
        )
    split_tasks = getattr(tasks(env_id), split)
    # [runs, tasks]; a reference agent's evaluation seeds are its runs
    finals = per_run(final_score(returns), seeds_are_runs=doc.get("runs") is None)
    span = ref["oracle"] - ref["random"]
    rows = []
    for i, task in enumerate(split_tasks):
        final = float(finals[:, i].mean())
        rows.append(
            {
                "task": str(getattr(task, "goal", None) or task),
                "random": float(ref["random"][i]),
                "oracle": float(ref["oracle"][i]),
                "first": float(returns[:, :, i, 0].mean()),
                "final": final,
                "normalized": (final - float(ref["random"][i])) / float(span[i]),
                "low": float(finals[:, i].min()),
                "high": float(finals[:, i].max()),
            }
        )
    return rows


def oracle_result(path: Path) -> Path:
    """Write a small result to ``path``: the oracle on DarkRoom-v0, one seed, 3 episodes."""
    from icrl_bench import evaluate
    from icrl_bench.eval.agents import OracleAgent
    from icrl_bench.eval.results import build_result, write_result

    agent = OracleAgent()
    res = evaluate(agent, "DarkRoom-v0", "online-v1", seeds=[0], episodes=3)
    return write_result(build_result(res, agent.name, config={"agent": agent.name}), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("result", type=Path, nargs="?", help="required without --tiny")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parse_args(parser, argv)
    if args.tiny:
        args.result = oracle_result(Path(tempfile.mkdtemp()) / "oracle.json")
    elif args.result is None:
        parser.error("RESULT is required (or --tiny)")
    try:
        doc = read(args.result)
        rows = per_task(doc) if not is_bandit(doc["env_id"]) else []
    except (SubmissionError, KeyError, TypeError, ValueError) as err:
        print(f"per_task: {args.result} is not a readable result: {err}", file=sys.stderr)
        return 2
    except LookupError as err:
        print(f"per_task: {err}", file=sys.stderr)
        return 2
    if is_bandit(doc["env_id"]):
        print(f"per_task: {doc['env_id']} is a bandit: no per-task references", file=sys.stderr)
        return 2
    n_runs = len(doc["runs"]) if doc.get("runs") else len(doc["seeds"])
    print(
        f"{doc['method']} v{doc['method_version']} on {doc['env_id']} {doc['protocol']}, "
        f"{n_runs} runs, {doc['tasks']['split']} split"
    )
    if args.markdown:
        print("| task | random | oracle | first episode | final | normalised | runs: min-max |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['task']} | {r['random']:.2f} | {r['oracle']:.2f} | {r['first']:.2f} | "
                f"{r['final']:.2f} | {r['normalized']:.3f} | {r['low']:.2f}-{r['high']:.2f} |"
            )
    else:
        for r in rows:
            print(
                f"{r['task']:>12} random {r['random']:6.2f} oracle {r['oracle']:6.2f} "
                f"first {r['first']:6.2f} final {r['final']:6.2f} ({r['normalized']:+.3f}) "
                f"runs {r['low']:.2f}-{r['high']:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
