"""Env-steps per second of a simulator family's process-sharded vector env against one env.

Usage: python bench/sim_vector_throughput.py [--envs 16] [--seconds 10] [--ids ...] [--tiny]

The reference is the ordinary ``gym.make`` env stepped in a Python loop. The vector env holds
``--envs`` envs (one per test task), split over the calling process and one worker process
per other core (``ProcessVectorEnv``: actions and results in shared memory). Both draw
uniform-random actions and reset at the horizon. Prints both rates and their ratio for each
family. The ratio can pass the number of cores slightly: the reference steps through
Gymnasium's wrappers (time limit, order enforcing, env checker) and samples its actions from the
space one at a time, the vector env steps the envs directly with one batch of actions.
``--tiny``: 2 envs for 0.2 s each.
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np
from _tiny import parse_args

import icrl_bench
from icrl_bench.envs.process_vector import default_workers


def single_rate(env_id: str, seconds: float) -> float:
    """Steps per second of one env in a loop."""
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - start)


def vector_rate(env_id: str, num_envs: int, seconds: float) -> float:
    """Env-steps per second of the vector env with ``num_envs`` envs."""
    test = list(icrl_bench.tasks(env_id).test)
    chosen = [test[i % len(test)] for i in range(num_envs)]
    venv = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", tasks=chosen
    )
    venv.reset(seed=0)
    space = venv.single_action_space
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        act = rng.uniform(space.low, space.high, (num_envs, *space.shape)).astype(np.float32)
        venv.step(act)
        steps += num_envs
    rate = steps / (time.perf_counter() - start)
    venv.close()
    return rate


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--ids", nargs="+", default=["icrl_bench/HalfCheetahVel-v0", "icrl_bench/ML1-Reach-v0"]
    )
    args = parse_args(parser, envs=2, seconds=0.2)
    workers = default_workers(args.envs)
    print(
        f"cores: {os.cpu_count()}, vector envs: {args.envs}, worker processes: {workers} "
        f"(plus the calling process, which steps a share too)"
    )
    for env_id in args.ids:
        one = single_rate(env_id, args.seconds)
        many = vector_rate(env_id, args.envs, args.seconds)
        print(
            f"{env_id}: single env {one:,.0f} steps/s, vector env {many:,.0f} steps/s, "
            f"ratio {many / one:.2f}x"
        )


if __name__ == "__main__":
    main()
