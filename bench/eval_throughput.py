"""Evaluation throughput: the batched runner against a per-task sequential loop.

Usage: python bench/eval_throughput.py [--seeds 3] [--repeats 3] [--tiny]

Both evaluate the oracle on every DarkRoom-v0 test task under ``online-v1`` (100 episodes of 20
steps per task) for the given seeds (3 is the leaderboard minimum):

* batched: ``icrl_bench.evaluate``, which runs all seeds x test tasks as one vector env;
* loop: the way most ICRL code evaluates, one ``gym.make`` env per (seed, task), stepped episode
  by episode in a Python loop with the env's own ``oracle_action()``.

It checks that both give the same returns, then prints env-steps per second (best of
``--repeats``) and their ratio (target >= 20x). ``--tiny``: one seed, one repeat, 3 episodes.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from _tiny import parse_args

import icrl_bench
from icrl_bench.eval.agents import OracleAgent
from icrl_bench.eval.runner import _env_seeds

ENV_ID = "icrl_bench/DarkRoom-v0"
PROTOCOL = "online-v1"


def batched(seeds: list[int], episodes: int) -> tuple[np.ndarray, float]:
    """Returns ``[seeds, tasks, episodes]`` and seconds of the batched runner."""
    start = time.perf_counter()
    res = icrl_bench.evaluate(OracleAgent(), ENV_ID, PROTOCOL, seeds=seeds, episodes=episodes)
    return res.returns, time.perf_counter() - start


def loop(seeds: list[int], episodes: int) -> tuple[np.ndarray, float]:
    """Returns and seconds of one env per (seed, task) in a plain Python loop."""
    test = icrl_bench.tasks(ENV_ID).test
    returns = np.zeros((len(seeds), len(test), episodes))
    start = time.perf_counter()
    for k, seed in enumerate(seeds):
        for i, (task, env_seed) in enumerate(zip(test, _env_seeds(seed, len(test)), strict=True)):
            env = gym.make(ENV_ID, task=task)
            env.reset(seed=env_seed)
            for e in range(episodes):
                if e:
                    env.reset()
                done = False
                while not done:
                    _, reward, terminated, truncated, _ = env.step(env.unwrapped.oracle_action())
                    returns[k, i, e] += reward
                    done = terminated or truncated
            env.close()
    return returns, time.perf_counter() - start


def main() -> None:
    """Time both and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parse_args(parser, seeds=1, repeats=1)
    seeds = list(range(args.seeds))
    episodes = (
        3 if args.tiny else icrl_bench.eval.protocols.setting("DarkRoom-v0", PROTOCOL).episodes
    )
    steps = len(seeds) * len(icrl_bench.tasks(ENV_ID).test) * episodes * 20

    fast = [batched(seeds, episodes) for _ in range(args.repeats)]
    slow = [loop(seeds, episodes) for _ in range(args.repeats)]
    if not np.array_equal(fast[0][0], slow[0][0]):
        raise SystemExit("batched and loop returns differ")
    fast_rate = steps / min(t for _, t in fast)
    slow_rate = steps / min(t for _, t in slow)
    print(f"{ENV_ID} {PROTOCOL}, oracle, {len(seeds)} seeds x 16 test tasks x {episodes} episodes")
    print(f"batched runner:    {fast_rate:12,.0f} env-steps/s ({steps:,} steps)")
    print(f"per-task loop:     {slow_rate:12,.0f} env-steps/s")
    print(f"ratio: {fast_rate / slow_rate:.0f}x (target >= 20x); returns identical")


if __name__ == "__main__":
    main()
