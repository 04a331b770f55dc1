"""Grid families: DarkRoom (9x9, 10x10, Large, Hard), DarkRoom-Permuted and Key-to-Door.

All share one square grid of ``size x size`` cells, five actions and the same movement rule, taken
from the published implementations (DPT's ``darkroom_env.py`` and AD-epsilon's ``DarkRoom``):

* action ``0``: ``x + 1``; ``1``: ``x - 1``; ``2``: ``y + 1``; ``3``: ``y - 1``; ``4``: no-op;
* a move into a wall leaves the agent where it is;
* the reward is computed on the cell the agent arrives in (after the move).

The observation is the agent's cell as one integer, ``x * size + y`` (``Discrete(size**2)``). The
goal, key and door are invisible: they are only learned from rewards.

Reference returns are exact. The oracle walks a shortest path; the uniform-random policy's
expected return is computed by propagating the distribution over cells through the horizon.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from icrl_bench.envs.core import BatchedCore, CoreEnv, CoreVectorEnv
from icrl_bench.errors import InvalidTaskError
from icrl_bench.tasks import GoalTask, KeyDoorTask, PermutationTask, Task

NUM_ACTIONS = 5
#: cell displacement ``(dx, dy)`` of each action's meaning
MOVES = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [0, 0]], dtype=np.int64)
NOOP = 4


def _start_cell(size: int, start: str) -> tuple[int, int]:
    if start == "centre":
        return (size // 2, size // 2)
    if start == "corner":
        return (0, 0)
    raise ValueError(f"start must be 'centre' or 'corner', got {start!r}")


#: ``_TOWARD[3 * (sign(dx) + 1) + sign(dy) + 1]``: the greedy move meaning (x first, then y)
_TOWARD = np.array([1, 1, 1, 3, NOOP, 2, 0, 0, 0], dtype=np.int64)


def _toward(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Meaning of the greedy shortest-path move from ``pos`` to ``target`` (x first, then y)."""
    sign = np.sign(target - pos)
    return _TOWARD[3 * sign[:, 0] + sign[:, 1] + 4]


def _manhattan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(a) - np.asarray(b)).sum(axis=-1)


