"""The ``icrl-bench`` command line.

Every subcommand reports bad input as one line on stderr (``icrl-bench: error: ...``) and exits
non-zero; tracebacks are only shown with ``ICRL_BENCH_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import icrl_bench
from baselines.common.config import read_config
from baselines.methods import METHODS, method
from icrl_bench import data
from icrl_bench.data.dataset import summary as dataset_summary
from icrl_bench.data.minari_export import export_minari
from icrl_bench.data.store import home
from icrl_bench.errors import IcrlBenchError
from icrl_bench.eval.agents import REFERENCE_AGENTS
from icrl_bench.eval.metrics import probability_of_improvement_ci
from icrl_bench.eval.scoring import headline_scores
from icrl_bench.leaderboard import migrate, read_result, render, submit, validate
from icrl_bench.registry import FAMILIES, family, reference_returns, tasks
from icrl_bench.suite import run_suite, summary_table
from icrl_bench.values import COUNT, SEED, Range
from icrl_bench.workflow import evaluate_to_file, parse_sets, references, train

Handler = Callable[[argparse.Namespace], int]


def _console() -> Console:
    # a pipe gets a fixed, wide table instead of rich's 80-column default
    width = None if sys.stdout.isatty() else 140
    return Console(highlight=False, soft_wrap=True, width=width)


# -- tasks -------------------------------------------------------------------------------------
def cmd_tasks_list(args: argparse.Namespace) -> int:
    """Print a table of every registered family with its split, horizon and reference scores."""
    table = Table(title="icrl-bench task families (reference returns: mean over the test split)")
    for col in ("id", "train/test", "horizon", "random", "oracle", "as in"):
        table.add_column(col, justify="right" if col in ("horizon", "random", "oracle") else "left")
    for spec in FAMILIES:
        if spec.measured_references:  # by rollouts, which take minutes: not for a listing
            random = oracle = "measured*"
        else:
            ref = reference_returns(spec.name)
            random, oracle = f"{ref['random'].mean():.3f}", f"{ref['oracle'].mean():.3f}"
        table.add_row(
            spec.env_id,
            f"{spec.split.n_train}/{spec.split.n_test}",
            str(spec.horizon),
            random,
            oracle,
            spec.as_in,
        )
    out = _console()
    out.print(table)
    out.print("* simulator families: `icrl-bench tasks show ID` measures and caches them")
    return 0


def cmd_tasks_show(args: argparse.Namespace) -> int:
    """Print a family's full spec, split source, split hashes and documentation."""
    spec = family(args.id)
    dist = tasks(spec.name)
    ref = reference_returns(spec.name)
    out = _console()
    out.print(f"[bold]{spec.env_id}[/bold]  ({spec.summary})")
    out.print(f"as in: {spec.as_in}")
    out.print(f"parameters: {json.dumps(spec.params)}")
    out.print(f"horizon: {spec.horizon}   headline metric: {spec.headline}")
    out.print(f"split: {len(dist.train)} train / {len(dist.test)} test; {dist.split_source}")
    out.print(f"split hashes: {dist.split_hashes()}")
    oracle = f"{ref['oracle'].mean():.4f}" if "oracle" in ref else "not trained yet"
    out.print(
        f"reference returns over the test split: random {ref['random'].mean():.4f}, oracle {oracle}"
    )
    out.print(f"first test task: {dist.test[0].to_json()}")
    out.print(spec.env_cls().__doc__ or "", markup=False)
    return 0


