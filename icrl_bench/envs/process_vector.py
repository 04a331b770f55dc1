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
import time
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

#: how long a process polls for its next message before sleeping on the pipe (see _wait)
SPIN_SECONDS = 0.001


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
class _Buffers:
    """The step's arrays of every env, in memory shared by the calling process and the workers:
    actions in; observations, rewards and episode ends out. A step's message then carries only
    which envs to step, and its reply only their infos; nothing large is pickled."""

    def __init__(
        self, ctx: Any, num_envs: int, obs_shape: tuple[int, ...], act_shape: tuple[int, ...]
    ) -> None:
        self.num_envs, self.obs_shape, self.act_shape = num_envs, obs_shape, act_shape
        size = num_envs * (int(np.prod(obs_shape)) + int(np.prod(act_shape)) + 3)
        self.raw = ctx.RawArray("d", size)  # float64: every family's observations and actions
        self._views()

    def _views(self) -> None:
        flat = np.frombuffer(self.raw, dtype=np.float64)
        n, o, a = self.num_envs, int(np.prod(self.obs_shape)), int(np.prod(self.act_shape))
        self.obs = flat[: n * o].reshape(n, *self.obs_shape)
        self.act = flat[n * o : n * (o + a)].reshape(n, *self.act_shape)
        self.rew, self.term, self.trunc = flat[n * (o + a) :].reshape(3, n)

    def __getstate__(self) -> dict[str, Any]:  # a spawned worker maps the same memory
        return {k: getattr(self, k) for k in ("num_envs", "obs_shape", "act_shape", "raw")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._views()


def _handle(envs: list[TaskEnv], cmd: str, payload: Any, buf: _Buffers, lo: int) -> Any:
    """Run one command on a shard's envs (in a worker process or in this one); ``lo`` is the
    index of the shard's first env in the shared buffers."""
    if cmd == "step":  # payload: local indices; actions and results go through ``buf``
        infos = []
        for i in payload:
            obs, reward, terminated, truncated, info = envs[i].step(buf.act[lo + i])
            j = lo + i
            buf.obs[j], buf.rew[j], buf.term[j], buf.trunc[j] = obs, reward, terminated, truncated
            infos.append(info)
        return infos
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


def _wait(conn: Connection, spin: float) -> None:
    """Poll ``conn`` for up to ``spin`` seconds before the caller blocks on it.

    Waking a process blocked on a pipe costs 0.1-0.3 ms on a virtual machine, as much as
    stepping a few simulator envs; a vector step waits for a reply and a worker for the next
    command once per step. While every process has a core of its own, polling for the short
    gap between steps keeps them awake; a longer gap falls back to blocking."""
    deadline = time.perf_counter() + spin
    while not conn.poll() and time.perf_counter() < deadline:
        pass


def _worker(
    conn: Connection, make: Callable[[], TaskEnv], count: int, spin: float, buf: _Buffers, lo: int
) -> None:
    envs = [make() for _ in range(count)]
    try:
        while True:
            _wait(conn, spin)
            cmd, payload = conn.recv()
            try:
                reply = _handle(envs, cmd, payload, buf, lo)
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

    def __init__(self, make: Callable[[], TaskEnv], count: int, buf: _Buffers, lo: int) -> None:
        self.envs = [make() for _ in range(count)]
        self.buf, self.lo = buf, lo
        self.reply: Any = None

    def send(self, msg: tuple[str, Any]) -> None:
        try:
            self.reply = _handle(self.envs, *msg, self.buf, self.lo)
        except Exception as e:  # as a worker would report it
            self.reply = _Failure(e)

    def recv(self) -> Any:
        return self.reply


def default_workers(num_envs: int) -> int:
    """Worker processes for ``num_envs`` envs: one per core but one, the calling process
    stepping a share itself (``$ICRL_BENCH_WORKERS`` overrides); none for a single env."""
    if num_envs <= 1:
        return 0
    env = os.environ.get("ICRL_BENCH_WORKERS")
    workers = int(env) if env else (os.cpu_count() or 1) - 1
    return max(0, min(workers, num_envs - 1))


class ProcessVectorEnv(VectorEnv[Any, Any, Any]):
    """``num_envs`` simulator envs of one family, each on its own task, stepped in parallel by
    the calling process and ``workers`` worker processes.

    The envs are split evenly over the calling process and the workers: a step sends each
    worker its actions through a pipe, steps the calling process's own share meanwhile, then
    reads the workers' replies. With one process per core and no more, the processes poll
    briefly for the next message instead of sleeping on the pipe (see :func:`_wait`).

    Args:
        family: the short family id.
        num_envs: number of envs.
        tasks: optional per-env tasks (exactly ``num_envs``), kept across resets.
        max_episode_steps: truncation horizon (defaults to the family's horizon).
        autoreset_mode: Gymnasium autoreset mode, ``NEXT_STEP`` by default.
        workers: worker processes besides the calling one (None: :func:`default_workers`; 0:
            every env in this process).
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
        n_workers = default_workers(num_envs) if workers is None else min(workers, num_envs - 1)
        n_workers = max(n_workers, 0)
        make = _Maker(self.env_cls, family, horizon, params)
        # shard 0 is this process's own share; shards 1.. are the workers'
        sizes = np.diff(np.linspace(0, num_envs, n_workers + 2).round().astype(int))
        self._bounds = np.concatenate([[0], np.cumsum(sizes)])
        probe = make()
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        probe.close()
        # fork where the OS has it (as Gymnasium's AsyncVectorEnv): no re-import of the
        # caller's __main__; workers run only the simulator, never the parent's threads
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        obs_shape = tuple(self.single_observation_space.shape or ())
        self._buf = _Buffers(ctx, num_envs, obs_shape, tuple(self.single_action_space.shape or ()))
        self._shards: list[Any] = [_Local(make, int(sizes[0]), self._buf, 0)]
        self._procs: list[Any] = [None]
        # poll instead of sleeping only while every process has a core to itself: not in a pool
        # worker (data generation, a suite's jobs), whose siblings share the cores
        own_cores = mp.parent_process() is None and n_workers + 1 <= (os.cpu_count() or 1)
        self._spin = SPIN_SECONDS if own_cores else 0.0
        for k, size in enumerate(sizes[1:], start=1):
            parent, child = ctx.Pipe()
            args = (child, make, int(size), self._spin, self._buf, int(self._bounds[k]))
            proc = ctx.Process(target=_worker, args=args, daemon=True)  # type: ignore[attr-defined]
            proc.start()
            child.close()
            self._shards.append(parent)
            self._procs.append(proc)
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
        shards = range(len(self._shards))
        self._dispatch(
            {k: ("set_tasks", valid[self._bounds[k] : self._bounds[k + 1]]) for k in shards}
        )
        self._replies(shards)

    def _gather(self, cmd: str, payload: Any) -> list[Any]:
        shards = range(len(self._shards))
        self._dispatch({k: (cmd, payload) for k in shards})
        out: list[Any] = []
        for reply in self._replies(shards):
            out.extend(reply)
        return out

    def _dispatch(self, messages: dict[int, tuple[str, Any]]) -> None:
        """Send each shard its message: the workers' first, then this process's own share,
        which is computed on the spot while the workers compute theirs."""
        for k in sorted(messages, reverse=True):
            self._send(k, messages[k])

    def _died(self, k: int) -> RuntimeError:
        proc = self._procs[k]
        code = proc.exitcode if proc is not None else None
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
                if self._procs[k] is not None:
                    _wait(self._shards[k], self._spin)
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
        # a step's actions are in the shared buffers: its message names the envs only
        payload = {k: [i for i, _ in plan[k]] if cmd == "step" else plan[k] for k in active}
        self._dispatch({k: (cmd, payload[k]) for k in active})
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
        buf = self._buf
        try:
            buf.act[:] = np.asarray(actions, dtype=np.float64).reshape(buf.act.shape)
        except (TypeError, ValueError):
            raise InvalidActionError(
                f"{self.family}: actions must be numbers of shape {(self.num_envs, *buf.act_shape)}"
                f", got {actions!r}"
            ) from None
        pending = (
            np.flatnonzero(self._needs_reset)
            if self.autoreset_mode is AutoresetMode.NEXT_STEP
            else np.zeros(0, dtype=np.int64)
        )
        reset_obs = self._reset_idx(pending, [None] * pending.size) if pending.size else {}
        infos = self._per_shard(
            "step", {i: None for i in range(self.num_envs) if i not in reset_obs}
        )
        for i, o in reset_obs.items():  # a NEXT_STEP autoreset: reward 0, not done
            buf.obs[i], buf.rew[i], buf.term[i], buf.trunc[i] = o, 0.0, False, False
            infos[i] = {}
        rewards = buf.rew.copy()
        terminated, truncated = buf.term.astype(bool), buf.trunc.astype(bool)
        obs = buf.obs.astype(self.single_observation_space.dtype)
        info: dict[str, Any] = {}
        if self.env_cls.has_success:
            info["success"] = np.array(
                [bool(infos[i].get("success", False)) for i in range(self.num_envs)]
            )

        def reset_ended(done: np.ndarray) -> None:
            for i, o in self._reset_idx(done, [None] * done.size).items():
                obs[i] = o

        self._needs_reset, ended = autoreset(
            self.autoreset_mode, terminated, truncated, lambda: obs, reset_ended
        )
        info.update(ended)
        self._obs = obs
        return obs.copy(), rewards, terminated, truncated, info

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
        for proc in self._procs[1:]:
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