class _GridCore(BatchedCore):
    """Positions ``[N, 2]`` on a ``size x size`` grid with a per-env action meaning table."""

    #: whether tasks permute what the actions do (else ``meaning`` is the identity everywhere)
    permuted = False

    def __init__(self, num_envs: int, family: str, horizon: int, size: int, start: str) -> None:
        super().__init__(num_envs, family, horizon)
        self.size = int(size)
        self.start = np.array(_start_cell(self.size, start), dtype=np.int64)
        self.single_observation_space = spaces.Discrete(self.size * self.size)
        self.single_action_space = spaces.Discrete(NUM_ACTIONS)
        self.pos = np.zeros((self.num_envs, 2), dtype=np.int64)
        # meaning[i, a]: which entry of MOVES action a performs in env i (identity unless permuted)
        self.meaning = np.tile(np.arange(NUM_ACTIONS, dtype=np.int64), (self.num_envs, 1))
        self._rows = np.arange(self.num_envs)

    def observe(self) -> np.ndarray:
        """Cell index ``x * size + y`` of every env, int64 ``[N]``."""
        return self.pos[:, 0] * self.size + self.pos[:, 1]

    def _reset(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        self.pos[idx] = self.start

    def _move(self, actions: np.ndarray) -> None:
        delta = MOVES[self.meaning[self._rows, actions] if self.permuted else actions]
        np.add(self.pos, delta, out=self.pos)
        np.maximum(self.pos, 0, out=self.pos)
        np.minimum(self.pos, self.size - 1, out=self.pos)

    def _action_for(self, wanted: np.ndarray) -> np.ndarray:
        """The action whose meaning is ``wanted`` in each env (inverts each env's permutation)."""
        if not self.permuted:
            return wanted
        return np.argmax(self.meaning == wanted[:, None], axis=1).astype(np.int64)

    def place_uniform(self, rng: np.random.Generator) -> None:
        """Put every env on a uniformly drawn cell."""
        self.pos[:] = rng.integers(self.size, size=(self.num_envs, 2))

    def _check_cell(self, name: str, cell: Sequence[int]) -> None:
        if len(cell) != 2 or not all(0 <= c < self.size for c in cell):
            raise InvalidTaskError(
                f"{self.family}: {name} {tuple(cell)} is outside the {self.size}x{self.size} grid"
            )

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Draw ``n`` tasks uniformly (with replacement) from the finite task list."""
        every = self.all_tasks()
        assert every is not None
        return tuple(every[i] for i in rng.integers(len(every), size=n))

    # -- exact random-policy returns ---------------------------------------------------------
    def _uniform_transition(self) -> np.ndarray:
        """``P[s, s']`` of the uniform-random policy over the five move meanings."""
        cells = self.size * self.size
        xy = np.stack(np.divmod(np.arange(cells), self.size), axis=1)
        trans = np.zeros((cells, cells))
        for move in MOVES:
            nxt = np.clip(xy + move, 0, self.size - 1)
            np.add.at(trans, (np.arange(cells), nxt[:, 0] * self.size + nxt[:, 1]), 1.0)
        return trans / NUM_ACTIONS

    def _start_distribution(self, n: int) -> np.ndarray:
        dist = np.zeros((n, self.size * self.size))
        dist[:, self.start[0] * self.size + self.start[1]] = 1.0
        return dist

    def _cells(self) -> list[tuple[int, int]]:
        """Every cell ``(x, y)``, row-major."""
        return [(x, y) for x in range(self.size) for y in range(self.size)]

    def _cell(self, cells: np.ndarray) -> np.ndarray:
        cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
        return cells[:, 0] * self.size + cells[:, 1]


class DarkRoomCore(_GridCore):
    """DarkRoom: find an invisible goal cell.

    Dense (``sparse=False``): reward 1 on every step that ends on the goal; episodes only truncate.
    Sparse (``sparse=True``): reward 1 on first reaching the goal, which terminates the episode.
    """

    task_type = GoalTask

    def __init__(
        self, num_envs: int, family: str, horizon: int, size: int, start: str, sparse: bool
    ) -> None:
        super().__init__(num_envs, family, horizon, size, start)
        self.sparse = bool(sparse)
        self.goal = np.zeros((self.num_envs, 2), dtype=np.int64)

    def all_tasks(self) -> tuple[Task, ...]:
        """Every cell as a goal, row-major in ``(x, y)``."""
        return tuple(GoalTask(family=self.family, goal=c) for c in self._cells())

    def check_task(self, task: Task) -> None:
        """The goal must be a cell of the grid."""
        self._check_cell("goal", task.goal)  # type: ignore[attr-defined]

    def _write_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        self.goal[idx] = [t.goal for t in tasks]  # type: ignore[attr-defined]

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._move(actions)
        at_goal = (self.pos == self.goal).all(axis=1)
        return at_goal.astype(np.float64), at_goal if self.sparse else np.zeros_like(at_goal)

    def oracle_action(self) -> np.ndarray:
        """A shortest-path move toward the goal, then no-op on it."""
        meaning = _toward(self.pos, self.goal)
        return self._action_for(meaning)

    def optimal_action_mask(self, tasks: Sequence[Task], observations: np.ndarray) -> np.ndarray:
        """Every shortest-path action from each observed cell to its task's goal (a no-op on the
        goal itself), ``[N, 5]`` bool: one or two actions per cell. The oracle takes the first
        of them (x before y); DPT's labels can take them all (``label="all-optimal"``)."""
        obs = np.asarray(observations, dtype=np.int64).reshape(-1)
        pos = np.stack(np.divmod(obs, self.size), axis=1)  # [N, 2]
        goal = self._goals(tasks)
        nxt = np.clip(pos[:, None, :] + MOVES[None], 0, self.size - 1)  # [N, meanings, 2]
        before = _manhattan(pos, goal)[:, None]
        closer = _manhattan(nxt, goal[:, None, :]) < before
        closer[:, NOOP] = before[:, 0] == 0
        return self._mask_for(tasks, closer)

    def _goals(self, tasks: Sequence[Task]) -> np.ndarray:
        """``[N, 2]`` goal cells of the tasks."""
        return np.array([t.goal for t in tasks], dtype=np.int64).reshape(-1, 2)  # type: ignore[attr-defined]

    def _mask_for(self, tasks: Sequence[Task], by_meaning: np.ndarray) -> np.ndarray:
        """A mask over move meanings as a mask over actions (identity unless permuted)."""
        return by_meaning

    def oracle_return(self, goals: np.ndarray) -> np.ndarray:
        """Closed form: ``H + 1 - max(d, 1)`` (dense) or ``[max(d, 1) <= H]`` (sparse).

        ``d`` is the Manhattan distance from start to goal. The oracle arrives after ``d`` moves
        and is rewarded on that step and every later one; a goal on the start cell is first
        rewarded after one no-op.
        """
        steps = np.maximum(_manhattan(goals, self.start), 1)
        if self.sparse:
            return (steps <= self.horizon).astype(np.float64)
        return np.maximum(self.horizon + 1 - steps, 0).astype(np.float64)

    def reference_returns(self, tasks: Sequence[Task]) -> dict[str, np.ndarray]:
        """Exact oracle (closed form) and uniform-random returns (distribution propagation)."""
        goals = np.array([t.goal for t in tasks], dtype=np.int64).reshape(-1, 2)  # type: ignore[attr-defined]
        goal_cells = self._cell(goals)
        trans = self._uniform_transition()
        rows = np.arange(len(goals))
        dist = self._start_distribution(len(goals))
        random = np.zeros(len(goals))
        for _ in range(self.horizon):
            dist = dist @ trans
            random += dist[rows, goal_cells]
            if self.sparse:
                dist[rows, goal_cells] = 0.0  # absorbed: the episode ended there
        return {"random": random, "oracle": self.oracle_return(goals)}


class DarkRoomPermutedCore(DarkRoomCore):
    """DarkRoom with a fixed goal, where the task permutes what each action does.

    Task ``PermutationTask(permutation=p)``: action ``a`` performs move meaning ``p[a]``.
    """

    task_type = PermutationTask  # type: ignore[assignment]
    permuted = True

    def __init__(
        self,
        num_envs: int,
        family: str,
        horizon: int,
        size: int,
        start: str,
        goal: Sequence[int],
    ) -> None:
        super().__init__(num_envs, family, horizon, size, start, sparse=False)
        self.fixed_goal = np.array(goal, dtype=np.int64)
        self._check_cell("goal", tuple(goal))
        self.goal[:] = self.fixed_goal

    def all_tasks(self) -> tuple[Task, ...]:
        """All 120 permutations of the five actions, in lexicographic order."""
        perms = itertools.permutations(range(NUM_ACTIONS))
        return tuple(PermutationTask(family=self.family, permutation=p) for p in perms)

    def check_task(self, task: Task) -> None:
        """The permutation must reorder ``0..4``."""
        perm = tuple(task.permutation)  # type: ignore[attr-defined]
        if sorted(perm) != list(range(NUM_ACTIONS)):
            raise InvalidTaskError(
                f"{self.family}: permutation must reorder 0..{NUM_ACTIONS - 1}, got {perm}"
            )

    def _write_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        self.meaning[idx] = [t.permutation for t in tasks]  # type: ignore[attr-defined]

    def _goals(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.tile(self.fixed_goal, (len(tasks), 1))

    def _mask_for(self, tasks: Sequence[Task], by_meaning: np.ndarray) -> np.ndarray:
        """Action ``a`` performs meaning ``p[a]``: its mask entry is that meaning's."""
        perm = np.array([t.permutation for t in tasks], dtype=np.int64)  # type: ignore[attr-defined]
        return np.take_along_axis(by_meaning, perm, axis=1)

    def reference_returns(self, tasks: Sequence[Task]) -> dict[str, np.ndarray]:
        """Permuting actions changes neither the oracle's nor the random policy's return."""
        goals = [GoalTask(family=self.family, goal=tuple(self.fixed_goal))] * len(tasks)
        return super().reference_returns(goals)


class KeyToDoorCore(_GridCore):
    """Key-to-Door: reach the invisible key (reward 1), then the invisible door (reward 1, ends).

    The key is picked up on the first step that ends on its cell. On a later step that ends on
    the door cell while holding the key, the agent gets 1 and the episode terminates. When key and
    door share a cell, the door is reached on the step after the key.
    """

    task_type = KeyDoorTask

    def __init__(self, num_envs: int, family: str, horizon: int, size: int, start: str) -> None:
        super().__init__(num_envs, family, horizon, size, start)
        self.key = np.zeros((self.num_envs, 2), dtype=np.int64)
        self.door = np.zeros((self.num_envs, 2), dtype=np.int64)
        self.has_key = np.zeros(self.num_envs, dtype=bool)

    def all_tasks(self) -> tuple[Task, ...]:
        """Every (key, door) pair of cells: ``(size**2)**2`` layouts, key-major."""
        cells = self._cells()
        return tuple(KeyDoorTask(family=self.family, key=k, door=d) for k in cells for d in cells)

    def check_task(self, task: Task) -> None:
        """Key and door must be cells of the grid."""
        self._check_cell("key", task.key)  # type: ignore[attr-defined]
        self._check_cell("door", task.door)  # type: ignore[attr-defined]

    def _write_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        self.key[idx] = [t.key for t in tasks]  # type: ignore[attr-defined]
        self.door[idx] = [t.door for t in tasks]  # type: ignore[attr-defined]

    def _reset(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        super()._reset(idx, rngs)
        self.has_key[idx] = False

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._move(actions)
        pick = ~self.has_key & (self.pos == self.key).all(axis=1)
        door = self.has_key & (self.pos == self.door).all(axis=1)
        self.has_key |= pick
        return (pick | door).astype(np.float64), door

    def place_uniform(self, rng: np.random.Generator) -> None:
        """A uniform cell and a uniform key flag (a held key cannot be picked up again)."""
        super().place_uniform(rng)
        self.has_key[:] = rng.random(self.num_envs) < 0.5

    @property
    def num_learner_states(self) -> int:
        """Cells times whether the key is held."""
        return 2 * self.size * self.size

    def learner_state(self) -> np.ndarray:
        """The cell index, plus ``size**2`` once the key is held (the source learner's memory)."""
        return self.observe() + self.has_key * (self.size * self.size)

    def oracle_action(self) -> np.ndarray:
        """Shortest path to the key, then to the door."""
        target = np.where(self.has_key[:, None], self.door, self.key)
        return self._action_for(_toward(self.pos, target))

    def reference_returns(self, tasks: Sequence[Task]) -> dict[str, np.ndarray]:
        """Oracle: 1 if the key is reachable in time, plus 1 if the door is; random: exact DP."""
        key = np.array([t.key for t in tasks], dtype=np.int64).reshape(-1, 2)  # type: ignore[attr-defined]
        door = np.array([t.door for t in tasks], dtype=np.int64).reshape(-1, 2)  # type: ignore[attr-defined]
        to_key = np.maximum(_manhattan(key, self.start), 1)
        to_door = to_key + np.maximum(_manhattan(door, key), 1)
        oracle = (to_key <= self.horizon).astype(np.float64) + (to_door <= self.horizon)
        return {"random": self._random_returns(self._cell(key), self._cell(door)), "oracle": oracle}

    def _random_returns(self, key: np.ndarray, door: np.ndarray) -> np.ndarray:
        trans = self._uniform_transition()
        rows = np.arange(len(key))
        without = self._start_distribution(len(key))  # mass not yet holding the key
        holding = np.zeros_like(without)  # mass holding the key, episode still running
        total = np.zeros(len(key))
        for _ in range(self.horizon):
            without = without @ trans
            holding = holding @ trans
            opened = holding[rows, door].copy()
            holding[rows, door] = 0.0
            picked = without[rows, key].copy()
            without[rows, key] = 0.0
            holding[rows, key] += picked
            total += opened + picked
        return total


_GRID_DOC = """
    ## Action Space
    ``Discrete(5)``: ``0`` x+1, ``1`` x-1, ``2`` y+1, ``3`` y-1, ``4`` no-op{perm}. Moves into a
    wall leave the agent in place.

    ## Observation Space
    ``Discrete(size**2)``: the agent's cell ``x * size + y``. {hidden}

    ## Starting State
    {start}

    ## Rewards
    {rewards}

    ## Episode End
    {end}

    ## Task
    {task}

    ## Version History
    * v0: first release.
"""


class DarkRoomEnv(CoreEnv):
    __doc__ = "DarkRoom: find an invisible goal in a square room." + _GRID_DOC.format(
        perm="",
        hidden="The goal is never observed.",
        start="The centre cell ``(size // 2, size // 2)`` (DarkRoom-v0, Large, Hard) or the corner "
        "``(0, 0)`` (DarkRoom10x10-v0).",
        rewards="Dense variants: 1 on every step that ends on the goal, else 0. DarkRoomHard-v0 "
        "(sparse): 1 on first reaching the goal, else 0.",
        end="Truncation at the horizon (20, 100, 50 steps); the sparse variant also terminates on "
        "reaching the goal.",
        task="``GoalTask(goal=(x, y))``, any cell of the grid.",
    )
    core_cls = DarkRoomCore


class DarkRoomEnvVector(CoreVectorEnv):
    """Batched :class:`DarkRoomEnv`."""

    core_cls = DarkRoomCore


class DarkRoomPermutedEnv(CoreEnv):
    __doc__ = "DarkRoom-Permuted: fixed goal, the task permutes the actions." + _GRID_DOC.format(
        perm=" (before the task's permutation is applied)",
        hidden="The goal (fixed at the far corner) is never observed.",
        start="The corner ``(0, 0)``.",
        rewards="1 on every step that ends on the goal ``(8, 8)``, else 0.",
        end="Truncation after 50 steps.",
        task="``PermutationTask(permutation=p)``: action ``a`` performs the move ``p[a]`` of the "
        "list above; all 120 permutations of the five actions.",
    )
    core_cls = DarkRoomPermutedCore


class DarkRoomPermutedEnvVector(CoreVectorEnv):
    """Batched :class:`DarkRoomPermutedEnv`."""

    core_cls = DarkRoomPermutedCore


class KeyToDoorEnv(CoreEnv):
    __doc__ = "Key-to-Door: find an invisible key, then an invisible door." + _GRID_DOC.format(
        perm="",
        hidden="Neither the key, the door nor whether the key is held is observed.",
        start="The corner ``(0, 0)``.",
        rewards="1 on the first step that ends on the key; then 1 on the first step that ends on "
        "the door while holding the key. A door on the key's cell is reached one step after the "
        "key.",
        end="Terminates on reaching the door with the key; truncation after 50 steps.",
        task="``KeyDoorTask(key=(x, y), door=(x, y))``: any two cells (they may coincide), "
        "81 x 81 = 6561 layouts.",
    )
    core_cls = KeyToDoorCore


class KeyToDoorEnvVector(CoreVectorEnv):
    """Batched :class:`KeyToDoorEnv`."""

    core_cls = KeyToDoorCore


__all__: list[Any] = ["DarkRoomEnv", "DarkRoomPermutedEnv", "KeyToDoorEnv"]
