"""The kinds of task family, and every fact that follows from a family's kind.

A :class:`FamilyKind` answers, for all families of one kind, the questions that other layers
ask: are actions and observations discrete, is it a bandit (scored by regret), how are its
reference returns obtained, which dataset variants apply (and with which source learner), how
large each data scale is, how an offline prompt is made, which learning reference agents apply,
and what bounds its returns. :class:`~icrl_bench.registry.FamilySpec` holds one of the five kinds
below and adds what is particular to one family; every module above the registry asks the spec,
and none compares kind names.

This module is data plus a few typed records; it imports nothing from the package, so that the
registry (which reads it) and the envs below it never form a circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

#: how a family's reference returns are obtained: computed exactly by its NumPy core, measured by
#: rollouts of a scripted expert (Meta-World), or measured for a SAC expert trained per task
References = Literal["exact", "scripted-expert", "sac-expert"]
#: how a family bounds the returns a submission may claim (see ``registry.return_bounds``)
Bounds = Literal["oracle", "point", "per-step", "none"]
#: how an episode's success is defined: by termination (reaching the goal), by
#: ``info["success"]`` at any step, or not at all
Success = Literal["termination", "info"] | None
#: a dataset variant's source: ``(learner name, learner parameters)``
Source = tuple[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Scale:
    """How much data a scale generates for one family.

    Attributes:
        tasks: number of train tasks used (``None``: the whole train split, in split order).
        histories: learning histories per task.
        episodes: recorded episodes per history.
        train_episodes: episodes the learner trains before recording (medium/expert variants).
        split: the split whose tasks are used: ``"train"`` for training data, ``"test"`` for
            the prompts of ``offline-prompt-v1`` (the ``prompt`` scale).
    """

    tasks: int | None
    histories: int
    episodes: int
    train_episodes: int = 0
    split: str = "train"


@dataclass(frozen=True)
class Online:
    """The ``online-v1`` trial of a family: how many episodes, and why that many.

    Attributes:
        episodes: episodes per trial (E); the other protocols derive theirs from it.
        source: where the choice comes from.
    """

    episodes: int
    source: str


@dataclass(frozen=True)
class FamilyKind:
    """The facts every family of one kind shares.

    Attributes:
        name: ``"bandit"``, ``"grid"``, ``"point"``, ``"mujoco"`` or ``"metaworld"``; a label
            for listings and messages, never a key that other modules branch on.
        discrete: discrete actions and observations (the leaderboard's ``discrete`` group).
        bandit: one-state families scored by regret from the pulled arms.
        references: how reference returns are obtained (:data:`References`).
        bounds: how the returns of a submission are bounded (:data:`Bounds`).
        success: how an episode succeeds for every family of the kind (a family may set its own).
        expert_prompts: ``offline-prompt-v1`` prompts with an expert episode (simulator
            families, where random motion carries little of the task) instead of a random one.
        uniform_rollin: ``offline-prompt-v2`` prompts with DPT's uniform roll-in (families with
            a state space to draw from); otherwise it equals ``offline-prompt-v1``.
        reference_agents: the learning reference agents that apply (``ucb``, ``qlearning``...);
            ``random`` and ``oracle`` apply to every family.
        sources: dataset variant name -> its source learner on this kind; a variant not listed
            does not apply.
        scales: scale name -> :class:`Scale`; a family may override single scales.
        online: the ``online-v1`` trial for every family of the kind, or None where each family
            sets its own.
        floor_episodes: one-episode histories that measure an ``ad-eps`` demonstrator's floor
            return (fewer where a step costs a simulator step).
    """

    name: str
    discrete: bool
    bandit: bool = False
    references: References = "exact"
    bounds: Bounds = "none"
    success: Success = None
    expert_prompts: bool = False
    uniform_rollin: bool = False
    reference_agents: tuple[str, ...] = ()
    sources: Mapping[str, Source] = field(default_factory=dict)
    scales: Mapping[str, Scale] = field(default_factory=dict)
    online: Online | None = None
    floor_episodes: int = 400

    def __post_init__(self) -> None:  # read-only tables: a kind is shared by many families
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "scales", MappingProxyType(dict(self.scales)))


# -- source learners of the dataset variants ------------------------------------------------------
_Q: Source = (
    "q-learning",
    {"lr": 0.3, "gamma": 0.9, "eps_start": 1.0, "eps_end": 0.05, "decay_fraction": 0.7},
)
_THOMPSON: Source = ("thompson", {"prior_mean": 0.5, "prior_var": 1.0})
_CEM: Source = ("cem", {"population": 6, "elite": 2, "init_std": 1.0, "min_std": 0.02})
# AD-epsilon (dark_room/generate_trajectories.py): eps falls by 1 / (0.9 * steps) per step, as if
# to 0 at 90% of the history, clamped at the floor 1 - max_perf (0.5 for its 0.4-performance data)
_EPS: Source = (
    "noisy-oracle",
    {"eps_start": 1.0, "eps_floor": 0.5, "decay_fraction": 0.9, "eps_end": 0.0},
)
# Gaussian noise 5x the half-width of the action box at eps = 1: the floor eps = 0.5 gives 42% of
# the oracle's normalised return on PointRobot's train goals (AD-epsilon's demonstrator: 40%)
_EPS_CONTINUOUS: Source = ("noisy-oracle", {**_EPS[1], "noise_scale": 5.0})
# Meta-World: noise of the action box's half-width at eps = 1 (clipped, close to uniform)
_EPS_MW: Source = ("noisy-oracle", {**_EPS[1], "noise_scale": 1.0})
_RANDOM: Source = ("random", {})


def _mixed(base: Source) -> Source:
    """``noisy-mix``: 30% of the histories replaced by uniform-random ones."""
    return ("mixed", {"base": base[0], "base_params": base[1], "random_share": 0.3})


def _frozen_q(expert_share: float) -> Source:
    """``medium`` / ``expert`` / ``medium-expert`` from frozen Q-learning snapshots."""
    return (
        "q-learning",
        {**_Q[1], "medium_fraction": 0.5, "expert_share": expert_share, "frozen_eps": 0.1},
    )


def _frozen_sac(expert_share: float, learner: str = "sac") -> Source:
    return (learner, {"medium_fraction": 0.5, "expert_share": expert_share})


# the closed-form optimum (PointRobot) and Meta-World's scripted policies are the expert
_ORACLE: Source = ("oracle", {})

BANDIT = FamilyKind(
    name="bandit",
    discrete=True,
    bandit=True,
    reference_agents=("ucb", "thompson"),
    sources={
        "histories": _THOMPSON,
        "ad-eps": _EPS,
        "noisy-mix": _mixed(_THOMPSON),
        "random": _RANDOM,
        "dirichlet-mix": ("dirichlet-mix", {}),
    },
    scales={
        "smoke": Scale(tasks=24, histories=2, episodes=1),
        # prompts for offline-prompt-v1: one history of one episode on every test task
        "prompt": Scale(tasks=None, histories=1, episodes=1, split="test"),
        # DPT: 100,000 trials of 500 pulls; here 1000 train tasks x 100 histories
        "paper": Scale(tasks=None, histories=100, episodes=1),
    },
    online=Online(
        1,
        "DPT: one trial of 500 pulls (200 for the linear bandit) per test task, cumulative "
        "regret; 200 evaluation tasks",
    ),
)

GRID = FamilyKind(
    name="grid",
    discrete=True,
    bounds="oracle",  # non-negative rewards; the oracle is optimal
    uniform_rollin=True,
    reference_agents=("qlearning",),
    sources={
        "histories": _Q,
        "ad-eps": _EPS,
        "noisy-mix": _mixed(_Q),
        "random": _RANDOM,
        "uniform-rollin": ("uniform-states", {}),
        "medium": _frozen_q(0.0),
        "expert": _frozen_q(1.0),
        "medium-expert": _frozen_q(0.3),
    },
    scales={
        "smoke": Scale(tasks=6, histories=4, episodes=60, train_episodes=60),
        # every train task with one short history (the quickstart's DPT data: 260k transitions)
        "small": Scale(tasks=None, histories=1, episodes=200, train_episodes=200),
        # DICP / tommyma3 AD: many short learning histories per goal (PPO, 100 streams x 50
        # episodes); here 50 tabular learners x 100 episodes on every train goal
        "streams": Scale(tasks=None, histories=50, episodes=100),
        "prompt": Scale(tasks=None, histories=1, episodes=1, train_episodes=200, split="test"),
        # generic grid paper scale: one long history per train task, as AD-epsilon
        "paper": Scale(tasks=None, histories=1, episodes=2000, train_episodes=2000),
    },
)

POINT = FamilyKind(
    name="point",
    discrete=False,
    bounds="point",  # -distance per step, at most the farthest reachable; exact oracle
    uniform_rollin=True,
    reference_agents=("cem",),
    sources={
        "histories": _CEM,
        "ad-eps": _EPS_CONTINUOUS,
        "noisy-mix": _mixed(_CEM),
        "random": _RANDOM,
        "uniform-rollin": ("uniform-states", {}),
        "expert": _ORACLE,  # medium data exists for Q-learning and SAC sources only
    },
    scales={
        # PointRobot: CEM converges in about 30 episodes of 20 steps
        "smoke": Scale(tasks=6, histories=4, episodes=40),
        "prompt": Scale(tasks=None, histories=1, episodes=1, split="test"),
        # our choice (Meta-DT/T2MIR ship SAC data): 45 train goals x 20 histories x 100 episodes
        "paper": Scale(tasks=None, histories=20, episodes=100),
    },
)

MUJOCO = FamilyKind(
    name="mujoco",
    discrete=False,
    references="sac-expert",
    expert_prompts=True,
    sources={
        "histories": ("sac", {}),
        "random": _RANDOM,
        "medium": _frozen_sac(0.0),
        "expert": _frozen_sac(1.0),
        "medium-expert": _frozen_sac(0.3),
        "conditioned-expert": _frozen_sac(1.0, "sac-conditioned"),
        "conditioned-medium-expert": _frozen_sac(0.3, "sac-conditioned"),
    },
    scales={
        # one SAC learner per task (one task per worker process); the conditioned variants'
        # single learner trains ``train_episodes`` in all
        "smoke": Scale(tasks=2, histories=1, episodes=4, train_episodes=4),
        "prompt": Scale(tasks=None, histories=1, episodes=1, train_episodes=500, split="test"),
        # our choice: 45 train tasks x one SAC run of 500 episodes (100k steps); estimated, not run
        "paper": Scale(tasks=None, histories=1, episodes=500, train_episodes=500),
        # our choice for CPUs: 45 train tasks x 2 histories x 25 episodes (450k transitions);
        # the conditioned learner's 500 training episodes are 100k steps in all (about 25 min
        # on one core); a per-task learner's are 100k steps per task
        "small": Scale(tasks=None, histories=2, episodes=25, train_episodes=500),
    },
    online=Online(10, "our choice: 10 episodes of 200 steps (Meta-DT, T2MIR: 200 steps)"),
)

METAWORLD = FamilyKind(
    name="metaworld",
    discrete=False,
    references="scripted-expert",
    bounds="per-step",  # Meta-World's v3 rewards lie in [0, 10] per step
    success="info",
    expert_prompts=True,
    sources={
        "ad-eps": _EPS_MW,
        "noisy-mix": _mixed(_EPS_MW),
        "random": _RANDOM,
        "expert": _ORACLE,  # medium data exists for Q-learning and SAC sources only
    },
    scales={
        # 100-step episodes at about 1,600 steps/s per core
        "smoke": Scale(tasks=2, histories=2, episodes=4),
        "prompt": Scale(tasks=None, histories=1, episodes=1, split="test"),
        # our choice: 50 train goals x 4 histories x 100 episodes (2M steps, ~10 min on 2 cores)
        "paper": Scale(tasks=None, histories=4, episodes=100),
    },
    online=Online(
        10,
        "our choice: 10 episodes of 100 steps (DICP and T2MIR use 100-step Meta-World episodes)",
    ),
    floor_episodes=40,  # a simulator step costs a thousand NumPy steps
)

#: every kind (messages list the kinds a variant applies to in this order)
KINDS: tuple[FamilyKind, ...] = (GRID, BANDIT, POINT, METAWORLD, MUJOCO)
