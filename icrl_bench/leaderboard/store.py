"""Leaderboard tracks on disk: one CSV per track, rows appended atomically under a file lock,
gzipped copies of the submitted results, current-row marking and migration of older layouts.

A track is one family under one protocol, kept as ``<dir>/<Family>__<protocol>.csv`` with the
columns of :data:`~icrl_bench.leaderboard.validate.COLUMNS`. ``submit`` validates a results file
(:mod:`~icrl_bench.leaderboard.validate`), keeps a gzipped copy under ``<dir>/results/<track>/``
and appends exactly one row by writing the new CSV to a temporary file and renaming it over the
old one. A rejected submission changes nothing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from icrl_bench.eval.protocols import setting
from icrl_bench.eval.results import (
    atomic_write,
    canonical_array,
    is_reference,
    upgrade,
)
from icrl_bench.leaderboard.validate import (
    COLUMNS,
    DUPLICATE_TOLERANCE,
    METRICS,
    AlreadySubmitted,
    SubmissionError,
    Validated,
    read_result,
    validate,
)

#: the environment variable that moves the leaderboard directory (default ``./leaderboards``)
DIR_ENV = "ICRL_BENCH_LEADERBOARD_DIR"


def leaderboard_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The leaderboard directory: ``path``, else ``$ICRL_BENCH_LEADERBOARD_DIR``, else
    ``./leaderboards``."""
    return Path(path or os.environ.get(DIR_ENV) or "leaderboards")


def _row(v: Validated) -> dict[str, str]:
    doc = v.result
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        method=doc["method"],
        method_version=doc["method_version"],
        result_id=v.result_id,
        headline=setting(v.spec.name, doc["protocol"]).headline,
        runs=str(v.runs),
        seeds=str(len(doc["seeds"])),
        tasks=str(v.returns.shape[2]),
        episodes=str(v.returns.shape[3]),
        dataset=(doc["dataset"] or {}).get("id", ""),
        dataset_sha256=(doc["dataset"] or {}).get("sha256", ""),
        config_sha256=doc["config_sha256"],
        git_sha=doc["provenance"]["git_sha"] or "",
        date=doc["provenance"]["created"][:10],
        notes=unicodedata.normalize("NFC", doc.get("notes", "")),
    )
    for name in METRICS:
        for stat, value in v.summary.get(name, {}).items():
            row[f"{name}_{stat}"] = f"{value:.6g}"
    return row


def is_reference_row(row: Mapping[str, str]) -> bool:
    """Whether a row is a reference agent's (a reference name and no training dataset)."""
    return is_reference(row.get("method", "")) and not row.get("dataset")


