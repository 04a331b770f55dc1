"""Peak memory while sampling training windows from a memory-mapped dataset.

Usage: python bench/dataset_memory.py DATASET_ID [--batch 512] [--length 80] [--batches 200]
       python bench/dataset_memory.py --tiny

Generate the dataset first, e.g. ``icrl-bench data generate DarkRoom-v0 --variant ad-eps
--scale paper``. Prints the dataset's size on disk, the bytes of one sampled batch, and the peak
resident memory (RSS) of this process before and after opening the dataset and sampling
``batches`` batches. Because the arrays are memory-mapped, the growth in peak RSS stays close to
the sampled batches (plus the per-history offset tables), not the dataset. ``--tiny`` generates
a smoke dataset in a temporary store and samples 5 small batches from it.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np
from _tiny import parse_args

from icrl_bench import data


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Open, sample and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_id", nargs="?", help="required without --tiny")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--length", type=int, default=80)
    parser.add_argument("--batches", type=int, default=200)
    args = parse_args(parser, batch=8, length=20, batches=5)
    if args.tiny:
        os.environ.setdefault("ICRL_BENCH_HOME", tempfile.mkdtemp())
        args.dataset_id = data.generate("DarkRoom-v0", "histories", "smoke", seed=0)
    elif args.dataset_id is None:
        parser.error("DATASET_ID is required (or --tiny)")

    before = peak_rss_mb()
    ds = data.load(args.dataset_id)
    disk = sum(p.stat().st_size for p in ds.path.glob("*.bin")) / 2**20
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    batch_mb = 0.0
    for _ in range(args.batches):
        w = ds.sample_windows(args.batch, args.length, rng)
        batch_mb = sum(v.nbytes for v in w.values()) / 2**20
    elapsed = time.perf_counter() - start
    after = peak_rss_mb()
    print(f"dataset {ds.id}: {len(ds):,} transitions, {disk:,.1f} MiB on disk")
    print(f"one batch of {args.batch} x {args.length} windows: {batch_mb:.2f} MiB")
    print(
        f"peak RSS before opening: {before:,.1f} MiB; "
        f"after {args.batches} batches: {after:,.1f} MiB"
    )
    print(f"growth: {after - before:,.1f} MiB ({(after - before) / disk:.1%} of the dataset)")
    print(f"sampling: {args.batches * args.batch / elapsed:,.0f} windows/s")


if __name__ == "__main__":
    main()