# -- data --------------------------------------------------------------------------------------
def cmd_data_generate(args: argparse.Namespace) -> int:
    """Generate a dataset from its recipe (parallel over local processes)."""

    dataset_id = data.generate(
        args.env_id,
        args.variant,
        scale=args.scale,
        seed=args.seed,
        workers=args.workers,
        overrides=parse_sets(args.set),
        force=args.force,
        progress=True,
    )
    ds = data.load(dataset_id)
    m = ds.manifest
    print(
        f"{dataset_id}: {m['counts']['transitions']:,} transitions, "
        f"{m['counts']['histories']} histories, {m['counts']['episodes']} episodes, "
        f"{m['provenance']['generation_seconds']} s"
    )
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    """Table of every complete dataset in the store."""

    table = Table(title=f"datasets in {data.store.datasets_root()}")
    rows = []
    for manifest in data.list_datasets():
        try:
            rows.append(dataset_summary(data.load(manifest["id"], verify=False)))
        except IcrlBenchError as exc:
            rows.append({"id": manifest.get("id", "?"), "variant": f"BROKEN: {exc}"})
    cols = ("id", "transitions", "histories", "episodes", "MB", "seconds")
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in cols))
    _console().print(table)
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    """Manifest summary and the mean return at each episode index."""

    ds = data.load(args.id)
    out = _console()
    for key, value in dataset_summary(ds).items():
        out.print(f"{key}: {value}")
    out.print(f"recipe: {json.dumps(ds.manifest['recipe'], sort_keys=True)}")
    out.print(f"optimal-action labels: {ds.has_optimal_actions}")
    if ds.manifest.get("floor_return") is not None:
        out.print(f"declared final (floor) return: {ds.manifest['floor_return']:.4f}")
    curve = ds.returns_by_episode_index()
    table = Table(title="return by episode index (mean +- std over histories)")
    for col in ("episode", "mean", "std", "histories"):
        table.add_column(col, justify="right")
    n = len(curve["mean"])
    shown = sorted(set(np.linspace(0, n - 1, num=min(n, 12)).round().astype(int).tolist()))
    for i in shown:
        table.add_row(
            str(i), f"{curve['mean'][i]:.3f}", f"{curve['std'][i]:.3f}", str(curve["count"][i])
        )
    out.print(table)
    return 0


def cmd_data_verify(args: argparse.Namespace) -> int:
    """Recompute checksums and check invariants; exit 1 naming the failure."""

    data.load(args.id, verify=False).verify()
    print(f"{args.id}: ok")
    return 0


def cmd_data_references(args: argparse.Namespace) -> int:
    """Measure (and cache) a simulator family's reference returns on its test split; for a
    locomotion family this trains its SAC experts."""

    spec = family(args.env_id)
    test = tasks(spec.name).test
    refs = references(spec.name, args.train_episodes)
    for i, task in enumerate(test):
        oracle = f"{refs['oracle'][i]:.2f}" if "oracle" in refs else "none"
        print(f"task {i}: random {refs['random'][i]:.2f}  oracle {oracle}  {task}")
    return 0


def cmd_data_export_minari(args: argparse.Namespace) -> int:
    """Write a dataset in Minari's format."""

    path = export_minari(args.id, args.minari_id)
    print(f"exported to {path}")
    return 0


# -- evaluate / submit / leaderboard ------------------------------------------------------------
def _summary_line(summary: dict[str, Any]) -> str:
    if "unscored" in summary:
        raw = summary["final_return"]["mean"]
        return f"final-episode return mean {raw:.3f} (raw; not normalised: {summary['unscored']})"
    parts = []
    for name in ("normalized_final", "nauc", "regret", "success_rate"):
        if name in summary:
            agg = summary[name]
            parts.append(
                f"{name} IQM {agg['iqm']:.3f} [{agg['iqm_low']:.3f}, {agg['iqm_high']:.3f}]"
            )
    return "; ".join(parts)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate an agent (or several training runs of one method) under a protocol and write
    one results file."""
    path, doc, summary = evaluate_to_file(
        args.agent,
        args.task,
        args.protocol,
        args.seeds,
        args.out,
        args.episodes,
        args.notes,
        args.allow_partial,
    )
    runs = doc["runs"]
    if isinstance(runs, list):
        count = f"{len(runs)} training run{'s' if len(runs) != 1 else ''} x {len(args.seeds)} "
        count += "evaluation seeds"
    else:
        count = f"a reference agent: its {len(args.seeds)} evaluation seeds are its runs"
    print(f"wrote {path} ({count})")
    print(_summary_line(summary))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate results files and append their rows to the leaderboard."""

    # check every file first, so that one bad file in a batch submits none of them
    checked = [validate(read_result(result)) for result in args.results]
    for result, v in zip(args.results, checked, strict=True):
        track, row = submit(result, args.leaderboard_dir, validated=v)
        print(f"submitted {row['method']} ({row['result_id']}) to {track}")
    return 0


