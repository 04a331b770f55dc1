"""The ``--tiny`` option of every bench script: the same measurement at a size that finishes in
seconds, so that tests/test_bench.py can check each script still runs."""

from __future__ import annotations

import argparse
from typing import Any


def parse_args(
    parser: argparse.ArgumentParser, argv: list[str] | None = None, **tiny: Any
) -> argparse.Namespace:
    """Parse the command line with ``--tiny`` added; with it, the options named in ``tiny`` take
    the given values (``args.tiny`` says which size runs)."""
    parser.add_argument(
        "--tiny", action="store_true", help="a tiny size that finishes in seconds (tests)"
    )
    args = parser.parse_args(argv)
    if args.tiny:
        for name, value in tiny.items():
            setattr(args, name, value)
    return args
