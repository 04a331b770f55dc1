"""Protocols are named, versioned, immutable, and defined for every family."""

from __future__ import annotations

import dataclasses

import pytest

import icrl_bench
from icrl_bench.eval import PROTOCOLS, protocol, setting


def test_versioned_protocols() -> None:
    assert set(PROTOCOLS) == {
        "online-v1",
        "offline-prompt-v1",
        "offline-prompt-v2",
        "offline-prompt-v3",
        "zero-shot-v1",
    }
    assert protocol("offline-prompt-v2").prompted
    assert protocol("online-v1").carry_context and not protocol("online-v1").prompted
    assert protocol("offline-prompt-v1").prompted
    assert not protocol("zero-shot-v1").carry_context
    with pytest.raises(dataclasses.FrozenInstanceError):
        protocol("online-v1").carry_context = False  # type: ignore[misc]


@pytest.mark.parametrize("spec", icrl_bench.FAMILIES, ids=lambda s: s.name)
@pytest.mark.parametrize("pid", sorted(PROTOCOLS))
def test_every_family_has_every_protocol(spec: icrl_bench.registry.FamilySpec, pid: str) -> None:
    st = setting(spec.env_id, pid)
    assert st.min_seeds >= 3 and st.episodes >= 1 and st.source
    assert st.headline == ("regret" if "Bandit" in spec.name else "normalized_final")
    assert (st.prompt_variant is not None) == PROTOCOLS[pid].prompted
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.episodes = 1  # type: ignore[misc]


def test_published_defaults() -> None:
    assert setting("DarkRoom-v0", "online-v1").episodes >= 100
    for name in ("GaussianBandit-v0", "BernoulliBandit-v0"):
        assert setting(name, "online-v1").episodes == 1
        assert icrl_bench.family(name).horizon == 500  # one trial of 500 pulls


def test_unknown_protocol_names_the_id() -> None:
    with pytest.raises(KeyError, match="online-v2"):
        protocol("online-v2")


def test_offline_v2_prompts_from_the_uniform_rollin_on_grids_only() -> None:
    grid = setting("DarkRoom10x10-v0", "offline-prompt-v2")
    assert grid.prompt_variant == "uniform-rollin" and grid.prompt_episodes == 1
    assert grid.episodes == setting("DarkRoom10x10-v0", "offline-prompt-v1").episodes
    assert setting("GaussianBandit-v0", "offline-prompt-v2") == setting(
        "GaussianBandit-v0", "offline-prompt-v1"
    )


def test_offline_v3_prompts_with_an_expert_episode_wherever_one_exists() -> None:
    for name in ("PointRobot-v0", "DarkRoom-v0", "HalfCheetahVel-v0", "ML1-Reach-v0"):
        v3 = setting(name, "offline-prompt-v3")
        assert v3.prompt_variant == "expert" and v3.prompt_episodes == 1
        assert v3.episodes == setting(name, "offline-prompt-v1").episodes
    # the simulator families already prompt v1 with an expert; bandits have none
    assert setting("HalfCheetahVel-v0", "offline-prompt-v3") == setting(
        "HalfCheetahVel-v0", "offline-prompt-v1"
    )
    assert setting("GaussianBandit-v0", "offline-prompt-v3") == setting(
        "GaussianBandit-v0", "offline-prompt-v1"
    )
