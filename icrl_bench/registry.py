"""The registry of task families. The registry is data: one :class:`FamilySpec` per id.

Importing :mod:`icrl_bench` calls :func:`register_all`, which registers every family with
Gymnasium (single-env ``entry_point`` and batched ``vector_entry_point``). :func:`tasks` builds a
family's :class:`~icrl_bench.tasks.TaskDistribution` from the spec's split recipe.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import gymnasium as gym
import numpy as np

from icrl_bench.envs.core import BatchedCore
from icrl_bench.envs.metaworld_env import BENCHMARK_SEED, V3_ENVIRONMENTS, class_name
from icrl_bench.errors import UnknownIdError
from icrl_bench.kinds import (
    BANDIT,
    GRID,
    METAWORLD,
    MUJOCO,
    POINT,
    FamilyKind,
    Online,
    Scale,
    Source,
    Success,
)
from icrl_bench.references import sac_expert_references, scripted_expert_references
from icrl_bench.tasks import Task, TaskDistribution, provide_distribution

NAMESPACE = "icrl_bench"


@dataclass(frozen=True)
class Split:
    """How a family's fixed train/test split is made.

    Attributes:
        kind: ``"shuffle"`` (a seeded permutation of the family's finite task list, the first
            ``n_train`` train and the next ``n_test`` test), ``"sample"`` (train and test drawn
            from the generative distribution with two seeds), ``"reference"`` (a published task
            set shipped in ``icrl_bench/task_sets/``, in its published order) or ``"benchmark"``
            (the simulator's own benchmark split, e.g. ``metaworld.ML1(name, seed)``).
        seed: the seed of the shuffle, or of the train draw for ``"sample"``.
        test_seed: the seed of the test draw for ``"sample"``.
        n_train: number of train tasks.
        n_test: number of test tasks.
        file: the task-set file for ``"reference"``.
    """

    kind: str
    n_train: int
    n_test: int
    seed: int | None = None
    test_seed: int | None = None
    file: str | None = None

    def describe(self) -> str:
        """One sentence stating where the split comes from."""
        if self.kind == "shuffle":
            return (
                f"all tasks permuted by numpy.random.default_rng({self.seed}).permutation; "
                f"first {self.n_train} train, next {self.n_test} test"
            )
        if self.kind == "sample":
            return (
                f"{self.n_train} train tasks drawn with numpy.random.default_rng({self.seed}), "
                f"{self.n_test} test tasks with numpy.random.default_rng({self.test_seed})"
            )
        if self.kind == "benchmark":
            return (
                f"the simulator benchmark's own train and test tasks (seed {self.seed}): "
                f"{self.n_train} train, {self.n_test} test"
            )
        return (
            f"published task set icrl_bench/task_sets/{self.file} in its order; "
            f"first {self.n_train} train, next {self.n_test} test"
        )


@dataclass(frozen=True)
class FamilySpec:
    """One registered task family: the single source of its facts.

    Other modules ask the spec (``spec.is_bandit``, ``spec.success``, ``spec.source(variant)``,
    ``spec.scale(name)``, ``spec.online``, ...) and never compare kind names; what follows from
    the kind lives in :mod:`icrl_bench.kinds`, what is particular to the family here.

    Attributes:
        name: short id, e.g. ``"DarkRoom-v0"``; the Gymnasium id is ``icrl_bench/<name>``.
        module: the module holding ``<env_class>`` and ``<env_class>Vector``.
        env_class: the single-env class name (its docstring is the family's reference doc).
        params: family parameters passed to the env (grid size, horizon, ...).
        split: the split recipe.
        as_in: the published setting this family follows.
        summary: one line for ``icrl-bench tasks list``.
        kind: the family's :class:`~icrl_bench.kinds.FamilyKind`.
        online_trial: the ``online-v1`` trial where the kind does not fix one.
        success_by: how an episode succeeds, where the kind does not say (``"termination"``).
        scales: data scales that replace the kind's (published dataset sizes).
    """

    name: str
    module: str
    env_class: str
    params: dict[str, Any]
    split: Split
    as_in: str
    summary: str
    kind: FamilyKind = GRID
    online_trial: Online | None = None
    success_by: Success = None
    scales: Mapping[str, Scale] = field(default_factory=dict)

    @property
    def env_id(self) -> str:
        """The Gymnasium id, ``icrl_bench/<name>``."""
        return f"{NAMESPACE}/{self.name}"

    @property
    def is_bandit(self) -> bool:
        """A one-state family scored by regret from the pulled arms."""
        return self.kind.bandit

    @property
    def headline(self) -> str:
        """The leaderboard's headline metric: ``"regret"`` (bandits) or ``"normalized_final"``."""
        return "regret" if self.kind.bandit else "normalized_final"

    @property
    def group(self) -> str:
        """``"discrete"`` (bandits and grids: discrete actions and observations) or
        ``"continuous"`` (PointRobot, MuJoCo, Meta-World): the leaderboard's groups of tracks."""
        return "discrete" if self.kind.discrete else "continuous"

    @property
    def success(self) -> Success:
        """How an episode succeeds: ``"termination"``, ``"info"`` or None (no success metric)."""
        return self.success_by or self.kind.success

    @property
    def online(self) -> Online:
        """The ``online-v1`` trial (episodes and their source)."""
        trial = self.online_trial or self.kind.online
        assert trial is not None, f"{self.name}: its kind needs an online_trial"
        return trial

    @property
    def measured_references(self) -> bool:
        """Reference returns come from rollouts (slow, cached), not from a closed form."""
        return self.kind.references != "exact"

    def source(self, variant: str) -> Source | None:
        """The source learner of a dataset variant on this family, None where it does not
        apply."""
        return self.kind.sources.get(variant)

    def scale(self, name: str) -> Scale | None:
        """A data scale of this family (its own, else its kind's), None where undefined."""
        return self.scales.get(name) or self.kind.scales.get(name)

    @property
    def horizon(self) -> int:
        """Episode length in steps."""
        return int(self.params["horizon"])

    def env_cls(self) -> type[gym.Env[Any, Any]]:
        """The single-env class."""
        return getattr(importlib.import_module(self.module), self.env_class)

    def core(self) -> BatchedCore:
        """A zero-env core, for task-space and reference-score queries."""
        return _core(self.name)


_GRID = "icrl_bench.envs.gridworld"
_BANDIT = "icrl_bench.envs.bandits"

FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec(
        name="GaussianBandit-v0",
        module=_BANDIT,
        env_class="GaussianBanditEnv",
        params={"num_arms": 5, "horizon": 500, "noise_std": float(np.sqrt(0.3))},
        split=Split("sample", n_train=1000, n_test=200, seed=1000, test_seed=2000),
        as_in="DPT",
        summary="5 arms, means U[0,1], Gaussian noise variance 0.3, 500 pulls",
        kind=BANDIT,
    ),
    FamilySpec(
        name="BernoulliBandit-v0",
        module=_BANDIT,
        env_class="BernoulliBanditEnv",
        params={"num_arms": 5, "horizon": 500},
        split=Split("sample", n_train=1000, n_test=200, seed=1001, test_seed=2001),
        as_in="DPT",
        summary="5 arms, means Beta(1,1), Bernoulli rewards, 500 pulls",
        kind=BANDIT,
    ),
    FamilySpec(
        name="LinearBandit-v0",
        module=_BANDIT,
        env_class="LinearBanditEnv",
        params={"num_arms": 10, "dim": 2, "horizon": 200, "noise_std": float(np.sqrt(0.3))},
        split=Split("sample", n_train=1000, n_test=200, seed=1002, test_seed=2002),
        as_in="DPT",
        summary="10 arms, feature dim 2, linear mean rewards, 200 pulls",
        kind=BANDIT,
    ),
    FamilySpec(
        name="DarkRoom-v0",
        module=_GRID,
        env_class="DarkRoomEnv",
        params={"size": 9, "start": "centre", "horizon": 20, "sparse": False},
        split=Split("shuffle", n_train=65, n_test=16, seed=0),
        as_in="AD, AD-epsilon",
        summary="9x9, centre start, 20 steps, reward 1 per step on the invisible goal",
        online_trial=Online(100, "AD / AD-epsilon: at least 100 in-context episodes"),
        # AD-epsilon Dark Room: 65 train goals, one history of 20,000 episodes (400k steps) each
        scales={"paper": Scale(tasks=None, histories=1, episodes=20000, train_episodes=20000)},
    ),
    FamilySpec(
        name="DarkRoom10x10-v0",
        module=_GRID,
        env_class="DarkRoomEnv",
        params={"size": 10, "start": "corner", "horizon": 100, "sparse": False},
        split=Split("reference", n_train=80, n_test=20, file="DarkRoom-v0.json"),
        as_in="DPT, T2MIR",
        summary="10x10, start (0,0), 100 steps, reward 1 per step on the invisible goal",
        online_trial=Online(
            40, "our choice: 40 episodes of 100 steps (4000 steps, as DPT's longest online curves)"
        ),
        # DPT DarkRoom: 80 train goals x 1000 contexts of 100 steps (8M transitions)
        scales={"paper": Scale(tasks=None, histories=100, episodes=10, train_episodes=2000)},
    ),
    FamilySpec(
        name="DarkRoomLarge-v0",
        module=_GRID,
        env_class="DarkRoomEnv",
        params={"size": 15, "start": "centre", "horizon": 50, "sparse": False},
        split=Split("shuffle", n_train=180, n_test=45, seed=0),
        as_in="LHF",
        summary="15x15, centre start, 50 steps, reward 1 per step on the invisible goal",
        online_trial=Online(100, "our choice: 100 episodes, as DarkRoom-v0"),
    ),
    FamilySpec(
        name="DarkRoomHard-v0",
        module=_GRID,
        env_class="DarkRoomEnv",
        params={"size": 17, "start": "centre", "horizon": 20, "sparse": True},
        split=Split("shuffle", n_train=231, n_test=58, seed=0),
        as_in="AD",
        summary="17x17, centre start, sparse: reward 1 on first reaching the goal, which ends it",
        online_trial=Online(100, "our choice: 100 episodes, as DarkRoom-v0 (AD)"),
        success_by="termination",
    ),
    FamilySpec(
        name="DarkRoomPermuted-v0",
        module=_GRID,
        env_class="DarkRoomPermutedEnv",
        params={"size": 9, "start": "corner", "horizon": 50, "goal": (8, 8)},
        split=Split("shuffle", n_train=108, n_test=12, seed=0),
        as_in="DICP",
        summary="9x9, corner start, 50 steps, fixed goal; the task permutes the 5 actions",
        online_trial=Online(100, "our choice: 100 episodes, as DarkRoom-v0 (DICP)"),
    ),
    FamilySpec(
        name="KeyToDoor-v0",
        module=_GRID,
        env_class="KeyToDoorEnv",
        params={"size": 9, "start": "corner", "horizon": 50},
        split=Split("shuffle", n_train=6233, n_test=328, seed=0),
        as_in="AD, DICP",
        summary="9x9, 50 steps, invisible key then door; 1 for the key, 1 for the door (ends)",
        online_trial=Online(100, "our choice: 100 episodes (AD, DICP)"),
        success_by="termination",
        scales={
            # our choice for AD on Key-to-Door: 400 train layouts x 10 tabular learners x 100
            # episodes
            "streams": Scale(tasks=400, histories=10, episodes=100),
            # AD-epsilon Key-to-Door: 1000 train layouts, one history of 2000 episodes each
            "paper": Scale(tasks=1000, histories=1, episodes=2000, train_episodes=2000),
        },
    ),
)

_POINT = "icrl_bench.envs.point_robot"

FAMILIES += (
    FamilySpec(
        name="PointRobot-v0",
        module=_POINT,
        env_class="PointRobotEnv",
        params={"horizon": 20},
        split=Split("reference", n_train=45, n_test=5, file="PointRobot-v0.json"),
        as_in="Meta-DT, T2MIR (PEARL's point-robot)",
        summary="2-D point from (0,0), invisible goal in [-1,1]^2, reward -distance, moves "
        "clipped to 0.1, 20 steps",
        kind=POINT,
        online_trial=Online(
            30,
            "our choice: 30 episodes of 20 steps (T2MIR-AD and Meta-DT evaluate a few episodes; "
            "the CEM source learner converges in about 30)",
        ),
    ),
)

_LOCO = "icrl_bench.envs.mujoco_env"


def _locomotion(name: str, objective: str, split: Split, as_in: str, summary: str) -> FamilySpec:
    return FamilySpec(
        name=name,
        module=_LOCO,
        env_class="LocomotionEnv",
        params={"objective": objective, "horizon": 200},
        split=split,
        as_in=as_in,
        summary=summary + ", 200 steps",
        kind=MUJOCO,
    )


FAMILIES += (
    _locomotion(
        "HalfCheetahVel-v0",
        "velocity",
        Split("reference", n_train=45, n_test=5, file="HalfCheetahVel-v0.json"),
        "Meta-DT, T2MIR",
        "HalfCheetah-v5, reward -|v - v_target| - 0.05|a|^2, 50 published velocities in [0, 3]",
    ),
    _locomotion(
        "HalfCheetahDir-v0",
        "direction",
        Split("reference", n_train=1, n_test=1, file="HalfCheetahDir-v0.json"),
        "Meta-DT",
        "HalfCheetah-v5, reward d v_x - 0.05|a|^2, train forward, test backward",
    ),
    _locomotion(
        "AntDir-v0",
        "angle",
        Split("sample", n_train=45, n_test=5, seed=1003, test_seed=2003),
        "Meta-DT",
        "Ant-v5, reward on the velocity along a direction in [0, 2 pi)",
    ),
    _locomotion(
        "HopperParams-v0",
        "hopper",
        Split("sample", n_train=45, n_test=5, seed=1004, test_seed=2004),
        "Meta-DT, T2MIR",
        "Hopper-v5, body mass, inertia, damping, friction x 1.5^U[-3,3]",
    ),
    _locomotion(
        "WalkerParams-v0",
        "walker",
        Split("reference", n_train=45, n_test=5, file="WalkerRandParams-v0.json"),
        "Meta-DT, T2MIR",
        "Walker2d-v5, the 50 published body mass, inertia, damping, friction sets",
    ),
)

_MW = "icrl_bench.envs.metaworld_env"
_MW_SUMMARY = "Meta-World v3 {what}, goal hidden, 100 steps, success at any step"

FAMILIES += (
    *(
        FamilySpec(
            name=f"ML1-{class_name(env_name)}-v0",
            module=_MW,
            env_class="MetaWorldEnv",
            params={"benchmark": "ML1", "env_name": env_name, "horizon": 100},
            split=Split("benchmark", n_train=50, n_test=50, seed=BENCHMARK_SEED),
            as_in="DICP, LHF, Meta-DT, T2MIR (Meta-World ML1)",
            summary=_MW_SUMMARY.format(what=f"{env_name}: 50 train / 50 test goals"),
            kind=METAWORLD,
        )
        for env_name in V3_ENVIRONMENTS
    ),
    FamilySpec(
        name="ML10-v0",
        module=_MW,
        env_class="MetaWorldEnv",
        params={"benchmark": "ML10", "horizon": 100},
        split=Split("benchmark", n_train=500, n_test=250, seed=BENCHMARK_SEED),
        as_in="Meta-World ML10",
        summary=_MW_SUMMARY.format(what="ML10: 10 train classes, 5 test classes, 50 goals each"),
        kind=METAWORLD,
    ),
    FamilySpec(
        name="ML45-v0",
        module=_MW,
        env_class="MetaWorldEnv",
        params={"benchmark": "ML45", "horizon": 100},
        split=Split("benchmark", n_train=2250, n_test=250, seed=BENCHMARK_SEED),
        as_in="Meta-World ML45",
        summary=_MW_SUMMARY.format(what="ML45: 45 train classes, 5 test classes, 50 goals each"),
        kind=METAWORLD,
    ),
)

_BY_NAME: dict[str, FamilySpec] = {f.name: f for f in FAMILIES}


def family(env_id: str) -> FamilySpec:
    """Look up a family by ``icrl_bench/<Name>``, ``icrl_bench:icrl_bench/<Name>`` or ``<Name>``.

    Raises:
        UnknownIdError: for an id that is not registered, naming the close matches.
    """
    if not isinstance(env_id, str):
        raise UnknownIdError(f"env id must be a string, got {type(env_id).__name__}")
    name = env_id.split(":", 1)[-1]
    if name.startswith(f"{NAMESPACE}/"):
        name = name[len(NAMESPACE) + 1 :]
    spec = _BY_NAME.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(_BY_NAME), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownIdError(f"unknown task family {env_id!r}{hint} (see `icrl-bench tasks list`)")
    return spec


@functools.cache
def _core(name: str) -> BatchedCore:
    spec = _BY_NAME[name]
    vec_cls = getattr(importlib.import_module(spec.module), spec.env_class + "Vector")
    # NumPy families have a batched core; simulator families a task space without dynamics
    core_cls = getattr(vec_cls, "core_cls", None) or vec_cls.env_cls.space_cls
    return core_cls(0, family=spec.name, **spec.params)


def _load_task_set(file: str) -> list[dict[str, Any]]:
    text = resources.files("icrl_bench.task_sets").joinpath(file).read_text()
    data = json.loads(text)
    if "goals" in data:
        return [{"goal": g} for g in data["goals"]]
    return list(data["tasks"])


def _build_split(spec: FamilySpec) -> tuple[tuple[Task, ...], tuple[Task, ...]]:
    core = spec.core()
    split = spec.split
    if split.kind == "shuffle":
        every = core.all_tasks()
        assert every is not None, f"{spec.name}: shuffle split needs a finite family"
        order = np.random.default_rng(split.seed).permutation(len(every))
        chosen = [every[i] for i in order]
    elif split.kind == "sample":
        train = core.sample_tasks(split.n_train, np.random.default_rng(split.seed))
        test = core.sample_tasks(split.n_test, np.random.default_rng(split.test_seed))
        chosen = [*train, *test]
    elif split.kind == "benchmark":
        train, test = core.benchmark_split()  # type: ignore[attr-defined]
        chosen = [*train, *test]
    elif split.kind == "reference":
        assert split.file is not None
        rows = _load_task_set(split.file)
        chosen = [core.task_type(family=spec.name, **row) for row in rows]
    else:  # pragma: no cover - the registry is static data
        raise ValueError(f"unknown split kind {split.kind}")
    for task in chosen:
        core.validate_task(task)
    train_tasks = tuple(chosen[: split.n_train])
    test_tasks = tuple(chosen[split.n_train : split.n_train + split.n_test])
    assert len(test_tasks) == split.n_test, f"{spec.name}: split needs more tasks"
    return train_tasks, test_tasks


@functools.cache
def _distribution(name: str) -> TaskDistribution:
    spec = _BY_NAME[name]
    train, test = _build_split(spec)
    core = spec.core()
    return TaskDistribution(
        env_id=spec.env_id,
        train=train,
        test=test,
        split_source=spec.split.describe(),
        _sampler=core.sample_tasks,
        _validator=core.validate_task,
    )


def tasks(env_id: str) -> TaskDistribution:
    """Return the task distribution of a registered family.

    Args:
        env_id: ``"icrl_bench/DarkRoom-v0"`` or the short form ``"DarkRoom-v0"``.

    Raises:
        UnknownIdError: if the family is not registered.
    """
    return _distribution(family(env_id).name)


def reference_returns(env_id: str, split: str = "test") -> dict[str, np.ndarray]:
    """Random and oracle episode returns for each task of a split: exact for the NumPy
    families, measured by rollouts (and cached) for the simulator families.

    Args:
        env_id: a registered family id.
        split: ``"train"`` or ``"test"``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return task_references(env_id, getattr(tasks(env_id), split))


def task_references(env_id: str, chosen: Sequence[Task]) -> dict[str, np.ndarray]:
    """Random and oracle episode returns for each of ``chosen`` tasks of a family (computed
    by its core, or measured and cached for the simulator families)."""
    spec = family(env_id)
    if spec.kind.references == "scripted-expert":
        return scripted_expert_references(spec.name, chosen, spec.horizon)
    if spec.kind.references == "sac-expert":
        return sac_expert_references(spec.name, chosen, spec.horizon)
    return spec.core().reference_returns(chosen)


def return_bounds(spec: FamilySpec) -> tuple[Any, Any, str]:
    """The episode returns a family can produce: ``(low, high, description)``, per test task
    (shaped ``[1, tasks, 1]``) where the bound is the optimal oracle's return."""
    if spec.kind.bounds == "oracle":  # non-negative rewards; the oracle is optimal
        oracle = reference_returns(spec.name)["oracle"][None, :, None]
        return 0.0, oracle, "[0, oracle return]"
    if spec.kind.bounds == "point":  # -distance per step, at most the farthest reachable
        oracle = reference_returns(spec.name)["oracle"][None, :, None]
        worst = -spec.horizon * np.sqrt(2.0) * (1.0 + 0.1 * spec.horizon)
        return worst, oracle, f"[{worst:.1f}, oracle return]"
    if spec.kind.bounds == "per-step":  # Meta-World's v3 rewards lie in [0, 10] per step
        return 0.0, 10.0 * spec.horizon, f"[0, {10 * spec.horizon}]"
    return -np.inf, np.inf, "the finite numbers"  # MuJoCo: no bound short of the physics


def _register(spec: FamilySpec) -> None:
    provide_distribution(spec.name, functools.partial(_distribution, spec.name))
    if spec.env_id in gym.registry:
        return
    gym.register(
        id=spec.env_id,
        entry_point=f"{spec.module}:{spec.env_class}",
        vector_entry_point=f"{spec.module}:{spec.env_class}Vector",
        kwargs={"family": spec.name, **spec.params},
        max_episode_steps=spec.horizon,
    )


def register_all() -> None:
    """Register every family with Gymnasium; safe to call more than once."""
    for spec in FAMILIES:
        _register(spec)


def register_family(spec: FamilySpec) -> None:
    """Register a family that is not in :data:`FAMILIES` (a family of your own, or one you
    are trying out before adding its entry): afterwards every layer that looks a family up by
    name (Gymnasium, splits, datasets, protocols, scoring, the leaderboard, the baselines)
    treats it as registered. Listings that iterate :data:`FAMILIES` (``icrl-bench tasks
    list``) do not show it.

    Raises:
        ValueError: a family of that name is already registered.
    """
    if spec.name in _BY_NAME:
        raise ValueError(f"{spec.name} is already registered")
    _BY_NAME[spec.name] = spec
    _register(spec)
