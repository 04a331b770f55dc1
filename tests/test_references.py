"""Measured reference returns: the cache's key, measuring once, rollouts of the random policy and
the oracle (checked on families whose references are exact), and the missing-expert error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from icrl_bench.errors import IcrlBenchError, MissingReferenceError
from icrl_bench.references import (
    RANDOM_EPISODES,
    cache_path,
    cached,
    missing_expert,
    random_reference,
    references_dir,
    rollout_returns,
)
from icrl_bench.registry import family, reference_returns, tasks

DARK = "DarkRoom-v0"


def test_cache_path_keys_on_tasks_horizon_and_tag(_isolated_home: Path) -> None:
    test = list(tasks(DARK).test)
    path = cache_path(DARK, test, 20, "random5")
    assert path.parent == references_dir() == _isolated_home / "references"
    assert path.name.startswith(f"{DARK}-random5-") and path.suffix == ".json"
    assert cache_path(DARK, list(test), 20, "random5") == path  # a function of the values
    others = {
        cache_path(DARK, test[:-1], 20, "random5"),  # other tasks
        cache_path(DARK, test[::-1], 20, "random5"),  # the same tasks in another order
        cache_path(DARK, test, 19, "random5"),  # another horizon
        cache_path(DARK, test, 20, "random6"),  # another measurement
        cache_path("DarkRoomHard-v0", test, 20, "random5"),  # another family
    }
    assert path not in others and len(others) == 5


def test_cached_measures_once_then_reads_the_cache() -> None:
    test = list(tasks(DARK).test[:3])
    calls = []

    def measure() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"return": np.array([1.5, -2.0, 0.25]), "success": np.array([0.0, 1.0, 0.5])}

    first = cached(DARK, test, 20, "unit", measure)
    path = cache_path(DARK, test, 20, "unit")
    assert path.is_file() and len(calls) == 1
    assert json.loads(path.read_text()) == {"return": [1.5, -2.0, 0.25], "success": [0.0, 1.0, 0.5]}
    again = cached(DARK, test, 20, "unit", measure)
    assert len(calls) == 1  # read back, not measured again
    for key in first:
        np.testing.assert_array_equal(again[key], first[key])
        assert again[key].dtype == np.float64
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    cached(DARK, test, 21, "unit", measure)  # another key measures again
    assert len(calls) == 2


def test_a_failed_measurement_caches_nothing() -> None:
    test = list(tasks(DARK).test[:2])

    def broken() -> dict[str, np.ndarray]:
        raise RuntimeError("simulator crashed")

    with pytest.raises(RuntimeError, match="simulator crashed"):
        cached(DARK, test, 20, "unit", broken)
    assert not cache_path(DARK, test, 20, "unit").exists()
    out = cached(DARK, test, 20, "unit", lambda: {"return": np.zeros(2)})
    np.testing.assert_array_equal(out["return"], [0.0, 0.0])


@pytest.mark.parametrize("name", [DARK, "PointRobot-v0"])
def test_rollout_returns_of_the_oracle_equal_the_exact_reference(name: str) -> None:
    test = list(tasks(name).test)
    horizon = family(name).horizon
    out = rollout_returns(name, test, horizon, "oracle", 2)
    np.testing.assert_allclose(out["return"], reference_returns(name)["oracle"], rtol=1e-6)
    np.testing.assert_array_equal(out["success"], np.zeros(len(test)))  # no info["success"]


def test_rollout_returns_of_the_random_policy_approach_the_exact_reference() -> None:
    test = list(tasks(DARK).test)
    ref = reference_returns(DARK)
    out = rollout_returns(DARK, test, 20, "random", 60)
    assert out["return"].shape == (len(test),)
    # per task the mean of 60 episodes is noisy; over 16 tasks it is close to the expectation
    assert abs(out["return"].mean() - ref["random"].mean()) < 0.1
    assert (out["return"] < ref["oracle"]).all()
    # the same call gives the same numbers (seeded episodes, seeded actions)
    again = rollout_returns(DARK, test, 20, "random", 60)
    np.testing.assert_array_equal(out["return"], again["return"])


def test_rollout_returns_stop_at_the_horizon_given() -> None:
    test = list(tasks(DARK).test)
    short = rollout_returns(DARK, test, 3, "oracle", 1)
    assert (short["return"] <= 3).all()
    assert (short["return"] < reference_returns(DARK)["oracle"]).all()


def test_random_reference_is_measured_once_and_cached() -> None:
    test = list(tasks(DARK).test[:4])
    path = cache_path(DARK, test, 20, f"random{RANDOM_EPISODES}")
    first = random_reference(DARK, test, 20)
    assert path.is_file() and first.shape == (4,)
    expected = rollout_returns(DARK, test, 20, "random", RANDOM_EPISODES)["return"]
    np.testing.assert_array_equal(first, expected)
    # a cached value is read back as it is, even if it was not measured here
    path.write_text(json.dumps({"return": [9.0, 8.0, 7.0, 6.0]}))
    np.testing.assert_array_equal(random_reference(DARK, test, 20), [9.0, 8.0, 7.0, 6.0])


def test_missing_expert_names_the_family_and_the_command() -> None:
    err = missing_expert("HalfCheetahVel-v0")
    assert isinstance(err, MissingReferenceError) and isinstance(err, IcrlBenchError)
    message = str(err)
    assert message.startswith("HalfCheetahVel-v0: no expert reference")
    assert "`icrl-bench data references HalfCheetahVel-v0`" in message
    assert "\n" not in message  # one line, as the CLI prints it