BASELINES = tuple(METHODS)


def cmd_train(args: argparse.Namespace) -> int:
    """Train a baseline on a dataset and write its checkpoint directory; with ``--seeds``, one
    independent training run per seed, each in ``<out>/seed<N>``."""
    spec = family(args.task)
    if args.seeds is not None and len(set(args.seeds)) != len(args.seeds):
        raise IcrlBenchError("--seeds repeats a seed: each training run needs its own")
    out = Path(
        args.out
        or home() / "checkpoints" / args.method / spec.name / args.dataset.replace("/", "__")
    )
    baseline = method(args.method)
    if args.seeds is None:
        runs = [(list(args.set), out)]
    else:
        runs = [([*args.set, f"train.seed={seed}"], out / f"seed{seed}") for seed in args.seeds]
    # every config is read first, so that a bad value fails before any training starts
    raws = [read_config(args.method, spec.name, args.config, sets, args.smoke) for sets, _ in runs]
    paths = []
    for raw, (_, run_out) in zip(raws, runs, strict=True):
        path = baseline.train(
            spec.env_id, args.dataset, raw, run_out, progress=not args.no_progress
        )
        print(f"checkpoint: {path}")
        paths.append(str(path))
    if len(paths) > 1:
        print(f"evaluate the runs as one result: icrl-bench evaluate --agent {' '.join(paths)} ...")
    return 0


def cmd_run_suite(args: argparse.Namespace) -> int:
    """Run a baseline suite and print its summary; non-zero when a job failed."""
    report = run_suite(
        args.suite,
        run_dir=args.run_dir,
        executor=args.executor,
        workers=args.workers,
        resume=args.resume,
        leaderboard_dir=args.leaderboard_dir,
        address=args.address,
        progress=not args.no_progress,
        tiny_run=args.tiny,
    )
    print(summary_table(report))
    return 0 if report.ok else 1


def cmd_compare(args: argparse.Namespace) -> int:
    """Probability of improvement of result A over result B on their track's headline."""

    a, b = (validate(read_result(path)) for path in (args.a, args.b))
    if a.track != b.track:
        raise IcrlBenchError(f"results are on different tracks: {a.track} and {b.track}")
    protocol = a.result["protocol"]
    score_a, score_b = (
        headline_scores(v.spec.name, protocol, v.returns, v.actions, v.reference) for v in (a, b)
    )
    p, low, high = probability_of_improvement_ci(score_a, score_b)
    name_a, name_b = (f"{v.doc['method']} v{v.doc['method_version']}" for v in (a, b))
    print(
        f"{a.track}: P({name_a} > {name_b}) = {p:.3f} [{low:.3f}, {high:.3f}] "
        f"({a.runs} vs {b.runs} runs)"
    )
    return 0


def cmd_leaderboard_migrate(args: argparse.Namespace) -> int:
    """Rewrite track CSVs of the layout before training runs were counted."""

    done = migrate(args.leaderboard_dir)
    for track in done:
        print(f"migrated {track}")
    print(f"{len(done)} track(s) migrated")
    return 0


def cmd_leaderboard_render(args: argparse.Namespace) -> int:
    """Regenerate the leaderboard README and plots."""

    path = render(args.leaderboard_dir, args.plots_dir, plots=not args.no_plots)
    print(f"rendered {path}")
    return 0


