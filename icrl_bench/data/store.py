"""The dataset store: one directory per dataset, a manifest and memory-mappable arrays.

Layout under ``$ICRL_BENCH_HOME/datasets`` (default ``~/.icrl_bench/datasets``)::

    <Family>/<variant>-v<N>/<scale>-seed<S>/
        manifest.json         recipe, seed, scale, counts, sha256 per array, provenance, references
        observations.bin ...  raw little-endian arrays; dtype and shape are in the manifest

Transitions are stored in the order task, history, episode, step. ``history_offsets`` and
``episode_offsets`` (length ``count + 1``) delimit each history's and each episode's transitions.

Writes go to a temporary sibling directory that is renamed into place only when complete, so an
interrupted generation never leaves a dataset that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from icrl_bench.errors import IcrlBenchError, UnknownIdError

MANIFEST = "manifest.json"
#: per-transition arrays, one row per step (what a window or trajectory is cut from)
STEP_ARRAYS = (
    "observations",
    "next_observations",
    "actions",
    "rewards",
    "terminations",
    "truncations",
    "task_index",
    "history_index",
    "episode_index",
    "step_index",
)
#: arrays every dataset holds (optimal_actions only where the source computes them)
CORE_ARRAYS = (
    *STEP_ARRAYS,
    "history_offsets",
    "episode_offsets",
    "history_task",
    "history_kind",
)
#: recipe keys added after datasets were first written, with the value every older dataset has
#: (datasets written before ``connected`` existed all chain next_observations within episodes)
RECIPE_DEFAULTS: dict[str, Any] = {"connected": True}
_ID = re.compile(
    r"^(?P<family>[A-Za-z0-9][A-Za-z0-9-]*-v\d+)/(?P<variant>[a-z0-9-]+-v\d+)(/(?P<inst>[a-z]+-seed\d+))?$"
)


class DatasetError(IcrlBenchError):
    """A dataset that is missing, incomplete, corrupt or does not satisfy its invariants."""


def stored_recipe(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest's recipe, with :data:`RECIPE_DEFAULTS` for keys older versions lacked."""
    return {**RECIPE_DEFAULTS, **manifest.get("recipe", {})}


#: the manifest fields a dataset's definition consists of: ``recipe_sha256`` hashes them, so an
#: edit of any (a learner parameter, a task, a reference return) is caught by ``verify``
DEFINITION_KEYS = (
    "env_id",
    "variant",
    "scale",
    "seed",
    "recipe",
    "tasks",
    "horizon",
    "reference_returns",
    "floor_return",
)


def recipe_sha256(manifest: Mapping[str, Any]) -> str:
    """sha256 of a manifest's definition (:data:`DEFINITION_KEYS`), as canonical JSON, its
    recipe completed with :data:`RECIPE_DEFAULTS`."""
    body = {k: manifest.get(k) for k in DEFINITION_KEYS}
    body["recipe"] = stored_recipe(manifest)  # keys older manifests lack hash as their default
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def home() -> Path:
    """``$ICRL_BENCH_HOME`` or ``~/.icrl_bench``."""
    return Path(os.environ.get("ICRL_BENCH_HOME", Path.home() / ".icrl_bench")).expanduser()


def datasets_root() -> Path:
    """Where datasets live."""
    return home() / "datasets"


@dataclass(frozen=True)
class DatasetRef:
    """A parsed dataset id: ``<Family>/<variant>-v<N>[/<scale>-seed<S>]``."""

    family: str
    variant: str
    instance: str | None

    @property
    def id(self) -> str:
        """The fully qualified id (instance included when known)."""
        base = f"{self.family}/{self.variant}"
        return base if self.instance is None else f"{base}/{self.instance}"

    def path(self) -> Path:
        """The dataset's directory (needs the instance)."""
        assert self.instance is not None
        return datasets_root() / self.family / self.variant / self.instance


def parse_id(dataset_id: str) -> DatasetRef:
    """Parse a dataset id, raising :class:`UnknownIdError` with the expected form."""
    match = (
        _ID.match(dataset_id.removeprefix("icrl_bench/")) if isinstance(dataset_id, str) else None
    )
    if match is None:
        raise UnknownIdError(
            f"malformed dataset id {dataset_id!r}; expected <Family>-v<N>/<variant>-v<N>"
            "[/<scale>-seed<S>], e.g. DarkRoom-v0/ad-eps-v1/smoke-seed0"
        )
    return DatasetRef(match["family"], match["variant"], match["inst"])


