"""Training-step speed of the shipped DarkRoom-v0 AD and DPT configs under each CPU execution
mode, to choose defaults per config (the trainer enables bf16 autocast only on CUDA).

Usage: python bench/train_precision.py [--steps 20] [--threads 2] [--methods ad dpt]
       [--batch N] [--modes fp32 bf16 bf16-fp32-attention compile compile-bf16-fp32-attention]
       [--profile] [--tiny]

Modes, each on the same batches (drawn as in ``bench/train_throughput.py``) with AdamW and
gradient clipping:

* ``fp32``: eager float32, what the trainer runs on CPU;
* ``bf16``: ``torch.autocast("cpu", torch.bfloat16)`` around the loss;
* ``bf16-fp32-attention``: the same, with ``scaled_dot_product_attention`` run in float32 (its
  bf16 backward is the slow part on this CPU) while the linear layers use bf16 (AMX);
* ``compile``: ``torch.compile`` of the loss in float32 (a compile error is printed in one line);
* ``compile-bf16-fp32-attention``: both: the compiled loss with bf16 linear layers and float32
  attention.

Prints transitions per second for each mode (best of 3 timed runs after warm-up) and its ratio
to the first mode's (``fp32`` by default); ``--profile`` also prints, per mode, the operators
that took the most CPU time over 10 updates (``torch.profiler``). ``--tiny`` times one update
of batch 2 on smoke data in the eager modes, to check the script runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny import parse_args
from train_throughput import rate, shipped_batches

from baselines import ad, dpt
from baselines.common.pipeline import spaces_of

MODES = ("fp32", "bf16", "bf16-fp32-attention", "compile", "compile-bf16-fp32-attention")


@contextmanager
def fp32_attention() -> Iterator[None]:
    """Run every ``scaled_dot_product_attention`` call in float32, outside autocast."""
    inner = F.scaled_dot_product_attention

    def attention(q: Tensor, k: Tensor, v: Tensor, **kw: Any) -> Tensor:
        with torch.autocast("cpu", enabled=False):
            return inner(q.float(), k.float(), v.float(), **kw)

    torch.nn.functional.scaled_dot_product_attention = attention
    try:
        yield
    finally:
        torch.nn.functional.scaled_dot_product_attention = inner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["ad", "dpt"], choices=["ad", "dpt"])
    parser.add_argument("--batch", type=int, default=None, help="default: the config's")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--profile", action="store_true", help="top operators per mode")
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("ICRL_BENCH_HOME", tempfile.mkdtemp())
    repeats = 3
    if args.tiny:  # compiling takes minutes: the eager modes only
        args.steps, args.batch, repeats, args.methods = 1, 2, 1, args.methods[:1]
        args.modes = [m for m in args.modes if not m.startswith("compile")]

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    spaces = spaces_of("DarkRoom-v0")
    for method in args.methods:
        module, cfg, tcfg, batches, _ = shipped_batches(
            method, "DarkRoom-v0", args.batch, args.tiny
        )
        batch_size = args.batch or tcfg.batch_size
        print(
            f"{method} (DarkRoom-v0 config: d_model {cfg.d_model}, {cfg.n_layers} layers, "
            f"{cfg.n_heads} heads, batch {batch_size} x {cfg.context} transitions)"
        )
        base = None
        for mode in args.modes:
            torch.manual_seed(0)
            model = (ad.ADModel if method == "ad" else dpt.DPTModel)(cfg, *spaces)
            loss: Callable[[Any], Tensor] = lambda b, m=model, f=module.loss_fn: f(m, b)[0]  # noqa: E731
            if mode.startswith("compile"):
                loss = torch.compile(loss)
            scope = fp32_attention() if mode.endswith("fp32-attention") else nullcontext()
            try:
                with scope:
                    r = rate(
                        list(model.parameters()),
                        loss,
                        batches,
                        args.steps,
                        "bf16" in mode,
                        batch_size * cfg.context,
                        repeats,
                    )
            except Exception as err:  # a compile failure is a result to report
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                print(f"  {mode:<20} failed: {type(err).__name__}: {first[:160]}")
                continue
            base = base or r
            print(f"  {mode:<20} {r:10,.0f} transitions/s  {r / base:.2f}x {args.modes[0]}")
            if args.profile:
                with fp32_attention() if mode.endswith("fp32-attention") else nullcontext():
                    profile(list(model.parameters()), loss, batches, "bf16" in mode)


def profile(params: list[Tensor], loss: Callable[[Any], Tensor], batches: list, amp: bool) -> None:
    """Print the operators with the most self CPU time over 10 AdamW updates, as shares."""
    from torch.profiler import profile as torch_profile

    opt = torch.optim.AdamW(params, lr=1e-3)
    with torch_profile() as prof:
        for i in range(10):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                value = loss(batches[i % len(batches)])
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    print("    " + ", ".join(f"{e.key} {e.self_cpu_time_total / total:.0%}" for e in events[:6]))


if __name__ == "__main__":
    main()
