"""Training throughput of AD on DarkRoom-v0 against a plain ``nn.TransformerEncoder``.

Usage: python bench/train_throughput.py [--steps 30] [--batch 64] [--context 80]

Both models have the same size (d_model 64, 4 layers, 4 heads, 4x feed-forward, dropout 0.1),
the same embeddings and action head, and train on the same windows of a smoke ``ad-eps``
DarkRoom-v0 dataset with AdamW: ours is ``baselines.ad.ADModel`` on the shared core (RoPE,
``scaled_dot_product_attention``); the baseline swaps the core for PyTorch's
``nn.TransformerEncoder`` with a causal mask and learned positions. Prints transitions per second
for each (best of 3 timed runs of ``--steps`` updates after warm-up).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.ad import ADModel, Config, loss_fn


class EncoderAD(nn.Module):
    """AD with ``nn.TransformerEncoder`` as its core (the reference point)."""

    def __init__(self, ours: ADModel, context: int) -> None:
        super().__init__()
        cfg = ours.cfg
        self.embed = ours.embed
        self.pos = nn.Embedding(context, cfg.d_model)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model,
            cfg.n_heads,
            4 * cfg.d_model,
            cfg.dropout,
            "gelu",
            batch_first=True,
            norm_first=True,
        )
        self.core = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(cfg.d_model, ours.head.out_features)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        obs, act, rew = batch["observations"], batch["actions"], batch["rewards"]
        e = self.embed
        x = e.obs(obs[:, 1:]) + e.action(act[:, :-1]) + e.rewards(rew[:, :-1])
        x = x + self.pos.weight[: x.shape[1]]
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        h = self.core(x, mask=mask, is_causal=True)
        logits = self.head(h)
        return F.cross_entropy(logits.flatten(0, 1), act[:, 1:].flatten().long())


def rate(model: nn.Module, step_loss, batches: list, steps: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    model.train()

    def run(n: int) -> None:
        for i in range(n):
            loss = step_loss(model, batches[i % len(batches)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run(3)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        run(steps)
        best = min(best, time.perf_counter() - start)
    b, t = batches[0]["actions"].shape
    return steps * b * (t - 1) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--context", type=int, default=80)
    args = parser.parse_args()
    os.environ.setdefault("ICRL_BENCH_HOME", tempfile.mkdtemp())
    from icrl_bench import data

    ds = data.load(data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=0))
    rng = np.random.default_rng(0)
    batches = [
        {
            k: torch.as_tensor(v)
            for k, v in ds.sample_windows(args.batch, args.context + 1, rng).items()
        }
        for _ in range(8)
    ]
    torch.manual_seed(0)
    cfg = Config(context=args.context, d_model=64, n_layers=4, n_heads=4, dropout=0.1)
    ours = ADModel(cfg, {"kind": "discrete", "n": 81}, {"kind": "discrete", "n": 5})
    theirs = EncoderAD(ours, args.context)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_theirs = sum(p.numel() for p in theirs.parameters())
    r_ours = rate(ours, lambda m, b: loss_fn(m, b)[0], batches, args.steps)
    r_theirs = rate(theirs, lambda m, b: m(b), batches, args.steps)
    print(
        f"AD on DarkRoom-v0, batch {args.batch} x {args.context} transitions, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"shared core (ours):       {r_ours:10,.0f} transitions/s ({n_ours:,} parameters)")
    print(f"nn.TransformerEncoder:    {r_theirs:10,.0f} transitions/s ({n_theirs:,} parameters)")
    print(f"ratio: {r_ours / r_theirs:.2f}x")


if __name__ == "__main__":
    main()
