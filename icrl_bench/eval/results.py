"""The results file: one JSON per evaluation run, with its raw data and its provenance.

A result holds everything needed to recompute every score (the raw per-seed, per-task,
per-episode returns, and for bandits the arm pulled at every step, from which the leaderboard
recomputes the per-step regret against the registry's test tasks) and to trace the run to its code,
config and data. The schema is :data:`RESULT_SCHEMA` (JSON Schema, draft 2020-12); it is
documented field by field in docs/leaderboard.md. This module never imports torch.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from icrl_bench.eval.runner import EvalResult
from icrl_bench.provenance import git_sha, package_versions
from icrl_bench.registry import family, tasks
from icrl_bench.tasks import split_hash

#: bump on any incompatible change of the results file
SCHEMA_VERSION = 1
#: files larger than this are refused by ``submit`` (and never written by ``write_result``)
MAX_RESULT_BYTES = 16 * 1024 * 1024

_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 64}
_NUM_3D = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
}
_INT_3D = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
}
#: a dataset a result was trained on or prompted from
_DATASET_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "sha256"],
    "properties": {"id": _NAME | {"maxLength": 128}, "sha256": _SHA256},
}
_METRIC = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^(mean|iqm)(_low|_high)?$": {"type": "number"}},
}

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "icrl-bench result",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "schema_version",
        "method",
        "method_version",
        "env_id",
        "protocol",
        "tasks",
        "dataset",
        "prompt_datasets",
        "seeds",
        "returns",
        "config",
        "config_sha256",
        "provenance",
    ],
    "properties": {
        "schema_version": {"type": "integer"},
        "method": _NAME,
        "method_version": {"type": "string", "minLength": 1, "maxLength": 32},
        "env_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "protocol": {"type": "string", "minLength": 1, "maxLength": 64},
        "tasks": {
            "type": "object",
            "additionalProperties": False,
            "required": ["split", "count", "sha256"],
            "properties": {
                "split": {"type": "string"},
                "count": {"type": "integer"},
                "sha256": _SHA256,
            },
        },
        "dataset": {"oneOf": [{"type": "null"}, _DATASET_REF]},
        "prompt_datasets": {"type": "array", "items": _DATASET_REF},
        "seeds": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
        },
        "returns": _NUM_3D,
        "actions": {"oneOf": [{"type": "null"}, _INT_3D]},
        "success": {"oneOf": [{"type": "null"}, _NUM_3D]},
        "aggregates": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                name: _METRIC
                for name in ("normalized_final", "nauc", "final_return", "regret", "success_rate")
            },
        },
        "config": {"type": "object"},
        "config_sha256": _SHA256,
        "provenance": {
            "type": "object",
            "additionalProperties": False,
            "required": ["git_sha", "created", "packages"],
            "properties": {
                "git_sha": {
                    "oneOf": [{"type": "null"}, {"type": "string", "pattern": "^[0-9a-f]{40}$"}]
                },
                "created": {"type": "string", "format": "date-time", "maxLength": 40},
                "packages": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "null"], "maxLength": 64},
                    "required": ["python", "torch", "gymnasium", "numpy", "icrl-bench"],
                },
            },
        },
        "notes": {"type": "string", "maxLength": 500},
    },
}


def canonical_json(value: Any) -> str:
    """The canonical JSON text that hashes are taken over (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_sha256(config: Mapping[str, Any]) -> str:
    """sha256 of a config's canonical JSON."""
    return hashlib.sha256(canonical_json(dict(config)).encode()).hexdigest()


def result_id(
    method: str,
    method_version: str,
    env_id: str,
    protocol: str,
    seeds: Sequence[int],
    returns: np.ndarray | None,
    actions: np.ndarray | None = None,
) -> str:
    """The content id of a result: a hash of its method, track, seeds and raw data.

    It is taken over the numbers, not their JSON spelling: seeds are sorted (with the arrays
    reordered to match), returns hashed as float64 and arms as int64. Two files with the same raw
    numbers for the same method and track therefore have the same id however they are written,
    which is how the leaderboard refuses duplicates. Bandit results pass ``returns=None``: they
    are scored from their pulls alone.
    """
    order = np.argsort(np.asarray(seeds, dtype=np.int64), kind="stable")
    digest = hashlib.sha256()
    head = [method, method_version, env_id, protocol, [int(seeds[i]) for i in order]]
    digest.update(canonical_json(head).encode())
    if returns is not None:
        # + 0.0 turns -0.0 into 0.0: the same number, the same bytes
        digest.update(np.ascontiguousarray(np.asarray(returns, "<f8")[order] + 0.0).tobytes())
    if actions is not None:
        digest.update(np.ascontiguousarray(np.asarray(actions, "<i8")[order]).tobytes())
    return digest.hexdigest()[:16]


def build_result(
    evaluation: EvalResult,
    method: str,
    method_version: str = "1",
    config: Mapping[str, Any] | None = None,
    dataset: Mapping[str, str] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """Assemble the results document of one evaluation.

    Args:
        evaluation: what :func:`icrl_bench.evaluate` returned.
        method: the method's name on the leaderboard (a plain name, no path).
        method_version: the method's own version.
        config: the resolved config of the agent (saved with its hash).
        dataset: ``{"id", "sha256"}`` of the training dataset, when trained on one.
        notes: free text shown on the leaderboard.
    """
    spec = family(evaluation.env_id)
    test = tasks(spec.name).test
    config = dict(config or {})
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "method": method,
        "method_version": method_version,
        "env_id": spec.env_id,
        "protocol": evaluation.protocol,
        "tasks": {"split": "test", "count": len(test), "sha256": split_hash(test)},
        "dataset": dict(dataset) if dataset else None,
        "prompt_datasets": [
            {"id": i, "sha256": s}
            for i, s in zip(evaluation.prompt_dataset, evaluation.prompt_sha256, strict=True)
        ],
        "seeds": list(evaluation.seeds),
        "returns": evaluation.returns.tolist(),
        "actions": None if evaluation.actions is None else evaluation.actions.tolist(),
        "success": None if evaluation.success is None else evaluation.success.tolist(),
        "config": config,
        "config_sha256": config_sha256(config),
        "provenance": {
            "git_sha": git_sha(),
            "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "packages": package_versions(),
        },
        "notes": notes,
    }
    return doc


def write_result(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a results document atomically (temporary file, then rename)."""
    text = json.dumps(doc, allow_nan=False) + "\n"
    if len(text.encode()) > MAX_RESULT_BYTES:
        raise ValueError(f"result is larger than {MAX_RESULT_BYTES} bytes")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode())
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a part.

    The file gets the usual permissions (0666 less the umask), not mkstemp's owner-only 0600.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
