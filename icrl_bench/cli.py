"""The ``icrl-bench`` command line.

Every subcommand reports bad input as one line on stderr (``icrl-bench: error: ...``) and exits
non-zero; tracebacks are only shown with ``ICRL_BENCH_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

import icrl_bench
from icrl_bench.errors import IcrlBenchError
from icrl_bench.registry import FAMILIES, family, reference_returns, tasks

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
        dist = tasks(spec.name)
        ref = reference_returns(spec.name)
        table.add_row(
            spec.env_id,
            f"{len(dist.train)}/{len(dist.test)}",
            str(spec.horizon),
            f"{ref['random'].mean():.3f}",
            f"{ref['oracle'].mean():.3f}",
            spec.as_in,
        )
    _console().print(table)
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
    out.print(
        f"reference returns over the test split: random {ref['random'].mean():.4f}, "
        f"oracle {ref['oracle'].mean():.4f}"
    )
    out.print(f"first test task: {dist.test[0].to_json()}")
    out.print(spec.env_cls().__doc__ or "", markup=False)
    return 0


# -- quickstart --------------------------------------------------------------------------------
def cmd_quickstart(args: argparse.Namespace) -> int:
    """Run the oracle and the uniform-random policy on the DarkRoom-v0 test split."""
    import gymnasium as gym

    env_id = "icrl_bench/DarkRoom-v0"
    test = tasks(env_id).test
    ref = reference_returns(env_id)
    out = _console()
    out.print(f"quickstart: {env_id}, {len(test)} test tasks x {args.episodes} episodes")
    for policy in ("random", "oracle"):
        env = gym.make_vec(
            env_id, num_envs=len(test), vectorization_mode="vector_entry_point", tasks=list(test)
        )
        returns = _rollout(env, policy, args.episodes, seed=args.seed)
        env.close()
        out.print(
            f"  {policy:>6}: mean return {returns.mean():7.3f}   "
            f"(exact reference {ref[policy].mean():7.3f})"
        )
    return 0


def _rollout(env: object, policy: str, episodes: int, seed: int) -> np.ndarray:
    """Returns ``[num_envs, episodes]`` of ``policy`` in a vector env (same-step resets off)."""
    import gymnasium as gym

    assert isinstance(env, gym.vector.VectorEnv)
    n = env.num_envs
    rng = np.random.default_rng(seed)
    returns = np.zeros((n, episodes))
    env.reset(seed=seed)
    for ep in range(episodes):
        done = np.zeros(n, dtype=bool)
        while not done.all():
            if policy == "oracle":
                actions = env.unwrapped.oracle_action()  # type: ignore[attr-defined]
            else:
                actions = rng.integers(env.single_action_space.n, size=n)  # type: ignore[attr-defined]
            _, rew, term, trunc, _ = env.step(actions)
            returns[:, ep] += np.where(done, 0.0, rew)
            done |= term | trunc
        if ep + 1 < episodes:
            _obs, _ = env.reset()
    return returns


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The full ``icrl-bench`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="icrl-bench", description="In-context RL benchmark suite."
    )
    parser.add_argument("--version", action="version", version=icrl_bench.__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_tasks = sub.add_parser("tasks", help="list and inspect registered task families")
    tsub = p_tasks.add_subparsers(dest="tasks_command", required=True)
    tsub.add_parser("list", help="table of every family").set_defaults(func=cmd_tasks_list)
    p_show = tsub.add_parser("show", help="full spec and docs of one family")
    p_show.add_argument("id", help="e.g. icrl_bench/DarkRoom-v0 or DarkRoom-v0")
    p_show.set_defaults(func=cmd_tasks_show)

    p_quick = sub.add_parser("quickstart", help="run the main job end to end on DarkRoom-v0")
    p_quick.add_argument("--episodes", type=_positive_int, default=10)
    p_quick.add_argument("--seed", type=int, default=0)
    p_quick.set_defaults(func=cmd_quickstart)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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
