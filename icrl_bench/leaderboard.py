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
from icrl_bench.eval.protocols import PROTOCOLS, setting
from icrl_bench.eval.results import (
    MAX_RESULT_BYTES,
    RESULT_SCHEMA,
    SCHEMA_VERSION,
    atomic_write,
    config_sha256,
    result_id,
)
from icrl_bench.eval.scoring import success_source
from icrl_bench.registry import FamilySpec, family, reference_returns, tasks
from icrl_bench.tasks import split_hash

#: metrics with aggregates in every row (empty where a family does not define them)
METRICS = ("normalized_final", "nauc", "final_return", "regret", "success_rate")
_STATS = ("mean", "mean_low", "mean_high", "iqm", "iqm_low", "iqm_high")
COLUMNS: tuple[str, ...] = (
    "method",
    "method_version",
    "result_id",
    "headline",
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
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_METHOD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+() -]{0,63}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,31}$")
_DATASET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+/-]{0,127}$")
_ALLOWED = {
    _METHOD_RE.pattern: "spaces and _.+()-",
    _VERSION_RE.pattern: "_.+-",
    _DATASET_RE.pattern: "_.+/-",
}


class SubmissionError(IcrlBenchError):
    """A results file the leaderboard refuses; ``field`` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid submission: field {field!r}: {problem}")
        self.field = field


def leaderboard_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The leaderboard directory: ``path``, else ``$ICRL_BENCH_LEADERBOARD_DIR``, else
    ``./leaderboards``."""
    return Path(path or os.environ.get(DIR_ENV) or "leaderboards")


def track_name(env_id: str, protocol_id: str) -> str:
    """The track of a family under a protocol, e.g. ``DarkRoom-v0__online-v1``."""
    return f"{family(env_id).name}__{protocol_id}"


