"""Transitions generated per second: vectorised recipes against a plain per-env Python loop.

Usage: python bench/data_throughput.py [--tiny]

For ``ad-eps`` (noisy oracle) and ``histories`` (tabular Q-learning) on DarkRoom-v0, the
vectorised source (``icrl_bench.data.sources.collect``: all tasks x histories as one NumPy batch)
is timed against the same algorithm written the usual way: one ``gym.make`` env per history,
stepped in a Python loop with a NumPy Q-table. Prints both rates and their ratio (target >= 50x).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
from _tiny import parse_args

import icrl_bench
from icrl_bench.data.sources import collect
from icrl_bench.registry import family

ENV_ID = "icrl_bench/DarkRoom-v0"


def source(variant: str) -> tuple[str, dict[str, Any]]:
    """The source learner of a dataset variant on DarkRoom-v0, and its parameters."""
    found = family(ENV_ID).source(variant)
    assert found is not None, variant
    return found[0], dict(found[1])


def vectorised(variant: str, tasks: tuple, histories: int, episodes: int) -> float:
    """Transitions per second of the vectorised source."""
    learner, params = source(variant)
    start = time.perf_counter()
    out = collect(ENV_ID, tasks, histories, episodes, learner, params, seed=[0])
    return len(out.actions) / (time.perf_counter() - start)


def loop(variant: str, tasks: tuple, histories: int, episodes: int) -> float:
    """Transitions per second of one env per history in a plain Python loop."""
    rng = np.random.default_rng(0)
    learner, params = source(variant)
    steps = 0
    start = time.perf_counter()
    for task in tasks:
        for _ in range(histories):
            env = gym.make(ENV_ID, task=task)
            q = np.zeros((81, 5))
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            horizon = env.spec.max_episode_steps
            for ep in range(episodes):
                for t in range(horizon):
                    if learner == "noisy-oracle":
                        frac = min((ep * horizon + t) / (episodes * horizon) / 0.9, 1.0)
                        eps = 1.0 + (params["eps_floor"] - 1.0) * frac
                        explore = rng.random() < eps
                        action = rng.integers(5) if explore else env.unwrapped.oracle_action()
                    else:
                        frac = min((ep + 1) / (params["decay_fraction"] * episodes), 1.0)
                        eps = 1.0 + (params["eps_end"] - 1.0) * frac
                        row = q[obs]
                        best = np.flatnonzero(row == row.max())
                        action = rng.integers(5) if rng.random() < eps else rng.choice(best)
                    nxt, rew, term, trunc, _ = env.step(int(action))
                    if learner != "noisy-oracle":
                        target = rew + params["gamma"] * (0.0 if term else q[nxt].max())
                        q[obs, action] += params["lr"] * (target - q[obs, action])
                    obs = nxt
                    steps += 1
                    if term or trunc:
                        obs, _ = env.reset()
                        break
    return steps / (time.perf_counter() - start)


def main() -> None:
    """Print the rates and ratios for both recipes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = parse_args(parser)
    train = icrl_bench.tasks(ENV_ID).train
    # (histories, episodes) of the vectorised source and of the loop
    sizes = ((2, 4), (1, 2)) if args.tiny else ((20, 100), (2, 50))
    for variant in ("ad-eps", "histories"):
        fast = vectorised(variant, train, *sizes[0])
        slow = loop(variant, train[:4], *sizes[1])
        print(
            f"{variant:>9}: vectorised {fast:,.0f} transitions/s "
            f"({len(train)} tasks x {sizes[0][0]} histories); "
            f"per-env loop {slow:,.0f} transitions/s; ratio {fast / slow:.0f}x (target >= 50x)"
        )


if __name__ == "__main__":
    main()
