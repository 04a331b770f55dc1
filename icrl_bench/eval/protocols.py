"""Versioned evaluation protocols and their per-family settings.

A protocol fixes *how* an agent is evaluated; its per-family :class:`Setting` fixes *how much*:
the split (always test), the number of tasks (always the whole test split), the number of
episodes E, the minimum number of seeds for the leaderboard, and the headline metric. Each choice
records its source. A registered protocol id never changes meaning; a change is a new version.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from icrl_bench.errors import UnknownIdError
from icrl_bench.registry import FamilySpec, family


@dataclass(frozen=True)
class Protocol:
    """A named, versioned, immutable evaluation protocol.

    Attributes:
        id: e.g. ``"online-v1"``.
        carry_context: the agent's context carries across episodes of a trial.
        prompted: the agent first receives a prompt from a dataset of the test task.
        summary: one line.
    """

    id: str
    carry_context: bool
    prompted: bool
    summary: str


PROTOCOLS: dict[str, Protocol] = {
    p.id: p
    for p in (
        Protocol(
            "online-v1",
            carry_context=True,
            prompted=False,
            summary="E episodes per test task from scratch; the context carries across episodes "
            "and is never reset within a trial (AD, DPT online)",
        ),
        Protocol(
            "offline-prompt-v1",
            carry_context=True,
            prompted=True,
            summary="a prompt of trajectories from the test task, taken from a named dataset, "
            "then E episodes (DPT offline, Meta-DT few-shot)",
        ),
        Protocol(
            "offline-prompt-v2",
            carry_context=True,
            prompted=True,
            summary="as offline-prompt-v1, but on grid families the prompt is DPT's uniform "
            "roll-in (transitions from uniformly drawn states) instead of an episode from the "
            "start cell",
        ),
        Protocol(
            "offline-prompt-v3",
            carry_context=True,
            prompted=True,
            summary="as offline-prompt-v1, but the prompt is one expert episode of the test task "
            "on every family that has an expert (the demonstration prompts of Prompt-DT and "
            "Meta-DT); bandits as v1",
        ),
        Protocol(
            "zero-shot-v1",
            carry_context=False,
            prompted=False,
            summary="no prompt and no carried context: the context is cleared before every episode",
        ),
    )
}


@dataclass(frozen=True)
class Setting:
    """What a protocol fixes for one family.

    Attributes:
        episodes: episodes per trial (E).
        min_seeds: seeds a leaderboard submission needs at least.
        headline: the metric tracks are sorted by (``"normalized_final"`` or ``"regret"``).
        prompt_variant: for prompted protocols, the dataset variant the prompt comes from.
        prompt_episodes: for prompted protocols, how many episodes of it form the prompt.
        source: where the choice comes from.
    """

    episodes: int
    min_seeds: int
    headline: str
    source: str
    prompt_variant: str | None = None
    prompt_episodes: int = 0


def _online(spec: FamilySpec) -> Setting:
    trial = spec.online
    return Setting(trial.episodes, 3, spec.headline, trial.source)


def _offline(s: Setting, spec: FamilySpec) -> Setting:
    if spec.kind.expert_prompts:  # random motions carry little of the task: an expert
        prompt, why = "expert", "one expert episode of the test task (Meta-DT prompts)"
    else:
        prompt = "random"
        why = "one uniform-random episode of the test task (DPT offline uses random-rollout "
        why += "contexts)"
    return Setting(
        episodes=max(1, s.episodes // 10) if s.headline != "regret" else 1,
        min_seeds=s.min_seeds,
        headline=s.headline,
        source=s.source + "; prompt: " + why,
        prompt_variant=prompt,
        prompt_episodes=1,
    )


def _prompted_by(v1: Setting, s: Setting, variant: str, why: str) -> Setting:
    """``v1``'s setting with its prompt taken from another dataset variant."""
    return dataclasses.replace(v1, source=s.source + "; prompt: " + why, prompt_variant=variant)


def _offline_uniform(s: Setting, spec: FamilySpec) -> Setting:
    v1 = _offline(s, spec)
    if not spec.kind.uniform_rollin:  # a bandit has one state; Meta-World has no uniform roll-in
        return v1
    why = "one horizon of DPT's uniform roll-in on the test task (collect_data.py "
    why += "rollin_type='uniform', also its offline evaluation contexts)"
    return _prompted_by(v1, s, "uniform-rollin", why)


def _offline_expert(s: Setting, spec: FamilySpec) -> Setting:
    v1 = _offline(s, spec)
    if v1.prompt_variant == "expert" or "expert" not in spec.kind.sources:
        return v1  # simulator families already prompt with an expert; bandits have none
    why = "one expert episode of the test task (a demonstration, as Prompt-DT's and Meta-DT's "
    why += "prompts; v1's random episode seldom shows the goal)"
    return _prompted_by(v1, s, "expert", why)


def _zero_shot(s: Setting) -> Setting:
    if s.headline == "regret":
        source = (
            "a bandit trial is one episode, so zero-shot equals online-v1 here: one trial "
            "of the horizon's pulls, with no prompt"
        )
    else:
        source = "our choice: E/10 independent episodes (no context to learn from)"
    return Setting(
        episodes=max(1, s.episodes // 10) if s.headline != "regret" else 1,
        min_seeds=s.min_seeds,
        headline=s.headline,
        source=source,
    )


#: how each protocol's setting follows from the family's ``online-v1`` trial
_DERIVED = {
    "online-v1": lambda on, spec: on,
    "offline-prompt-v1": _offline,
    "offline-prompt-v2": _offline_uniform,
    "offline-prompt-v3": _offline_expert,
    "zero-shot-v1": lambda on, spec: _zero_shot(on),
}


def protocol(protocol_id: str) -> Protocol:
    """Look up a protocol by id."""
    found = PROTOCOLS.get(protocol_id) if isinstance(protocol_id, str) else None
    if found is None:
        raise UnknownIdError(f"unknown protocol {protocol_id!r}; known: {', '.join(PROTOCOLS)}")
    return found


def setting(env_id: str, protocol_id: str) -> Setting:
    """The settings a protocol fixes for a family."""
    spec = family(env_id)
    protocol(protocol_id)
    derive = _DERIVED.get(protocol_id)
    if derive is None:
        raise UnknownIdError(f"protocol {protocol_id!r} is not defined for {spec.name}")
    return derive(_online(spec), spec)
