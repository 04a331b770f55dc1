"""PointRobot: a point on the plane that must find an invisible goal.

The family of PEARL's ``point-robot``, as used by Meta-DT and T2MIR (their 50 goals ship as the
``paper`` task set). Dynamics are exact NumPy arithmetic, so the batched env steps every env in
one call, like the grid families.

Reference returns: the oracle is exact (see :meth:`PointRobotCore.oracle_action`); the random
policy's expected return has no closed form and is estimated from 2,000 seeded Monte-Carlo
episodes per task (standard error below 0.05 on every reference task).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from icrl_bench.envs.core import BatchedCore, CoreEnv, CoreVectorEnv
from icrl_bench.errors import InvalidTaskError
from icrl_bench.tasks import PointGoalTask, Task

#: the largest move per coordinate and step
MAX_STEP = 0.1
#: Monte-Carlo episodes per task for the random policy's reference return
RANDOM_EPISODES = 2000


class PointRobotCore(BatchedCore):
    """Positions ``[N, 2]`` (float64); goals ``[N, 2]``."""

    task_type = PointGoalTask

    def __init__(self, num_envs: int, family: str, horizon: int, bound: float = 1.0) -> None:
        super().__init__(num_envs, family, horizon)
        self.bound = float(bound)
        reach = self.horizon * MAX_STEP  # the farthest a point gets from the origin per axis
        self.single_observation_space = spaces.Box(-reach, reach, shape=(2,), dtype=np.float32)
        self.single_action_space = spaces.Box(-MAX_STEP, MAX_STEP, shape=(2,), dtype=np.float32)
        self.pos = np.zeros((self.num_envs, 2))
        self.goal = np.zeros((self.num_envs, 2))

    def all_tasks(self) -> None:
        """Continuous family: no finite task list."""
        return None

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Goals uniform in ``[-bound, bound]^2`` (PEARL, Meta-DT, T2MIR)."""
        goals = rng.uniform(-self.bound, self.bound, size=(n, 2))
        return tuple(PointGoalTask(family=self.family, goal=tuple(g)) for g in goals)

    def check_task(self, task: Task) -> None:
        """The goal must lie in the square ``[-bound, bound]^2``."""
        goal = np.asarray(task.goal)  # type: ignore[attr-defined]
        if (np.abs(goal) > self.bound).any():
            raise InvalidTaskError(
                f"{self.family}: goal {tuple(goal)} is outside [-{self.bound}, {self.bound}]^2"
            )

    def _write_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        self.goal[idx] = [t.goal for t in tasks]  # type: ignore[attr-defined]

    def _reset(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        self.pos[idx] = 0.0

    def observe(self) -> np.ndarray:
        """Positions, float32 ``[N, 2]``."""
        return self.pos.astype(np.float32)

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.pos += actions  # already clipped to the action box by check_actions
        dist = np.linalg.norm(self.pos - self.goal, axis=1)
        return -dist, np.zeros(self.num_envs, dtype=bool)

    def oracle_action(self) -> np.ndarray:
        """``clip(goal - pos, -0.1, 0.1)``, float32 ``[N, 2]``.

        It is optimal: the cells reachable after ``k`` steps form the box ``pos_0 +/- 0.1 k``,
        the closest point of a box to the goal is its coordinate-wise clip, and this greedy move
        reaches that point at every step at once, so no policy has a smaller distance at any step.
        """
        return np.clip(self.goal - self.pos, -MAX_STEP, MAX_STEP).astype(np.float32)

    def place_uniform(self, rng: np.random.Generator) -> None:
        """A uniform position in the goal square."""
        self.pos[:] = rng.uniform(-self.bound, self.bound, size=(self.num_envs, 2))

    def reference_returns(self, tasks: Sequence[Task]) -> dict[str, np.ndarray]:
        """Oracle: exact rollout of the optimal policy. Random: the mean of
        :data:`RANDOM_EPISODES` seeded episodes of uniform actions per task."""
        goals = np.array([t.goal for t in tasks], dtype=np.float64).reshape(-1, 2)  # type: ignore[attr-defined]
        steps = np.arange(1, self.horizon + 1, dtype=np.float64)[:, None, None] * MAX_STEP
        best = np.clip(goals[None], -steps, steps)  # [H, T, 2]: the oracle's positions
        oracle = -np.linalg.norm(best - goals[None], axis=2).sum(axis=0)
        rng = np.random.default_rng(0)
        random = np.empty(len(goals))
        for i, g in enumerate(goals):  # one vectorised batch of episodes per task
            moves = rng.uniform(-MAX_STEP, MAX_STEP, size=(self.horizon, RANDOM_EPISODES, 2))
            pos = np.cumsum(moves, axis=0)
            random[i] = -np.linalg.norm(pos - g, axis=2).sum(axis=0).mean()
        return {"random": random, "oracle": oracle}


class PointRobotEnv(CoreEnv):
    """PointRobot: move a point on the plane to an invisible goal.

    ## Description
    The agent starts at the origin of the plane and must find a goal position in ``[-1, 1]^2``
    that it never observes; it only sees its own position and the reward.

    ## Action Space
    ``Box(-0.1, 0.1, (2,), float32)``: the displacement ``(dx, dy)``. Actions outside the box are
    clipped to it (as PEARL's ``PointEnv``); non-finite actions raise ``InvalidActionError``.

    ## Observation Space
    ``Box(-2, 2, (2,), float32)``: the position ``(x, y)`` (20 moves of at most 0.1 per axis).

    ## Starting State
    ``(0, 0)``.

    ## Rewards
    ``-||pos' - goal||_2``, the distance after the move.

    ## Episode End
    Truncation after 20 steps; no termination.

    ## Task
    ``PointGoalTask(goal=(x, y))`` with ``|x|, |y| <= 1``. Splits: the 50 published goals
    (Meta-DT/T2MIR ``task_goals.pkl``), first 45 train, last 5 test.

    ## Version History
    * v0: first release.
    """

    core_cls = PointRobotCore


class PointRobotEnvVector(CoreVectorEnv):
    """Batched :class:`PointRobotEnv`."""

    core_cls = PointRobotCore
