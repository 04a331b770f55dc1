"""The family kinds (icrl_bench/kinds.py): every fact a kind declares is usable by the layers that
read it, and every registered family resolves its facts through its spec."""

from __future__ import annotations

import dataclasses

import pytest

import icrl_bench
from icrl_bench.data.catalogue import VARIANTS
from icrl_bench.data.recipes import SAC_LEARNERS
from icrl_bench.data.sources import LEARNERS
from icrl_bench.eval.agents import LEARNING_AGENTS
from icrl_bench.eval.protocols import PROTOCOLS, setting
from icrl_bench.kinds import BANDIT, GRID, KINDS, METAWORLD, FamilyKind, Scale


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_every_source_names_a_known_variant_and_learner(kind: FamilyKind) -> None:
    for variant, (learner, params) in kind.sources.items():
        assert variant in VARIANTS, variant
        assert learner in LEARNERS or learner in SAC_LEARNERS, learner
        if learner in LEARNERS:  # the parameters are the learner's own
            names = LEARNERS[learner].__init__.__code__.co_varnames
            assert set(params) <= set(names), (variant, set(params) - set(names))


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_every_scale_is_well_formed_and_agents_exist(kind: FamilyKind) -> None:
    for name, scale in kind.scales.items():
        assert isinstance(scale, Scale) and scale.histories >= 1 and scale.episodes >= 1, name
        assert scale.split in ("train", "test"), name
    assert "smoke" in kind.scales and "prompt" in kind.scales
    assert set(kind.reference_agents) <= set(LEARNING_AGENTS)


def test_kind_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        GRID.sources["new"] = ("random", {})  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        GRID.bandit = True  # type: ignore[misc]


@pytest.mark.parametrize("spec", icrl_bench.FAMILIES, ids=[s.name for s in icrl_bench.FAMILIES])
def test_every_family_resolves_its_facts_through_its_spec(
    spec: icrl_bench.registry.FamilySpec,
) -> None:
    assert spec.kind in KINDS
    assert spec.online.episodes >= 1
    assert spec.headline == ("regret" if spec.kind is BANDIT else "normalized_final")
    assert spec.is_bandit == (spec.kind is BANDIT)
    assert (spec.success == "info") == (spec.kind is METAWORLD)
    assert spec.scale("smoke") is not None and spec.scale("nonexistent") is None
    for protocol in PROTOCOLS:
        assert setting(spec.name, protocol).episodes >= 1


def test_a_family_scale_overrides_its_kinds() -> None:
    spec = icrl_bench.family("DarkRoom-v0")
    assert spec.scale("paper") != GRID.scales["paper"]
    assert spec.scale("smoke") == GRID.scales["smoke"]
    assert icrl_bench.family("KeyToDoor-v0").success == "termination"