# -- quickstart --------------------------------------------------------------------------------
def cmd_quickstart(args: argparse.Namespace) -> int:
    """The main job on DarkRoom-v0, end to end: the reference agents under online-v1, then a
    small Algorithm Distillation model trained ``--runs`` times (independent training seeds) on
    improving learning histories and evaluated the same way as one result; every result is
    submitted to a fresh leaderboard, whose rendered table is printed with the in-context
    learning curves."""

    env_id = "icrl_bench/DarkRoom-v0"
    work = home() / "quickstart"
    shutil.rmtree(work, ignore_errors=True)
    board = work / "leaderboards"
    seeds = list(range(args.seeds))
    out = _console()
    start = time.perf_counter()
    out.print(
        f"quickstart: {env_id}, online-v1, {len(tasks(env_id).test)} held-out goals x "
        f"{args.seeds} evaluation seeds x 100 episodes"
    )
    curves: dict[str, list[float]] = {}
    for agent in ["random", "oracle", "qlearning"]:
        path, _, summary = evaluate_to_file(
            agent, env_id, "online-v1", seeds, str(work / "results" / f"{agent}.json")
        )
        submit(path, board)
        curves[agent] = summary["normalized_curve"]
        out.print(f"  {agent:>9}: {_summary_line(summary)}")
    if not args.no_train:
        variant, scale = QUICKSTART_DATA
        dataset = data.generate("DarkRoom-v0", variant, scale, seed=0)
        out.print(
            f"dataset {dataset}; training AD: {args.runs} independent runs of {args.steps} updates"
        )
        runs = []
        for seed in range(args.runs):
            sets = [f"train.steps={args.steps}", f"train.seed={seed}", *QUICKSTART_AD]
            ckpt = work / "checkpoints" / "ad" / f"seed{seed}"
            runs.append(str(train("ad", env_id, dataset, ckpt, sets, progress=True)))
        path, _, summary = evaluate_to_file(
            runs,
            env_id,
            "online-v1",
            seeds,
            str(work / "results" / "ad.json"),
            notes=f"quickstart budget: {args.steps} updates of 64 per run",
        )
        submit(path, board)
        curves["ad"] = summary["normalized_curve"]
        out.print(f"  {'ad':>9}: {_summary_line(summary)}")
    out.print(_curve_table(curves))
    readme = render(board, work / "plots")
    out.print(f"\nleaderboard ({readme}), {time.perf_counter() - start:.0f} s:\n")
    out.print(readme.read_text(), markup=False)
    return 0


def _curve_table(curves: dict[str, list[float]]) -> Table:
    """The in-context learning curves (mean normalised return per episode) at a few episodes."""
    table = Table(title="in-context learning: normalized return by episode (mean over goals)")
    table.add_column("episode", justify="right")
    for name in curves:
        table.add_column(name, justify="right")
    n = len(next(iter(curves.values())))
    for e in sorted({1, 2, 5, 10, 20, 40, 60, 80, n}):
        if e <= n:
            table.add_row(str(e), *(f"{c[e - 1]:.2f}" for c in curves.values()))
    return table


#: the quickstart's AD data: DICP-style improving Q-learning histories (``data generate
#: DarkRoom-v0 --variant histories --scale streams``)
QUICKSTART_DATA = ("histories", "streams")

#: the quickstart's AD settings on top of the shipped DarkRoom-v0 config
QUICKSTART_AD = [
    "train.checkpoint_every=1000",
    "train.log_every=100",
]


