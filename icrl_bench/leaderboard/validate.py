"""Leaderboard submissions, checked: reading a results file safely, its schema, its names and
text, its numbers against the registry, and every aggregate recomputed from its raw data.

A rejected submission raises :class:`SubmissionError` naming the field; nothing is written here
(:mod:`icrl_bench.leaderboard.store` writes). This package never imports torch.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import io
import json
import math
import os
import re
import stat as _stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from icrl_bench.errors import IcrlBenchError, UnknownIdError
from icrl_bench.eval import scoring
from icrl_bench.eval.agents import REFERENCE_DESCRIPTIONS
from icrl_bench.eval.protocols import PROTOCOLS, setting
from icrl_bench.eval.results import (
    MAX_RESULT_BYTES,
    READABLE_VERSIONS,
    RESULT_SCHEMAS,
    config_sha256,
    is_reference,
    result_id,
    upgrade,
)
from icrl_bench.eval.scoring import success_source
from icrl_bench.registry import FamilySpec, family, return_bounds, tasks
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
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Unicode categories no string of a result may contain: control (C0, C1, DEL), format (bidi
#: overrides, zero-width characters), line and paragraph separators, surrogates
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
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
            bad = next((c for c in item if unicodedata.category(c) in FORBIDDEN_CATEGORIES), None)
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
    if value.lstrip()[:1] in FORMULA_PREFIXES and value.strip():
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
