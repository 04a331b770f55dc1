"""Env-steps per second: batched DarkRoom-v0 (4096 envs) against a plain single-env loop.

Usage: python bench/env_throughput.py [--num-envs 4096] [--seconds 3] [--tiny]

Both sides draw uniform-random actions and autoreset; the single env is the ordinary
``gym.make`` env (with Gymnasium's default wrappers) in a Python loop, which is how most ICRL code
collects data. Prints both rates and their ratio (target: at least 100x).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from _tiny import parse_args

import icrl_bench  # noqa: F401  (registers the ids)

ENV_ID = "icrl_bench/DarkRoom-v0"


def batched_rate(num_envs: int, seconds: float) -> float:
    """Env-steps per second of the vector env with ``num_envs`` envs."""
    venv = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            venv.step(rng.integers(5, size=num_envs))
        steps += 20 * num_envs
    return steps / (time.perf_counter() - start)


def single_rate(seconds: float) -> float:
    """Env-steps per second of one ``gym.make`` env in a Python loop."""
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    env.action_space.seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        steps += 1000
    return steps / (time.perf_counter() - start)


def main() -> None:
    """Measure both rates and print them with their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parse_args(parser, num_envs=64, seconds=0.2)
    batched = batched_rate(args.num_envs, args.seconds)
    single = single_rate(args.seconds)
    print(f"batched {ENV_ID} x{args.num_envs}: {batched:,.0f} env-steps/s")
    print(f"single-env gym.make loop:        {single:,.0f} env-steps/s")
    print(f"ratio: {batched / single:.0f}x (target >= 100x)")


if __name__ == "__main__":
    main()
