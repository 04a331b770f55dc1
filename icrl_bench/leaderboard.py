"""Leaderboard tracks: validated submission, recomputed aggregates, atomic CSV rows, rendering.

A track is one family under one protocol, kept as ``<dir>/<Family>__<protocol>.csv`` with the
columns of :data:`COLUMNS`. ``submit`` validates a results file against its schema and against
the registry, recomputes every aggregate from the raw data (claimed numbers are only checked,
never copied), keeps a gzipped copy of the result under ``<dir>/results/<track>/``, and appends
exactly one row under a file lock, by writing the new CSV to a temporary file and renaming it
over the old one. A rejected submission changes nothing. This module never imports torch.
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import io
import json
import math
import os
import re
import stat as _stat
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from icrl_bench.errors import IcrlBenchError, UnknownIdError
from icrl_bench.eval import metrics, scoring
from icrl_bench.eval.agents import REFERENCE_DESCRIPTIONS
from icrl_bench.eval.protocols import PROTOCOLS, setting
from icrl_bench.eval.results import (
    MAX_RESULT_BYTES,
    READABLE_VERSIONS,
    RESULT_SCHEMAS,
    atomic_write,
    canonical_array,
    config_sha256,
    is_reference,
    result_id,
    upgrade,
)
from icrl_bench.eval.scoring import success_source
from icrl_bench.registry import FamilySpec, family, reference_returns, return_bounds, tasks
from icrl_bench.tasks import split_hash

#: metrics with aggregates in every row (empty where a family does not define them)
METRICS = ("normalized_final", "nauc", "final_return", "regret", "success_rate")
_STATS = ("mean", "mean_low", "mean_high", "iqm", "iqm_low", "iqm_high")
COLUMNS: tuple[str, ...] = (
    "method",
    "method_version",
    "result_id",
    "superseded_by",
    "headline",
    "runs",
    "seeds",
    "tasks",
    "episodes",
    *(f"{m}_{s}" for m in METRICS for s in _STATS),
    "dataset",
    "dataset_sha256",
    "config_sha256",
    "git_sha",
    "date",
    "notes",
)
#: the environment variable that moves the leaderboard directory (default ``./leaderboards``)
DIR_ENV = "ICRL_BENCH_LEADERBOARD_DIR"
#: relative tolerance for claimed aggregates: ``|claimed - recomputed| <= tol * (1 + |recomputed|)``
CLAIM_TOLERANCE = 1e-6
#: how far (in reward standard deviations, scaled by sqrt(horizon)) a bandit's sampled return
#: may lie from the expected return of its recorded pulls
BANDIT_RETURN_SIGMAS = 8
#: how the notes of a result of partial training runs begin (``icrl-bench evaluate
#: --allow-partial`` writes them; the table's ``runs`` cell then says ``partial``)
PARTIAL_NOTE = "partial training"
#: the longest ``notes`` a result may carry (the results schema's limit) and a table shows
MAX_NOTES_CHARS = 500
#: the deepest JSON nesting a results file may have (the schema itself needs 6 levels)
MAX_JSON_DEPTH = 64
#: how far in the future (clock skew) a result's ``provenance.created`` may lie
CREATED_SKEW = _dt.timedelta(minutes=10)
#: returns that agree within this (relative and absolute) are the same numbers
DUPLICATE_TOLERANCE = 1e-9
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
#: Unicode categories no string of a result may contain: control (C0, C1, DEL), format (bidi
#: overrides, zero-width characters), line and paragraph separators, surrogates
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_CREATED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$")
_JSON_STRING_RE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_METHOD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,31}$")
_DATASET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+/-]{0,127}$")
_ALLOWED = {
    _METHOD_RE.pattern: "_.+-",
    _VERSION_RE.pattern: "_.+-",
    _DATASET_RE.pattern: "_.+/-",
}


class SubmissionError(IcrlBenchError):
    """A results file the leaderboard refuses; ``field`` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid submission: field {field!r}: {problem}")
        self.field = field


class AlreadySubmitted(SubmissionError):
    """The result is already a row of its track (same ``result_id``): submitting is idempotent
    for callers that retry, such as a resumed suite."""

    def __init__(self, result_id: str, track: str) -> None:
        super().__init__("result_id", f"{result_id} is already on {track}")
        self.result_id = result_id
        self.track = track


