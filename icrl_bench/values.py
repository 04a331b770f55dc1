"""Declared ranges of numeric settings, checked wherever a user can set one (``--set`` on a
recipe or a baseline config, seeds), so that a bad value is a one-line error naming the key and
what it accepts instead of a traceback, a hang or a run that silently does nothing."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from icrl_bench.errors import IcrlBenchError

#: seeds are NumPy/PyTorch seeds: non-negative 32-bit integers
SEED_LIMIT = 2**32


class ValueRangeError(IcrlBenchError, ValueError):
    """A setting of the wrong type or outside its declared range."""


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts: an interval, of integers or of finite numbers.

    ``None`` leaves a side unbounded; ``low_open`` / ``high_open`` exclude the bound itself.
    """

    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """E.g. ``an integer >= 1`` or ``a number in (0, 1]``."""
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{kind} in {left}{_fmt(self.low)}, {_fmt(self.high)}{right}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {_fmt(self.low)}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {_fmt(self.high)}"
        return kind if self.integer else "a finite number"

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it is of the right type and in range (an integral float for an integer
        setting is refused; an integer for a float one is returned as a float).

        Raises:
            ValueRangeError: naming ``name``, the value and what it accepts.
        """
        ok_type = isinstance(value, numbers.Integral if self.integer else numbers.Real)
        if isinstance(value, bool | np.bool_) or not ok_type:
            raise ValueRangeError(f"{name} must be {self.describe()}, got {value!r}")
        value = int(value) if self.integer else float(value)
        if not self.integer and not math.isfinite(value):
            raise ValueRangeError(f"{name} must be {self.describe()}, got {value!r}")
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        if not (low_ok and high_ok):
            raise ValueRangeError(f"{name} must be {self.describe()}, got {value!r}")
        return value


def _fmt(x: float) -> str:
    """A bound as people write it: ``2**32``, ``10**9``, ``0.5``."""
    if float(x).is_integer() and abs(x) >= 2**16:
        n = int(abs(x))
        sign = "-" if x < 0 else ""
        if n & (n - 1) == 0:
            return f"{sign}2**{n.bit_length() - 1}"
        if str(n).rstrip("0") == "1":
            return f"{sign}10**{len(str(n)) - 1}"
        return f"{sign}{n:,}"
    return f"{x:g}"


#: the probability-like interval [0, 1]
UNIT = Range(0.0, 1.0)
#: counts of at least one
COUNT = Range(1, integer=True)
#: counts that may be zero
NON_NEGATIVE_INT = Range(0, integer=True)
#: a seed
SEED = Range(0, SEED_LIMIT, integer=True, high_open=True)


def check_seeds(name: str, seeds: Iterable[Any]) -> list[int]:
    """Seeds as a list: each a 32-bit non-negative integer, none repeated, at least one.

    Raises:
        ValueRangeError: naming ``name`` and the first offending seed.
    """
    out = [SEED.check(f"{name} entry", s) for s in seeds]
    if not out:
        raise ValueRangeError(f"{name}: at least one seed is needed")
    seen: set[int] = set()
    for s in out:
        if s in seen:
            raise ValueRangeError(f"{name}: seed {s} is repeated; seeds must be distinct")
        seen.add(s)
    return out


__all__ = [
    "COUNT",
    "NON_NEGATIVE_INT",
    "SEED",
    "SEED_LIMIT",
    "UNIT",
    "Range",
    "ValueRangeError",
    "check_seeds",
]
