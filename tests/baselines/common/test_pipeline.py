"""The one training path: Recipe.fit writes a resumable checkpoint, Recipe.load_agent rebuilds
its agent, and a resume refuses another run's settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines import ad
from baselines.common.config import ConfigError, read_config
from baselines.methods import method
from icrl_bench import data


@pytest.fixture
def dataset() -> str:
    return data.generate("DarkRoom-v0", "histories", "smoke", seed=0)


def _raw(*sets: str) -> dict:
    return read_config("ad", "DarkRoom-v0", sets=["train.steps=3", "model.device=cpu", *sets],
                       smoke=True)  # fmt: skip


def test_fit_writes_a_checkpoint_that_loads_into_the_recipes_agent(
    dataset: str, tmp_path: Path
) -> None:
    out = ad.RECIPE.fit("ad", "DarkRoom-v0", dataset, _raw(), tmp_path / "run", progress=False)
    meta = json.loads((out / "checkpoint.json").read_text())
    assert (meta["method"], meta["version"], meta["step"], meta["steps"]) == ("ad", "2", 3, 3)
    assert meta["config"]["model"]["tokens"] == "transition"
    agent = ad.RECIPE.load_agent(out, meta)
    assert isinstance(agent, ad.ADAgent) and agent.cfg.context == meta["config"]["model"]["context"]
    agent.reset(2)
    assert agent.act(np.array([0, 40])).shape == (2,)


def test_a_method_trains_and_loads_through_the_registry(dataset: str, tmp_path: Path) -> None:
    spec = method("ad")
    out = spec.train("DarkRoom-v0", dataset, _raw(), tmp_path / "run", progress=False)
    meta = json.loads((out / "checkpoint.json").read_text())
    first = spec.load_agent(out, meta).model.state_dict()
    again = method("ad").load_agent(out, meta).model.state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_a_resume_with_another_model_setting_is_refused(dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    ad.RECIPE.fit("ad", "DarkRoom-v0", dataset, _raw(), out, progress=False)
    with pytest.raises(ConfigError, match=r"holds a run with model\.label_smoothing=0\.0"):
        raw = _raw("model.label_smoothing=0.1")
        ad.RECIPE.fit("ad", "DarkRoom-v0", dataset, raw, out, progress=False)
    # longer training is a resume, not another run
    ad.RECIPE.fit("ad", "DarkRoom-v0", dataset, _raw("train.steps=4"), out, progress=False)
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 4
