"""Spaces and random trials shared by the baselines' model tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

GRID_OBS: dict[str, Any] = {"kind": "discrete", "n": 81}
BANDIT_OBS: dict[str, Any] = {"kind": "box", "shape": [1]}
POINT_OBS: dict[str, Any] = {"kind": "box", "shape": [2], "low": [-2.0, -2.0], "high": [2.0, 2.0]}
ACTIONS: dict[str, Any] = {"kind": "discrete", "n": 5}
BOX_ACTIONS: dict[str, Any] = {
    "kind": "box",
    "shape": [2],
    "low": [-0.1, -0.1],
    "high": [0.1, 0.1],
}


def random_values(rng: np.random.Generator, info: dict[str, Any], size: tuple[int, ...]) -> Any:
    """Values of a space (``space_info`` form), ``size`` of them: indices, or floats inside the
    box (``[0, 1)`` where it is unbounded)."""
    if info["kind"] == "discrete":
        return rng.integers(info["n"], size=size)
    shape = (*size, *info["shape"])
    low, high = np.asarray(info.get("low", 0.0)), np.asarray(info.get("high", 1.0))
    return (low + (high - low) * rng.random(shape)).astype(np.float32)


def trial(steps: int, obs_info: dict[str, Any], act_info: dict[str, Any], seed: int = 0) -> dict:
    """Two envs' random trial: ``obs`` ``[2, steps + 1]``, ``actions`` and ``rewards``
    ``[2, steps]``."""
    rng = np.random.default_rng(seed)
    return {
        "obs": random_values(rng, obs_info, (2, steps + 1)),
        "actions": random_values(rng, act_info, (2, steps)),
        "rewards": rng.random((2, steps)).astype(np.float32),
    }


#: run a test on a grid (discrete observations and actions) and on a point robot (boxes)
GRID_AND_POINT = pytest.mark.parametrize(
    ("obs_info", "act_info"), [(GRID_OBS, ACTIONS), (POINT_OBS, BOX_ACTIONS)], ids=["grid", "point"]
)


def observe_step(agent: Any, tr: dict, t: int) -> None:
    """Hand step ``t`` of a :func:`trial` to ``agent``, with no episode ending."""
    done = np.zeros(len(tr["actions"]), bool)
    agent.observe(
        tr["obs"][:, t], tr["actions"][:, t], tr["rewards"][:, t], tr["obs"][:, t + 1], done, done
    )
