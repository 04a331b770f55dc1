"""The batched core shared by every NumPy task family, and its single and vector env adapters.

Each family implements its dynamics once, as a :class:`BatchedCore` that steps ``N`` envs held in
NumPy arrays, each on its own task. :class:`CoreEnv` runs a core with ``N = 1`` behind the
ordinary :class:`gymnasium.Env` API, and :class:`CoreVectorEnv` runs it with ``N`` envs behind
:class:`gymnasium.vector.VectorEnv`. Because both run the same arithmetic, and every env draws its
randomness from its own generator only at reset, a vector env produces exactly the transitions of
``N`` single envs with the same seeds and tasks.

Randomness that happens during an episode (for example bandit reward noise) is drawn per env at
reset for the whole episode, so that the step function has no Python loop over envs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from icrl_bench.errors import InvalidActionError, InvalidTaskError
from icrl_bench.tasks import Task, train_split


def validate_task(space: Any, task: Task | Mapping[str, Any]) -> Task:
    """``task`` as a Task of ``space``'s family (its type, its family, then the family's own
    ``check_task``), or raise :class:`InvalidTaskError`. Shared by the NumPy cores and the
    simulator families' task spaces."""
    if not isinstance(task, Task):
        task = Task.from_dict(task)
    if not isinstance(task, space.task_type):
        raise InvalidTaskError(
            f"{space.family} needs a {space.task_type.__name__}, got {type(task).__name__}"
        )
    if task.family != space.family:
        raise InvalidTaskError(f"task belongs to family {task.family!r}, not {space.family!r}")
    space.check_task(task)
    return task


class TaskSpaceBase(ABC):
    """A family's task space: which tasks exist, how they are drawn and checked. The NumPy
    cores (:class:`BatchedCore`) and the simulators' task spaces
    (:class:`~icrl_bench.envs.process_vector.TaskSpace`) share it; the registry builds splits
    from it."""

    task_type: ClassVar[type[Task]] = Task
    family: str

    @abstractmethod
    def all_tasks(self) -> tuple[Task, ...] | None:
        """Every task of a finite family in canonical order, or None for a continuous one."""

    @abstractmethod
    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Draw ``n`` tasks from the family's generative distribution."""

    @abstractmethod
    def check_task(self, task: Task) -> None:
        """Raise :class:`InvalidTaskError` if ``task`` is out of range for this family."""

    def validate_task(self, task: Task | Mapping[str, Any]) -> Task:
        """Return ``task`` as a Task of this family, or raise :class:`InvalidTaskError`."""
        return validate_task(self, task)


