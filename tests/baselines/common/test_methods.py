"""The baselines' registry: its order, names, lazy loading and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from baselines.methods import METHODS, method
from icrl_bench.errors import IcrlBenchError


def test_the_registry_lists_every_baseline_in_cli_order() -> None:
    assert list(METHODS) == ["ad", "dpt", "dt", "meta-dt", "t2mir-ad", "t2mir-dpt"]
    assert [m for m, spec in METHODS.items() if spec.needs_labels] == ["dpt", "t2mir-dpt"]
    assert method("meta-dt").module == "baselines.meta_dt"


@pytest.mark.parametrize(("typo", "meant"), [("dtp", "dpt"), ("metadt", "meta-dt"), ("AD", "ad")])
def test_an_unknown_name_suggests_the_closest(typo: str, meant: str) -> None:
    with pytest.raises(IcrlBenchError) as info:
        method(typo)
    message = str(info.value)
    assert f"did you mean {meant!r}?" in message and "\n" not in message
    assert "known: ad, dpt, dt, meta-dt, t2mir-ad, t2mir-dpt" in message


def test_a_name_like_nothing_gets_no_suggestion() -> None:
    with pytest.raises(IcrlBenchError, match="unknown baseline 'xyzzy': known:"):
        method("xyzzy")


def test_every_recipe_loads_with_its_modules_version() -> None:
    import importlib

    for spec in METHODS.values():
        recipe = spec.load_recipe()
        assert recipe.version == importlib.import_module(spec.module).VERSION
        assert recipe.config().context >= 1  # the config class builds with its defaults


def test_reading_the_registry_imports_no_torch() -> None:
    code = "import sys, baselines.methods; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