# -- validation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Validated:
    """A results file that passed every check, with the arrays and the scores recomputed."""

    doc: dict[str, Any]
    spec: FamilySpec
    returns: np.ndarray  # [seeds, tasks, episodes]
    actions: np.ndarray | None  # bandits: [seeds, tasks, horizon]
    success: np.ndarray | None  # [seeds, tasks, episodes]
    summary: dict[str, Any]
    result_id: str
    track: str


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results file, refusing oversized or unparsable ones (nothing else is checked)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SubmissionError("file", f"cannot read {path}: {exc.strerror}") from None
    if size > MAX_RESULT_BYTES:
        raise SubmissionError("file", f"{size} bytes is over the {MAX_RESULT_BYTES}-byte limit")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        # stream at most one byte past the limit: a small bomb never expands in memory
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                raw = f.read(MAX_RESULT_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise SubmissionError("file", f"not a valid gzip file ({exc})") from None
        if len(raw) > MAX_RESULT_BYTES:
            raise SubmissionError("file", f"decompresses to over {MAX_RESULT_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError("file", f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SubmissionError("(root)", "a result must be a JSON object")
    return doc


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
    if arr.ndim != 3:
        raise SubmissionError(name, f"expected a [seeds, tasks, ...] array, got {arr.ndim} dims")
    if not np.isfinite(arr).all():
        raise SubmissionError(name, "contains NaN or infinite values")
    return arr


def _check_text(name: str, value: str, pattern: re.Pattern[str] | None) -> None:
    if value.lstrip()[:1] in _FORMULA and value.strip():
        raise SubmissionError(name, f"must not start with {value.lstrip()[0]!r} (CSV formula)")
    if pattern is not None and (not pattern.match(value) or ".." in value):
        allowed = _ALLOWED.get(pattern.pattern, "_.+-")
        raise SubmissionError(name, f"{value!r} is not a plain name (letters, digits, {allowed})")
    if any(ord(c) < 32 for c in value):
        raise SubmissionError(name, "contains control characters")


def _return_bounds(spec: FamilySpec) -> tuple[Any, Any, str]:
    """The returns a family can produce: ``(low, high, description)``, per test task where the
    bound is the (optimal) oracle's return."""
    if spec.kind == "grid":  # non-negative rewards; the oracle is optimal
        oracle = reference_returns(spec.name)["oracle"][None, :, None]
        return 0.0, oracle, "[0, oracle return]"
    if spec.kind == "point":  # -distance per step, at most the farthest reachable; exact oracle
        oracle = reference_returns(spec.name)["oracle"][None, :, None]
        worst = -spec.horizon * np.sqrt(2.0) * (1.0 + 0.1 * spec.horizon)
        return worst, oracle, f"[{worst:.1f}, oracle return]"
    if spec.kind == "metaworld":  # Meta-World's v3 rewards lie in [0, 10] per step
        return 0.0, 10.0 * spec.horizon, f"[0, {10 * spec.horizon}]"
    return -np.inf, np.inf, "the finite numbers"  # MuJoCo: no bound short of the physics


def validate(doc: Mapping[str, Any]) -> Validated:
    """Check a results document against its schema and the registry; recompute its scores.

    Raises:
        SubmissionError: naming the first offending field.
    """
    errors = sorted(
        Draft202012Validator(RESULT_SCHEMA).iter_errors(doc), key=lambda e: list(e.absolute_path)
    )
    if errors:
        raise _schema_error(errors[0])
    doc = dict(doc)
    if doc["schema_version"] != SCHEMA_VERSION:
        raise SubmissionError(
            "schema_version",
            f"{doc['schema_version']} is not supported (expected {SCHEMA_VERSION})",
        )
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
    _check_text("method", doc["method"], _METHOD_RE)
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

    returns = _array(doc, "returns", np.float64)
    expected = (len(seeds), len(test), st.episodes)
    if returns.shape != expected:
        raise SubmissionError(
            "returns",
            f"shape {list(returns.shape)}, expected [seeds, tasks, episodes] = {list(expected)}",
        )
    bandit = scoring.is_bandit(spec.name)
    if not bandit:
        low, high, why = _return_bounds(spec)
        if (returns < low - 1e-9).any() or (returns > high + 1e-6).any():
            raise SubmissionError("returns", f"a return lies outside {why}")

    actions = None
    if bandit:
        if doc.get("actions") is None:
            raise SubmissionError("actions", f"{spec.name} results must record the pulled arms")
        actions = _array(doc, "actions", np.int64)
        if actions.shape != (len(seeds), len(test), spec.horizon):
            raise SubmissionError(
                "actions",
                f"shape {list(actions.shape)}, expected {[len(seeds), len(test), spec.horizon]}",
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
    try:
        config_hash = config_sha256(doc["config"])
    except (ValueError, OverflowError):
        raise SubmissionError("config", "contains NaN, infinite or oversized numbers") from None
    if doc["config_sha256"] != config_hash:
        raise SubmissionError("config_sha256", "does not match the config")
    try:
        _dt.datetime.fromisoformat(doc["provenance"]["created"])
    except ValueError:
        raise SubmissionError("provenance.created", "not an ISO 8601 date-time") from None

    summary = scoring.score(spec.name, returns, actions, success)
    _check_claims(doc.get("aggregates") or {}, summary)
    return Validated(
        doc=doc,
        spec=spec,
        returns=returns,
        actions=actions,
        success=success,
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
        ),
        track=track_name(spec.name, doc["protocol"]),
    )


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
    doc = v.doc
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        method=doc["method"],
        method_version=doc["method_version"],
        result_id=v.result_id,
        headline=setting(v.spec.name, doc["protocol"]).headline,
        seeds=str(len(doc["seeds"])),
        tasks=str(v.returns.shape[1]),
        episodes=str(v.returns.shape[2]),
        dataset=(doc["dataset"] or {}).get("id", ""),
        dataset_sha256=(doc["dataset"] or {}).get("sha256", ""),
        config_sha256=doc["config_sha256"],
        git_sha=doc["provenance"]["git_sha"] or "",
        date=doc["provenance"]["created"][:10],
        notes=doc.get("notes", ""),
    )
    for name in METRICS:
        for stat, value in v.summary.get(name, {}).items():
            row[f"{name}_{stat}"] = f"{value:.6g}"
    return row


def read_track(path: Path) -> list[dict[str, str]]:
    """The rows of a track CSV (empty if it does not exist)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def submit(
    result_path: str | os.PathLike[str],
    directory: str | os.PathLike[str] | None = None,
    validated: Validated | None = None,
) -> tuple[str, dict[str, str]]:
    """Validate a results file and append its row to its track.

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
            raise SubmissionError("result_id", f"{v.result_id} is already on {v.track}")
        row = _row(v)
        stored = root / "results" / v.track / f"{v.result_id}.json.gz"
        stored.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(v.doc, sort_keys=True).encode()
        atomic_write(stored, gzip.compress(body, mtime=0))
        old = csv_path.read_bytes() if csv_path.exists() else b""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        if not old:
            writer.writeheader()
        writer.writerow(row)
        atomic_write(csv_path, old + buf.getvalue().encode("utf-8"))
    return v.track, row


# -- rendering ------------------------------------------------------------------------------------
def escape_cell(text: str) -> str:
    """A CSV cell made safe for a Markdown table: no formula prefix, no markup, no pipes."""
    text = " ".join(str(text).split())
    if text[:1] in _FORMULA:
        text = "'" + text
    for ch in "\\`*_[]<>|#!":
        text = text.replace(ch, "\\" + ch)
    return text


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
    low, high = row.get(f"{metric}_{stat}_low", ""), row.get(f"{metric}_{stat}_high", "")
    return f"{float(point):.3f} [{float(low):.3f}, {float(high):.3f}]"


def render_track(name: str, rows: Sequence[Mapping[str, str]]) -> str:
    """One track as a Markdown table, best first by its headline metric."""
    rows = sorted(rows, key=_sort_key)
    headline = rows[0]["headline"] if rows else ""
    cols = ["#", "method"]
    metric_cols: list[tuple[str, str, str]] = []
    if headline == "regret":
        metric_cols += [("cumulative regret (mean)", "regret", "mean")]
        metric_cols += [("regret (IQM)", "regret", "iqm")]
        metric_cols += [("normalized return (IQM)", "normalized_final", "iqm")]
    else:
        metric_cols += [("normalized final (IQM)", "normalized_final", "iqm")]
        metric_cols += [("normalized final (mean)", "normalized_final", "mean")]
        metric_cols += [("NAUC (IQM)", "nauc", "iqm")]
        if any(r.get("success_rate_mean") for r in rows):
            metric_cols += [("success rate (mean)", "success_rate", "mean")]
    cols += [c[0] for c in metric_cols] + [
        "seeds x tasks x E",
        "dataset",
        "date",
        "result",
        "notes",
    ]
    lines = [f"### {escape_cell(name)}", "", "| " + " | ".join(cols) + " |"]
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for i, r in enumerate(rows, 1):
        cells = [str(i), escape_cell(f"{r['method']} v{r['method_version']}")]
        cells += [_fmt(r, m, s) for _, m, s in metric_cols]
        cells += [f"{r['seeds']} x {r['tasks']} x {r['episodes']}", escape_cell(r["dataset"])]
        cells += [escape_cell(r["date"]), escape_cell(r["result_id"]), escape_cell(r["notes"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _curves(root: Path, track: str, rows: Sequence[Mapping[str, str]]) -> dict[str, np.ndarray]:
    """Per-run curves of every row's stored result: normalised return per episode, or cumulative
    regret per pull for bandits. Each is ``[seeds, tasks, points]``."""
    out: dict[str, np.ndarray] = {}
    for r in rows:
        stored = root / "results" / track / f"{r['result_id']}.json.gz"
        if not stored.exists():
            continue
        # stored results were validated at submission; only the arrays are needed here
        doc = json.loads(gzip.decompress(stored.read_bytes()))
        label = f"{r['method']} v{r['method_version']}"
        if scoring.is_bandit(doc["env_id"]):
            regret, _ = scoring.bandit_scores(doc["env_id"], np.asarray(doc["actions"]))
            out[label] = np.cumsum(regret, axis=2)
        else:
            ref = reference_returns(doc["env_id"])
            returns = np.asarray(doc["returns"], dtype=np.float64)
            out[label] = metrics.normalized(returns, ref["random"], ref["oracle"])
    return out


def plot_track(root: Path, track: str, rows: Sequence[Mapping[str, str]], out: Path) -> Path | None:
    """PNG of a track's in-context learning curves with 95% bootstrap confidence bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = _curves(root, track, rows)
    if not curves:
        return None
    bandit = rows[0]["headline"] == "regret"
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for label, runs in curves.items():
        mean, low, high = metrics.curve_with_ci(runs)
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, label=label)
        ax.fill_between(x, low, high, alpha=0.25)
    ax.set_xlabel("pull" if bandit else "episode in context")
    ax.set_ylabel("cumulative regret" if bandit else "normalized return")
    ax.set_title(f"{track} (mean over seeds x tasks, 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
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
    """Regenerate ``<dir>/README.md`` (one table per track) and the PNG plots.

    Args:
        directory: the leaderboard directory.
        plots_dir: where the PNGs go (default ``<dir>/../docs/leaderboard``).
        plots: draw the plots (tables only when false).

    Returns:
        The path of the rendered README.
    """
    root = leaderboard_dir(directory)
    plots_path = Path(plots_dir) if plots_dir else root.resolve().parent / "docs" / "leaderboard"
    parts = [
        "# icrl-bench leaderboards",
        "",
        "Generated by `icrl-bench leaderboard render` from the CSVs in this directory; do not "
        "edit by hand. Each track is one family under one protocol (docs/protocols.md); rows are "
        "sorted by the track's headline metric. Every aggregate was recomputed at submission "
        "from the raw returns (bandits: from the pulled arms and the test tasks' arm means), "
        "with 95% stratified-bootstrap confidence intervals over seeds "
        "x tasks (rliable). The schema is in docs/leaderboard.md.",
        "",
    ]
    for csv_path in sorted(root.glob("*__*.csv")):
        track = csv_path.stem
        rows = read_track(csv_path)
        if not rows:
            continue
        parts.append(render_track(track, rows))
        if plots:
            png = plot_track(root, track, rows, plots_path / f"{track}.png")
            if png is not None:
                rel = os.path.relpath(png, root.resolve())
                parts.append(f"![{track} learning curves]({rel})\n")
    readme = root / "README.md"
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(readme, "\n".join(parts).encode("utf-8"))
    return readme
