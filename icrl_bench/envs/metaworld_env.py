"""Meta-World v3 families: ML1 (one environment class, 50 train and 50 test goals), ML10, ML45.

Tasks are Meta-World's own: :class:`MetaWorldTask` stores the environment name and the
``rand_vec`` (goal and object positions) that Meta-World's benchmark classes draw, so the splits
equal ``metaworld.ML1(name, seed).train_tasks`` / ``test_tasks`` exactly (a test checks this).
Workarounds for Meta-World 3.1.1 (each has a test):

* ``gym.make("Meta-World/ML1-train", ...)`` is broken and its registered ML1-train silently uses
  the test tasks: we never go through Meta-World's registration; the splits are built from
  ``metaworld.ML1(name, seed)`` (and ``ML10`` / ``ML45``) directly.
* ``reset(seed=...)`` is ignored by Meta-World: :meth:`MetaWorldEnv._seed_sim` seeds through
  ``env.seed()``.
* ``make_vec`` asserts unless the task count divides evenly: we batch with our own
  :class:`~icrl_bench.envs.process_vector.ProcessVectorEnv`, one env per task.

The goal is hidden (Meta-World's ``partially_observable``): observation entries 36-38 are zero.
The expert is Meta-World's scripted policy for the environment class
(``metaworld.policies.ENV_POLICY_MAP``), which reads the goal from the simulator.
"""

from __future__ import annotations

import functools
import pickle
import warnings
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from icrl_bench.envs.process_vector import ProcessVectorEnv, TaskEnv, TaskSpace
from icrl_bench.errors import InvalidTaskError, optional_import
from icrl_bench.tasks import Task

#: every Meta-World v3 environment (``metaworld.ALL_V3_ENVIRONMENTS``, checked by a test); kept
#: as data so that registering the families does not import Meta-World and MuJoCo
V3_ENVIRONMENTS = (
    "assembly-v3", "basketball-v3", "bin-picking-v3", "box-close-v3",
    "button-press-topdown-v3", "button-press-topdown-wall-v3", "button-press-v3",
    "button-press-wall-v3", "coffee-button-v3", "coffee-pull-v3", "coffee-push-v3",
    "dial-turn-v3", "disassemble-v3", "door-close-v3", "door-lock-v3", "door-open-v3",
    "door-unlock-v3", "hand-insert-v3", "drawer-close-v3", "drawer-open-v3", "faucet-open-v3",
    "faucet-close-v3", "hammer-v3", "handle-press-side-v3", "handle-press-v3",
    "handle-pull-side-v3", "handle-pull-v3", "lever-pull-v3", "pick-place-wall-v3",
    "pick-out-of-hole-v3", "pick-place-v3", "plate-slide-v3", "plate-slide-side-v3",
    "plate-slide-back-v3", "plate-slide-back-side-v3", "peg-insert-side-v3", "peg-unplug-side-v3",
    "soccer-v3", "stick-push-v3", "stick-pull-v3", "push-v3", "push-wall-v3", "push-back-v3",
    "reach-v3", "reach-wall-v3", "shelf-place-v3", "sweep-into-v3", "sweep-v3", "window-open-v3",
    "window-close-v3",
)  # fmt: skip

#: the seed of ``metaworld.ML1(name, seed)`` / ``ML10(seed)`` / ``ML45(seed)`` for our splits
BENCHMARK_SEED = 0

# Meta-World's scripted policies warn on every action that their gains exceed the action box;
# the env clips actions to the box, as the warning says, so it carries no information here
warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)


def _metaworld() -> Any:
    install = "pip install 'icrl-bench[metaworld]'"
    optional_import("metaworld.policies", "Meta-World families", install)
    return optional_import("metaworld", "Meta-World families", install)


def class_name(env_name: str) -> str:
    """``"pick-place-v3"`` -> ``"PickPlace"`` (the family id's part)."""
    return "".join(w.capitalize() for w in env_name.split("-")[:-1])