def instance_name(scale: str, seed: int) -> str:
    """Directory name of one generated instance of a recipe."""
    return f"{scale}-seed{seed}"


def resolve(dataset_id: str) -> DatasetRef:
    """Resolve an id to one complete dataset on disk.

    A two-part id (no ``/<scale>-seed<S>``) resolves when exactly one instance exists.

    Raises:
        UnknownIdError: no such dataset, or an ambiguous two-part id.
    """
    ref = parse_id(dataset_id)
    if ref.instance is not None:
        if not (ref.path() / MANIFEST).is_file():
            raise UnknownIdError(
                f"no dataset {ref.id!r} (generate it with `icrl-bench data generate`)"
            )
        return ref
    base = datasets_root() / ref.family / ref.variant
    found = (
        sorted(p.name for p in base.glob("*") if (p / MANIFEST).is_file()) if base.is_dir() else []
    )
    if not found:
        raise UnknownIdError(f"no dataset {ref.id!r} (generate it with `icrl-bench data generate`)")
    if len(found) > 1:
        raise UnknownIdError(f"{ref.id!r} is ambiguous; name one of: {', '.join(found)}")
    return DatasetRef(ref.family, ref.variant, found[0])


def list_datasets() -> list[dict[str, Any]]:
    """Manifests of every complete dataset (temporary and partial directories are skipped),
    each with ``id`` set from its directory; an unreadable manifest gives ``{"id": ...}`` only,
    so that a listing shows it (as broken) instead of failing."""
    root = datasets_root()
    out = []
    for manifest in sorted(root.glob(f"*/*/*/{MANIFEST}")):
        parts = manifest.relative_to(root).parts
        if any(part.startswith(".") for part in parts):
            continue
        dir_id = "/".join(parts[:3])
        try:
            doc = json.loads(manifest.read_bytes()[: 64 * 2**20])
        except (OSError, ValueError, RecursionError):
            doc = None
        out.append({**doc, "id": dir_id} if isinstance(doc, dict) else {"id": dir_id})
    return out


def sha256_file(path: Path) -> str:
    """Streaming sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


class ArrayWriter:
    """Appends chunks to the raw array files of a dataset being written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.meta: dict[str, dict[str, Any]] = {}
        self._files: dict[str, Any] = {}

    def append(self, name: str, chunk: np.ndarray) -> None:
        """Append ``chunk`` (rows along axis 0) to array ``name``."""
        chunk = np.ascontiguousarray(chunk)
        meta = self.meta.get(name)
        if meta is None:
            dtype = chunk.dtype.newbyteorder("<") if chunk.dtype.itemsize > 1 else chunk.dtype
            meta = {"dtype": dtype.str, "shape": [0, *chunk.shape[1:]], "file": f"{name}.bin"}
            self.meta[name] = meta
            self._files[name] = (self.directory / meta["file"]).open("wb")
        if list(chunk.shape[1:]) != meta["shape"][1:]:
            raise ValueError(f"{name}: chunk shape {chunk.shape} does not match {meta['shape']}")
        self._files[name].write(chunk.astype(np.dtype(meta["dtype"]), copy=False).tobytes())
        meta["shape"][0] += chunk.shape[0]

    def close(self) -> dict[str, dict[str, Any]]:
        """Flush, fsync and checksum every array; returns the manifest's ``arrays`` entry."""
        for fh in self._files.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        for meta in self.meta.values():
            meta["sha256"] = sha256_file(self.directory / meta["file"])
        return self.meta


@contextmanager
def staging(final: Path) -> Iterator[Path]:
    """A temporary directory beside ``final`` that is renamed to ``final`` on success.

    On any exception (or interruption) the temporary directory is removed and ``final`` is left
    as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            trash = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            final.rename(trash)
            tmp.rename(final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` (last, so its presence marks a complete dataset) atomically: a
    temporary file renamed over it, so a reader never sees a partial manifest. NaN and infinite
    numbers are refused (they are not JSON)."""
    path = directory / MANIFEST
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def open_array(directory: Path, meta: Mapping[str, Any]) -> np.ndarray:
    """Memory-map one array read-only."""
    shape = tuple(meta["shape"])
    dtype = np.dtype(meta["dtype"])
    path = directory / meta["file"]
    if shape[0] == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)
