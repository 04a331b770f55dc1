"""Adding a discrete family is one registry entry plus its env module (docs/architecture.md).

The Corridor family (``tests/envs/corridor.py``) is registered here with exactly the entry the
walk-through shows, and nothing else in the package knows about it. It then goes through every
layer: Gymnasium's checker and vector API, its task split, every dataset variant its kind lists,
every protocol, the reference agents, scoring, the leaderboard, and a baseline's training and
evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from icrl_bench import data, evaluate, tasks
from icrl_bench.errors import UnknownIdError
from icrl_bench.eval.agents import reference_agent
from icrl_bench.eval.protocols import PROTOCOLS, setting
from icrl_bench.kinds import GRID, Online
from icrl_bench.leaderboard import render, submit
from icrl_bench.registry import FamilySpec, Split, family, register_family
from icrl_bench.workflow import evaluate_to_file, train

# the registry entry of the walk-through, as it would stand in registry.FAMILIES
CORRIDOR = FamilySpec(
    name="Corridor-v0",
    module="tests.envs.corridor",
    env_class="CorridorEnv",
    params={"length": 9, "horizon": 12},
    split=Split("shuffle", n_train=6, n_test=2, seed=0),
    as_in="docs/architecture.md (worked example)",
    summary="9 cells in a row, start at cell 0, invisible goal, 12 steps",
    kind=GRID,
    online_trial=Online(20, "our choice: 20 episodes of 12 steps"),
)
ID = CORRIDOR.env_id

try:  # once per test session
    family(ID)
except UnknownIdError:
    register_family(CORRIDOR)


def test_the_env_passes_gymnasiums_checker_and_steps_batched() -> None:
    env = gym.make(ID)
    check_env(env.unwrapped, skip_render_check=True)
    venv = gym.make_vec(ID, num_envs=4, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (4,)
    _, rew, _, _, _ = venv.step(np.full(4, 2))
    assert rew.shape == (4,)
    venv.close()


def test_its_split_and_references_come_from_the_entry() -> None:
    dist = tasks(ID)
    assert len(dist.train) == 6 and len(dist.test) == 2
    assert family(ID).headline == "normalized_final" and not family(ID).is_bandit


@pytest.mark.parametrize("variant", [v for v in data.VARIANTS if CORRIDOR.source(v) is not None])
def test_every_dataset_variant_of_its_kind_generates(variant: str) -> None:
    dataset_id = data.generate(ID, variant, "smoke", overrides={"tasks": 2, "histories": 2})
    ds = data.load(dataset_id)
    ds.verify()
    assert ds.manifest["env_id"] == ID


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_every_protocol_scores_the_oracle_at_one_and_random_near_zero(protocol: str) -> None:
    episodes = setting(ID, protocol).episodes
    scores = {}
    for name in ("oracle", "random", "qlearning"):
        agent = reference_agent(name, ID, episodes)
        result = evaluate(agent, ID, protocol=protocol, seeds=[0, 1, 2])
        scores[name] = result.metrics(seeds_are_runs=True)["normalized_final"]["mean"]
    assert scores["oracle"] == pytest.approx(1.0)
    assert abs(scores["random"]) < 0.35
    assert scores["random"] < scores["oracle"]


def test_results_reach_the_leaderboard_and_render(tmp_path: Path) -> None:
    board = tmp_path / "leaderboards"
    for name in ("random", "oracle"):
        path, _, _ = evaluate_to_file(
            name, ID, "online-v1", [0, 1, 2], str(tmp_path / f"{name}.json")
        )
        track, row = submit(path, board)
        assert track == "Corridor-v0__online-v1" and row["method"] == name
    readme = render(board, tmp_path / "plots")
    assert "Corridor-v0" in readme.read_text()


def test_a_baseline_trains_and_is_evaluated_on_it(tmp_path: Path) -> None:
    dataset = data.generate(ID, "ad-eps", "smoke", overrides={"tasks": 4, "histories": 2})
    sets = ["train.steps=30", "train.batch_size=8", "model.context=24", "model.d_model=16"]
    sets += ["model.n_layers=1", "model.n_heads=2"]
    ckpt = train("ad", ID, dataset, tmp_path / "ad", sets)
    path, doc, metrics = evaluate_to_file(
        [str(ckpt)], ID, "online-v1", [0, 1, 2], str(tmp_path / "ad.json"), episodes=3
    )
    assert doc["method"] == "ad" and "normalized_final" in metrics
    assert json.loads(Path(path).read_text())["env_id"] == ID