@dataclass(frozen=True)
class MetaWorldTask(Task):
    """One Meta-World task: an environment class and its goal/object vector ``rand_vec``."""

    env_name: str = ""
    rand_vec: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        vec = self.rand_vec
        if not isinstance(self.env_name, str) or not self.env_name.endswith("-v3"):
            raise InvalidTaskError(f"env_name must be a Meta-World v3 name, got {self.env_name!r}")
        if (
            not isinstance(vec, tuple)
            or not vec
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
                for v in vec
            )
        ):
            raise InvalidTaskError(f"rand_vec must be finite numbers, got {vec!r}")
        object.__setattr__(self, "rand_vec", tuple(float(v) for v in vec))


@functools.cache
def _benchmark(benchmark: str, env_name: str | None, seed: int) -> Any:
    mw = _metaworld()
    if benchmark == "ML1":
        return mw.ML1(env_name, seed=seed)
    return getattr(mw, benchmark)(seed=seed)


def _to_task(family: str, mw_task: Any) -> MetaWorldTask:
    # Meta-World's own task bytes, made by Meta-World in this process (never a user file)
    data = pickle.loads(mw_task.data)
    return MetaWorldTask(family=family, env_name=mw_task.env_name, rand_vec=tuple(data["rand_vec"]))


class MetaWorldSpace(TaskSpace):
    """Task space of an ML1 / ML10 / ML45 family."""

    task_type = MetaWorldTask

    def __init__(
        self,
        num_envs: int,
        family: str,
        horizon: int,
        benchmark: str = "ML1",
        env_name: str | None = None,
        seed: int = BENCHMARK_SEED,
    ) -> None:
        super().__init__(num_envs, family, horizon)
        self.benchmark, self.env_name, self.seed = benchmark, env_name, int(seed)

    def _classes(self) -> dict[str, Any]:
        bench = _benchmark(self.benchmark, self.env_name, self.seed)
        return {**bench.train_classes, **bench.test_classes}

    def benchmark_split(self) -> tuple[tuple[Task, ...], tuple[Task, ...]]:
        """Meta-World's own train and test tasks, in its order."""
        bench = _benchmark(self.benchmark, self.env_name, self.seed)
        train = tuple(_to_task(self.family, t) for t in bench.train_tasks)
        test = tuple(_to_task(self.family, t) for t in bench.test_tasks)
        return train, test

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[Task, ...]:
        """Fresh goals: a class of the benchmark, then ``rand_vec`` uniform in its reset space."""
        classes = sorted(self._classes())
        out = []
        for _ in range(n):
            name = classes[int(rng.integers(len(classes)))]
            space = _random_reset_space(name)
            vec = rng.uniform(space[0], space[1])
            out.append(MetaWorldTask(family=self.family, env_name=name, rand_vec=tuple(vec)))
        return tuple(out)

    def check_task(self, task: Task) -> None:
        """The class must belong to the benchmark and ``rand_vec`` to its reset space."""
        name = task.env_name  # type: ignore[attr-defined]
        if name not in self._classes():
            raise InvalidTaskError(f"{self.family}: {name!r} is not one of its environments")
        low, high = _random_reset_space(name)
        vec = np.asarray(task.rand_vec)  # type: ignore[attr-defined]
        if vec.shape != low.shape or (vec < low - 1e-9).any() or (vec > high + 1e-9).any():
            raise InvalidTaskError(
                f"{self.family}: rand_vec {tuple(vec)} is outside {name}'s range"
            )


@functools.cache
def _random_reset_space(env_name: str) -> tuple[np.ndarray, np.ndarray]:
    env = _make_sim(env_name)
    space = env._random_reset_space
    out = (np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64))
    env.close()
    return out


def _make_sim(env_name: str) -> Any:
    mw = _metaworld()
    env = mw.ALL_V3_ENVIRONMENTS[env_name]()
    return env


