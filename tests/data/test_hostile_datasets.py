"""Corrupt and hostile datasets are refused in one line, before any use: object dtypes,
manifests without arrays, edited recipes, flipped bytes and out-of-range actions, through the
CLI (exit 2, no traceback, no crash) and the Python API, with the files left as they were."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from icrl_bench import data
from icrl_bench.data.dataset import STAMP, Dataset
from icrl_bench.data.store import DatasetError
from tests.hostile import run_cli

DS = "DarkRoom-v0/ad-eps-v1/smoke-seed0"


@pytest.fixture
def ds_path(_isolated_home: Path) -> Path:
    data.generate("DarkRoom-v0", "ad-eps", "smoke", seed=0)
    return data.load(DS, verify=False).path


def _manifest_edit(mutate: Callable[[dict[str, Any]], Any], needle: str) -> Callable[[Path], str]:
    """A corruption that edits ``manifest.json`` in place; it returns the error it must cause."""

    def corrupt(path: Path) -> str:
        manifest = json.loads((path / "manifest.json").read_text())
        mutate(manifest)
        (path / "manifest.json").write_text(json.dumps(manifest))
        return needle

    return corrupt


def _flipped_byte(path: Path) -> str:
    raw = bytearray((path / "rewards.bin").read_bytes())
    raw[8 * 100] ^= 0x40
    (path / "rewards.bin").write_bytes(bytes(raw))
    return "checksum mismatch in rewards.bin"


def _action_out_of_range(path: Path) -> str:
    """A crafted dataset whose checksums were updated to match: only the range check sees it."""
    acts = np.fromfile(path / "actions.bin", dtype="<i8")
    acts[7] = 99
    acts.tofile(path / "actions.bin")
    sha = hashlib.sha256((path / "actions.bin").read_bytes()).hexdigest()
    return _manifest_edit(
        lambda m: m["arrays"]["actions"].update(sha256=sha),
        "actions[7] = 99 lies outside the action space [0.0, 4.0]",
    )(path)


CASES: list[tuple[str, Callable[[Path], str]]] = [
    (
        "object dtype",
        _manifest_edit(
            lambda m: m["arrays"]["rewards"].update(dtype="|O"), "array 'rewards' has dtype '|O'"
        ),
    ),
    (
        "manifest without arrays",
        _manifest_edit(lambda m: m.pop("arrays"), "the manifest lacks 'arrays'"),
    ),
    (
        "array file outside the dataset",
        _manifest_edit(
            lambda m: m["arrays"]["rewards"].update(file="../../../../../../etc/passwd"),
            "array 'rewards' must be stored in rewards.bin",
        ),
    ),
    (
        "shape against counts",
        _manifest_edit(
            lambda m: m["counts"].update(transitions=m["counts"]["transitions"] + 1),
            "has 28800 rows; the counts give 28801",
        ),
    ),
    (
        "edited recipe field",
        _manifest_edit(
            lambda m: m["recipe"]["learner_params"].update(eps_floor=0.1),
            "recipe_sha256 does not match",
        ),
    ),
    ("flipped byte", _flipped_byte),
    ("action out of range", _action_out_of_range),
]


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name != STAMP}


@pytest.mark.parametrize(("case", "corrupt"), CASES, ids=[c[0] for c in CASES])
def test_corrupt_datasets_are_refused_in_one_line_before_any_use(
    case: str, corrupt: Callable[[Path], str], ds_path: Path, tmp_path: Path
) -> None:
    needle = corrupt(ds_path)
    before = _snapshot(ds_path)
    with pytest.raises(DatasetError) as info:
        data.load(DS)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(DS)
    env = {"ICRL_BENCH_HOME": str(ds_path.parents[3])}
    run_cli("data", "verify", DS, env=env).assert_refused(DS, needle)
    run_cli("data", "show", DS, env=env).assert_refused(DS, needle)
    out = tmp_path / "ckpt"
    train = ["train", "ad", "--task", "DarkRoom-v0", "--dataset", DS, "--smoke", "--out", str(out)]
    run_cli(*train, env=env).assert_refused(DS, needle)
    assert not (out / "model.pt").exists()  # refused before any update
    listing = run_cli("data", "list", env=env)
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
    assert _snapshot(ds_path) == before


def test_a_verified_dataset_is_stamped_and_reverified_after_any_change(
    ds_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    full = Dataset.verify
    monkeypatch.setattr(Dataset, "verify", lambda self: (calls.append(self.id), full(self))[1])
    data.load(DS)
    assert (ds_path / STAMP).is_file() and len(calls) == 1
    data.load(DS)  # the stamp matches: no second pass over the data
    assert len(calls) == 1
    _flipped_byte(ds_path)
    with pytest.raises(DatasetError, match=r"checksum mismatch in rewards\.bin"):
        data.load(DS)
