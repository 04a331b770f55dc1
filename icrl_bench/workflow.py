"""The main jobs as Python functions: generate a dataset, train a baseline, evaluate agents into
a results file, submit it. The suite runner (:mod:`icrl_bench.suite`) and the CLI call the same
functions, so a suite job and its printed ``icrl-bench`` command do the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.common.config import read_config
from baselines.methods import method
from icrl_bench import data
from icrl_bench.data.sac import train_expert_references
from icrl_bench.errors import IcrlBenchError, MissingReferenceError
from icrl_bench.eval import evaluate, setting
from icrl_bench.eval.agents import REFERENCE_AGENTS, reference_agent
from icrl_bench.eval.results import Run, build_result, config_sha256, strip_seed, write_result
from icrl_bench.eval.scoring import score
from icrl_bench.leaderboard import submit
from icrl_bench.registry import family, reference_returns, tasks

__all__ = ["evaluate_to_file", "generate", "parse_sets", "references", "submit", "train"]


def parse_sets(items: Sequence[str]) -> dict[str, object]:
    """``key=value`` pairs; values are parsed as JSON where they can be (numbers, lists, ...).

    Raises:
        ValueError: an item without ``=`` or without a key.
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def generate(
    env_id: str,
    variant: str,
    scale: str = "smoke",
    seed: int = 0,
    sets: Sequence[str] = (),
    workers: int | None = None,
    force: bool = False,
    progress: bool = False,
) -> str:
    """Generate a dataset from its recipe (``sets``: ``key=value`` recipe overrides); returns
    its id. See :func:`icrl_bench.data.generate`."""
    return data.generate(
        env_id,
        variant,
        scale=scale,
        seed=seed,
        workers=workers,
        overrides=parse_sets(sets),
        force=force,
        progress=progress,
    )


def references(env_id: str, train_episodes: int = 500) -> dict[str, list[float]]:
    """Measure (and cache) a family's test-split reference returns; for a locomotion family this
    first trains its SAC experts (``train_episodes`` per test task, the test tasks in parallel),
    unless they are cached for that length. Returns ``{"random": [...], "oracle": [...]}``."""
    spec = family(env_id)
    if spec.kind.references == "sac-expert":
        train_expert_references(spec.name, tasks(spec.name).test, spec.horizon, train_episodes)
    return {k: np.asarray(v).tolist() for k, v in reference_returns(spec.name).items()}


def train(
    method_name: str,
    env_id: str,
    dataset_id: str,
    out: str | Path,
    sets: Sequence[str] = (),
    config: str | None = None,
    smoke: bool = False,
    progress: bool = False,
) -> Path:
    """Train a baseline on a dataset; returns the checkpoint directory.

    Args:
        method_name: a name of :data:`baselines.methods.METHODS`.
        env_id: the family.
        dataset_id: the training dataset.
        out: the checkpoint directory (an unfinished run there is resumed).
        sets: ``section.key=value`` config overrides.
        config: a config file other than the shipped one.
        smoke: the config's smoke budget.
        progress: show a progress bar.
    """
    spec = method(method_name)
    fam = family(env_id)
    raw = read_config(spec.name, fam.name, config, list(sets), smoke)
    return spec.train(fam.env_id, dataset_id, raw, out, progress=progress)