def leaderboard_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The leaderboard directory: ``path``, else ``$ICRL_BENCH_LEADERBOARD_DIR``, else
    ``./leaderboards``."""
    return Path(path or os.environ.get(DIR_ENV) or "leaderboards")


def track_name(env_id: str, protocol_id: str) -> str:
    """The track of a family under a protocol, e.g. ``DarkRoom-v0__online-v1``."""
    return f"{family(env_id).name}__{protocol_id}"


# -- validation ---------------------------------------------------------------------------------
#: rows with fewer independent training runs than this are flagged in the rendered tables
MIN_RUNS = 3


@dataclass(frozen=True)
class Validated:
    """A results file that passed every check, with the arrays and the scores recomputed.

    Attributes:
        doc: the document as submitted (stored as it is, so a stored file resubmits to the same
            row).
        result: the document in the current schema's shape (:func:`upgrade`).
        spec: its family.
        returns: ``[runs, seeds, tasks, episodes]`` (a reference agent: one leading row).
        actions: bandits: ``[runs, seeds, tasks, horizon]``.
        success: shaped as ``returns``, where the family defines success.
        reference: a reference agent (not trained): its evaluation seeds are its runs.
        runs: independent runs behind the aggregates (a reference agent's evaluation seeds).
        summary: every metric, recomputed.
        result_id: the content id.
        track: ``<Family>__<protocol>``.
    """

    doc: dict[str, Any]
    result: dict[str, Any]
    spec: FamilySpec
    returns: np.ndarray
    actions: np.ndarray | None
    success: np.ndarray | None
    reference: bool
    runs: int
    summary: dict[str, Any]
    result_id: str
    track: str


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results file, refusing what is not a small regular file of plain JSON.

    The file is opened without blocking (a FIFO never hangs the reader) and its type and size
    are taken from the open descriptor, so a symlink to a device or a file that grows after a
    size check is refused; at most ``MAX_RESULT_BYTES + 1`` bytes are ever read, before or after
    gzip decompression. The JSON must be UTF-8 and nest at most :data:`MAX_JSON_DEPTH` levels.
    Nothing else is checked (see :func:`validate`).

    Raises:
        SubmissionError: naming ``file`` (or ``(root)`` when the JSON is not an object).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise SubmissionError("file", f"cannot read {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not _stat.S_ISREG(info.st_mode):
            raise SubmissionError("file", f"{path} is not a regular file")
        if info.st_size > MAX_RESULT_BYTES:
            raise SubmissionError(
                "file", f"{info.st_size} bytes is over the {MAX_RESULT_BYTES}-byte limit"
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(MAX_RESULT_BYTES + 1)
    except OSError as exc:
        raise SubmissionError("file", f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_RESULT_BYTES:  # it grew after the check
        raise SubmissionError("file", f"over the {MAX_RESULT_BYTES}-byte limit")
    if raw[:2] == b"\x1f\x8b":
        # stream at most one byte past the limit: a small bomb never expands in memory
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                raw = gz.read(MAX_RESULT_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise SubmissionError("file", f"not a valid gzip file ({exc})") from None
        if len(raw) > MAX_RESULT_BYTES:
            raise SubmissionError("file", f"decompresses to over {MAX_RESULT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError("file", "not UTF-8 text") from None
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise SubmissionError(
            "file", f"JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH} are allowed"
        )
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise SubmissionError("file", f"not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(doc, dict):
        raise SubmissionError("(root)", "a result must be a JSON object")
    return doc


def json_depth(raw: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not
    count), found without parsing it: a vectorised count over the bytes."""
    body = np.frombuffer(_JSON_STRING_RE.sub(b'""', raw), dtype=np.uint8)
    opens = (body == ord("[")) | (body == ord("{"))
    closes = (body == ord("]")) | (body == ord("}"))
    level = np.cumsum(opens.astype(np.int64) - closes.astype(np.int64))
    return int(level.max(initial=0))


def _check_strings(node: Any, where: str = "") -> None:
    """Refuse control, format (bidi, zero-width), separator and surrogate characters in every
    key and string of a document (its numeric arrays are checked by :func:`_array`)."""
    stack: list[tuple[Any, str]] = [(node, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                here = f"{at}.{key}" if at else str(key)
                if not at and key in ("returns", "actions", "success"):
                    continue
                stack.append((key, here))
                stack.append((value, here))
        elif isinstance(item, list):
            stack.extend((value, f"{at}.{i}") for i, value in enumerate(item))
        elif isinstance(item, str):
            bad = next((c for c in item if unicodedata.category(c) in _FORBIDDEN_CATEGORIES), None)
            if bad is not None:
                raise SubmissionError(
                    at or "(root)",
                    f"contains the character U+{ord(bad):04X} "
                    f"({unicodedata.category(bad)}: control, format or separator)",
                )


def reference_name_canonical(name: str) -> str:
    """A name as it reads: case-folded, NFKC-normalised, without spaces, ``_``, ``-`` or ``.``
    (``" Random"``, ``"RANDOM"`` and ``"ran-dom"`` all read as ``"random"``)."""
    return re.sub(r"[\s_.\-]+", "", unicodedata.normalize("NFKC", name).casefold())


def _check_method_name(method: str) -> None:
    _check_text("method", method, _METHOD_RE)
    canonical = reference_name_canonical(method)
    for name in REFERENCE_DESCRIPTIONS:
        if canonical == reference_name_canonical(name) and method != name:
            raise SubmissionError(
                "method", f"{method!r} is reserved: it reads as the reference agent {name!r}"
            )


def _check_created(created: str) -> None:
    """``provenance.created`` is an ISO 8601 extended date-time, not in the future."""
    if not _CREATED_RE.match(created):
        raise SubmissionError(
            "provenance.created", f"{created!r} is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SS)"
        )
    try:
        when = _dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise SubmissionError("provenance.created", f"{created!r} is not a valid date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    if when > _dt.datetime.now(_dt.UTC) + CREATED_SKEW:
        raise SubmissionError("provenance.created", f"{created} is in the future")


def _schema_error(err: ValidationError) -> SubmissionError:
    path = ".".join(str(p) for p in err.absolute_path)
    instance = err.instance
    if err.validator == "required" and isinstance(instance, dict):
        missing = [k for k in err.validator_value if k not in instance]
        name = f"{path}.{missing[0]}" if path else missing[0]
        return SubmissionError(name, "required field is missing")
    if err.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(err.schema.get("properties", {}))
        patterns = [re.compile(p) for p in err.schema.get("patternProperties", {})]
        extra = sorted(
            k for k in instance if k not in known and not any(p.search(k) for p in patterns)
        )
        name = f"{path}.{extra[0]}" if path else extra[0]
        return SubmissionError(name, "unknown field")
    return SubmissionError(path or "(root)", err.message[:200])


def _array(doc: Mapping[str, Any], name: str, dtype: Any) -> np.ndarray:
    try:
        arr = np.asarray(doc[name], dtype=dtype)
    except OverflowError:
        raise SubmissionError(name, "a value is too large") from None
    except (ValueError, TypeError):
        raise SubmissionError(name, "ragged or non-numeric array") from None
    if arr.ndim != 4:
        raise SubmissionError(
            name, f"expected a [runs, seeds, tasks, ...] array, got {arr.ndim} dims"
        )
    if not np.isfinite(arr).all():
        raise SubmissionError(name, "contains NaN or infinite values")
    return arr


def _check_text(name: str, value: str, pattern: re.Pattern[str] | None) -> None:
    if value.lstrip()[:1] in _FORMULA and value.strip():
        raise SubmissionError(name, f"must not start with {value.lstrip()[0]!r} (CSV formula)")
    if pattern is not None and (not pattern.match(value) or ".." in value):
        allowed = _ALLOWED.get(pattern.pattern, "_.+-")
        raise SubmissionError(name, f"{value!r} is not a plain name (letters, digits, {allowed})")


def validate(doc: Mapping[str, Any]) -> Validated:
    """Check a results document against its schema and the registry; recompute its scores.

    Files of every version in ``READABLE_VERSIONS`` are read; older ones are checked against
    their own schema, then upgraded (:func:`icrl_bench.eval.results.upgrade`).

    Raises:
        SubmissionError: naming the first offending field.
    """
    version = doc.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        if "schema_version" not in doc:
            raise SubmissionError("schema_version", "required field is missing")
        raise SubmissionError(
            "schema_version",
            f"{version!r} is not supported (readable: "
            f"{', '.join(str(v) for v in READABLE_VERSIONS)})",
        )
    errors = sorted(
        Draft202012Validator(RESULT_SCHEMAS[int(version)]).iter_errors(doc),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        raise _schema_error(errors[0])
    _check_strings(doc)
    original = dict(doc)
    try:
        if config_sha256(doc["config"]) != doc["config_sha256"]:
            raise SubmissionError("config_sha256", "does not match the config")
    except (ValueError, OverflowError):
        raise SubmissionError("config", "contains NaN, infinite or oversized numbers") from None
    doc = upgrade(doc)
    try:
        spec = family(doc["env_id"])
    except UnknownIdError as exc:
        raise SubmissionError("env_id", str(exc)) from None
    if doc["env_id"] != spec.env_id:
        raise SubmissionError("env_id", f"write the full id {spec.env_id!r}")
    if doc["protocol"] not in PROTOCOLS:
        raise SubmissionError(
            "protocol", f"unknown protocol {doc['protocol']!r}; known: {', '.join(PROTOCOLS)}"
        )
    st = setting(spec.name, doc["protocol"])
    _check_method_name(doc["method"])
    partial = isinstance(doc["config"], dict) and "partial" in doc["config"]
    if partial and not doc.get("notes", "").startswith(PARTIAL_NOTE):
        raise SubmissionError(
            "notes",
            f"a result of partial training runs (config.partial) must say so: its notes start "
            f"with {PARTIAL_NOTE!r}",
        )
    _check_text("method_version", doc["method_version"], _VERSION_RE)
    _check_text("notes", doc.get("notes", ""), None)
    for i, ds in enumerate([doc["dataset"] or {}, *doc["prompt_datasets"]]):
        if ds:
            name = "dataset.id" if i == 0 else f"prompt_datasets.{i - 1}.id"
            _check_text(name, ds["id"], _DATASET_RE)

    test = tasks(spec.name).test
    if doc["tasks"]["split"] != "test":
        raise SubmissionError("tasks.split", "leaderboards evaluate on the test split only")
    if doc["tasks"]["count"] != len(test):
        raise SubmissionError(
            "tasks.count", f"{doc['tasks']['count']} tasks; the test split has {len(test)}"
        )
    if doc["tasks"]["sha256"] != split_hash(test):
        raise SubmissionError("tasks.sha256", "the task set is not the official test split")

    seeds = doc["seeds"]
    if len(set(seeds)) != len(seeds):
        raise SubmissionError("seeds", "duplicate seeds")
    if len(seeds) < st.min_seeds:
        raise SubmissionError(
            "seeds", f"{len(seeds)} seeds; {doc['protocol']} needs at least {st.min_seeds}"
        )
    reference = _check_runs(doc)
    n_runs = 1 if reference else len(doc["runs"])

    returns = _array(doc, "returns", np.float64)
    expected = (n_runs, len(seeds), len(test), st.episodes)
    if returns.shape != expected:
        raise SubmissionError(
            "returns",
            f"shape {list(returns.shape)}, expected [runs, seeds, tasks, episodes] = "
            f"{list(expected)}",
        )
    bandit = scoring.is_bandit(spec.name)
    if not bandit:
        low, high, why = return_bounds(spec)
        if (returns < low - 1e-9).any() or (returns > high + 1e-6).any():
            raise SubmissionError("returns", f"a return lies outside {why}")

    actions = None
    if bandit:
        if doc.get("actions") is None:
            raise SubmissionError("actions", f"{spec.name} results must record the pulled arms")
        actions = _array(doc, "actions", np.int64)
        if actions.shape != (*expected[:3], spec.horizon):
            raise SubmissionError(
                "actions",
                f"shape {list(actions.shape)}, expected {[*expected[:3], spec.horizon]}",
            )
        try:
            _, expected_return = scoring.bandit_scores(spec.name, actions)
        except ValueError as exc:
            raise SubmissionError("actions", str(exc)) from None
        # the sampled returns must be what those pulls could plausibly have earned
        band = BANDIT_RETURN_SIGMAS * scoring.reward_std_bound(spec.name) * spec.horizon**0.5
        if (np.abs(returns - expected_return) > band + 1e-6).any():
            raise SubmissionError(
                "returns",
                f"a return is more than {BANDIT_RETURN_SIGMAS} standard deviations from the "
                "expected return of the recorded pulls",
            )
    elif doc.get("actions") is not None:
        raise SubmissionError("actions", f"{spec.name} is not a bandit family")

    success = None
    if success_source(spec.name) is not None:
        if doc.get("success") is None:
            raise SubmissionError("success", f"{spec.name} results must record success")
        success = _array(doc, "success", np.float64)
        if success.shape != returns.shape:
            raise SubmissionError("success", "shape differs from returns")
        if not np.isin(success, (0.0, 1.0)).all():
            raise SubmissionError("success", "values must be 0 or 1")
    elif doc.get("success") is not None:
        raise SubmissionError("success", f"{spec.name} does not define success")

    _check_prompts(doc, spec, st.prompt_variant)
    _check_created(doc["provenance"]["created"])

    summary = scoring.score(spec.name, returns, actions, success, seeds_are_runs=reference)
    _check_claims(doc.get("aggregates") or {}, summary)
    # a schema-1 file keeps the id it always had; a reference agent's has no training seeds
    legacy = original["schema_version"] == 1
    train_seeds = None if reference or legacy else [r["train_seed"] for r in doc["runs"]]
    return Validated(
        doc=original,
        result=doc,
        spec=spec,
        returns=returns,
        actions=actions,
        success=success,
        reference=reference,
        runs=len(seeds) if reference else n_runs,
        summary=summary,
        result_id=result_id(
            doc["method"],
            doc["method_version"],
            spec.env_id,
            doc["protocol"],
            seeds,
            # bandits are scored from their pulls alone: sampled returns do not make a new result
            None if bandit else returns,
            actions,
            train_seeds=train_seeds,
        ),
        track=track_name(spec.name, doc["protocol"]),
    )


def _check_runs(doc: Mapping[str, Any]) -> bool:
    """Check a (current-shape) document's training runs; return whether it is a reference
    agent's (``runs: null``: not trained, its evaluation seeds are its runs)."""
    runs = doc["runs"]
    method = doc["method"]
    if runs is None:
        if not is_reference(method):
            raise SubmissionError(
                "runs",
                "a learned method's result lists its training runs (null is for the reference "
                f"agents {', '.join(REFERENCE_DESCRIPTIONS)}, which are not trained)",
            )
        return True
    if is_reference(method):
        raise SubmissionError(
            "runs", f"{method!r} is a reference agent, which is not trained: runs must be null"
        )
    seen: set[int] = set()
    dataset_sha = (doc["dataset"] or {}).get("sha256")
    for i, run in enumerate(runs):
        if run["train_seed"] in seen:
            raise SubmissionError(
                f"runs.{i}.train_seed",
                f"training seed {run['train_seed']} is repeated: the runs of a result are "
                "independent training runs, one per seed",
            )
        seen.add(run["train_seed"])
        if run["config_sha256"] != doc["config_sha256"]:
            raise SubmissionError(
                f"runs.{i}.config_sha256",
                "differs from config_sha256: the runs of one result share one config",
            )
        if run["dataset_sha256"] != dataset_sha:
            raise SubmissionError(
                f"runs.{i}.dataset_sha256",
                "differs from dataset.sha256: the runs of one result share one dataset",
            )
    return False


def _check_prompts(doc: Mapping[str, Any], spec: FamilySpec, variant: str | None) -> None:
    prompts = doc["prompt_datasets"]
    if variant is None:
        if prompts:
            raise SubmissionError("prompt_datasets", f"{doc['protocol']} takes no prompt")
        return
    if len(prompts) != len(doc["seeds"]):
        raise SubmissionError("prompt_datasets", "one prompt dataset per seed is required")
    for i, (seed, ds) in enumerate(zip(doc["seeds"], prompts, strict=True)):
        want = re.compile(rf"^{re.escape(spec.name)}/{re.escape(variant)}-v\d+/prompt-seed{seed}$")
        if not want.match(ds["id"]):
            raise SubmissionError(
                f"prompt_datasets.{i}.id",
                f"{ds['id']!r} is not the protocol's prompt dataset for seed {seed}",
            )


def _check_claims(claims: Mapping[str, Mapping[str, float]], summary: Mapping[str, Any]) -> None:
    for name, stats in claims.items():
        if name not in summary:
            raise SubmissionError(f"aggregates.{name}", "this family does not define the metric")
        for stat, value in stats.items():
            actual = summary[name][stat]
            try:
                ok = math.isfinite(value) and abs(value - actual) <= CLAIM_TOLERANCE * (
                    1 + abs(actual)
                )
            except OverflowError:
                ok = False
            if not ok:
                raise SubmissionError(
                    f"aggregates.{name}.{stat}",
                    f"claimed {value!r}, recomputed from the raw data {actual!r}",
                )


# -- submission -----------------------------------------------------------------------------------
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
def escape_cell(text: str) -> str:
    """A CSV cell made safe for a Markdown table: no formula prefix, no markup, no pipes."""
    text = " ".join(str(text).split())
    if text[:1] in _FORMULA:
        text = "'" + text
    for ch in "\\`*_[]<>|#!":
        text = text.replace(ch, "\\" + ch)
    return text


def escape_notes(text: str) -> str:
    """Free-text notes for a Markdown table cell: NFC, one line, at most
    :data:`MAX_NOTES_CHARS` characters, inside a code span (no links, mentions, emphasis,
    strikethrough or math can form in it) with its pipes escaped for the table."""
    text = " ".join(unicodedata.normalize("NFC", str(text)).split())
    text = "".join(c for c in text if unicodedata.category(c) not in _FORBIDDEN_CATEGORIES)
    if len(text) > MAX_NOTES_CHARS:
        text = text[: MAX_NOTES_CHARS - 1] + "\u2026"
    if not text:
        return ""
    text = re.sub(r"\\*\|", r"\\|", text)
    fence = "`" * (1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence} {text} {fence}"


def _sort_key(row: Mapping[str, str]) -> float:
    headline = row.get("headline", "")
    column = f"{headline}_iqm" if headline != "regret" else "regret_mean"
    try:
        value = float(row[column])
    except (KeyError, ValueError):
        return math.inf
    return value if headline == "regret" else -value


def _fmt(row: Mapping[str, str], metric: str, stat: str) -> str:
    point = row.get(f"{metric}_{stat}", "")
    if not point:
        return ""
    if not is_reference_row(row) and _runs(row) < 2:
        return f"{float(point):.3f} [1 run]"  # no variation between runs to bound
    low, high = row.get(f"{metric}_{stat}_low", ""), row.get(f"{metric}_{stat}_high", "")
    return f"{float(point):.3f} [{float(low):.3f}, {float(high):.3f}]"


def _runs(row: Mapping[str, str]) -> int:
    try:
        return int(row.get("runs") or 0)
    except ValueError:
        return 0


def _runs_cell(row: Mapping[str, str]) -> str:
    if is_reference_row(row):
        return f"{row.get('runs', '')} (seeds)"
    runs = _runs(row)
    cell = f"{runs} ⚠" if runs < MIN_RUNS else str(runs)
    return f"{cell} partial" if row.get("notes", "").startswith(PARTIAL_NOTE) else cell


def current_rows(rows: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    """One row per method (see :func:`mark_current`), best first by the track's headline."""
    return sorted((r for r in rows if not r.get("superseded_by")), key=_sort_key)


def best_reference(rows: Sequence[Mapping[str, str]]) -> Mapping[str, str] | None:
    """The best current reference row other than the oracle (the baseline a learned method has
    to beat), or ``None`` when the track has none."""
    refs = [r for r in current_rows(rows) if is_reference_row(r) and r["method"] != "oracle"]
    return refs[0] if refs else None


def _headline_runs(root: Path, track: str, row: Mapping[str, str]) -> np.ndarray | None:
    """A row's per-run headline scores ``[runs, tasks]`` from its stored result."""
    doc = stored_result(root, track, row["result_id"])
    if doc is None:
        return None
    return scoring.headline_scores(
        doc["env_id"],
        doc["protocol"],
        np.asarray(doc["returns"], dtype=np.float64),
        None if doc.get("actions") is None else np.asarray(doc["actions"]),
        seeds_are_runs=doc["runs"] is None,
    )


def improvement_over_reference(
    root: Path, track: str, rows: Sequence[Mapping[str, str]]
) -> tuple[str, dict[str, tuple[float, float, float]]]:
    """rliable's probability of improvement of every current learned row over the track's best
    non-oracle reference agent, on the headline metric, with its 95% CI.

    Returns:
        The reference's method name ("" when the track has none) and ``result_id -> (p, low,
        high)`` for the learned rows whose results are stored.
    """
    ref = best_reference(rows)
    if ref is None:
        return "", {}
    ref_scores = _headline_runs(root, track, ref)
    if ref_scores is None:
        return ref["method"], {}
    out = {}
    for r in current_rows(rows):
        if is_reference_row(r):
            continue
        scores = _headline_runs(root, track, r)
        if scores is not None:
            out[r["result_id"]] = metrics.probability_of_improvement_ci(scores, ref_scores)
    return ref["method"], out


def render_track(
    name: str,
    rows: Sequence[Mapping[str, str]],
    improvement: tuple[str, Mapping[str, tuple[float, float, float]]] = ("", {}),
) -> str:
    """One track as a Markdown table: its current row per method, best first by its headline
    metric, with the probability of improvement over the best non-oracle reference agent.

    Args:
        name: the track.
        rows: every row of its CSV (superseded ones are counted, not listed).
        improvement: :func:`improvement_over_reference`'s result.
    """
    shown = current_rows(rows)
    headline = shown[0]["headline"] if shown else ""
    cols = ["#", "method", "runs"]
    metric_cols: list[tuple[str, str, str]] = []
    if headline == "regret":
        metric_cols += [("cumulative regret (mean)", "regret", "mean")]
        metric_cols += [("regret (IQM)", "regret", "iqm")]
        metric_cols += [("normalized return (IQM)", "normalized_final", "iqm")]
    else:
        metric_cols += [("normalized final (IQM)", "normalized_final", "iqm")]
        metric_cols += [("normalized final (mean)", "normalized_final", "mean")]
        metric_cols += [("NAUC (IQM)", "nauc", "iqm")]
        if any(r.get("success_rate_mean") for r in shown):
            metric_cols += [("success rate (mean)", "success_rate", "mean")]
    ref_name, poi = improvement
    cols += [c[0] for c in metric_cols]
    if ref_name:
        cols.append(f"P(improvement over {escape_cell(ref_name)})")
    cols += ["eval seeds x tasks x E", "dataset", "date", "result", "notes"]
    lines = [f"### {escape_cell(name)}", "", "| " + " | ".join(cols) + " |"]
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for i, r in enumerate(shown, 1):
        cells = [str(i), escape_cell(f"{r['method']} v{r['method_version']}"), _runs_cell(r)]
        cells += [_fmt(r, m, s) for _, m, s in metric_cols]
        if ref_name:
            p = poi.get(r["result_id"])
            cells.append("" if p is None else f"{p[0]:.2f} [{p[1]:.2f}, {p[2]:.2f}]")
        notes = (  # a reference agent's row shows what the agent is, not its notes
            escape_cell(REFERENCE_DESCRIPTIONS[r["method"]])
            if is_reference_row(r)
            else escape_notes(r["notes"])
        )
        cells += [f"{r['seeds']} x {r['tasks']} x {r['episodes']}", escape_cell(r["dataset"])]
        cells += [escape_cell(r["date"]), escape_cell(r["result_id"]), notes]
        lines.append("| " + " | ".join(cells) + " |")
    superseded = len(rows) - len(shown)
    lines += [
        "",
        f"History: {len(rows)} rows in [{escape_cell(name)}.csv]({name}.csv), {superseded} "
        "superseded.",
    ]
    return "\n".join(lines) + "\n"


def _curves(root: Path, track: str, rows: Sequence[Mapping[str, str]]) -> dict[str, np.ndarray]:
    """Per-run curves of the current rows' stored results, ``[runs, tasks, points]`` each:
    normalised return per episode, or cumulative regret per pull for bandits."""
    out: dict[str, np.ndarray] = {}
    for r in current_rows(rows):
        doc = stored_result(root, track, r["result_id"])
        if doc is None:
            continue
        label = f"{r['method']} v{r['method_version']}"
        reference = doc["runs"] is None
        if scoring.is_bandit(doc["env_id"]):
            regret, _ = scoring.bandit_scores(doc["env_id"], np.asarray(doc["actions"]))
            out[label] = metrics.per_run(np.cumsum(regret, axis=-1), reference)
        else:
            ref = reference_returns(doc["env_id"])
            returns = np.asarray(doc["returns"], dtype=np.float64)
            norm = metrics.normalized(returns, ref["random"], ref["oracle"])
            out[label] = metrics.per_run(norm, reference)
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_track(root: Path, track: str, rows: Sequence[Mapping[str, str]], out: Path) -> Path | None:
    """PNG of a track's in-context learning curves (one per method, its current row) with 95%
    stratified-bootstrap bands over runs x tasks."""
    curves = _curves(root, track, rows)
    if not curves:
        return None
    plt = _pyplot()
    bandit = rows[0]["headline"] == "regret"
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for label, runs in curves.items():
        mean, low, high = metrics.curve_with_ci(runs)
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, label=label)
        ax.fill_between(x, low, high, alpha=0.25)
    ax.set_xlabel("pull" if bandit else "episode in context")
    ax.set_ylabel("cumulative regret" if bandit else "normalized return")
    ax.set_title(f"{track} (mean over runs x tasks, 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)
    return out


#: thresholds of the performance profiles (normalised final score)
PROFILE_TAUS = np.linspace(-0.25, 1.25, 61)


def profile_scores(
    root: Path, tracks: Mapping[str, Sequence[Mapping[str, str]]]
) -> dict[str, list[np.ndarray]]:
    """Per-run normalised final scores ``[runs, tasks]`` of every method's current row, one
    matrix per track it is on (tracks with no learned method are left out)."""
    out: dict[str, list[np.ndarray]] = {}
    for track, rows in tracks.items():
        shown = current_rows(rows)
        if all(is_reference_row(r) for r in shown):
            continue
        for r in shown:
            doc = stored_result(root, track, r["result_id"])
            if doc is None:
                continue
            scores = scoring.normalized_scores(
                doc["env_id"],
                np.asarray(doc["returns"], dtype=np.float64),
                None if doc.get("actions") is None else np.asarray(doc["actions"]),
                seeds_are_runs=doc["runs"] is None,
            )
            out.setdefault(r["method"], []).append(scores)
    return out


def plot_profile(
    root: Path, group: str, tracks: Mapping[str, Sequence[Mapping[str, str]]], out: Path
) -> Path | None:
    """PNG of the performance profiles of a group of tracks (rliable): for every method, the
    fraction of runs x tasks whose normalised final score exceeds tau, averaged over the tracks
    it is on (each track weighs the same), with a 95% stratified-bootstrap band."""
    scores = profile_scores(root, tracks)
    if not scores:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 4.2), dpi=110)
    colors = plt.get_cmap("tab20").colors
    for i, (method, mats) in enumerate(sorted(scores.items())):
        prof, low, high = metrics.performance_profile(mats, PROFILE_TAUS)
        color = colors[(2 * i) % 20 + (2 * i) // 20 % 2]
        style = "--" if is_reference(method) else "-"  # reference agents dashed
        label = f"{method} ({len(mats)} track{'s' if len(mats) != 1 else ''})"
        ax.plot(PROFILE_TAUS, prof, style, color=color, label=label)
        ax.fill_between(PROFILE_TAUS, low, high, color=color, alpha=0.2)
    ax.set_xlabel("normalized final score (tau)")
    ax.set_ylabel("fraction of runs x tasks with score > tau")
    ax.set_title(f"{group} tracks with a learned method: performance profiles, 95% CI")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)
    return out


def render(
    directory: str | os.PathLike[str] | None = None,
    plots_dir: str | os.PathLike[str] | None = None,
    plots: bool = True,
) -> Path:
    """Regenerate ``<dir>/README.md`` (one table per track, one row per method) and the PNG
    plots (learning curves per track, performance profiles per group of tracks).

    Args:
        directory: the leaderboard directory.
        plots_dir: where the PNGs go (default ``<dir>/../docs/leaderboard``).
        plots: draw the plots (tables only when false).

    Returns:
        The path of the rendered README.
    """
    root = leaderboard_dir(directory)
    plots_path = Path(plots_dir) if plots_dir else root.resolve().parent / "docs" / "leaderboard"
    tracks = {p.stem: read_track(p) for p in sorted(root.glob("*__*.csv"))}
    tracks = {t: rows for t, rows in tracks.items() if rows}
    parts = [
        "# icrl-bench leaderboards",
        "",
        "Generated by `icrl-bench leaderboard render` from the CSVs in this directory; do not "
        "edit by hand. Each track is one family under one protocol (docs/protocols.md). A "
        "track shows one row per method, its current result: the one with the most runs, then "
        "the latest; every earlier row stays in the track's CSV, linked under its table. Rows "
        "are sorted by the track's headline metric. Every aggregate was recomputed at "
        "submission from the raw returns (bandits: from the pulled arms and the test tasks' "
        "arm means), with 95% stratified-bootstrap confidence intervals over independent "
        "training runs x tasks (rliable); a learned method's evaluation seeds are averaged "
        "within each run, and a reference agent, which is not trained, counts its evaluation "
        f"seeds as runs. ⚠ marks a learned method with fewer than {MIN_RUNS} training runs; "
        "with one run there is no interval (`[1 run]`). P(improvement over X) is rliable's "
        "probability that a run of the method beats a run of X, the track's best reference "
        "agent other than the oracle, on a random test task (headline metric, 95% CI). The "
        "schema and the rules are in [docs/leaderboard.md](../docs/leaderboard.md), and every "
        "change to them in [docs/CHANGELOG.md](../docs/CHANGELOG.md).",
        "",
    ]
    if plots:
        for group in ("discrete", "continuous"):
            members = {t: r for t, r in tracks.items() if family(t.split("__")[0]).group == group}
            png = plot_profile(root, group, members, plots_path / f"profile-{group}.png")
            if png is not None:
                rel = os.path.relpath(png, root.resolve())
                parts.append(f"![performance profiles of the {group} tracks]({rel})\n")
    for track, rows in tracks.items():
        parts.append(render_track(track, rows, improvement_over_reference(root, track, rows)))
        if plots:
            png = plot_track(root, track, rows, plots_path / f"{track}.png")
            if png is not None:
                rel = os.path.relpath(png, root.resolve())
                parts.append(f"![{track} learning curves]({rel})\n")
    readme = root / "README.md"
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(readme, "\n".join(parts).encode("utf-8"))
    return readme
