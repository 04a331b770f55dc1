"""Recipes: determinism, and the statistical properties each variant declares."""

from __future__ import annotations

import numpy as np
import pytest

from icrl_bench import data
from icrl_bench.data.sources import HISTORY_KINDS
from icrl_bench.errors import IcrlBenchError, UnknownIdError


def _shas(dataset_id: str) -> dict[str, str]:
    return {k: v["sha256"] for k, v in data.load(dataset_id).manifest["arrays"].items()}


def test_same_recipe_gives_byte_identical_arrays_whatever_the_workers() -> None:
    small_chunks = {"tasks_per_chunk": 2}
    a = data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=1, workers=1, overrides=small_chunks)
    first = _shas(a)
    b = data.generate(
        "DarkRoom-v0", "ad-eps", "smoke", seed=1, workers=2, overrides=small_chunks, force=True
    )
    assert a == b
    assert _shas(b) == first
    assert data.load(b).manifest["recipe"]["tasks_per_chunk"] == 2
    c = data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=2, overrides=small_chunks)
    other = _shas(c)
    assert other["actions"] != first["actions"] and other["rewards"] != first["rewards"]


def test_existing_dataset_is_reused_unless_its_recipe_differs() -> None:
    import json

    ds_id = data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=3)
    manifest_path = data.load(ds_id).path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # a dataset written before the recipe had its "connected" key is the same recipe
    del manifest["recipe"]["connected"]
    manifest_path.write_text(json.dumps(manifest))
    assert data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=3) == ds_id
    assert data.load(ds_id).manifest["recipe"].get("connected") is None  # not rewritten
    # a genuinely different recipe is refused, and the dataset is left as it was
    manifest["recipe"]["episodes_per_history"] += 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IcrlBenchError, match="exists with a different recipe"):
        data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=3)
    assert json.loads(manifest_path.read_text()) == manifest


def test_clean_q_learning_histories_improve() -> None:
    ds = data.load(data.generate("DarkRoom-v0", "histories", "smoke"))
    curve = ds.returns_by_episode_index()["mean"]
    k = len(curve) // 10
    first, last = curve[:k].mean(), curve[-k:].mean()
    oracle = np.mean(ds.manifest["reference_returns"]["oracle"])
    assert last > first + 0.4 * oracle, (first, last, oracle)


def test_key_to_door_q_learning_improves() -> None:
    ds = data.load(data.generate("KeyToDoor-v0", "histories", "smoke"))
    curve = ds.returns_by_episode_index()["mean"]
    assert curve[-6:].mean() > curve[:6].mean() + 0.5


