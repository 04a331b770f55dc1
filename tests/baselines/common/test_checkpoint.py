"""Checkpoint directories: atomic metadata, the registry's methods only, weights that must fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from baselines.common.checkpoint import (
    FORMAT,
    CheckpointError,
    atomic_torch_save,
    load_state,
    load_weights,
    read_meta,
    training_progress,
    write_meta,
)


def test_metadata_round_trips_with_its_format(tmp_path: Path) -> None:
    write_meta(tmp_path, {"method": "dt", "step": 2, "steps": 5})
    meta = read_meta(tmp_path)
    assert meta["format"] == FORMAT and meta["method"] == "dt"
    assert training_progress(tmp_path, meta) == (2, 5)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no checkpoint.json"),
        ("{", "unreadable"),
        (json.dumps({"format": "other"}), "format 'other' is not"),
        (json.dumps({"format": FORMAT, "method": "ppo"}), "unknown method 'ppo'"),
    ],
)
def test_foreign_or_broken_metadata_is_one_line(
    tmp_path: Path, content: str | None, needle: str
) -> None:
    if content is not None:
        (tmp_path / "checkpoint.json").write_text(content)
    with pytest.raises(CheckpointError, match=needle):
        read_meta(tmp_path)


def test_weights_round_trip_and_a_misfit_is_named(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    atomic_torch_save(model.state_dict(), tmp_path / "model.pt")
    other = torch.nn.Linear(3, 2)
    load_weights(other, tmp_path)
    assert torch.equal(other.weight, model.weight)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_weights(torch.nn.Linear(4, 2), tmp_path)
    (tmp_path / "model.pt").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="not a valid weights file"):
        load_state(tmp_path / "model.pt")
