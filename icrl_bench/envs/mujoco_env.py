"""MuJoCo locomotion meta-RL families on Gymnasium's v5 environments.

The task distributions of Meta-DT and T2MIR (after PEARL's ``rand_param_envs`` and the
``half_cheetah_vel`` / ``half_cheetah_dir`` / ``ant_dir`` envs), rebuilt on Gymnasium's
``HalfCheetah-v5``, ``Ant-v5``, ``Hopper-v5`` and ``Walker2d-v5`` and MuJoCo 3 instead of
mujoco-py and gym 0.x. Every family truncates after 200 steps.

* ``HalfCheetahVel-v0``: reward ``-|v_x - v_target| - 0.05 |a|^2``; 50 target velocities.
* ``HalfCheetahDir-v0``: reward ``d * v_x - 0.05 |a|^2`` with ``d = +1`` (forward, train) or
  ``-1`` (backward, test).
* ``AntDir-v0``: reward ``v_xy . (cos t, sin t) + 1 (healthy) - 0.5 |a|^2 - contact cost``,
  ``t`` in ``[0, 2 pi)``; the episode terminates when the torso leaves the healthy height range.
* ``HopperParams-v0`` / ``WalkerParams-v0``: Gymnasium's own reward and termination; the task
  sets ``body_mass``, ``body_inertia``, ``dof_damping`` and ``geom_friction``.

Differences from the mujoco-py originals are listed in docs/tasks.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from icrl_bench.envs.process_vector import ProcessVectorEnv, TaskEnv, TaskSpace
from icrl_bench.errors import IcrlBenchError, InvalidTaskError
from icrl_bench.tasks import Task

#: control-cost weight of the velocity and direction tasks (PEARL / Meta-DT: 0.5 * 1e-1)
CTRL_COST = 0.05
#: log-uniform multiplier range of the physics tasks: ``base ** U[-limit, limit]``
PHYSICS_BASE, PHYSICS_LIMIT = 1.5, 3.0
PHYSICS_FIELDS = ("body_mass", "body_inertia", "dof_damping", "geom_friction")


def _finite(name: str, values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidTaskError(f"{name} must be numbers, got {values!r}") from e
    if arr.size == 0 or not np.isfinite(arr).all():
        raise InvalidTaskError(f"{name} must be finite numbers, got {values!r}")
    return arr


@dataclass(frozen=True)
class VelocityTask(Task):
    """A target forward velocity (HalfCheetahVel)."""

    velocity: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "velocity", float(_finite("velocity", self.velocity)))


@dataclass(frozen=True)
class DirectionTask(Task):
    """A direction: ``+1`` / ``-1`` along x (HalfCheetahDir) or an angle in radians (AntDir)."""

    direction: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "direction", float(_finite("direction", self.direction)))


@dataclass(frozen=True)
class PhysicsTask(Task):
    """Absolute physical parameters of the model (HopperParams, WalkerParams)."""

    body_mass: tuple[tuple[float, ...], ...] = ()
    body_inertia: tuple[tuple[float, ...], ...] = ()
    dof_damping: tuple[tuple[float, ...], ...] = ()
    geom_friction: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in PHYSICS_FIELDS:
            arr = _finite(name, getattr(self, name))
            if arr.ndim == 1:
                arr = arr[:, None]
            if (arr < 0).any():
                raise InvalidTaskError(f"{name} must not be negative")
            object.__setattr__(self, name, tuple(tuple(float(v) for v in row) for row in arr))


#: per family objective -> (task type, base Gymnasium id)
_KINDS: dict[str, tuple[type[Task], str]] = {
    "velocity": (VelocityTask, "HalfCheetah-v5"),
    "direction": (DirectionTask, "HalfCheetah-v5"),
    "angle": (DirectionTask, "Ant-v5"),
    "hopper": (PhysicsTask, "Hopper-v5"),
    "walker": (PhysicsTask, "Walker2d-v5"),
}


def _make_base(kind: str) -> Any:
    try:
        return gym.make(_KINDS[kind][1]).unwrapped  # no TimeLimit: we truncate
    except gym.error.DependencyNotInstalled as e:  # pragma: no cover - an optional extra
        raise IcrlBenchError(
            "MuJoCo families need the mujoco extra: pip install 'icrl-bench[mujoco]'"
        ) from e


_DEFAULTS: dict[str, dict[str, np.ndarray]] = {}


def default_physics(kind: str) -> dict[str, np.ndarray]:
    """The base model's own ``body_mass``, ``body_inertia``, ``dof_damping``, ``geom_friction``
    (each 2-D)."""
    if kind not in _DEFAULTS:
        model = _make_base(kind).model
        _DEFAULTS[kind] = {
            name: np.asarray(getattr(model, name), dtype=np.float64).reshape(
                len(getattr(model, name)), -1
            )
            for name in PHYSICS_FIELDS
        }
    return _DEFAULTS[kind]


class LocomotionSpace(TaskSpace):
    """Task space of one locomotion family (``objective`` names it, see :data:`_KINDS`)."""

    def __init__(
        self,
        num_envs: int,
        family: str,
        horizon: int,
        objective: str = "velocity",
        low: float = 0.0,
        high: float = 3.0,
    ) -> None:
        super().__init__(num_envs, family, horizon)
        if objective not in _KINDS:
            raise ValueError(f"unknown locomotion objective {objective!r}")
        self.kind, self.low, self.high = objective, float(low), float(high)
        self.task_type = _KINDS[objective][0]  # type: ignore[misc]

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Velocities ``U[low, high]``; directions ``+-1``; angles ``U[0, 2 pi)``; physics
        multipliers ``1.5 ** U[-3, 3]`` per element of the base model's parameters."""
        f = self.family
        if self.kind == "velocity":
            return tuple(
                VelocityTask(family=f, velocity=v) for v in rng.uniform(self.low, self.high, n)
            )
        if self.kind == "direction":
            return tuple(DirectionTask(family=f, direction=d) for d in rng.choice([-1.0, 1.0], n))
        if self.kind == "angle":
            angles = rng.uniform(0.0, 2 * math.pi, n)
            return tuple(DirectionTask(family=f, direction=a) for a in angles)
        base = default_physics(self.kind)
        out = []
        for _ in range(n):
            values = {
                name: base[name]
                * PHYSICS_BASE ** rng.uniform(-PHYSICS_LIMIT, PHYSICS_LIMIT, base[name].shape)
                for name in PHYSICS_FIELDS
            }
            out.append(PhysicsTask(family=f, **{k: v.tolist() for k, v in values.items()}))
        return tuple(out)

    def features(self, task: Task) -> np.ndarray:
        """The task as a short float32 vector, for a learner that is told its task (the
        oracle-conditioned SAC source): the target velocity; the direction ``+-1``; an angle's
        ``(cos, sin)``; a physics task's exponents ``log_1.5(value / base)`` of every
        element (in ``[-3, 3]``; 0 where the base value is 0)."""
        self.check_task(task)
        if self.kind == "velocity":
            return np.array([task.velocity], np.float32)  # type: ignore[attr-defined]
        if self.kind == "direction":
            return np.array([task.direction], np.float32)  # type: ignore[attr-defined]
        if self.kind == "angle":
            a = task.direction  # type: ignore[attr-defined]
            return np.array([math.cos(a), math.sin(a)], np.float32)
        base = default_physics(self.kind)
        parts = []
        for name in PHYSICS_FIELDS:
            value, ref = np.asarray(getattr(task, name), np.float64), base[name]
            ratio = np.divide(value, ref, out=np.ones_like(value), where=ref > 0)
            parts.append((np.log(np.maximum(ratio, 1e-12)) / math.log(PHYSICS_BASE)).ravel())
        return np.concatenate(parts).astype(np.float32)

    def check_task(self, task: Task) -> None:
        """Velocities in ``[low, high]``, directions ``+-1``, angles in ``[0, 2 pi)``, physics
        arrays of the model's shapes."""
        if self.kind == "velocity":
            v = task.velocity  # type: ignore[attr-defined]
            if not self.low <= v <= self.high:
                raise InvalidTaskError(
                    f"{self.family}: velocity {v} outside [{self.low}, {self.high}]"
                )
        elif self.kind == "direction":
            if task.direction not in (-1.0, 1.0):  # type: ignore[attr-defined]
                raise InvalidTaskError(f"{self.family}: direction must be +1 or -1")
        elif self.kind == "angle":
            if not 0.0 <= task.direction < 2 * math.pi:  # type: ignore[attr-defined]
                raise InvalidTaskError(f"{self.family}: direction must be an angle in [0, 2 pi)")
        else:
            base = default_physics(self.kind)
            for name in PHYSICS_FIELDS:
                shape = np.asarray(getattr(task, name)).shape
                if shape != base[name].shape:
                    raise InvalidTaskError(
                        f"{self.family}: {name} has shape {shape}, the model needs "
                        f"{base[name].shape}"
                    )