class BatchedCore(TaskSpaceBase):
    """Dynamics of ``num_envs`` envs of one family, as NumPy arrays.

    Subclasses define the spaces, how a task is written into the arrays, the reset and step
    arithmetic, the oracle, the family's task space and its exact reference returns.

    Args:
        num_envs: number of envs held (0 is allowed, for task-space queries only).
        family: the short family id, e.g. ``"DarkRoom-v0"``.
        horizon: episode length in steps; the env truncates after this many steps.
    """

    def __init__(self, num_envs: int, family: str, horizon: int) -> None:
        self.num_envs = int(num_envs)
        self.family = family
        self.horizon = int(horizon)
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self.tasks: list[Task | None] = [None] * self.num_envs

    # -- spaces ------------------------------------------------------------------------------
    single_observation_space: gym.Space[Any]
    single_action_space: gym.Space[Any]

    # -- task space --------------------------------------------------------------------------
    def optimal_action_mask(
        self, tasks: Sequence[Task], observations: np.ndarray
    ) -> np.ndarray | None:
        """Every optimal action at each ``(task, observation)`` pair, ``[N, actions]`` bool, where
        the observation determines the state and the family can enumerate them; else ``None``
        (DPT then learns from the one stored label). The default: ``None``."""
        return None

    # -- dynamics ----------------------------------------------------------------------------
    def set_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        """Write ``tasks`` (already validated) into the arrays of envs ``idx``."""
        for i, task in zip(idx.tolist(), tasks, strict=True):
            self.tasks[i] = task
        self._write_tasks(idx, tasks)

    @abstractmethod
    def _write_tasks(self, idx: np.ndarray, tasks: Sequence[Task]) -> None:
        """Store the parameters of ``tasks`` in the per-env arrays at ``idx``."""

    def reset(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        """Start a new episode in envs ``idx``; ``rngs[j]`` is env ``idx[j]``'s generator."""
        self.t[idx] = 0
        self._reset(idx, rngs)

    @abstractmethod
    def _reset(self, idx: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        """Family-specific reset of envs ``idx``."""

    @abstractmethod
    def observe(self) -> np.ndarray:
        """Observations of all envs, shape ``[num_envs, *obs_shape]``."""

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step every env; return ``(rewards float64 [N], terminated bool [N])``."""
        rewards, terminated = self._step(actions)
        self.t += 1
        return rewards, terminated

    @abstractmethod
    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Family-specific step of all envs, before the step counter advances."""

    @abstractmethod
    def oracle_action(self) -> np.ndarray:
        """The optimal action of every env given its task and state, shape ``[N]``."""

    @property
    def num_learner_states(self) -> int:
        """Number of distinct :meth:`learner_state` values (for tabular source learners)."""
        space = self.single_observation_space
        assert isinstance(space, gym.spaces.Discrete)
        return int(space.n)

    def learner_state(self) -> np.ndarray:
        """The Markov state a tabular source learner sees, int64 ``[N]``.

        It is the observation, except in families whose observation hides part of the state
        that an episode's past would reveal (Key-to-Door's key), where it adds that part.
        """
        return self.observe()

    def check_actions(self, actions: Any) -> np.ndarray:
        """Return ``actions`` as an int64 array of shape ``[N]`` or raise on invalid input."""
        space = self.single_action_space
        if isinstance(space, gym.spaces.Box):
            return self._check_box_actions(space, actions)
        if not isinstance(space, gym.spaces.Discrete):  # pragma: no cover - no such family
            raise NotImplementedError
        arr = np.asarray(actions)
        kind = arr.dtype.kind
        if arr.shape != (self.num_envs,) or not (
            kind in "iu" or (kind == "f" and np.all(arr == np.round(arr)))
        ):
            raise InvalidActionError(
                f"{self.family}: actions must be {self.num_envs} integers, got {actions!r}"
            )
        arr = arr.astype(np.int64, copy=False)
        n = int(space.n)
        if arr.size and ((arr < 0) | (arr >= n)).any():
            raise InvalidActionError(
                f"{self.family}: actions must lie in [0, {n}), got {actions!r}"
            )
        return arr

    def _check_box_actions(self, space: gym.spaces.Box, actions: Any) -> np.ndarray:
        """Continuous actions: ``[N, *shape]`` finite numbers, clipped to the box (as the
        published continuous-control envs clip)."""
        try:
            arr = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.empty(0)
        want = (self.num_envs, *space.shape)
        if arr.shape != want or not np.isfinite(arr).all():
            raise InvalidActionError(
                f"{self.family}: actions must be finite numbers of shape {want}, got {actions!r}"
            )
        return np.clip(arr, space.low, space.high)

    def place_uniform(self, rng: np.random.Generator) -> None:
        """Move every env to a state drawn uniformly from its state space (DPT's uniform
        roll-in). Families without a finite state space do not support it."""
        raise NotImplementedError(f"{self.family} has no uniform state roll-in")

    # -- reference returns ------------------------------------------------------------------
    @abstractmethod
    def reference_returns(self, tasks: Sequence[Task]) -> dict[str, np.ndarray]:
        """Exact expected episode return of the uniform-random policy and of the oracle.

        Returns:
            ``{"random": float64 [len(tasks)], "oracle": float64 [len(tasks)]}``.
        """


def random_actions(space: gym.Space[Any], num_envs: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform-random actions ``[num_envs, ...]``: an index, or a point of the action box."""
    if isinstance(space, gym.spaces.Box):
        shape = (num_envs, *space.shape)
        return rng.uniform(space.low, space.high, size=shape).astype(space.dtype)
    assert isinstance(space, gym.spaces.Discrete)
    return rng.integers(int(space.n), size=num_envs)


def reset_targets(
    options: dict[str, Any] | None, num_envs: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Check a vector env's reset options; returns them and the indices of the envs to reset
    (all, or those of ``options["reset_mask"]``).

    Raises:
        ValueError: an option other than ``task`` and ``reset_mask``.
    """
    options = options or {}
    unknown = set(options) - {"task", "reset_mask"}
    if unknown:
        raise ValueError(f"unknown reset options {sorted(unknown)}")
    mask = options.get("reset_mask")
    idx = np.arange(num_envs) if mask is None else np.flatnonzero(np.asarray(mask, dtype=bool))
    return options, idx


def autoreset(
    mode: AutoresetMode,
    terminated: np.ndarray,
    truncated: np.ndarray,
    observe: Callable[[], np.ndarray],
    reset: Callable[[np.ndarray], None],
) -> tuple[np.ndarray, dict[str, Any]]:
    """What a vector env does with the envs a step ended, per Gymnasium's autoreset modes.

    ``SAME_STEP`` resets them now (``reset(indices)``) and reports their final observations
    (``observe()`` before the reset) in the info; ``NEXT_STEP`` leaves them for the next step,
    which resets them instead of stepping; ``DISABLED`` leaves them to the caller's
    ``reset_mask``.

    Returns:
        The envs pending a ``NEXT_STEP`` reset (all False in the other modes) and the info
        entries of the step.
    """
    done = terminated | truncated
    if mode is AutoresetMode.NEXT_STEP:
        return done, {}
    if mode is AutoresetMode.SAME_STEP and done.any():
        info = {"final_obs": observe().copy(), "_final_obs": done}
        reset(np.flatnonzero(done))
        return np.zeros_like(done), info
    return np.zeros_like(done), {}


class CoreEnv(gym.Env[Any, Any]):
    """A single env over a :class:`BatchedCore` with one env.

    The task in force is sticky: once set with ``gym.make(id, task=t)`` or
    ``reset(options={"task": t})`` it is kept by later resets. Until a task is set, every reset
    draws one from the family's train split with the env's own ``np_random``.
    ``reset(options={"task": None})`` returns to that behaviour.
    """

    core_cls: ClassVar[type[BatchedCore]]
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, family: str, task: Task | Mapping[str, Any] | None = None, **params: Any):
        self._core = self.core_cls(1, family=family, **params)
        self.observation_space = self._core.single_observation_space
        self.action_space = self._core.single_action_space
        self._fixed: Task | None = None if task is None else self._core.validate_task(task)
        self._idx = np.zeros(1, dtype=np.int64)

    @property
    def task(self) -> Task | None:
        """The task in force (None before the first reset when no task was given)."""
        return self._core.tasks[0]

    @property
    def family(self) -> str:
        """The short family id."""
        return self._core.family

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset to a new episode; see the class docstring for how the task is chosen."""
        super().reset(seed=seed)
        if options and "task" in options:
            task = options["task"]
            self._fixed = None if task is None else self._core.validate_task(task)
        if self._fixed is not None:
            task = self._fixed
        else:
            train = train_split(self.family)
            task = train[int(self.np_random.integers(len(train)))]
        self._core.set_tasks(self._idx, [task])
        self._core.reset(self._idx, [self.np_random])
        return self._core.observe()[0], {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Take ``action``; raises :class:`InvalidActionError` outside the action space."""
        if self._core.tasks[0] is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if isinstance(self.action_space, gym.spaces.Box):
            try:
                batch = np.asarray(action, dtype=np.float64)[None]
            except (TypeError, ValueError) as e:
                raise InvalidActionError(f"{self.family}: bad action {action!r}") from e
            actions = self._core.check_actions(batch)
        elif isinstance(action, bool | np.bool_) or (
            not np.isscalar(action) and np.ndim(action) != 0
        ):
            raise InvalidActionError(f"{self.family}: action must be one integer, got {action!r}")
        else:
            actions = self._core.check_actions(np.asarray([action]))
        rewards, terminated = self._core.step(actions)
        truncated = bool(self._core.t[0] >= self._core.horizon) and not bool(terminated[0])
        return self._core.observe()[0], float(rewards[0]), bool(terminated[0]), truncated, {}

    def oracle_action(self) -> Any:
        """The optimal action in the current state (the oracle knows the task)."""
        return self._core.oracle_action()[0]


class CoreVectorEnv(VectorEnv[Any, Any, Any]):
    """``num_envs`` envs of one family stepped as NumPy batches, each on its own task.

    Args:
        family: the short family id.
        num_envs: number of envs.
        tasks: optional per-env tasks (a sequence of exactly ``num_envs``), kept across resets.
        max_episode_steps: truncation horizon (defaults to the family's horizon).
        autoreset_mode: Gymnasium autoreset mode, ``NEXT_STEP`` by default.
        **params: the family parameters from the registry.

    Seeding follows Gymnasium's vector convention: ``reset(seed=s)`` seeds env ``i`` with
    ``s + i``; a list of seeds seeds each env explicitly. Tasks may be replaced at reset with
    ``options={"task": [t_0, ..., t_{N-1}]}``; entries set to None return that env to drawing
    from the train split at every reset.
    """

    core_cls: ClassVar[type[BatchedCore]]
    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        family: str,
        num_envs: int,
        tasks: Sequence[Task | Mapping[str, Any] | None] | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **params: Any,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self._core = self.core_cls(num_envs, family=family, **params)
        self.num_envs = num_envs
        self.single_observation_space = self._core.single_observation_space
        self.single_action_space = self._core.single_action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self._horizon = self._core.horizon
        if max_episode_steps is not None:
            self._horizon = min(self._horizon, int(max_episode_steps))
        self._fixed: list[Task | None] = [None] * num_envs
        if tasks is not None:
            self._fixed = self._validate_task_list(tasks)
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    @property
    def family(self) -> str:
        """The short family id."""
        return self._core.family

    @property
    def task(self) -> list[Task | None]:
        """The task in force in each env."""
        return list(self._core.tasks)

    def _validate_task_list(self, tasks: Any) -> list[Task | None]:
        if isinstance(tasks, Task | Mapping) or not isinstance(tasks, Sequence):
            raise InvalidTaskError(
                f"{self.family}: a vector env needs a sequence of {self.num_envs} tasks, "
                f"got {type(tasks).__name__}"
            )
        if len(tasks) != self.num_envs:
            raise InvalidTaskError(
                f"{self.family}: got {len(tasks)} tasks for {self.num_envs} envs"
            )
        return [None if t is None else self._core.validate_task(t) for t in tasks]

    def _seed(self, seed: int | Sequence[int] | None) -> None:
        if seed is None:
            for i, rng in enumerate(self._rngs):
                if rng is None:
                    self._rngs[i] = seeding.np_random()[0]
            return
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        self._rngs = [seeding.np_random(s)[0] for s in seeds]

    def _reset_envs(self, idx: np.ndarray) -> None:
        rngs = [self._rngs[i] for i in idx.tolist()]
        assert all(r is not None for r in rngs)
        chosen: list[Task] = []
        train: tuple[Task, ...] | None = None
        for i, rng in zip(idx.tolist(), rngs, strict=True):
            fixed = self._fixed[i]
            if fixed is None:
                train = train or train_split(self.family)
                fixed_draw = train[int(rng.integers(len(train)))]
                chosen.append(fixed_draw)
            else:
                chosen.append(fixed)
        self._core.set_tasks(idx, chosen)
        self._core.reset(idx, rngs)

    def reset(
        self,
        *,
        seed: int | Sequence[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all envs, or those in ``options["reset_mask"]``."""
        options, idx = reset_targets(options, self.num_envs)
        if "task" in options:
            self._fixed = self._validate_task_list(options["task"])
        self._seed(seed)
        self._reset_envs(idx)
        self._needs_reset[idx] = False
        return self._core.observe(), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; ended envs reset per the autoreset mode."""
        if self._core.tasks[0] is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        acts = self._core.check_actions(actions)
        pending = (
            np.flatnonzero(self._needs_reset)
            if self.autoreset_mode is AutoresetMode.NEXT_STEP
            else None
        )
        rewards, terminated = self._core.step(acts)
        truncated = (self._core.t >= self._horizon) & ~terminated
        if pending is not None and pending.size:
            self._reset_envs(pending)
            rewards[pending] = 0.0
            terminated[pending] = False
            truncated[pending] = False
        self._needs_reset, info = autoreset(
            self.autoreset_mode, terminated, truncated, self._core.observe, self._reset_envs
        )
        return self._core.observe(), rewards, terminated, truncated, info

    def oracle_action(self) -> np.ndarray:
        """The optimal action of every env (the oracle knows each env's task)."""
        return self._core.oracle_action()
