"""The results file: one JSON per evaluation of a method, with its raw data and its provenance.

A result holds everything needed to recompute every score (the raw per-run, per-seed, per-task,
per-episode returns, and for bandits the arm pulled at every step, from which the leaderboard
recomputes the per-step regret against the registry's test tasks) and to trace the result to its
code, config and data. The schema is :data:`RESULT_SCHEMA` (JSON Schema, draft 2020-12); it is
documented field by field in docs/leaderboard.md. This module never imports torch.

A learned method's result holds N independent training runs of one method and config (``runs``,
one entry per run with its training seed and checkpoint provenance), each evaluated under the same
evaluation seeds: its arrays are ``[runs, seeds, tasks, ...]``. A reference agent is not trained:
its ``runs`` is ``null``, its arrays have one leading row, and its evaluation seeds are its runs.
Files of schema version 1 (one model, ``[seeds, tasks, ...]`` arrays) are still read
(:func:`upgrade`): a learned method's becomes one run.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from icrl_bench.eval.agents import REFERENCE_AGENTS
from icrl_bench.eval.runner import EvalResult
from icrl_bench.provenance import git_sha, package_versions
from icrl_bench.registry import family, tasks
from icrl_bench.tasks import split_hash

#: bump on any incompatible change of the results file
SCHEMA_VERSION = 2
#: the versions ``submit`` reads (older files are upgraded in memory by :func:`upgrade`)
READABLE_VERSIONS = (1, 2)
#: files larger than this are refused by ``submit`` (and never written by ``write_result``)
MAX_RESULT_BYTES = 16 * 1024 * 1024

_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 64}


def _nested(depth: int, item: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-schema array of ``depth`` nested levels around ``item`` (the outermost non-empty)."""
    node: dict[str, Any] = dict(item)
    for _ in range(depth):
        node = {"type": "array", "items": node}
    node["minItems"] = 1
    return node


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
_GIT_SHA = {"oneOf": [{"type": "null"}, {"type": "string", "pattern": "^[0-9a-f]{40}$"}]}
_SEED = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
#: one independent training run: its seed and its checkpoint's provenance
_RUN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["train_seed", "config_sha256", "dataset_sha256", "git_sha"],
    "properties": {
        "train_seed": _SEED,
        "config_sha256": _SHA256,
        "dataset_sha256": {"oneOf": [{"type": "null"}, _SHA256]},
        "git_sha": _GIT_SHA,
    },
}


