"""Declared ranges of user-settable values (icrl_bench/values.py) and the CLI's one-line
refusals of bad ``--set`` values and seeds: exit 2, no traceback, no hang, nothing written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from baselines import ad, dpt, dt, meta_dt, t2mir
from baselines.common.config import RANGES, ConfigError, build
from baselines.common.trainer import TrainConfig
from icrl_bench.data import catalogue
from icrl_bench.kinds import KINDS
from icrl_bench.values import SEED, Range, ValueRangeError, check_seeds
from tests.hostile import run_cli

CONFIG_CLASSES = (ad.Config, dpt.Config, dt.Config, meta_dt.Config, t2mir.ADConfig, TrainConfig)


def test_range_checks_type_bounds_and_finiteness() -> None:
    assert Range(0.0, 1.0, low_open=True).check("x", 1) == 1.0
    for bad in (0.0, 1.5, float("nan"), float("inf"), "0.5", True, None):
        with pytest.raises(ValueRangeError, match="x must be a number in \\(0, 1\\]"):
            Range(0.0, 1.0, low_open=True).check("x", bad)
    with pytest.raises(ValueRangeError, match=r"an integer >= 1, got 2\.0"):
        Range(1, integer=True).check("n", 2.0)
    with pytest.raises(ValueRangeError, match="an integer in \\[0, 2\\*\\*32\\)"):
        SEED.check("seed", 2**32)
    assert check_seeds("seeds", [3, 0]) == [3, 0]
    with pytest.raises(ValueRangeError, match="seed 1 is repeated"):
        check_seeds("seeds", [1, 2, 1])


def test_every_numeric_config_field_has_a_declared_range() -> None:
    for cls in CONFIG_CLASSES:
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            if isinstance(default, int | float | tuple) and not isinstance(default, bool):
                assert f.name in RANGES, f"{cls.__module__}.{cls.__name__}.{f.name}"


def test_every_numeric_recipe_parameter_has_a_declared_range() -> None:
    for kind in KINDS:
        for variant, (_, params) in kind.sources.items():
            for key, value in params.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    assert key in catalogue.PARAM_RANGES, (kind.name, variant, key)


@pytest.mark.parametrize(
    ("section", "values", "needle"),
    [
        ("train", {"steps": -5}, "'train.steps' must be an integer in [1, 10**9]"),
        ("train", {"steps": 0}, "'train.steps' must be"),
        ("train", {"lr": float("nan")}, "'train.lr' must be a number in (0, 10]"),
        ("train", {"betas": [0.9, 1.5]}, "'train.betas' entry must be a number in [0, 1)"),
        ("train", {"seed": 2**32}, "'train.seed' must be an integer in [0, 2**32)"),
        ("model", {"dropout": 1.0}, "'model.dropout' must be a number in [0, 1)"),
        ("model", {"context": 0}, "'model.context' must be an integer in [1, 2**16]"),
    ],
)
def test_config_values_out_of_range_are_named(section: str, values: dict, needle: str) -> None:
    cls = TrainConfig if section == "train" else ad.Config
    with pytest.raises(ConfigError) as info:
        build(cls, values, section)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_every_shipped_config_is_within_its_ranges() -> None:
    from baselines.common.config import CONFIG_DIR, read_config

    for path in sorted(CONFIG_DIR.glob("*/*.yaml")):
        method, family = path.parent.name, path.stem
        if method == "reproductions":
            continue
        for smoke in (False, True):
            raw = read_config(method, family, smoke=smoke)
            build(TrainConfig, raw["train"], "train")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["data", "generate", "DarkRoom-v0", "--variant", "ad-eps", "--set", "episodes=abc"],
            ["'episodes'", "an integer >= 1", "'abc'"],
        ),
        (
            ["data", "generate", "DarkRoom-v0", "--variant", "ad-eps", "--set", "episodes=-3"],
            ["'episodes'", "an integer >= 1"],
        ),
        (
            ["data", "generate", "DarkRoom-v0", "--variant", "ad-eps", "--set", "eps_floor=7"],
            ["'eps_floor'", "[0, 1]"],
        ),
        (
            ["data", "generate", "DarkRoom-v0", "--variant", "ad-eps", "--set", "histories=10**9"],
            ["'histories'"],
        ),
        (
            [
                "data",
                "generate",
                "DarkRoom-v0",
                "--variant",
                "ad-eps",
                "--set",
                "histories=100000000",
            ],
            ["transitions; the limit is 1,000,000,000"],
        ),
        (
            ["data", "generate", "DarkRoom-v0", "--variant", "ad-eps", "--seed", "4294967296"],
            ["--seed", "[0, 2**32)"],
        ),
        (["data", "generate", "DarkRoom-v0", "--variant", "ad-eps", "--seed", "-1"], ["--seed"]),
        (
            ["evaluate", "--agent", "random", "--task", "DarkRoom-v0", "--seeds", "0", "0", "1"],
            ["seed 0 is repeated"],
        ),
        (
            ["evaluate", "--agent", "random", "--task", "DarkRoom-v0", "--seeds", "4294967296"],
            ["--seeds", "[0, 2**32)"],
        ),
        (
            ["train", "ad", "--task", "DarkRoom-v0", "--dataset", "x", "--set", "train.steps=-5"],
            ["'train.steps'", "[1, 10**9]"],
        ),
        (
            ["train", "ad", "--task", "DarkRoom-v0", "--dataset", "x", "--set", "train.lr=abc"],
            ["'train.lr' must be a number", "'abc'"],
        ),
        (["nonsense-command"], ["invalid choice"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0] != "'" else None,
)
def test_bad_cli_values_are_one_line_errors(
    args: list[str], needles: list[str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    outcome = run_cli(*args, env={"ICRL_BENCH_HOME": str(home)})
    outcome.assert_refused(*needles)
    datasets = home / "datasets"
    assert not datasets.exists() or not any(p.is_file() for p in datasets.rglob("*.npy"))
