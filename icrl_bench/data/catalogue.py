"""The catalogue of dataset recipes: the named, versioned variants, the scales a family offers,
and the declared ranges of every recipe parameter and scale field.

Which variants apply to a family, with which source learner, and how large each scale is, are
family facts (:mod:`icrl_bench.kinds`, :meth:`~icrl_bench.registry.FamilySpec.source`); the
engine that turns a recipe into arrays is :mod:`icrl_bench.data.recipes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from icrl_bench.errors import UnknownIdError
from icrl_bench.kinds import KINDS, Scale
from icrl_bench.registry import FamilySpec
from icrl_bench.values import COUNT, NON_NEGATIVE_INT, UNIT, Range


def scale_for(spec: FamilySpec, scale: str) -> Scale:
    """The :class:`~icrl_bench.kinds.Scale` of ``scale`` for a family."""
    found = spec.scale(scale)
    if found is None:
        names = sorted({s for k in KINDS for s in k.scales})
        raise UnknownIdError(f"unknown scale {scale!r}; known: {', '.join(names)}")
    return found


@dataclass(frozen=True)
class Variant:
    """A named, versioned recipe.

    Attributes:
        name: e.g. ``"ad-eps"``; the dataset id uses ``<name>-v<version>``.
        version: bumped whenever the arrays a recipe produces would change.
        summary: one line for ``data list``.
        source: the published setting it follows.
        frozen: record only after ``train_episodes`` of training, from frozen snapshots (where
            the family's learner can be frozen; an oracle expert records from the start).

    Which families a variant applies to, and its source learner on each, is a family fact
    (:meth:`~icrl_bench.registry.FamilySpec.source`).
    """

    name: str
    version: int
    summary: str
    source: str
    frozen: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``<name>-v<version>``."""
        return f"{self.name}-v{self.version}"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "histories",
            0,
            "clean learning histories of the source learner",
            "AD (Laskin et al., 2022): learning histories of a source RL algorithm",
        ),
        Variant(
            "ad-eps",
            1,
            "noise distillation: oracle with eps-random actions, eps falling per step as "
            "AD-epsilon's (1 -> 0 over 90%, clamped at the floor 0.5)",
            "AD-epsilon (Zisman et al., 2023)",
        ),
        Variant(
            "noisy-mix",
            0,
            "30% of the learning histories replaced by uniform-random histories",
            "Filtering Learning Histories (noisy setting)",
        ),
        Variant(
            "random",
            0,
            "uniform-random rollouts from the start state",
            "the uniform-random baseline policy (DPT's DarkRoom data is `uniform-rollin`)",
        ),
        Variant(
            "dirichlet-mix",
            0,
            "i.i.d. pulls from a per-history mixture of Dirichlet(1) arm probabilities and one arm",
            "DPT (Lee et al., 2023) bandit pretraining contexts (collect_data.py rollin_bandit)",
        ),
        Variant(
            "uniform-rollin",
            0,
            "independent transitions from uniformly drawn states with uniform-random actions",
            "DPT (Lee et al., 2023) DarkRoom pretraining and offline-evaluation contexts "
            "(rollin_type 'uniform')",
        ),
        Variant(
            "medium",
            0,
            "rollouts of the source learner stopped half-way through training",
            "Meta-DT (Wang et al., 2024) medium datasets",
            frozen=True,
        ),
        Variant(
            "expert",
            0,
            "rollouts of the fully trained source learner",
            "Meta-DT expert datasets",
            frozen=True,
        ),
        Variant(
            "medium-expert",
            0,
            "70% medium and 30% expert rollouts",
            "Meta-DT mixed datasets",
            frozen=True,
        ),
        Variant(
            "conditioned-expert",
            0,
            "rollouts of one source learner trained on all the recipe's tasks, told each task "
            "(its parameters follow the observation), fully trained",
            "our CPU-affordable stand-in for Meta-DT's expert datasets (one SAC per task)",
            frozen=True,
        ),
        Variant(
            "conditioned-medium-expert",
            0,
            "70% rollouts of the task-told learner's half-way snapshot, 30% of the final one",
            "our CPU-affordable stand-in for Meta-DT's mixed datasets",
            frozen=True,
        ),
    )
}


def variant(name: str) -> Variant:
    """Look up a variant by ``name`` or ``name-v<N>``."""
    base = name.rsplit("-v", 1)[0] if name.rsplit("-v", 1)[-1].isdigit() else name
    found = VARIANTS.get(base)
    if found is None or (base != name and found.id != name):
        raise UnknownIdError(f"unknown dataset variant {name!r}; known: {', '.join(VARIANTS)}")
    return found


#: what every learner parameter a recipe override may set accepts (a test checks that every
#: numeric parameter of every variant is listed)
PARAM_RANGES: dict[str, Range] = {
    "lr": Range(0.0, 1.0, low_open=True),
    "gamma": UNIT,
    "eps_start": UNIT,
    "eps_end": UNIT,
    "eps_floor": UNIT,
    "frozen_eps": UNIT,
    "decay_fraction": Range(0.0, 1.0, low_open=True),
    "expert_share": UNIT,
    "random_share": UNIT,
    "medium_fraction": UNIT,
    "noise_scale": Range(0.0),
    "population": COUNT,
    "elite": COUNT,
    "init_std": Range(0.0, low_open=True),
    "min_std": Range(0.0),
    "prior_mean": Range(),
    "prior_var": Range(0.0, low_open=True),
}
#: what the scale fields an override may set accept
SCALE_RANGES: dict[str, Range] = {
    "tasks": COUNT,
    "histories": COUNT,
    "episodes": COUNT,
    "train_episodes": NON_NEGATIVE_INT,
    "tasks_per_chunk": COUNT,
}
#: the most transitions one dataset may hold (the largest shipped recipe has 20M)
MAX_TRANSITIONS = 10**9