def _result_schema(version: int) -> dict[str, Any]:
    """The JSON schema of results files of ``version`` (1: ``[seeds, tasks, ...]`` arrays and no
    runs; 2: ``[runs, seeds, tasks, ...]`` arrays and ``runs``)."""
    depth = 3 if version == 1 else 4
    numbers = _nested(depth, {"type": "number"})
    integers = _nested(depth, {"type": "integer"})
    required = [
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
    ]
    properties: dict[str, Any] = {
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
        "seeds": {"type": "array", "minItems": 1, "items": _SEED},
        "returns": numbers,
        "actions": {"oneOf": [{"type": "null"}, integers]},
        "success": {"oneOf": [{"type": "null"}, numbers]},
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
                "git_sha": _GIT_SHA,
                "created": {"type": "string", "format": "date-time", "maxLength": 40},
                "packages": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "null"], "maxLength": 64},
                    "required": ["python", "torch", "gymnasium", "numpy", "icrl-bench"],
                },
            },
        },
        "notes": {"type": "string", "maxLength": 500},
    }
    if version >= 2:
        required.append("runs")
        properties["runs"] = {
            "oneOf": [{"type": "null"}, {"type": "array", "minItems": 1, "items": _RUN}]
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"icrl-bench result (schema version {version})",
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


#: the schema of the files this version writes
RESULT_SCHEMA: dict[str, Any] = _result_schema(SCHEMA_VERSION)
#: every readable version's schema
RESULT_SCHEMAS: dict[int, dict[str, Any]] = {v: _result_schema(v) for v in READABLE_VERSIONS}


def canonical_json(value: Any) -> str:
    """The canonical JSON text that hashes are taken over (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_sha256(config: Mapping[str, Any]) -> str:
    """sha256 of a config's canonical JSON."""
    return hashlib.sha256(canonical_json(dict(config)).encode()).hexdigest()


def strip_seed(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config without its training seed (``train.seed``): what the runs of one result share.

    Independent training runs of one method and config differ only in their seed; the result
    stores this shared config, and each run its seed.
    """
    out = copy.deepcopy(dict(config))
    train = out.get("train")
    if isinstance(train, dict):
        train.pop("seed", None)
    return out


@dataclass(frozen=True)
class Run:
    """One independent training run of a result: its seed and its checkpoint's provenance.

    Attributes:
        train_seed: the training seed.
        config_sha256: :func:`config_sha256` of the run's config without its seed
            (:func:`strip_seed`); equal for every run of a result.
        dataset_sha256: the training dataset's content hash, or ``None``.
        git_sha: the commit the run was trained at, or ``None`` where unknown.
    """

    train_seed: int
    config_sha256: str
    dataset_sha256: str | None
    git_sha: str | None

    def to_json(self) -> dict[str, Any]:
        """The run as it is stored in a results file."""
        return {
            "train_seed": int(self.train_seed),
            "config_sha256": self.config_sha256,
            "dataset_sha256": self.dataset_sha256,
            "git_sha": self.git_sha,
        }


def result_id(
    method: str,
    method_version: str,
    env_id: str,
    protocol: str,
    seeds: Sequence[int],
    returns: np.ndarray | None,
    actions: np.ndarray | None = None,
    train_seeds: Sequence[int] | None = None,
) -> str:
    """The content id of a result: a hash of its method, track, seeds and raw data.

    It is taken over the numbers, not their JSON spelling: runs are sorted by training seed and
    seeds sorted (with the arrays reordered to match), returns hashed as float64 and arms as
    int64. Two files with the same raw numbers for the same method and track therefore have the
    same id however they are written, which is how the leaderboard refuses duplicates. Bandit
    results pass ``returns=None``: they are scored from their pulls alone.

    Args:
        seeds: the evaluation seeds.
        returns: ``[seeds, tasks, episodes]`` or ``[runs, seeds, tasks, episodes]``.
        actions: bandits' arms, shaped as ``returns``.
        train_seeds: the runs' training seeds (``None`` for a reference agent, and for a
            schema-1 file, whose id is kept as it was: one run's bytes are those of its
            ``[seeds, ...]`` arrays).
    """
    digest = hashlib.sha256()
    head: list[Any] = [method, method_version, env_id, protocol, sorted(int(s) for s in seeds)]
    if train_seeds is not None:
        head.append(sorted(int(s) for s in train_seeds))
    digest.update(canonical_json(head).encode())
    if returns is not None:
        # + 0.0 turns -0.0 into 0.0: the same number, the same bytes
        digest.update((canonical_array(returns, seeds, train_seeds, "<f8") + 0.0).tobytes())
    if actions is not None:
        digest.update(canonical_array(actions, seeds, train_seeds, "<i8").tobytes())
    return digest.hexdigest()[:16]


def canonical_array(
    arr: Any, seeds: Sequence[int], train_seeds: Sequence[int] | None, dtype: str
) -> np.ndarray:
    """A result's ``[runs, seeds, ...]`` array (or one run's ``[seeds, ...]``) as ``dtype``, with
    its runs sorted by training seed and its evaluation seeds sorted: the order in which
    :func:`result_id` hashes it, so two spellings of one result compare equal."""
    out = np.asarray(arr, dtype)
    if out.ndim == 3:
        out = out[None]
    order = np.argsort(np.asarray(seeds, dtype=np.int64), kind="stable")
    run_order = np.zeros(1, dtype=np.int64)
    if train_seeds is not None:
        run_order = np.argsort(np.asarray(train_seeds, dtype=np.int64), kind="stable")
    return np.ascontiguousarray(out[run_order][:, order])


def build_result(
    evaluation: EvalResult | Sequence[EvalResult],
    method: str,
    method_version: str = "1",
    config: Mapping[str, Any] | None = None,
    dataset: Mapping[str, str] | None = None,
    notes: str = "",
    runs: Sequence[Run] | None = None,
) -> dict[str, Any]:
    """Assemble the results document of one method on one track.

    Args:
        evaluation: what :func:`icrl_bench.evaluate` returned: one per training run, in the
            order of ``runs``, all under the same protocol and seeds (one for a reference agent).
        method: the method's name on the leaderboard (a plain name, no path).
        method_version: the method's own version.
        config: the resolved config the runs share (saved with its hash; a training seed in it,
            ``train.seed``, is removed: each run records its own).
        dataset: ``{"id", "sha256"}`` of the training dataset, when trained on one.
        notes: free text shown on the leaderboard.
        runs: the training runs, one per evaluation. Left out, a reference agent's result gets
            ``runs: null`` (it is not trained: its evaluation seeds are its runs), and any
            other method's one evaluation is one run, whose seed is the config's
            ``train.seed`` (0 where it has none).

    Raises:
        ValueError: the evaluations and runs do not match, or differ in track or seeds.
    """
    evaluations = [evaluation] if isinstance(evaluation, EvalResult) else list(evaluation)
    if not evaluations:
        raise ValueError("build_result needs at least one evaluation")
    if runs is None and len(evaluations) != 1:
        raise ValueError("several evaluations need their training runs (runs=...)")
    if runs is None and not is_reference(method):
        runs = [one_run(config or {}, dataset, git_sha())]
    if runs is not None and len(runs) != len(evaluations):
        raise ValueError(f"{len(evaluations)} evaluations but {len(runs)} training runs")
    first = evaluations[0]
    if any(e.split != "test" for e in evaluations):
        raise ValueError("results files hold evaluations on the test split only")
    for other in evaluations[1:]:
        same = (other.env_id, other.protocol, list(other.seeds))
        if same != (first.env_id, first.protocol, list(first.seeds)):
            raise ValueError("the runs' evaluations differ in family, protocol or seeds")
        if other.returns.shape != first.returns.shape:
            raise ValueError("the runs' evaluations differ in shape (episodes)")

    def stacked(name: str) -> list[Any] | None:
        arrays = [getattr(e, name) for e in evaluations]
        if any(a is None for a in arrays):
            return None
        return np.stack(arrays).tolist()

    spec = family(first.env_id)
    test = tasks(spec.name).test
    config = strip_seed(config or {}) if runs is not None else dict(config or {})
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "method": method,
        "method_version": method_version,
        "env_id": spec.env_id,
        "protocol": first.protocol,
        "tasks": {"split": "test", "count": len(test), "sha256": split_hash(test)},
        "dataset": dict(dataset) if dataset else None,
        "prompt_datasets": [
            {"id": i, "sha256": s}
            for i, s in zip(first.prompt_dataset, first.prompt_sha256, strict=True)
        ],
        "seeds": list(first.seeds),
        "runs": None if runs is None else [r.to_json() for r in runs],
        "returns": stacked("returns"),
        "actions": stacked("actions"),
        "success": stacked("success"),
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


def one_run(
    config: Mapping[str, Any], dataset: Mapping[str, str] | None, commit: str | None
) -> Run:
    """The one training run of a method evaluated from one model: its seed is the config's
    ``train.seed`` (0 where the config has none); ``commit`` is its git sha."""
    train = config.get("train")
    seed = train.get("seed", 0) if isinstance(train, Mapping) else 0
    valid = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32
    return Run(
        train_seed=seed if valid else 0,
        config_sha256=config_sha256(strip_seed(config)),
        dataset_sha256=(dataset or {}).get("sha256"),
        git_sha=commit,
    )


def is_reference(method: str) -> bool:
    """Whether ``method`` names a reference agent (not trained: its evaluation seeds are its
    runs)."""
    return method in REFERENCE_AGENTS


def upgrade(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A schema-valid results document in the current version's shape (a copy).

    Version 1 stored one model's ``[seeds, tasks, ...]`` arrays and no runs: its arrays gain a
    leading axis of one, and a learned method's result becomes one run whose seed is its config's
    ``train.seed`` (0 where the config has none), whose config is the stored config without that
    seed, and whose provenance is the file's. A reference agent's gets ``runs: null``.
    """
    out = copy.deepcopy(dict(doc))
    if out.get("schema_version") != 1:
        return out
    for name in ("returns", "actions", "success"):
        if out.get(name) is not None:
            out[name] = [out[name]]
    out.setdefault("actions", None)
    out.setdefault("success", None)
    if is_reference(str(out["method"])) and out.get("dataset") is None:
        out["runs"] = None
    else:
        run = one_run(out["config"], out.get("dataset"), out["provenance"].get("git_sha"))
        out["config"] = strip_seed(out["config"])
        out["config_sha256"] = config_sha256(out["config"])
        out["runs"] = [run.to_json()]
    out["schema_version"] = SCHEMA_VERSION
    return out


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
