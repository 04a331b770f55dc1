"""The results file: building it from evaluations, its schema, canonical hashing of configs and
arrays, schema-1 upgrades, and atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

import icrl_bench
from icrl_bench.eval.agents import RandomAgent, reference_agent
from icrl_bench.eval.results import (
    MAX_RESULT_BYTES,
    RESULT_SCHEMA,
    RESULT_SCHEMAS,
    SCHEMA_VERSION,
    Run,
    build_result,
    canonical_array,
    canonical_json,
    config_sha256,
    is_reference,
    one_run,
    result_id,
    strip_seed,
    upgrade,
    write_result,
)
from icrl_bench.eval.runner import EvalResult
from icrl_bench.registry import tasks
from icrl_bench.tasks import split_hash

CONFIG = {"model": {"d_model": 32, "layers": 2}, "train": {"seed": 5, "steps": 100}}


@pytest.fixture(scope="module")
def evaluation() -> EvalResult:
    return icrl_bench.evaluate(RandomAgent(), "DarkRoom-v0", seeds=[1, 0], episodes=3)


def _valid(doc: dict, version: int = SCHEMA_VERSION) -> None:
    errors = [e.message for e in Draft202012Validator(RESULT_SCHEMAS[version]).iter_errors(doc)]
    assert not errors, errors


def _run(seed: int) -> Run:
    return Run(seed, config_sha256(strip_seed(CONFIG)), "a" * 64, None)


# -- building -------------------------------------------------------------------------------------
def test_a_reference_agents_result(evaluation: EvalResult, tmp_path: Path) -> None:
    doc = build_result(evaluation, "random", notes="reference")
    _valid(doc)
    test = tasks("DarkRoom-v0").test
    assert (
        doc["schema_version"] == SCHEMA_VERSION and RESULT_SCHEMAS[SCHEMA_VERSION] == RESULT_SCHEMA
    )
    assert doc["method"] == "random" and doc["env_id"] == "icrl_bench/DarkRoom-v0"
    assert doc["protocol"] == "online-v1" and doc["seeds"] == [1, 0]
    assert doc["tasks"] == {"split": "test", "count": len(test), "sha256": split_hash(test)}
    assert doc["runs"] is None  # not trained: its evaluation seeds are its runs
    assert doc["dataset"] is None and doc["prompt_datasets"] == []
    np.testing.assert_array_equal(doc["returns"], evaluation.returns[None])
    assert doc["actions"] is None and doc["success"] is None
    assert doc["config_sha256"] == config_sha256({})
    assert set(doc["provenance"]) == {"git_sha", "created", "packages"}
    # the file round-trips: what is read back is what was built
    path = write_result(doc, tmp_path / "sub" / "random.json")
    assert json.loads(path.read_text()) == doc


def test_a_learned_methods_result_is_one_run_of_its_config(evaluation: EvalResult) -> None:
    dataset = {"id": "DarkRoom-v0/ad-eps-v0/smoke-seed0", "sha256": "b" * 64}
    doc = build_result(evaluation, "ad", config=CONFIG, dataset=dataset)
    _valid(doc)
    assert doc["config"] == {"model": {"d_model": 32, "layers": 2}, "train": {"steps": 100}}
    assert doc["config_sha256"] == config_sha256(doc["config"])
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    assert run["train_seed"] == 5 and run["dataset_sha256"] == "b" * 64
    assert run["config_sha256"] == doc["config_sha256"]
    assert CONFIG["train"]["seed"] == 5  # the caller's config is not modified


def test_several_runs_stack_on_a_leading_axis(evaluation: EvalResult) -> None:
    other = icrl_bench.evaluate(RandomAgent(), "DarkRoom-v0", seeds=[1, 0], episodes=3)
    doc = build_result([evaluation, other], "ad", config=CONFIG, runs=[_run(0), _run(1)])
    _valid(doc)
    returns = np.asarray(doc["returns"])
    assert returns.shape == (2, 2, len(tasks("DarkRoom-v0").test), 3)
    np.testing.assert_array_equal(returns[0], evaluation.returns)
    np.testing.assert_array_equal(returns[1], other.returns)
    assert [r["train_seed"] for r in doc["runs"]] == [0, 1]


def test_bandit_results_keep_the_pulled_arms() -> None:
    res = icrl_bench.evaluate(reference_agent("ucb", "BernoulliBandit-v0", 1),
                              "BernoulliBandit-v0", seeds=[0])  # fmt: skip
    doc = build_result(res, "ucb")
    _valid(doc)
    assert res.actions is not None
    np.testing.assert_array_equal(doc["actions"], res.actions[None])
    assert all(isinstance(a, int) for a in doc["actions"][0][0][0][:5])


def test_success_is_kept_where_the_family_defines_it() -> None:
    res = icrl_bench.evaluate(RandomAgent(), "DarkRoomHard-v0", seeds=[0], episodes=2)
    doc = build_result(res, "random")
    _valid(doc)
    assert res.success is not None
    np.testing.assert_array_equal(doc["success"], res.success[None])


def test_mismatched_evaluations_and_runs_are_refused(evaluation: EvalResult) -> None:
    with pytest.raises(ValueError, match="at least one evaluation"):
        build_result([], "ad")
    with pytest.raises(ValueError, match="need their training runs"):
        build_result([evaluation, evaluation], "ad", config=CONFIG)
    with pytest.raises(ValueError, match="2 evaluations but 1 training runs"):
        build_result([evaluation, evaluation], "ad", runs=[_run(0)])
    other_seeds = icrl_bench.evaluate(RandomAgent(), "DarkRoom-v0", seeds=[2, 0], episodes=3)
    with pytest.raises(ValueError, match="differ in family, protocol or seeds"):
        build_result([evaluation, other_seeds], "ad", runs=[_run(0), _run(1)])
    longer = icrl_bench.evaluate(RandomAgent(), "DarkRoom-v0", seeds=[1, 0], episodes=4)
    with pytest.raises(ValueError, match="differ in shape"):
        build_result([evaluation, longer], "ad", runs=[_run(0), _run(1)])
    train = icrl_bench.evaluate(RandomAgent(), "DarkRoom-v0", seeds=[0], episodes=1, split="train")
    with pytest.raises(ValueError, match="test split only"):
        build_result(train, "random")


def test_one_run_and_is_reference() -> None:
    run = one_run(CONFIG, {"id": "x", "sha256": "c" * 64}, "d" * 40)
    assert run == Run(5, config_sha256(strip_seed(CONFIG)), "c" * 64, "d" * 40)
    assert one_run({"model": {}}, None, None).train_seed == 0  # no seed in the config
    for bad in (-1, 2**32, True, "3", 1.5):
        assert one_run({"train": {"seed": bad}}, None, None).train_seed == 0
    assert is_reference("random") and is_reference("oracle") and is_reference("qlearning")
    assert not is_reference("ad") and not is_reference("Random")


# -- canonical hashing ----------------------------------------------------------------------------
def test_config_sha256_is_canonical() -> None:
    a = {"b": 1, "a": {"y": [1, 2], "x": "s"}}
    b = {"a": {"x": "s", "y": [1, 2]}, "b": 1}
    assert config_sha256(a) == config_sha256(b)
    assert canonical_json(a) == '{"a":{"x":"s","y":[1,2]},"b":1}'
    assert config_sha256({**a, "b": 2}) != config_sha256(a)
    assert config_sha256({"a": [2, 1]}) != config_sha256({"a": [1, 2]})  # lists keep order
    with pytest.raises(ValueError):
        config_sha256({"lr": float("nan")})


def test_strip_seed_removes_only_the_training_seed() -> None:
    stripped = strip_seed(CONFIG)
    assert stripped == {"model": {"d_model": 32, "layers": 2}, "train": {"steps": 100}}
    assert CONFIG["train"] == {"seed": 5, "steps": 100}  # a deep copy: the input is untouched
    seeds = [dict(CONFIG, train={"seed": s, "steps": 100}) for s in (0, 1, 99)]
    assert len({config_sha256(strip_seed(c)) for c in seeds}) == 1  # runs share the config
    assert strip_seed({"seed": 3, "model": {"seed": 4}}) == {"seed": 3, "model": {"seed": 4}}
    assert strip_seed({"train": "not a table"}) == {"train": "not a table"}
    assert strip_seed({}) == {}


def test_canonical_array_sorts_seeds_and_runs() -> None:
    arr = np.arange(2 * 3 * 2 * 1).reshape(2, 3, 2, 1).astype(float)  # [runs, seeds, tasks, eps]
    out = canonical_array(arr, seeds=[5, 1, 3], train_seeds=[9, 2], dtype="<f8")
    np.testing.assert_array_equal(out, arr[[1, 0]][:, [1, 2, 0]])
    assert out.dtype == np.dtype("<f8") and out.flags.c_contiguous
    one = canonical_array(arr[0], seeds=[5, 1, 3], train_seeds=None, dtype="<i8")
    assert one.shape == (1, 3, 2, 1) and one.dtype == np.int64
    np.testing.assert_array_equal(one[0], arr[0][[1, 2, 0]])


def test_result_id_depends_on_the_numbers_not_their_spelling() -> None:
    rng = np.random.default_rng(0)
    returns = rng.normal(size=(2, 3, 4, 5))
    base = result_id("ad", "1", "icrl_bench/DarkRoom-v0", "online-v1", [0, 1, 2], returns,
                     train_seeds=[7, 3])  # fmt: skip
    assert len(base) == 16
    # the same result written with runs and seeds in another order
    perm = returns[[1, 0]][:, [2, 0, 1]]
    same = result_id("ad", "1", "icrl_bench/DarkRoom-v0", "online-v1", [2, 0, 1], perm,
                     train_seeds=[3, 7])  # fmt: skip
    assert same == base
    as_lists = result_id("ad", "1", "icrl_bench/DarkRoom-v0", "online-v1", [0, 1, 2],
                         returns.tolist(), train_seeds=[7, 3])  # fmt: skip
    assert as_lists == base
    zeros = np.zeros((1, 2, 2, 1))
    neg = result_id("random", "1", "x", "online-v1", [0, 1], -zeros)
    assert neg == result_id("random", "1", "x", "online-v1", [0, 1], zeros)  # -0.0 is 0.0
    changed = returns.copy()
    changed[0, 0, 0, 0] += 1e-9
    for other in (
        result_id("ad", "1", "icrl_bench/DarkRoom-v0", "online-v1", [0, 1, 2], changed,
                  train_seeds=[7, 3]),
        result_id("dt", "1", "icrl_bench/DarkRoom-v0", "online-v1", [0, 1, 2], returns,
                  train_seeds=[7, 3]),
        result_id("ad", "2", "icrl_bench/DarkRoom-v0", "online-v1", [0, 1, 2], returns,
                  train_seeds=[7, 3]),
        result_id("ad", "1", "icrl_bench/DarkRoom-v0", "zero-shot-v1", [0, 1, 2], returns,
                  train_seeds=[7, 3]),
        result_id("ad", "1", "icrl_bench/DarkRoom-v0", "online-v1", [0, 1, 2], returns,
                  train_seeds=[7, 4]),
    ):  # fmt: skip
        assert other != base
    arms = rng.integers(0, 5, size=(1, 2, 3, 4))
    bandit = result_id("ucb", "1", "b", "online-v1", [0, 1], None, arms)
    assert bandit != result_id("ucb", "1", "b", "online-v1", [0, 1], None, (arms + 1) % 5)


# -- schema-1 files -------------------------------------------------------------------------------
def _as_version_1(doc: dict, config: dict) -> dict:
    old = {k: v for k, v in doc.items() if k != "runs"}
    old["schema_version"] = 1
    for name in ("returns", "actions", "success"):
        if old.get(name) is not None:
            old[name] = old[name][0]
    old["config"] = config
    old["config_sha256"] = config_sha256(config)
    return old


def test_upgrade_turns_a_learned_schema_1_file_into_one_run(evaluation: EvalResult) -> None:
    current = build_result(evaluation, "ad", config=CONFIG)
    old = _as_version_1(current, CONFIG)
    _valid(old, version=1)
    new = upgrade(old)
    _valid(new)
    assert new["schema_version"] == SCHEMA_VERSION and old["schema_version"] == 1  # a copy
    np.testing.assert_array_equal(new["returns"], current["returns"])
    assert new["config"] == strip_seed(CONFIG)
    assert new["config_sha256"] == config_sha256(strip_seed(CONFIG))
    assert new["runs"] == [
        {"train_seed": 5, "config_sha256": new["config_sha256"], "dataset_sha256": None,
         "git_sha": current["provenance"]["git_sha"]}
    ]  # fmt: skip


def test_upgrade_of_a_reference_file_has_no_runs(evaluation: EvalResult) -> None:
    old = _as_version_1(build_result(evaluation, "random"), {})
    new = upgrade(old)
    _valid(new)
    assert new["runs"] is None and np.asarray(new["returns"]).ndim == 4
    current = build_result(evaluation, "random")
    assert upgrade(current) == current and upgrade(current) is not current


# -- writing --------------------------------------------------------------------------------------
def test_write_result_is_atomic_and_leaves_no_temporary_file(
    evaluation: EvalResult, tmp_path: Path
) -> None:
    doc = build_result(evaluation, "random")
    path = write_result(doc, tmp_path / "r.json")
    mode = stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # the usual permissions, not a temporary file's 0600
    before = path.read_text()
    with pytest.raises(ValueError):  # NaN is not JSON
        write_result({**doc, "notes": float("nan")}, path)
    with pytest.raises(ValueError, match="larger than"):
        write_result({**doc, "notes": "x" * (MAX_RESULT_BYTES + 1)}, path)
    assert path.read_text() == before  # a refused write changed nothing
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
