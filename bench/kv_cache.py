"""Evaluation steps per second: the KV cache against recomputing the whole context every step.

Usage: python bench/kv_cache.py [--contexts 1000 4000] [--envs 16] [--steps 20] [--tiny]

An AD model (d_model 64, 4 layers, 4 heads, one token per transition) with a window of
``context`` transitions acts for ``--envs`` trials at once. With the context full, it times one
action step two ways: ``ADAgent`` (append one token to the KV cache and attend over it), and a
full forward pass over the last ``context`` tokens, which is how evaluation works without a
cache. (tests/baselines/test_transformer.py checks that the cache reproduces a full forward pass
of the windowed model.) Target: at least 10x at 4,000 transitions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _tiny import parse_args

from baselines.ad import ADAgent, ADModel, Config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    args = parse_args(parser, contexts=[64], envs=2, steps=3)
    print(
        f"AD, d_model 64, 4 layers, {args.envs} envs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    for context in args.contexts:
        torch.manual_seed(0)
        cfg = Config(context=context, d_model=64, n_layers=4, n_heads=4, dropout=0.0)
        model = ADModel(cfg, {"kind": "discrete", "n": 81}, {"kind": "discrete", "n": 5}).eval()
        agent = ADAgent(model)
        agent.reset(args.envs)
        rng = np.random.default_rng(0)
        n = context + args.steps
        obs = rng.integers(81, size=(args.envs, n))
        act = rng.integers(5, size=(args.envs, n))
        rew = rng.random((args.envs, n)).astype(np.float32)
        # fill the context: one prompt-like pass of `context` tokens
        with torch.no_grad():
            tok = model.step_tokens(
                torch.as_tensor(obs[:, :context]),
                torch.as_tensor(act[:, :context]),
                torch.as_tensor(rew[:, :context]),
            )
            model.core(tok, cache=agent.cache)
        agent.prev_action = torch.as_tensor(act[:, context - 1])
        agent.prev_reward = torch.as_tensor(rew[:, context - 1])
        start = time.perf_counter()
        cached = []
        for t in range(context, n):
            cached.append(agent.logits(obs[:, t]))
            agent.prev_action = torch.as_tensor(act[:, t])
            agent.prev_reward = torch.as_tensor(rew[:, t])
        t_cache = (time.perf_counter() - start) / args.steps
        start = time.perf_counter()
        full = []
        with torch.no_grad():
            for t in range(context, n):
                lo = t + 1 - context
                x = model.step_tokens(
                    torch.as_tensor(obs[:, lo : t + 1]),
                    torch.as_tensor(act[:, lo - 1 : t]),
                    torch.as_tensor(rew[:, lo - 1 : t]),
                )
                full.append(model.head(model.core(x)[:, -1]))
        t_full = (time.perf_counter() - start) / args.steps
        assert len(cached) == len(full) == args.steps
        print(
            f"context {context:5d}: cached {args.envs / t_cache:9,.0f} env-steps/s, "
            f"recompute {args.envs / t_full:9,.0f} env-steps/s, "
            f"speed-up {t_full / t_cache:5.1f}x"
        )


if __name__ == "__main__":
    main()
