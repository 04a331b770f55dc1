"""Families whose dynamics are a simulator (MuJoCo, Meta-World) rather than NumPy arithmetic.

:class:`TaskEnv` is the single env: it holds one simulator, applies the task in force, truncates
at the family's horizon and reports ``info["success"]`` where the family defines success. It
follows the same task contract as the NumPy families (``gym.make(id, task=t)``,
``reset(options={"task": t})``, sticky tasks, a train-split draw otherwise).

:class:`ProcessVectorEnv` is the batched env of such a family. A simulator steps one env at a
time, so the batch is split into shards, one per worker process, and every shard steps its envs
while the others do the same: on ``k`` cores a step of ``N`` envs costs about ``N / k`` single
steps. ``workers=0`` keeps every env in this process (tests, one env). It mirrors the NumPy
families' vector env: per-env tasks (``tasks=``), a list of seeds seeds each env, the three
Gymnasium autoreset modes with ``info["final_obs"]`` under ``SAME_STEP``, ``oracle_action()``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from icrl_bench.envs.core import TaskSpaceBase, autoreset, reset_targets
from icrl_bench.errors import InvalidActionError, InvalidTaskError
from icrl_bench.tasks import Task, train_split


class TaskSpace(TaskSpaceBase):
    """The task space of a simulator family: what :class:`~icrl_bench.envs.core.BatchedCore`
    offers the registry, without dynamics.

    Subclasses set ``task_type`` and implement :meth:`sample_tasks` and :meth:`check_task`;
    :meth:`benchmark_split` where the split comes from the simulator's own benchmark. Their
    reference returns are measured by rollouts (:mod:`icrl_bench.references`), not computed.
    """

    def __init__(self, num_envs: int, family: str, horizon: int, **params: Any) -> None:
        self.family = family
        self.horizon = int(horizon)
        self.params = params

    def all_tasks(self) -> tuple[Task, ...] | None:
        """Continuous families have no finite task list."""
        return None

    def benchmark_split(self) -> tuple[tuple[Task, ...], tuple[Task, ...]]:
        """``(train, test)`` from the simulator's own benchmark (``Split("benchmark")``)."""
        raise NotImplementedError(f"{self.family} has no benchmark split")


