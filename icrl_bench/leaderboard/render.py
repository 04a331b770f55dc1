"""Leaderboard rendering: the Markdown tables of every track (current rows, escaped cells,
probability of improvement over the best reference) and the plots (learning curves per track,
performance profiles per group of tracks)."""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from icrl_bench.eval import metrics, scoring
from icrl_bench.eval.agents import REFERENCE_DESCRIPTIONS
from icrl_bench.eval.results import (
    atomic_write,
    is_reference,
)
from icrl_bench.leaderboard.store import (
    is_reference_row,
    leaderboard_dir,
    read_track,
    stored_result,
)
from icrl_bench.leaderboard.validate import (
    FORBIDDEN_CATEGORIES,
    FORMULA_PREFIXES,
    MAX_NOTES_CHARS,
    MIN_RUNS,
    PARTIAL_NOTE,
)
from icrl_bench.registry import family, reference_returns


def escape_cell(text: str) -> str:
    """A CSV cell made safe for a Markdown table: no formula prefix, no markup, no pipes."""
    text = " ".join(str(text).split())
    if text[:1] in FORMULA_PREFIXES:
        text = "'" + text
    for ch in "\\`*_[]<>|#!":
        text = text.replace(ch, "\\" + ch)
    return text


def escape_notes(text: str) -> str:
    """Free-text notes for a Markdown table cell: NFC, one line, at most
    :data:`MAX_NOTES_CHARS` characters, inside a code span (no links, mentions, emphasis,
    strikethrough or math can form in it) with its pipes escaped for the table."""
    text = " ".join(unicodedata.normalize("NFC", str(text)).split())
    text = "".join(c for c in text if unicodedata.category(c) not in FORBIDDEN_CATEGORIES)
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
    # deferred: matplotlib (about 0.5 s) is only needed when plots are drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_curve(
    ax: Any, label: str, mean: np.ndarray, low: np.ndarray, high: np.ndarray, offset: float = 0.0
) -> None:
    """One method's curve on ``ax``: a line with its interval as a band, or, for a one-episode
    curve (zero-shot), a point at episode ``1 + offset`` with the interval as an error bar."""
    x = np.arange(1, len(mean) + 1)
    if len(mean) == 1:
        yerr = np.stack([mean - low, high - mean])
        ax.errorbar(x + offset, mean, yerr=yerr, fmt="o", capsize=4, label=label)
        ax.set_xticks([1])
        ax.set_xlim(0.5, 1.5)
        return
    ax.plot(x, mean, label=label)
    ax.fill_between(x, low, high, alpha=0.25)


def plot_track(root: Path, track: str, rows: Sequence[Mapping[str, str]], out: Path) -> Path | None:
    """PNG of a track's in-context learning curves (one per method, its current row) with 95%
    stratified-bootstrap bands over runs x tasks. A one-episode track (zero-shot) has no curve:
    each method is a point with its interval as an error bar, side by side."""
    curves = _curves(root, track, rows)
    if not curves:
        return None
    plt = _pyplot()
    bandit = rows[0]["headline"] == "regret"
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    offsets = np.linspace(-0.2, 0.2, len(curves)) if len(curves) > 1 else np.zeros(1)
    for offset, (label, runs) in zip(offsets, curves.items(), strict=True):
        draw_curve(ax, label, *metrics.curve_with_ci(runs), offset=float(offset))
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