def mark_current(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Set every row's ``superseded_by``: empty for the current row of its method, else that
    row's ``result_id``.

    A track shows one row per method: the one with the most runs, then the latest (by result
    date, then by submission order). The others stay in the CSV, which is the history.
    """
    best: dict[str, tuple[tuple[int, str, int], str]] = {}
    for i, r in enumerate(rows):
        try:
            runs = int(r.get("runs") or 0)
        except ValueError:
            runs = 0
        rank = (runs, r.get("date", ""), i)
        if r["method"] not in best or rank > best[r["method"]][0]:
            best[r["method"]] = (rank, r["result_id"])
    for r in rows:
        current = best[r["method"]][1]
        r["superseded_by"] = "" if r["result_id"] == current else current
    return rows


def read_track(path: Path) -> list[dict[str, str]]:
    """The rows of a track CSV (empty if it does not exist), in submission order.

    A CSV written before training runs were counted (no ``runs`` column) is read with ``runs``
    filled in (a reference agent's evaluation seeds, else 1) and ``superseded_by`` computed;
    :func:`migrate` rewrites such a file with its aggregates recomputed.
    """
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        rows = [{k: v or "" for k, v in r.items() if k is not None} for r in csv.DictReader(f)]
    for r in rows:
        if not r.get("runs"):
            r["runs"] = r.get("seeds", "") if is_reference_row(r) else "1"
    return mark_current(rows)


def _track_csv(rows: Sequence[Mapping[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({c: r.get(c, "") for c in COLUMNS} for r in rows)
    return buf.getvalue().encode("utf-8")


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def stored_result(root: Path, track: str, rid: str) -> dict[str, Any] | None:
    """The accepted result ``rid`` of a track, in the current schema's shape, or ``None`` when
    it is not stored. Stored files were validated at submission and are not checked again."""
    stored = root / "results" / track / f"{rid}.json.gz"
    if not stored.is_file():
        return None
    return upgrade(json.loads(gzip.decompress(stored.read_bytes())))


def _migrated(root: Path, track: str, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows recomputed from their stored results under the current scoring (rows whose stored
    result is missing keep their aggregates, with ``runs`` filled in by :func:`read_track`)."""
    out = []
    for r in rows:
        stored = root / "results" / track / f"{r['result_id']}.json.gz"
        if stored.is_file():
            v = validate(read_result(stored))
            if v.result_id != r["result_id"]:
                raise SubmissionError(
                    "result_id", f"{stored} recomputes to {v.result_id}, not its row's id"
                )
            new = _row(v)
            new["notes"] = r.get("notes", new["notes"])
            out.append(new)
        else:
            out.append(dict(r))
    return mark_current(out)


def migrate(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Rewrite every track CSV written before training runs were counted (no ``runs``
    column): each row gets ``runs`` and ``superseded_by``, and its aggregates are recomputed
    from its stored result under the current rules (a learned method's evaluation seeds
    averaged within its one run; a reference agent's seeds as its runs). Rows are kept in order;
    none is dropped.

    Returns:
        The tracks that were rewritten.
    """
    root = leaderboard_dir(directory)
    done = []
    for csv_path in sorted(root.glob("*__*.csv")):
        track = csv_path.stem
        with FileLock(str(root / f".{track}.lock"), timeout=120):
            if "runs" in _header(csv_path):
                continue
            rows = _migrated(root, track, read_track(csv_path))
            atomic_write(csv_path, _track_csv(rows))
        done.append(track)
    return done


def submit(
    result_path: str | os.PathLike[str],
    directory: str | os.PathLike[str] | None = None,
    validated: Validated | None = None,
) -> tuple[str, dict[str, str]]:
    """Validate a results file and append its row to its track.

    The row becomes its method's current row if it has the most runs (then the latest); the
    rows it supersedes are marked in ``superseded_by``. A track CSV of an older layout is
    migrated first (:func:`migrate`).

    Args:
        result_path: the results JSON (optionally gzipped).
        directory: the leaderboard directory (see :func:`leaderboard_dir`).
        validated: ``validate(read_result(result_path))`` when the caller already has it.

    Returns:
        The track and the appended row.

    Raises:
        SubmissionError: the file is invalid or already on the leaderboard; nothing changed.
    """
    v = validated if validated is not None else validate(read_result(result_path))
    root = leaderboard_dir(directory)
    root.mkdir(parents=True, exist_ok=True)
    csv_path = root / f"{v.track}.csv"
    with FileLock(str(root / f".{v.track}.lock"), timeout=120):
        rows = read_track(csv_path)
        if any(r.get("result_id") == v.result_id for r in rows):
            raise AlreadySubmitted(v.result_id, v.track)
        twin = _near_duplicate(root, rows, v)
        if twin is not None:
            raise SubmissionError(
                "result_id",
                f"its returns equal those of {twin} on {v.track} within {DUPLICATE_TOLERANCE:g}",
            )
        if rows and "runs" not in _header(csv_path):
            rows = _migrated(root, v.track, rows)
        row = _row(v)
        stored = root / "results" / v.track / f"{v.result_id}.json.gz"
        stored.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(v.doc, sort_keys=True).encode()
        atomic_write(stored, gzip.compress(body, mtime=0))
        rows = mark_current([*rows, row])
        atomic_write(csv_path, _track_csv(rows))
    return v.track, rows[-1]


def _train_seeds(doc: Mapping[str, Any]) -> list[int] | None:
    return None if doc.get("runs") is None else [int(r["train_seed"]) for r in doc["runs"]]


def _near_duplicate(root: Path, rows: Sequence[Mapping[str, str]], v: Validated) -> str | None:
    """The id of a row of the same method, version, seeds and training seeds whose returns equal
    ``v``'s within :data:`DUPLICATE_TOLERANCE` (a copy with a few bits changed), if any.
    Bandits are identified by their integer pulls, which :func:`result_id` compares exactly."""
    if v.actions is not None:
        return None
    doc = v.result
    train = _train_seeds(doc)
    mine = canonical_array(v.returns, doc["seeds"], train, "<f8")
    for r in rows:
        same_row = (r.get("method"), r.get("method_version"), r.get("runs"), r.get("seeds")) == (
            doc["method"],
            doc["method_version"],
            str(v.runs),
            str(len(doc["seeds"])),
        )
        if not same_row:
            continue
        other = stored_result(root, v.track, r["result_id"])
        if other is None or sorted(other["seeds"]) != sorted(doc["seeds"]):
            continue
        theirs_train = _train_seeds(other)
        if sorted(theirs_train or []) != sorted(train or []):
            continue
        theirs = canonical_array(other["returns"], other["seeds"], theirs_train, "<f8")
        if theirs.shape == mine.shape and np.allclose(
            mine, theirs, rtol=DUPLICATE_TOLERANCE, atol=DUPLICATE_TOLERANCE
        ):
            return r["result_id"]
    return None


# -- rendering ------------------------------------------------------------------------------------