class TaskEnv(gym.Env[np.ndarray, np.ndarray]):
    """One simulator env of a family; subclasses implement the five ``_sim`` hooks.

    ``reset(seed=s)`` seeds the env (and its simulator through :meth:`_seed_sim`, because some
    simulators ignore Gymnasium's seed argument).
    """

    space_cls: ClassVar[type[TaskSpace]]
    metadata: dict[str, Any] = {"render_modes": []}
    #: whether ``info["success"]`` is reported (Meta-World)
    has_success: ClassVar[bool] = False
    #: whether :meth:`oracle_action` exists (Meta-World's scripted experts; not locomotion)
    has_oracle: ClassVar[bool] = True

    def __init__(
        self, family: str, horizon: int, task: Task | Mapping[str, Any] | None = None, **params: Any
    ) -> None:
        self._space = self.space_cls(0, family=family, horizon=horizon, **params)
        self.family = family
        self.horizon = int(horizon)
        self.fixed_task: Task | None = None if task is None else self._space.validate_task(task)
        self._task: Task | None = None
        self._t = 0
        self._build(**params)

    @property
    def task(self) -> Task | None:
        """The task in force (None before the first reset)."""
        return self._task

    # -- hooks -------------------------------------------------------------------------------
    @abstractmethod
    def _build(self, **params: Any) -> None:
        """Create the simulator and set ``observation_space`` / ``action_space``."""

    @abstractmethod
    def _apply_task(self, task: Task) -> None:
        """Write ``task`` into the simulator."""

    def _seed_sim(self, seed: int) -> None:
        """Seed the simulator's own generators."""

    @abstractmethod
    def _reset_sim(self) -> np.ndarray:
        """Start an episode; return the first observation."""

    @abstractmethod
    def _step_sim(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        """Advance one step: ``(obs, reward, terminated, info)``."""

    def oracle_action(self) -> np.ndarray:
        """The family's oracle or expert action in the current state."""
        raise NotImplementedError(f"{self.family} has no oracle policy")

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset to a new episode (task chosen as in :class:`~icrl_bench.envs.core.CoreEnv`)."""
        super().reset(seed=seed)
        if seed is not None:
            self._seed_sim(int(self.np_random.integers(2**31 - 1)))
        if options and "task" in options:
            task = options["task"]
            self.fixed_task = None if task is None else self._space.validate_task(task)
        if self.fixed_task is not None:
            task = self.fixed_task
        else:
            train = train_split(self.family)
            task = train[int(self.np_random.integers(len(train)))]
        if task != self._task:
            self._apply_task(task)
            self._task = task
        self._t = 0
        return self._reset_sim(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Take ``action`` (clipped to the action box; non-finite actions raise)."""
        if self._task is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        space = self.action_space
        assert isinstance(space, gym.spaces.Box)
        try:
            arr = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InvalidActionError(f"{self.family}: bad action {action!r}") from e
        if arr.shape != space.shape or not np.isfinite(arr).all():
            raise InvalidActionError(
                f"{self.family}: action must be finite numbers of shape {space.shape}, "
                f"got {action!r}"
            )
        obs, reward, terminated, info = self._step_sim(np.clip(arr, space.low, space.high))
        self._t += 1
        truncated = self._t >= self.horizon and not terminated
        return obs, float(reward), bool(terminated), truncated, info


# -- the worker side ----------------------------------------------------------------------------
def _handle(envs: list[TaskEnv], cmd: str, payload: Any) -> Any:
    """Run one command on a shard's envs (in a worker process or in this one)."""
    if cmd == "step":  # payload: [(local index, action)]
        return [envs[i].step(a) for i, a in payload]
    if cmd == "reset":  # payload: [(local index, seed)]
        return [envs[i].reset(seed=s)[0] for i, s in payload]
    if cmd == "call":
        return [getattr(env, payload)() for env in envs]
    if cmd == "get":
        return [getattr(env, payload) for env in envs]
    if cmd == "set_tasks":
        for env, task in zip(envs, payload, strict=True):
            env.fixed_task = task
        return None
    if cmd == "close":
        for env in envs:
            env.close()
        return None
    raise ValueError(f"unknown command {cmd!r}")


def _worker(conn: Connection, make: Callable[[], TaskEnv], count: int) -> None:
    envs = [make() for _ in range(count)]
    try:
        while True:
            cmd, payload = conn.recv()
            try:
                reply = _handle(envs, cmd, payload)
            except Exception as e:  # reported to the parent, which raises it
                reply = _Failure(e)
            conn.send(reply)
            if cmd == "close":
                return
    except (EOFError, KeyboardInterrupt):  # the parent went away
        return


class _Failure:
    """An exception raised in a worker, carried back to the parent."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Local:
    """An in-process shard that speaks the workers' protocol."""

    def __init__(self, make: Callable[[], TaskEnv], count: int) -> None:
        self.envs = [make() for _ in range(count)]
        self.reply: Any = None

    def send(self, msg: tuple[str, Any]) -> None:
        self.reply = _handle(self.envs, *msg)

    def recv(self) -> Any:
        return self.reply


def default_workers(num_envs: int) -> int:
    """Worker processes for ``num_envs`` envs: one per core (``$ICRL_BENCH_WORKERS``
    overrides), none for a single env."""
    if num_envs <= 1:
        return 0
    env = os.environ.get("ICRL_BENCH_WORKERS")
    workers = int(env) if env else (os.cpu_count() or 1)
    return max(0, min(workers, num_envs))


class ProcessVectorEnv(VectorEnv[Any, Any, Any]):
    """``num_envs`` simulator envs of one family in ``workers`` processes, each on its own task.

    Args:
        family: the short family id.
        num_envs: number of envs.
        tasks: optional per-env tasks (exactly ``num_envs``), kept across resets.
        max_episode_steps: truncation horizon (defaults to the family's horizon).
        autoreset_mode: Gymnasium autoreset mode, ``NEXT_STEP`` by default.
        workers: worker processes (None: :func:`default_workers`; 0: in this process).
        **params: the family parameters from the registry.
    """

    env_cls: ClassVar[type[TaskEnv]]
    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        family: str,
        num_envs: int,
        tasks: Sequence[Task | Mapping[str, Any] | None] | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        workers: int | None = None,
        **params: Any,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        horizon = int(params.pop("horizon"))
        if max_episode_steps is not None:
            horizon = min(horizon, int(max_episode_steps))
        self._space = self.env_cls.space_cls(0, family=family, horizon=horizon, **params)
        self._family = family
        self.num_envs = num_envs
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        n_workers = default_workers(num_envs) if workers is None else min(workers, num_envs)
        make = _Maker(self.env_cls, family, horizon, params)
        sizes = np.diff(np.linspace(0, num_envs, max(n_workers, 1) + 1).round().astype(int))
        self._bounds = np.concatenate([[0], np.cumsum(sizes)])
        self._shards: list[Any] = []
        self._procs: list[Any] = []
        if n_workers == 0:
            self._shards.append(_Local(make, num_envs))
        else:
            # fork where the OS has it (as Gymnasium's AsyncVectorEnv): no re-import of the
            # caller's __main__; workers run only the simulator, never the parent's threads
            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            for size in sizes:
                parent, child = ctx.Pipe()
                proc = ctx.Process(  # type: ignore[attr-defined]
                    target=_worker, args=(child, make, int(size)), daemon=True
                )
                proc.start()
                child.close()
                self._shards.append(parent)
                self._procs.append(proc)
        probe = _Local(make, 1).envs[0]
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        probe.close()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._obs: np.ndarray = np.zeros(
            tuple(self.observation_space.shape or ()),
            dtype=self.single_observation_space.dtype,
        )
        self._seeded = False
        self._core = _CoreView(self, horizon)
        if tasks is not None:
            self._set_tasks(tasks)
        self._closed = False

    @property
    def family(self) -> str:
        """The short family id."""
        return self._family

    @property
    def task(self) -> list[Task | None]:
        """The task in force in each env."""
        return list(self._gather("get", "task"))

    def _set_tasks(self, tasks: Any) -> None:
        if isinstance(tasks, Task | Mapping) or not isinstance(tasks, Sequence):
            raise InvalidTaskError(
                f"{self.family}: a vector env needs a sequence of {self.num_envs} tasks, "
                f"got {type(tasks).__name__}"
            )
        if len(tasks) != self.num_envs:
            raise InvalidTaskError(
                f"{self.family}: got {len(tasks)} tasks for {self.num_envs} envs"
            )
        valid = [None if t is None else self._space.validate_task(t) for t in tasks]
        for k in range(len(self._shards)):
            self._send(k, ("set_tasks", valid[self._bounds[k] : self._bounds[k + 1]]))
        self._replies(range(len(self._shards)))

    def _gather(self, cmd: str, payload: Any) -> list[Any]:
        for k in range(len(self._shards)):
            self._send(k, (cmd, payload))
        out: list[Any] = []
        for reply in self._replies(range(len(self._shards))):
            out.extend(reply)
        return out

    def _died(self, k: int) -> RuntimeError:
        code = self._procs[k].exitcode if k < len(self._procs) else None
        return RuntimeError(
            f"{self.env_cls.__name__} worker {k} died (exit code {code}); close this env and "
            "make a new one"
        )

    def _send(self, k: int, msg: tuple[str, Any]) -> None:
        try:
            self._shards[k].send(msg)
        except OSError:  # a broken pipe: the worker is gone
            raise self._died(k) from None

    def _replies(self, shards: Sequence[int]) -> list[Any]:
        """Every listed shard's reply, in order. All are read before a failure is raised, so
        that no reply is left in a pipe to answer the next command."""
        replies: list[Any] = []
        for k in shards:
            try:
                replies.append(self._shards[k].recv())
            except (EOFError, OSError):
                replies.append(_Failure(self._died(k)))
        for reply in replies:
            if isinstance(reply, _Failure):
                raise reply.error
        return replies

    def _per_shard(self, cmd: str, items: dict[int, Any]) -> dict[int, Any]:
        """Send ``cmd`` with ``{env index: argument}`` to the shards holding those envs, in
        parallel; returns ``{env index: reply}``."""
        plan: list[list[tuple[int, Any]]] = [[] for _ in self._shards]
        for i, arg in items.items():
            k = int(np.searchsorted(self._bounds, i, side="right") - 1)
            plan[k].append((i - int(self._bounds[k]), arg))
        active = [k for k, part in enumerate(plan) if part]
        for k in active:
            self._send(k, (cmd, plan[k]))
        out: dict[int, Any] = {}
        for k, replies in zip(active, self._replies(active), strict=True):
            for (local, _), reply in zip(plan[k], replies, strict=True):
                out[int(self._bounds[k]) + local] = reply
        return out

    def _reset_idx(self, idx: np.ndarray, seeds: Sequence[int | None]) -> dict[int, np.ndarray]:
        """Reset envs ``idx``; returns their first observations."""
        return self._per_shard("reset", dict(zip(idx.tolist(), seeds, strict=True)))

    def reset(
        self,
        *,
        seed: int | Sequence[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all envs, or those in ``options["reset_mask"]``."""
        options, idx = reset_targets(options, self.num_envs)
        if "task" in options:
            self._set_tasks(options["task"])
        if seed is None:
            seeds: list[int | None] = [None] * len(idx)
            if not self._seeded:  # first reset without a seed: fresh entropy per env
                seeds = [int(s) for s in np.random.SeedSequence().generate_state(len(idx))]
        elif isinstance(seed, int):
            seeds = [seed + int(i) for i in idx]
        else:
            if len(seed) != self.num_envs:
                raise ValueError(f"got {len(seed)} seeds for {self.num_envs} envs")
            seeds = [int(seed[int(i)]) for i in idx]
        self._seeded = True
        first = self._reset_idx(idx, seeds)
        for i, o in first.items():
            self._obs[i] = o
        self._needs_reset[idx] = False
        return self._obs.copy(), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; ended envs reset per the autoreset mode."""
        if not self._seeded:
            raise gym.error.ResetNeeded("call reset() before step()")
        acts = np.asarray(actions)
        pending = (
            np.flatnonzero(self._needs_reset)
            if self.autoreset_mode is AutoresetMode.NEXT_STEP
            else np.zeros(0, dtype=np.int64)
        )
        results = self._gather_step(acts, pending)
        rewards = np.array([r[1] for r in results], dtype=np.float64)
        terminated = np.array([r[2] for r in results], dtype=bool)
        truncated = np.array([r[3] for r in results], dtype=bool)
        obs = np.stack([r[0] for r in results]).astype(self.single_observation_space.dtype)
        info: dict[str, Any] = {}
        if self.env_cls.has_success:
            info["success"] = np.array([bool(r[4].get("success", False)) for r in results])

        def reset_ended(done: np.ndarray) -> None:
            for i, o in self._reset_idx(done, [None] * done.size).items():
                obs[i] = o

        self._needs_reset, ended = autoreset(
            self.autoreset_mode, terminated, truncated, lambda: obs, reset_ended
        )
        info.update(ended)
        self._obs = obs
        return obs.copy(), rewards, terminated, truncated, info

    def _gather_step(self, acts: np.ndarray, pending: np.ndarray) -> list[tuple[Any, ...]]:
        """Step the envs, except those pending a NEXT_STEP autoreset, which reset instead
        (reward 0, not done)."""
        reset_obs = self._reset_idx(pending, [None] * pending.size) if pending.size else {}
        stepped = self._per_shard(
            "step", {i: acts[i] for i in range(self.num_envs) if i not in reset_obs}
        )
        for i, o in reset_obs.items():
            stepped[i] = (o, 0.0, False, False, {})
        return [stepped[i] for i in range(self.num_envs)]

    def oracle_action(self) -> np.ndarray:
        """The oracle's (or expert's) action in every env."""
        return np.stack(self._gather("call", "oracle_action"))

    def close_extras(self, **kwargs: Any) -> None:
        """Stop the workers."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        for shard in self._shards:
            try:
                shard.send(("close", None))
                shard.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


class _Maker:
    """A picklable factory of one env (sent to the worker processes)."""

    def __init__(self, cls: type[TaskEnv], family: str, horizon: int, params: dict[str, Any]):
        self.cls, self.family, self.horizon, self.params = cls, family, horizon, params

    def __call__(self) -> TaskEnv:
        return self.cls(family=self.family, horizon=self.horizon, **self.params)


class _CoreView:
    """What dataset sources and reference agents read from a NumPy family's core, for a
    simulator family: spaces, horizon, the oracle and the current observations."""

    def __init__(self, venv: ProcessVectorEnv, horizon: int) -> None:
        self._venv = venv
        self.family = venv.family
        self.horizon = horizon
        self.num_envs = venv.num_envs
        self.single_observation_space = venv.single_observation_space
        self.single_action_space = venv.single_action_space
        self.has_oracle = venv.env_cls.has_oracle

    def oracle_action(self) -> np.ndarray:
        """The oracle's (or expert's) action in every env."""
        return self._venv.oracle_action()

    def learner_state(self) -> np.ndarray:
        """The current observations (simulator families have no hidden learner state)."""
        return self._venv._obs.copy()

    def place_uniform(self, rng: np.random.Generator) -> None:
        """Simulator families have no uniform state roll-in."""
        raise NotImplementedError(f"{self.family} has no uniform state roll-in")