class LocomotionEnv(TaskEnv):
    """A MuJoCo locomotion robot whose task changes the reward or the physics.

    ## Description
    HalfCheetah, Ant, Hopper or Walker2d from Gymnasium v5. Velocity and direction families
    change the reward; parameter families change the body masses, inertias, joint damping and
    friction. The task is never observed.

    ## Action Space
    The base robot's torque box (6-D HalfCheetah and Walker2d, 8-D Ant, 3-D Hopper). Actions are
    clipped to it; non-finite actions raise ``InvalidActionError``.

    ## Observation Space
    The base robot's v5 observation (positions without the x coordinate, and velocities).

    ## Starting State
    The base robot's v5 reset, with its reset noise drawn from the env's seeded generator.

    ## Rewards
    See the module docstring: ``-|v - v_target| - 0.05 |a|^2`` (velocity), ``d v_x - 0.05 |a|^2``
    (direction), the ant direction reward, or the base reward (parameter families).

    ## Episode End
    Truncation after 200 steps; Ant, Hopper and Walker2d terminate when unhealthy. ``info``
    carries the robot's ``x_velocity`` (and ``y_velocity`` for the ant).

    ## Task
    ``VelocityTask``, ``DirectionTask`` or ``PhysicsTask``; see docs/tasks.md for the splits.

    ## Version History
    * v0: first release (Gymnasium 1.x v5 robots, MuJoCo 3).
    """

    space_cls = LocomotionSpace
    has_oracle = False  # the expert is a trained SAC policy (the ``expert`` dataset recipe)

    def _build(self, **params: Any) -> None:
        space = self._space
        assert isinstance(space, LocomotionSpace)
        self.kind = space.kind
        self._sim = _make_base(self.kind)
        obs_space = self._sim.observation_space
        self.observation_space = gym.spaces.Box(
            obs_space.low.astype(np.float32), obs_space.high.astype(np.float32), dtype=np.float32
        )
        act = self._sim.action_space
        self.action_space = gym.spaces.Box(act.low, act.high, dtype=np.float32)

    def _apply_task(self, task: Task) -> None:
        if isinstance(task, PhysicsTask):
            model = self._sim.model
            for name in PHYSICS_FIELDS:
                target = getattr(model, name)
                target[:] = np.asarray(getattr(task, name)).reshape(target.shape)
        self._target = task

    def _seed_sim(self, seed: int) -> None:
        self._sim.reset(seed=seed)  # seeds the robot's reset-noise generator

    def _reset_sim(self) -> np.ndarray:
        obs, _ = self._sim.reset()
        return obs.astype(np.float32)

    def _step_sim(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        obs, base_reward, terminated, _, info = self._sim.step(action)
        task = self._target
        ctrl = CTRL_COST * float(np.square(action).sum())
        if self.kind == "velocity":
            reward = -abs(info["x_velocity"] - task.velocity) - ctrl  # type: ignore[attr-defined]
        elif self.kind == "direction":
            reward = task.direction * info["x_velocity"] - ctrl  # type: ignore[attr-defined]
        elif self.kind == "angle":
            angle = task.direction  # type: ignore[attr-defined]
            forward = info["x_velocity"] * math.cos(angle) + info["y_velocity"] * math.sin(angle)
            reward = (
                forward
                + self._sim.healthy_reward
                - self._sim.control_cost(action)
                - self._sim.contact_cost
            )
        else:
            reward = base_reward
        speed = {k: info[k] for k in ("x_velocity", "y_velocity") if k in info}
        return obs.astype(np.float32), float(reward), bool(terminated), speed


class LocomotionEnvVector(ProcessVectorEnv):
    """Batched :class:`LocomotionEnv` across worker processes."""

    env_cls = LocomotionEnv