def test_ad_eps_noise_follows_ad_epsilons_schedule_and_reaches_the_floor() -> None:
    """AD-epsilon's formula: eps falls by 1 / (0.9 * steps) per step (as if to 0 at 90% of the
    history) and is clamped at the floor, 0.5: the floor is reached at 45%, the mean is 0.6125."""
    ds = data.load(data.generate("DarkRoom-v0", "ad-eps", "smoke"))
    recipe = ds.manifest["recipe"]
    params = recipe["learner_params"]
    assert recipe["variant"] == "ad-eps-v1"
    assert (params["eps_start"], params["eps_end"], params["eps_floor"]) == (1.0, 0.0, 0.5)
    assert params["decay_fraction"] == 0.9
    a = {k: np.asarray(v) for k, v in ds.arrays.items()}
    horizon = ds.manifest["horizon"]
    episodes = recipe["episodes_per_history"]
    step = a["episode_index"] * horizon + a["step_index"]
    progress = step / (episodes * horizon)
    non_oracle = a["actions"] != a["optimal_actions"]
    eps_diff = 1.0 / (0.9 * episodes * horizon)  # AD-epsilon's eps_diff, per step
    eps = np.maximum(0.5, 1.0 - eps_diff * step)
    assert abs(eps.mean() - 0.6125) < 0.01
    expected = eps * 4 / 5  # a uniform action equals the oracle's with probability 1/5
    for lo in np.arange(0.0, 1.0, 0.1):
        sel = (progress >= lo) & (progress < lo + 0.1)
        assert abs(non_oracle[sel].mean() - expected[sel].mean()) < 0.03, lo
    # the last 10% of every history is at the floor: its return matches the declared floor
    curve = ds.returns_by_episode_index()["mean"]
    final = curve[-episodes // 10 :].mean()
    declared = ds.manifest["floor_return"]
    assert abs(final - declared) < 0.15 * declared, (final, declared)
    oracle = np.mean(ds.manifest["reference_returns"]["oracle"])
    assert 0.3 < declared / oracle < 0.5  # the default floor gives about 40% of optimal
    # the overall noise is AD-epsilon's mean epsilon
    assert abs(non_oracle.mean() - 0.6125 * 4 / 5) < 0.02


def test_noisy_mix_holds_the_declared_share_of_random_histories() -> None:
    ds = data.load(data.generate("DarkRoom-v0", "noisy-mix", "smoke"))
    kind = np.asarray(ds.arrays["history_kind"])
    share = ds.manifest["recipe"]["learner_params"]["random_share"]
    assert HISTORY_KINDS[1] == "random"
    assert abs((kind == 1).mean() - share) <= 1 / len(kind)
    returns = ds.episode_returns().reshape(ds.num_histories, -1)
    late = returns[:, -10:].mean(axis=1)
    assert late[kind == 1].mean() < 1.0 < late[kind == 0].mean()


def test_medium_expert_mixes_snapshots() -> None:
    ds = data.load(data.generate("DarkRoom-v0", "medium-expert", "smoke"))
    kind = np.asarray(ds.arrays["history_kind"])
    assert set(np.unique(kind)) <= {2, 3} and (kind == 3).any() and (kind == 2).any()


def test_uniform_rollin_draws_states_uniformly_and_independently() -> None:
    ds = data.load(data.generate("DarkRoom10x10-v0", "uniform-rollin", "smoke"))
    a = {k: np.asarray(v) for k, v in ds.arrays.items()}
    cells = 100
    counts = np.bincount(a["observations"], minlength=cells)
    expected = len(a["observations"]) / cells
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 99 + 5 * np.sqrt(2 * 99), chi2  # 99 dof: far from a walk from the start cell
    # a transition does not start where the previous one ended (that would be a connected walk)
    same_history = a["step_index"][1:] > 0
    follows = a["observations"][1:] == a["next_observations"][:-1]
    assert follows[same_history].mean() < 0.05
    # one step from a uniform cell ends on the goal about once per 100 transitions (DPT: 1.1)
    per_episode = ds.episode_returns().mean()
    assert 0.7 < per_episode < 1.5, per_episode
    assert (a["actions"] != a["optimal_actions"]).mean() > 0.7


def test_bandit_variants_generate_with_labels() -> None:
    ds = data.load(data.generate("BernoulliBandit-v0", "histories", "smoke"))
    assert ds.has_optimal_actions
    means = np.array([t.means for t in ds.tasks()])
    best = means.argmax(axis=1)
    task = np.asarray(ds.arrays["task_index"])
    assert (np.asarray(ds.arrays["optimal_actions"]) == best[task]).all()
    # Thompson sampling pulls the best arm far more often late in the trial than early
    h = ds.history(0)
    acts, opt = h["actions"], h["optimal_actions"]
    assert (acts[-100:] == opt[-100:]).mean() > (acts[:100] == opt[:100]).mean()


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("DarkRoom-v0", "bogus"), UnknownIdError, "unknown dataset variant"),
        (("Nope-v0", "histories"), UnknownIdError, "unknown task family"),
        (("GaussianBandit-v0", "medium"), IcrlBenchError, "does not apply"),
    ],
)
def test_bad_recipes_are_rejected(args: tuple[str, str], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        data.generate(*args)
    assert data.list_datasets() == []


def test_unknown_scale_and_parameter_are_rejected() -> None:
    with pytest.raises(UnknownIdError, match="unknown scale"):
        data.generate("DarkRoom-v0", "histories", scale="huge")
    with pytest.raises(IcrlBenchError, match="unknown recipe parameter 'alpha'"):
        data.generate("DarkRoom-v0", "histories", overrides={"alpha": 0.1})


def _applicable() -> list[tuple[str, str]]:
    import icrl_bench

    # simulator families (Meta-World, MuJoCo) have their own dataset tests in tests/envs/
    return [
        (spec.name, v.name)
        for spec in icrl_bench.FAMILIES
        for v in data.VARIANTS.values()
        if spec.source(v.name) is not None and not spec.measured_references
    ]


@pytest.mark.parametrize(("env_id", "variant"), _applicable())
def test_every_variant_of_every_family_generates_a_valid_dataset(env_id: str, variant: str) -> None:
    tiny = {"tasks": 2, "histories": 2, "episodes": 4, "train_episodes": 4}
    ds = data.load(data.generate(env_id, variant, "smoke", overrides=tiny))
    ds.verify()
    assert ds.has_optimal_actions
    assert ds.manifest["recipe"]["learner_params"] == data.plan(env_id, variant).params
    assert len(ds.manifest["tasks"]) == 2 and ds.num_histories == 4


def test_point_robot_cem_histories_improve_and_ad_eps_reaches_its_floor() -> None:
    hist = data.load(data.generate("PointRobot-v0", "histories", "smoke"))
    curve = hist.returns_by_episode_index()["mean"]
    refs = hist.manifest["reference_returns"]
    random, oracle = np.mean(refs["random"]), np.mean(refs["oracle"])
    first = (curve[:6].mean() - random) / (oracle - random)
    last = (curve[-6:].mean() - random) / (oracle - random)
    assert last > first + 0.4 and last > 0.5, (first, last)
    eps = data.load(data.generate("PointRobot-v0", "ad-eps", "smoke"))
    declared = eps.manifest["floor_return"]
    floor = (declared - random) / (oracle - random)
    assert 0.3 < floor < 0.55, floor  # about 40% of the oracle, as AD-epsilon's demonstrator
    final = eps.returns_by_episode_index()["mean"][-4:].mean()
    assert abs(final - declared) < 0.15 * abs(declared)
    a = {k: np.asarray(v) for k, v in eps.arrays.items()}
    assert a["actions"].dtype == np.float32 and (np.abs(a["actions"]) <= 0.1 + 1e-7).all()