def evaluate_to_file(
    agent_name: str | Sequence[str],
    env_id: str,
    protocol_id: str,
    seeds: Sequence[int],
    out: str | None = None,
    episodes: int | None = None,
    notes: str = "",
    allow_partial: bool = False,
) -> tuple[str, dict[str, object], dict[str, Any]]:
    """Evaluate a reference agent, or the checkpoints of one method's training runs, and write
    one results file.

    Args:
        agent_name: a reference agent's name, or one or more checkpoint directories: independent
            training runs of one method, config and dataset (each is evaluated under ``seeds``).
        allow_partial: accept runs whose training stopped early. The result is marked: its
            config gains ``partial: {train seed: updates reached}`` (so it never shares a hash
            with finished runs) and its notes start with ``partial training``.

    Returns:
        The path written, the results document and its metrics (as the leaderboard computes them).
        Where the family's scoring reference is not trained yet (a locomotion family's SAC
        expert), the file is still written and the metrics are only ``final_return`` (the raw
        final-episode return's mean) and ``unscored`` (why, and how to train the reference).

    Raises:
        IcrlBenchError: an unknown agent, a reference agent among several, or checkpoints that
            differ in method, config or dataset, or repeat a training seed.
    """
    names = [agent_name] if isinstance(agent_name, str) else list(agent_name)
    if not names:
        raise IcrlBenchError("--agent needs a reference agent or checkpoint directories")
    if len(set(names)) != len(names):
        raise IcrlBenchError("--agent lists a checkpoint twice: each run is evaluated once")
    spec = family(env_id)
    st = setting(spec.name, protocol_id)
    n_episodes = episodes or st.episodes
    if names[0] in REFERENCE_AGENTS:
        if len(names) > 1:
            raise IcrlBenchError(
                f"--agent {names[0]} is a reference agent: it is not trained, so it is evaluated "
                "alone (its evaluation seeds are its runs)"
            )
        agent = reference_agent(names[0], spec.name, n_episodes)
        config: dict[str, object] = {
            "agent": names[0],
            "params": dict(getattr(agent, "params", {})),
            "episodes": n_episodes,
        }
        result = evaluate(agent, spec.env_id, protocol_id, seeds=seeds, episodes=n_episodes)
        doc = build_result(result, agent.name, "1", config=config, notes=notes)
    else:
        for name in names:
            if name in REFERENCE_AGENTS or not Path(name).is_dir():
                raise IcrlBenchError(
                    f"unknown agent {name!r}: use one of {', '.join(REFERENCE_AGENTS)}, or "
                    "checkpoint directories of one method's training runs"
                )
        # checkpoints load torch (about 2 s), which reference agents never need
        from baselines.common.checkpoint import load_runs

        loaded = load_runs(names, spec.env_id, allow_partial)
        first = loaded[0]
        run_config = dict(first.config)
        partial = [r for r in loaded if r.partial]
        if partial:
            run_config["partial"] = {str(r.train_seed): r.step for r in partial}
            reached = ", ".join(f"seed {r.train_seed} at {r.step:,}" for r in partial)
            notes = f"partial training ({reached} of {first.steps:,} updates)" + (
                f"; {notes}" if notes else ""
            )
        runs = [
            Run(
                train_seed=r.train_seed,
                config_sha256=config_sha256(strip_seed(run_config)),
                dataset_sha256=(r.dataset or {}).get("sha256"),
                git_sha=r.git_sha,
            )
            for r in loaded
        ]
        results = [
            evaluate(r.agent, spec.env_id, protocol_id, seeds=seeds, episodes=n_episodes)
            for r in loaded
        ]
        doc = build_result(
            results,
            first.method,
            first.version,
            config=run_config,
            dataset=first.dataset,
            notes="; ".join(n for n in (notes, action_note(first.config)) if n),
            runs=runs,
        )
    path = Path(out or f"results/{doc['method']}__{spec.name}__{protocol_id}.json")
    write_result(doc, path)
    try:
        metrics = score(
            spec.name,
            np.asarray(doc["returns"], dtype=np.float64),
            None if doc["actions"] is None else np.asarray(doc["actions"]),
            None if doc["success"] is None else np.asarray(doc["success"]),
            seeds_are_runs=doc["runs"] is None,
        )
    except MissingReferenceError as err:
        final = np.asarray(doc["returns"], dtype=np.float64)[..., -1]
        metrics = {"final_return": {"mean": float(final.mean())}, "unscored": str(err)}
    return str(path), doc, metrics


def action_note(config: dict[str, Any]) -> str:
    """How a checkpoint's agent chooses actions, for its leaderboard notes (read from the
    resolved config's ``model`` section: ``action_selection``, ``temperature``,
    ``episode_noise``)."""
    model = config.get("model") or {}
    selection = model.get("action_selection")
    if selection == "sample":
        note = f"actions sampled at temperature {float(model.get('temperature', 1.0)):g}"
        if model.get("episode_noise"):
            note += f" with episode noise {float(model['episode_noise']):g}"
        return note
    return "actions argmax" if selection == "argmax" else ""
