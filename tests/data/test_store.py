"""The dataset store: ids, resolution, raw arrays, atomic staging and manifests, hashes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from icrl_bench.data.store import (
    DEFINITION_KEYS,
    MANIFEST,
    RECIPE_DEFAULTS,
    ArrayWriter,
    DatasetRef,
    datasets_root,
    home,
    list_datasets,
    open_array,
    parse_id,
    recipe_sha256,
    resolve,
    sha256_file,
    staging,
    write_manifest,
)
from icrl_bench.errors import IcrlBenchError, UnknownIdError


def _fake_dataset(dataset_id: str, **manifest: object) -> Path:
    """A directory that holds just a manifest, as a complete dataset does."""
    path = parse_id(dataset_id).path()
    path.mkdir(parents=True)
    write_manifest(path, {"env_id": "icrl_bench/DarkRoom-v0", **manifest})
    return path


def _manifest() -> dict:
    return {
        "env_id": "icrl_bench/DarkRoom-v0",
        "variant": "ad-eps-v0",
        "scale": "smoke",
        "seed": 0,
        "recipe": {"learner": "noisy-oracle", "episodes": 10, "connected": True},
        "tasks": [{"family": "DarkRoom-v0", "goal": [1, 2]}],
        "horizon": 20,
        "reference_returns": {"random": [0.1], "oracle": [18.0]},
        "floor_return": 0.0,
        "arrays": {"rewards": {"sha256": "0" * 64}},
        "counts": {"transitions": 200},
        "code_version": "abc",
    }


# -- ids and resolution -------------------------------------------------------------------------
def test_home_honours_icrl_bench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICRL_BENCH_HOME", str(tmp_path / "elsewhere"))
    assert home() == tmp_path / "elsewhere"
    assert datasets_root() == tmp_path / "elsewhere" / "datasets"
    monkeypatch.setenv("ICRL_BENCH_HOME", "~/bench-home")
    assert home() == Path.home() / "bench-home"
    monkeypatch.delenv("ICRL_BENCH_HOME")
    assert home() == Path.home() / ".icrl_bench"


def test_parse_id_reads_every_form() -> None:
    ref = parse_id("DarkRoom-v0/ad-eps-v1/smoke-seed3")
    assert ref == DatasetRef("DarkRoom-v0", "ad-eps-v1", "smoke-seed3")
    assert ref.id == "DarkRoom-v0/ad-eps-v1/smoke-seed3"
    assert ref.path() == datasets_root() / "DarkRoom-v0" / "ad-eps-v1" / "smoke-seed3"
    two = parse_id("icrl_bench/KeyToDoor-v0/histories-v0")  # the env-id prefix is accepted
    assert two == DatasetRef("KeyToDoor-v0", "histories-v0", None)
    assert two.id == "KeyToDoor-v0/histories-v0"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "DarkRoom-v0",  # no variant
        "DarkRoom/ad-eps-v0",  # family without a version
        "DarkRoom-v0/ad-eps",  # variant without a version
        "DarkRoom-v0/AD-eps-v0",  # upper case variant
        "DarkRoom-v0/ad-eps-v0/smoke",  # instance without a seed
        "DarkRoom-v0/ad-eps-v0/smoke-seed0/extra",
        "../../etc/ad-eps-v0",
        "DarkRoom-v0/../../x-v0",
        None,
        3,
    ],
)
def test_parse_id_refuses_malformed_ids_with_the_expected_form(bad: object) -> None:
    with pytest.raises(UnknownIdError) as err:
        parse_id(bad)  # type: ignore[arg-type]
    message = str(err.value)
    assert "malformed dataset id" in message and repr(bad) in message
    assert "<Family>-v<N>/<variant>-v<N>" in message  # it says what a good id looks like
    assert isinstance(err.value, IcrlBenchError)


def test_resolve_a_full_id_needs_its_manifest() -> None:
    with pytest.raises(UnknownIdError, match=r"no dataset 'DarkRoom-v0/ad-eps-v0/smoke-seed0'"):
        resolve("DarkRoom-v0/ad-eps-v0/smoke-seed0")
    path = parse_id("DarkRoom-v0/ad-eps-v0/smoke-seed0").path()
    path.mkdir(parents=True)  # a directory without a manifest is not a dataset
    with pytest.raises(UnknownIdError, match="icrl-bench data generate"):
        resolve("DarkRoom-v0/ad-eps-v0/smoke-seed0")
    write_manifest(path, {"env_id": "icrl_bench/DarkRoom-v0"})
    assert resolve("DarkRoom-v0/ad-eps-v0/smoke-seed0").path() == path


def test_resolve_a_two_part_id_finds_the_only_instance_or_names_the_choices() -> None:
    with pytest.raises(UnknownIdError, match="no dataset 'DarkRoom-v0/ad-eps-v0'"):
        resolve("DarkRoom-v0/ad-eps-v0")
    _fake_dataset("DarkRoom-v0/ad-eps-v0/smoke-seed0")
    # a half-written sibling (no manifest) does not count
    (datasets_root() / "DarkRoom-v0" / "ad-eps-v0" / ".tmp-smoke-seed1-abcd").mkdir()
    assert resolve("DarkRoom-v0/ad-eps-v0").instance == "smoke-seed0"
    _fake_dataset("DarkRoom-v0/ad-eps-v0/full-seed0")
    with pytest.raises(UnknownIdError, match="ambiguous; name one of: full-seed0, smoke-seed0"):
        resolve("DarkRoom-v0/ad-eps-v0")


def test_list_datasets_skips_partial_directories_and_shows_broken_manifests() -> None:
    _fake_dataset("DarkRoom-v0/ad-eps-v0/smoke-seed0", seed=0)
    broken = parse_id("DarkRoom-v0/random-v0/smoke-seed0").path()
    broken.mkdir(parents=True)
    (broken / MANIFEST).write_text("{not json")
    hidden = datasets_root() / "DarkRoom-v0" / "ad-eps-v0" / ".tmp-smoke-seed1-0000"
    hidden.mkdir()
    (hidden / MANIFEST).write_text("{}")
    listed = {d["id"]: d for d in list_datasets()}
    assert sorted(listed) == [
        "DarkRoom-v0/ad-eps-v0/smoke-seed0",
        "DarkRoom-v0/random-v0/smoke-seed0",
    ]
    assert listed["DarkRoom-v0/ad-eps-v0/smoke-seed0"]["seed"] == 0
    assert listed["DarkRoom-v0/random-v0/smoke-seed0"] == {
        "id": "DarkRoom-v0/random-v0/smoke-seed0"
    }


# -- arrays -------------------------------------------------------------------------------------
def test_array_writer_and_open_array_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    chunks = {
        "observations": [rng.normal(size=(5, 3)).astype(np.float32) for _ in range(3)],
        "actions": [rng.integers(0, 5, size=4) for _ in range(2)],
        "terminations": [rng.random(7) < 0.5],
        "big_endian": [np.arange(6, dtype=">i4").reshape(3, 2)],  # stored little-endian
    }
    writer = ArrayWriter(tmp_path)
    for name, parts in chunks.items():
        for part in parts:
            writer.append(name, part)
    meta = writer.close()
    assert meta["observations"]["shape"] == [15, 3]
    assert meta["actions"]["shape"] == [8]
    assert np.dtype(meta["big_endian"]["dtype"]).byteorder in ("<", "=")
    for name, parts in chunks.items():
        arr = open_array(tmp_path, meta[name])
        np.testing.assert_array_equal(arr, np.concatenate(parts))
        assert meta[name]["sha256"] == sha256_file(tmp_path / meta[name]["file"])
        assert not arr.flags.writeable  # memory-mapped read-only
    # the files are raw arrays, nothing else: no header, nothing that could be unpickled
    raw = (tmp_path / "observations.bin").read_bytes()
    assert raw == np.concatenate(chunks["observations"]).astype("<f4").tobytes()


def test_array_writer_refuses_a_chunk_of_another_shape(tmp_path: Path) -> None:
    writer = ArrayWriter(tmp_path)
    writer.append("observations", np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"observations: chunk shape \(2, 4\)"):
        writer.append("observations", np.zeros((2, 4)))
    writer.close()


def test_open_array_of_an_empty_array_needs_no_file(tmp_path: Path) -> None:
    arr = open_array(tmp_path, {"dtype": "<f8", "shape": [0, 4], "file": "missing.bin"})
    assert arr.shape == (0, 4) and arr.dtype == np.float64


def test_sha256_file_streams_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = np.random.default_rng(1).bytes(9 * 2**20 + 17)  # more than two 4 MiB blocks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


# -- atomic writes ------------------------------------------------------------------------------
def test_staging_renames_into_place_on_success(tmp_path: Path) -> None:
    final = tmp_path / "a" / "b" / "smoke-seed0"
    with staging(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".tmp-") and not final.exists()
        (tmp / "x.bin").write_bytes(b"new")
    assert (final / "x.bin").read_bytes() == b"new"
    assert sorted(p.name for p in final.parent.iterdir()) == ["smoke-seed0"]
    # a second generation replaces the old directory as a whole
    with staging(final) as tmp:
        (tmp / "y.bin").write_bytes(b"newer")
    assert sorted(p.name for p in final.iterdir()) == ["y.bin"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["smoke-seed0"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_staging_leaves_nothing_on_an_exception(tmp_path: Path, error: BaseException) -> None:
    final = tmp_path / "smoke-seed0"
    with pytest.raises(type(error)), staging(final) as tmp:
        (tmp / "half.bin").write_bytes(b"partial")
        write_manifest(tmp, {"complete": False})
        raise error
    assert list(tmp_path.iterdir()) == []
    # an existing dataset is left exactly as it was
    final.mkdir()
    (final / "old.bin").write_bytes(b"old")
    with pytest.raises(type(error)), staging(final) as tmp:
        (tmp / "half.bin").write_bytes(b"partial")
        raise error
    assert [p.name for p in tmp_path.iterdir()] == ["smoke-seed0"]
    assert [p.name for p in final.iterdir()] == ["old.bin"]


def test_write_manifest_round_trips_sorted_json(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"b": 1, "a": {"z": [1, 2], "y": "x"}})
    text = (tmp_path / MANIFEST).read_text()
    assert json.loads(text) == {"a": {"y": "x", "z": [1, 2]}, "b": 1}
    assert text.index('"a"') < text.index('"b"') and text.endswith("\n")


def test_write_manifest_that_cannot_serialise_leaves_the_old_one(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"version": 1})
    with pytest.raises(TypeError):
        write_manifest(tmp_path, {"version": 2, "bad": object()})
    assert json.loads((tmp_path / MANIFEST).read_text()) == {"version": 1}


def test_write_manifest_is_atomic_for_a_reader_of_the_old_one(tmp_path: Path) -> None:
    old = {"version": 1, "padding": "x" * 10_000}
    write_manifest(tmp_path, old)
    with (tmp_path / MANIFEST).open("rb") as reader:  # opened before the rewrite
        write_manifest(tmp_path, {"version": 2})
        assert json.loads(reader.read()) == old  # an atomic replace keeps the old file whole
    assert json.loads((tmp_path / MANIFEST).read_text()) == {"version": 2}


# -- the definition hash ------------------------------------------------------------------------
def test_recipe_sha256_changes_with_every_definition_key() -> None:
    base = _manifest()
    digest = recipe_sha256(base)
    assert len(digest) == 64 and digest == recipe_sha256(_manifest())
    for key in DEFINITION_KEYS:
        edited = _manifest()
        value = edited[key]
        edited[key] = {**value, "edited": 1} if isinstance(value, dict) else ["edited", value]
        assert recipe_sha256(edited) != digest, key
    nested = _manifest()
    nested["recipe"]["episodes"] = 11  # one learner parameter
    assert recipe_sha256(nested) != digest
    ref = _manifest()
    ref["reference_returns"]["oracle"] = [18.5]
    assert recipe_sha256(ref) != digest


def test_recipe_sha256_ignores_everything_outside_the_definition() -> None:
    digest = recipe_sha256(_manifest())
    for key, value in [
        ("arrays", {"rewards": {"sha256": "1" * 64}}),
        ("counts", {"transitions": 1}),
        ("code_version", "def"),
        ("created", "2030-01-01"),
    ]:
        edited = _manifest()
        edited[key] = value
        assert recipe_sha256(edited) == digest, key
    # key order is not part of the definition
    reordered = dict(reversed(list(_manifest().items())))
    reordered["recipe"] = dict(reversed(list(reordered["recipe"].items())))
    assert recipe_sha256(reordered) == digest


def test_recipe_sha256_completes_older_recipes_with_their_defaults() -> None:
    """A manifest written before a recipe key existed hashes as if it held the default."""
    assert RECIPE_DEFAULTS == {"connected": True}
    old = _manifest()
    del old["recipe"]["connected"]
    assert recipe_sha256(old) == recipe_sha256(_manifest())
    other = _manifest()
    other["recipe"]["connected"] = False
    assert recipe_sha256(other) != recipe_sha256(_manifest())


def test_recipe_sha256_refuses_non_finite_numbers() -> None:
    bad = _manifest()
    bad["floor_return"] = float("nan")
    with pytest.raises(ValueError):
        recipe_sha256(bad)