class MetaWorldEnv(TaskEnv):
    """A Meta-World v3 manipulation task with a hidden goal.

    ## Description
    One Sawyer-arm task of Meta-World v3 (``ML1-<Name>``: one environment class with 50 train and
    50 test goal/object placements; ``ML10`` / ``ML45``: several classes). The agent must infer
    the goal from rewards.

    ## Action Space
    ``Box(-1, 1, (4,), float32)``: end-effector displacement and gripper effort. Actions are
    clipped to the box; non-finite ones raise ``InvalidActionError``.

    ## Observation Space
    ``Box(39,)`` float32: hand, gripper and object state, the previous frame's, and the goal
    (entries 36-38), which is zero because the goal is hidden.

    ## Starting State
    Fixed by the task's ``rand_vec`` (Meta-World freezes it per task).

    ## Rewards
    Meta-World v3's shaped reward (0 to 10 per step).

    ## Episode End
    Truncation after the horizon (100 steps by default, as DICP and T2MIR; ``gym.make(id,
    horizon=500, max_episode_steps=500)`` gives Meta-World's 500). ``info["success"]`` is
    Meta-World's success flag; an episode counts as a success if it succeeded at any step.

    ## Task
    ``MetaWorldTask(env_name, rand_vec)``; splits from ``metaworld.ML1(name, seed=0)`` (or
    ``ML10(seed=0)`` / ``ML45(seed=0)``) ``train_tasks`` and ``test_tasks``.

    ## Version History
    * v0: first release (Meta-World 3.1.1, MuJoCo 3.3.0).
    """

    space_cls = MetaWorldSpace
    has_success = True

    def _build(self, **params: Any) -> None:
        self._sims: dict[str, Any] = {}
        self._sim: Any = None
        self._policy: Any = None
        first = self.fixed_task.env_name if self.fixed_task else self._first_env_name()  # type: ignore[attr-defined]
        sim = self._get_sim(first)
        low, high = sim.observation_space.low, sim.observation_space.high
        self.observation_space = gym.spaces.Box(
            low.astype(np.float32), high.astype(np.float32), dtype=np.float32
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self._sim_seed: int | None = None

    def _first_env_name(self) -> str:
        space = self._space
        assert isinstance(space, MetaWorldSpace)
        return space.env_name or sorted(space._classes())[0]

    def _get_sim(self, env_name: str) -> Any:
        sim = self._sims.get(env_name)
        if sim is None:
            sim = _make_sim(env_name)
            sim.max_path_length = max(self.horizon, 500)  # we truncate; never Meta-World
            self._sims[env_name] = sim
        return sim

    def _apply_task(self, task: Task) -> None:
        mw = _metaworld()
        name = task.env_name  # type: ignore[attr-defined]
        sim = self._get_sim(name)
        data = {
            "env_cls": type(sim),
            "rand_vec": np.asarray(task.rand_vec),  # type: ignore[attr-defined]
            "partially_observable": True,
        }
        # Meta-World's public set_task takes its own pickled task record
        sim.set_task(mw.Task(env_name=name, data=pickle.dumps(data)))
        if self._sim_seed is not None:
            sim.seed(self._sim_seed)
        self._sim = sim
        self._policy = mw.policies.ENV_POLICY_MAP[name]()

    def _seed_sim(self, seed: int) -> None:
        self._sim_seed = seed
        for sim in self._sims.values():
            sim.seed(seed)

    def _reset_sim(self) -> np.ndarray:
        obs, _ = self._sim.reset()
        self._last_obs = obs
        return obs.astype(np.float32)

    def _step_sim(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        obs, reward, _, _, info = self._sim.step(action.astype(np.float32))
        self._last_obs = obs
        return obs.astype(np.float32), float(reward), False, {"success": bool(info["success"])}

    def oracle_action(self) -> np.ndarray:
        """The scripted expert's action; it reads the hidden goal from the simulator."""
        if self._sim is None:
            raise gym.error.ResetNeeded("call reset() before oracle_action()")
        full = self._last_obs.copy()
        full[36:39] = self._sim._get_pos_goal()
        return np.clip(self._policy.get_action(full), -1.0, 1.0).astype(np.float32)


class MetaWorldEnvVector(ProcessVectorEnv):
    """Batched :class:`MetaWorldEnv` across worker processes."""

    env_cls = MetaWorldEnv