# -- parser ------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``icrl-bench: error: ...``, exit 2),
    like every other error of the CLI; ``--help`` still prints the usage."""

    def error(self, message: str) -> Any:  # argparse's signature is NoReturn
        prog = self.prog.split()[1:] if self.prog.startswith("icrl-bench") else [self.prog]
        where = f"{' '.join(prog)}: " if prog else ""
        self.exit(2, f"icrl-bench: error: {where}{message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``icrl-bench`` argument parser."""
    parser = _Parser(prog="icrl-bench", description="In-context RL benchmark suite.")
    parser.add_argument("--version", action="version", version=icrl_bench.__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_tasks = sub.add_parser("tasks", help="list and inspect registered task families")
    tsub = p_tasks.add_subparsers(dest="tasks_command", required=True)
    tsub.add_parser("list", help="table of every family").set_defaults(func=cmd_tasks_list)
    p_show = tsub.add_parser("show", help="full spec and docs of one family")
    p_show.add_argument("id", help="e.g. icrl_bench/DarkRoom-v0 or DarkRoom-v0")
    p_show.set_defaults(func=cmd_tasks_show)

    p_data = sub.add_parser("data", help="generate, inspect, verify and export datasets")
    dsub = p_data.add_subparsers(dest="data_command", required=True)
    p_gen = dsub.add_parser("generate", help="generate a dataset from its recipe")
    p_gen.add_argument("env_id")
    p_gen.add_argument("--variant", required=True, help="histories, ad-eps, noisy-mix, ...")
    p_gen.add_argument("--scale", default="smoke", help="smoke or paper")
    p_gen.add_argument("--seed", type=_seed, default=0)
    p_gen.add_argument("--workers", type=_positive_int, default=None)
    p_gen.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p_gen.add_argument("--force", action="store_true", help="regenerate if it exists")
    p_gen.set_defaults(func=cmd_data_generate)
    dsub.add_parser("list", help="every dataset in the store").set_defaults(func=cmd_data_list)
    for name, func, text in (
        ("show", cmd_data_show, "manifest summary and returns per episode index"),
        ("verify", cmd_data_verify, "recompute checksums and check invariants"),
    ):
        p = dsub.add_parser(name, help=text)
        p.add_argument("id")
        p.set_defaults(func=func)
    p_ref = dsub.add_parser(
        "references", help="measure a simulator family's test-split references (SAC experts)"
    )
    p_ref.add_argument("env_id")
    p_ref.add_argument(
        "--train-episodes",
        type=_positive_int,
        default=500,
        help="SAC training episodes per test task (locomotion)",
    )
    p_ref.set_defaults(func=cmd_data_references)
    p_exp = dsub.add_parser("export-minari", help="write the dataset in Minari's format")
    p_exp.add_argument("id")
    p_exp.add_argument("--minari-id", default=None, help="Minari dataset id to write")
    p_exp.set_defaults(func=cmd_data_export_minari)

    p_eval = sub.add_parser("evaluate", help="evaluate an agent under a protocol")
    p_eval.add_argument(
        "--agent",
        required=True,
        nargs="+",
        help=f"{'|'.join(REFERENCE_AGENTS)}, or the checkpoint directories of one method's "
        "independent training runs (same config and dataset, different training seeds): one "
        "result with all of them",
    )
    p_eval.add_argument("--task", required=True, help="e.g. icrl_bench/DarkRoom-v0")
    p_eval.add_argument("--protocol", default="online-v1", help="online-v1, offline-prompt-v1, ...")
    p_eval.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2])
    p_eval.add_argument("--out", default=None, help="results file (default results/...json)")
    p_eval.add_argument(
        "--episodes", type=_positive_int, default=None, help="override E (not submittable)"
    )
    p_eval.add_argument("--notes", default="", help="free text shown on the leaderboard")
    p_eval.add_argument(
        "--allow-partial",
        action="store_true",
        help="evaluate runs whose training stopped early (the result is marked partial)",
    )
    p_eval.set_defaults(func=cmd_evaluate)

    p_train = sub.add_parser("train", help="train a baseline on a dataset")
    p_train.add_argument("method", choices=BASELINES)
    p_train.add_argument("--task", required=True, help="e.g. icrl_bench/DarkRoom-v0")
    p_train.add_argument("--dataset", required=True, help="a dataset id (icrl-bench data list)")
    p_train.add_argument("--config", default=None, help="a config file (default: the shipped one)")
    p_train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. train.lr=1e-3"
    )
    p_train.add_argument("--smoke", action="store_true", help="apply the config's smoke budget")
    p_train.add_argument(
        "--seeds",
        type=_seed,
        nargs="+",
        default=None,
        help="train one independent run per seed (train.seed), each in <out>/seed<N>",
    )
    p_train.add_argument("--out", default=None, help="checkpoint directory")
    p_train.add_argument("--no-progress", action="store_true")
    p_train.set_defaults(func=cmd_train)

    p_sub = sub.add_parser("submit", help="validate results files and append them to tracks")
    p_sub.add_argument("results", nargs="+")
    p_sub.add_argument("--leaderboard-dir", default=None, help="default ./leaderboards")
    p_sub.set_defaults(func=cmd_submit)

    p_suite = sub.add_parser(
        "run-suite", help="run a baseline suite: datasets, training, evaluation, submission"
    )
    p_suite.add_argument(
        "suite",
        help="a shipped suite (smoke, discrete-cpu, discrete, continuous-cpu, continuous) or a "
        "YAML file",
    )
    p_suite.add_argument("--executor", choices=("local", "ray"), default="local")
    p_suite.add_argument(
        "--workers", type=_positive_int, default=2, help="parallel jobs (default 2)"
    )
    p_suite.add_argument("--resume", action="store_true", help="skip jobs already finished")
    p_suite.add_argument("--run-dir", default=None, help="default $ICRL_BENCH_HOME/suites/<name>")
    p_suite.add_argument("--leaderboard-dir", default=None, help="default ./leaderboards")
    p_suite.add_argument(
        "--address", default=None, help="Ray cluster address (default: start a local one)"
    )
    p_suite.add_argument(
        "--tiny",
        action="store_true",
        help="run every job at the smallest size (smoke data, 20 updates): checks a suite "
        "meant for a GPU cluster end to end on a CPU, into its own run directory and leaderboard",
    )
    p_suite.add_argument("--no-progress", action="store_true")
    p_suite.set_defaults(func=cmd_run_suite)

    p_cmp = sub.add_parser(
        "compare", help="probability that result A beats result B on a random test task"
    )
    p_cmp.add_argument("a", help="results file of method A")
    p_cmp.add_argument("b", help="results file of method B (same track)")
    p_cmp.set_defaults(func=cmd_compare)

    p_lb = sub.add_parser("leaderboard", help="render the leaderboard")
    lsub = p_lb.add_subparsers(dest="leaderboard_command", required=True)
    p_render = lsub.add_parser("render", help="regenerate leaderboards/README.md and the plots")
    p_render.add_argument("--leaderboard-dir", default=None, help="default ./leaderboards")
    p_render.add_argument(
        "--plots-dir", default=None, help="default <leaderboard dir>/../docs/leaderboard"
    )
    p_render.add_argument("--no-plots", action="store_true")
    p_render.set_defaults(func=cmd_leaderboard_render)
    p_migrate = lsub.add_parser(
        "migrate", help="add runs and superseded_by to track CSVs of the older layout"
    )
    p_migrate.add_argument("--leaderboard-dir", default=None, help="default ./leaderboards")
    p_migrate.set_defaults(func=cmd_leaderboard_migrate)

    p_quick = sub.add_parser("quickstart", help="run the main job end to end on DarkRoom-v0")
    p_quick.add_argument("--seeds", type=_positive_int, default=3, help="evaluation seeds")
    p_quick.add_argument(
        "--runs", type=_positive_int, default=3, help="independent AD training runs (default 3)"
    )
    p_quick.add_argument(
        "--steps", type=_positive_int, default=500, help="AD updates per run (default 500)"
    )
    p_quick.add_argument("--no-train", action="store_true", help="reference agents only")
    p_quick.set_defaults(func=cmd_quickstart)
    return parser


def _ranged_int(valid: Range, what: str) -> Callable[[str], int]:
    """An argparse type: an integer that ``valid`` accepts, else ``expected <what>``."""

    def parse(text: str) -> int:
        try:
            return int(valid.check("value", int(text)))
        except ValueError:  # not an integer, or out of range (ValueRangeError is a ValueError)
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    return parse


_positive_int = _ranged_int(COUNT, "a positive integer")
_seed = _ranged_int(SEED, "a seed in [0, 2**32)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``icrl-bench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except (IcrlBenchError, ValueError, OSError) as exc:
        if os.environ.get("ICRL_BENCH_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"icrl-bench: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("icrl-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
