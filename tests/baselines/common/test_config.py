"""The shared config classes: declared ranges and choices, per-baseline defaults, and building
from YAML values."""

from __future__ import annotations

import dataclasses

import pytest

from baselines import ad, dpt, dt, meta_dt, t2mir
from baselines.common.config import (
    ConfigError,
    HistoryModelConfig,
    ModelConfig,
    ReturnModelConfig,
    TrainConfig,
    build,
    parse_sets,
)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"dropout": 1.0}, "dropout must be a number in [0, 1)"),
        ({"context": 0}, "context must be an integer in [1, 2**16]"),
        ({"temperature": 0.0}, "temperature must be a number > 0"),
        ({"tokens": "words"}, "tokens must be 'transition' or 'interleaved', got 'words'"),
        ({"action_head": "beta"}, "action_head must be one of auto, categorical, mse, gaussian"),
    ],
)
def test_a_config_rejects_out_of_range_values_in_one_line(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        ad.Config(**kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_each_baseline_adds_only_its_own_fields_to_the_shared_base() -> None:
    shared = {f.name for f in dataclasses.fields(ModelConfig)}
    for cls in (ad.Config, dpt.Config, dt.Config, meta_dt.Config, t2mir.ADConfig):
        assert shared <= {f.name for f in dataclasses.fields(cls)}, cls
    assert issubclass(ad.Config, HistoryModelConfig) and issubclass(dpt.Config, HistoryModelConfig)
    assert issubclass(dt.Config, ReturnModelConfig) and issubclass(
        meta_dt.Config, ReturnModelConfig
    )
    # T2MIR's configs are built on the shared base and the base method's fields, not its Config
    assert not issubclass(t2mir.ADConfig, ad.Config)
    assert not issubclass(t2mir.DPTConfig, dpt.Config)


def test_defaults_follow_each_paper() -> None:
    assert (ad.Config().context, ad.Config().d_model, ad.Config().n_heads) == (80, 64, 4)
    assert (dpt.Config().context, dpt.Config().dropout) == (100, 0.0)
    assert dpt.Config().action_selection == "sample"
    assert dt.Config().n_layers == meta_dt.Config().n_layers == 3
    assert ad.Config().n_layers == dpt.Config().n_layers == 4
    assert t2mir.ADConfig().balance_weight == 0.1 and t2mir.DPTConfig().balance_weight == 0.01
    assert {f.name for f in dataclasses.fields(t2mir.DPTConfig)} >= {
        f.name for f in dataclasses.fields(dpt.Config)
    }


def test_cross_field_rules_run_after_the_ranges() -> None:
    with pytest.raises(ValueError, match="token_top_k must be between 1 and token_experts"):
        t2mir.ADConfig(token_experts=2, token_top_k=3)
    with pytest.raises(ValueError, match="moe_layers must be at least 1"):
        t2mir.DPTConfig(moe_layers=0)


def test_build_checks_names_types_and_values() -> None:
    assert build(dt.Config, {"target": "fixed", "target_return": 3}, "model").target_return == 3.0
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.tokens'"):
        build(dt.Config, {"tokens": "transition"}, "model")
    with pytest.raises(ConfigError, match=r"'model\.context' must be an integer"):
        build(dt.Config, {"context": "20"}, "model")
    choices = "data-max, task-median, fixed"
    with pytest.raises(ConfigError, match=f"model: target must be one of {choices}, got 'best'"):
        build(meta_dt.Config, {"target": "best"}, "model")
    assert build(TrainConfig, {"betas": [0.8, 0.9]}, "train").betas == (0.8, 0.9)


def test_parse_sets_nests_keys_and_reads_yaml_values() -> None:
    assert parse_sets(["train.lr=1e-3", "model.tokens=interleaved", "model.obs_coords=true"]) == {
        "train": {"lr": 1e-3},
        "model": {"tokens": "interleaved", "obs_coords": True},
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_sets(["train.lr"])
