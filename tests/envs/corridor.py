"""Corridor: the worked example of docs/architecture.md ("add a discrete family").

A new discrete family is this env module plus one :class:`~icrl_bench.registry.FamilySpec`
entry; nothing else in the package changes. ``tests/envs/test_new_family.py`` registers it and
runs it through every layer: Gymnasium's checker, datasets, protocols, reference agents,
scoring, the leaderboard and a baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from icrl_bench.envs.core import BatchedCore, CoreEnv, CoreVectorEnv
from icrl_bench.errors import InvalidTaskError
from icrl_bench.tasks import Task

LEFT, STAY, RIGHT = 0, 1, 2
MOVES = np.array([-1, 0, 1], dtype=np.int64)


@dataclass(frozen=True)
class CorridorTask(Task):
    """An invisible goal cell of the corridor."""

    goal: int = 1


class CorridorCore(BatchedCore):
    """``length`` cells in a row, the agent starts in cell 0; reward 1 on every step that ends
    on the task's goal cell."""

    task_type = CorridorTask

    def __init__(self, num_envs: int, family: str, horizon: int, length: int) -> None:
        super().__init__(num_envs, family, horizon)
        self.length = int(length)
        self.single_observation_space = spaces.Discrete(self.length)
        self.single_action_space = spaces.Discrete(len(MOVES))
        self.pos = np.zeros(self.num_envs, dtype=np.int64)
        self.goal = np.zeros(self.num_envs, dtype=np.int64)

    # -- task space --------------------------------------------------------------------------
    def all_tasks(self) -> tuple[Task, ...]:
        """Every cell but the start, in order."""
        return tuple(CorridorTask(family=self.family, goal=g) for g in range(1, self.length))

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """``n`` goals drawn uniformly with replacement."""
        every = self.all_tasks()
        return tuple(every[i] for i in rng.integers(len(every), size=n))

    def check_task(self, task: Task) -> None:
        """The goal must be a cell other than the start."""
        goal = task.goal  # type: ignore[attr-defined]
        if not isinstance(goal, int) or not 1 <= goal < self.length:
            raise InvalidTaskError(f"{self.family}: goal must be in [1, {self.length}), got {goal}")

    # -- dynamics ----------------------------------------------------------------------------
    def _write_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        self.goal[idx] = [t.goal for t in tasks]  # type: ignore[attr-defined]

    def _reset(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        self.pos[idx] = 0

    def observe(self) -> np.ndarray:
        """The agent's cell, int64 ``[N]``."""
        return self.pos.copy()

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.pos = np.clip(self.pos + MOVES[actions], 0, self.length - 1)
        return (self.pos == self.goal).astype(np.float64), np.zeros(self.num_envs, dtype=bool)

    def oracle_action(self) -> np.ndarray:
        """Right until the goal, then stay."""
        return np.where(self.pos < self.goal, RIGHT, STAY).astype(np.int64)

    def place_uniform(self, rng: np.random.Generator) -> None:
        """Every env on a uniformly drawn cell (DPT's uniform roll-in)."""
        self.pos = rng.integers(self.length, size=self.num_envs)

    # -- exact references --------------------------------------------------------------------
    def reference_returns(self, tasks: Sequence[Task]) -> dict[str, np.ndarray]:
        """Oracle: ``H + 1 - goal``; random: the cell distribution propagated step by step."""
        goals = np.array([t.goal for t in tasks], dtype=np.int64)  # type: ignore[attr-defined]
        trans = np.zeros((self.length, self.length))
        for move in MOVES:
            nxt = np.clip(np.arange(self.length) + move, 0, self.length - 1)
            np.add.at(trans, (np.arange(self.length), nxt), 1.0 / len(MOVES))
        dist = np.zeros((len(goals), self.length))
        dist[:, 0] = 1.0
        random = np.zeros(len(goals))
        for _ in range(self.horizon):
            dist = dist @ trans
            random += dist[np.arange(len(goals)), goals]
        oracle = np.maximum(self.horizon + 1 - goals, 0).astype(np.float64)
        return {"random": random, "oracle": oracle}


class CorridorEnv(CoreEnv):
    """Corridor: find an invisible goal cell in a row of cells.

    ## Action Space
    ``Discrete(3)``: 0 left, 1 stay, 2 right; a move into a wall stays.

    ## Observation Space
    ``Discrete(length)``: the agent's cell. The goal is never observed.

    ## Rewards
    1 on every step that ends on the goal, else 0.

    ## Episode End
    Truncation at the horizon.

    ## Version History
    * v0: the worked example of docs/architecture.md.
    """

    core_cls = CorridorCore


class CorridorEnvVector(CoreVectorEnv):
    """Batched :class:`CorridorEnv`."""

    core_cls = CorridorCore
