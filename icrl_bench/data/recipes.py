"""Versioned dataset recipes: variant x scale x seed -> a dataset in the store.

A recipe is data (:mod:`icrl_bench.data.catalogue`: the variants, scales and parameter ranges;
the family's spec: which variants apply, with which source learner). This module is the engine
that resolves a recipe into a :class:`Plan` and generates its arrays.
Everything that determines the arrays is written into the manifest, and the same recipe and seed
give byte-identical arrays whatever the number of worker processes: the work is cut into chunks
by the recipe alone, and each chunk draws from its own seed sequence.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from icrl_bench.data.catalogue import (
    MAX_TRANSITIONS,
    PARAM_RANGES,
    SCALE_RANGES,
    Variant,
    scale_for,
    variant,
)
from icrl_bench.data.sac import collect_conditioned_sac, collect_sac
from icrl_bench.data.sources import HISTORY_KINDS, LEARNERS, Collected, collect
from icrl_bench.data.store import (
    ArrayWriter,
    DatasetRef,
    datasets_root,
    instance_name,
    recipe_sha256,
    staging,
    stored_recipe,
    write_manifest,
)
from icrl_bench.errors import IcrlBenchError
from icrl_bench.kinds import KINDS, Scale
from icrl_bench.provenance import __version__, git_sha
from icrl_bench.registry import family, task_references, tasks
from icrl_bench.values import SEED
from icrl_bench.workers import die_with_parent

SCHEMA_VERSION = 1
#: transitions one chunk holds in memory (a recipe's chunks are fixed by this, not by workers)
CHUNK_TRANSITIONS = 4_000_000


#: the SAC sources (:mod:`icrl_bench.data.sac`): one learner per task, or one for all the
#: recipe's tasks that is told each task
SAC_LEARNERS = ("sac", "sac-conditioned")


def _flag(learner: str, name: str) -> bool:
    """A source's class flag (the SAC sources train, then freeze; they never relocate)."""
    if learner in SAC_LEARNERS:
        return name == "freezable"
    return bool(getattr(LEARNERS[learner], name))


@dataclass(frozen=True)
class Plan:
    """Everything that determines a dataset's arrays."""

    env_id: str
    variant: Variant
    scale_name: str
    scale: Scale
    seed: int
    learner: str
    params: dict[str, Any]
    tasks_per_chunk: int

    @property
    def frozen(self) -> bool:
        """Whether the learner trains before recording and is then frozen (Q-learning's
        medium/expert snapshots); an oracle expert records from the start."""
        return self.variant.frozen and _flag(self.learner, "freezable")

    def recipe(self) -> dict[str, Any]:
        """The manifest's ``recipe`` entry."""
        return {
            "variant": self.variant.id,
            "summary": self.variant.summary,
            "source": self.variant.source,
            "learner": self.learner,
            "learner_params": self.params,
            # whether each transition starts where the previous one of its episode ended
            "connected": not _flag(self.learner, "relocates"),
            "scale": self.scale_name,
            "tasks": self.scale.tasks,
            "histories_per_task": self.scale.histories,
            "episodes_per_history": self.scale.episodes,
            "train_episodes": self.scale.train_episodes if self.frozen else 0,
            "tasks_per_chunk": self.tasks_per_chunk,
            "split": self.scale.split,
        }


def _override(var: Variant, key: str, value: Any, current: Any) -> Any:
    """A checked recipe override: the key's declared range, or a string for a string field."""
    name = f"recipe parameter {key!r} of {var.id}"
    if key == "split":
        if value not in ("train", "test"):
            raise IcrlBenchError(f"{name} must be 'train' or 'test', got {value!r}")
        return value
    if key == "tasks" and value is None:
        return None
    rng = SCALE_RANGES.get(key) or PARAM_RANGES.get(key)
    if rng is None:
        raise IcrlBenchError(f"{name} cannot be overridden (it is a {type(current).__name__})")
    return rng.check(name, value)


def plan(
    env_id: str,
    variant_name: str,
    scale: str = "smoke",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Plan:
    """Resolve a recipe; ``overrides`` replace learner parameters or scale fields.

    Raises:
        UnknownIdError: unknown family, variant or scale.
        IcrlBenchError: a variant that does not apply to the family, or a bad override.
    """
    spec = family(env_id)
    var = variant(variant_name)
    source = spec.source(var.name)
    if source is None:
        kinds = [k.name for k in KINDS if var.name in k.sources]
        raise IcrlBenchError(
            f"variant {var.name!r} does not apply to {spec.name} "
            f"(it needs a {'/'.join(kinds)} family)"
        )
    learner, params = source[0], dict(source[1])
    sc = scale_for(spec, scale)
    overrides = dict(overrides or {})
    chunk_override = overrides.pop("tasks_per_chunk", None)
    if chunk_override is not None:
        chunk_override = _override(var, "tasks_per_chunk", chunk_override, 1)
    for key, value in overrides.items():
        if key in Scale.__dataclass_fields__:
            sc = replace(sc, **{key: _override(var, key, value, getattr(sc, key))})
        elif key in params:
            params[key] = _override(var, key, value, params[key])
        else:
            raise IcrlBenchError(f"unknown recipe parameter {key!r} for {var.id}")
    SEED.check("seed", seed)
    frozen = var.frozen and _flag(learner, "freezable")
    total_episodes = sc.episodes + (sc.train_episodes if frozen else 0)
    per_task = sc.histories * total_episodes * spec.horizon
    n_tasks = sc.tasks if sc.tasks is not None else len(getattr(tasks(spec.name), sc.split))
    if per_task * n_tasks > MAX_TRANSITIONS:
        raise IcrlBenchError(
            f"{var.id} at this scale would hold {per_task * n_tasks:,} transitions; "
            f"the limit is {MAX_TRANSITIONS:,}"
        )
    tasks_per_chunk = int(chunk_override or max(1, CHUNK_TRANSITIONS // max(per_task, 1)))
    if learner == "sac":  # one task per worker process: SAC runs are slow and independent
        tasks_per_chunk = int(chunk_override or 1)
    if learner == "sac-conditioned":  # one learner for every task: one chunk
        tasks_per_chunk = n_tasks
    return Plan(spec.env_id, var, scale, sc, seed, learner, params, tasks_per_chunk)


def _clean_stale(final: Path) -> None:
    """Remove the temporary and replaced directories an interrupted generation of ``final``
    left beside it. Call it holding the dataset's lock: only its holder writes them, so every
    one found is a leftover."""
    if not final.parent.is_dir():
        return
    for leftover in final.parent.glob(f".*-{final.name}-*"):
        if leftover.name.startswith((f".tmp-{final.name}-", f".old-{final.name}-")):
            shutil.rmtree(leftover, ignore_errors=True)


def _run_chunk(args: tuple[Plan, int, int]) -> Collected:
    p, first, count = args
    spec = family(p.env_id)
    chosen = _train_tasks(p)[first : first + count]
    learner_params = dict(p.params)
    record_from = 0
    episodes = p.scale.episodes
    if p.frozen:
        learner_params["freeze_after"] = p.scale.train_episodes
        record_from = p.scale.train_episodes
        episodes += p.scale.train_episodes
    code = zlib.crc32(p.variant.id.encode())
    if p.learner == "sac-conditioned":
        return collect_conditioned_sac(
            spec.env_id,
            chosen,
            p.scale.histories,
            p.scale.episodes,
            dict(p.params),
            seed=[p.seed, code, first],
            train_episodes=p.scale.train_episodes,
        )
    if p.learner == "sac":
        params = {k: v for k, v in learner_params.items() if k != "freeze_after"}
        return collect_sac(
            spec.env_id,
            chosen,
            p.scale.histories,
            episodes,
            params,
            seed=[p.seed, code, first],
            record_from=record_from,
        )
    return collect(
        spec.env_id,
        chosen,
        p.scale.histories,
        episodes,
        p.learner,
        learner_params,
        seed=[p.seed, code, first],
        record_from=record_from,
    )


def _train_tasks(p: Plan) -> tuple[Any, ...]:
    """The tasks a plan uses: the first ``scale.tasks`` of its split (train by default)."""
    dist = tasks(p.env_id)
    chosen = dist.test if p.scale.split == "test" else dist.train
    return chosen if p.scale.tasks is None else chosen[: p.scale.tasks]


def dataset_ref(p: Plan) -> DatasetRef:
    """Where ``p``'s dataset lives."""
    return DatasetRef(family(p.env_id).name, p.variant.id, instance_name(p.scale_name, p.seed))


def generate(
    env_id: str,
    variant_name: str,
    scale: str = "smoke",
    seed: int = 0,
    workers: int | None = None,
    overrides: dict[str, Any] | None = None,
    force: bool = False,
    progress: bool = False,
    on_chunk: Callable[[int, int], None] | None = None,
) -> str:
    """Generate a dataset (or return the id of the one already generated) and return its id.

    Args:
        env_id: a registered family.
        variant_name: a key of :data:`VARIANTS`.
        scale: ``"smoke"`` or ``"paper"``.
        seed: the recipe seed.
        workers: local processes (default: all cores); the arrays do not depend on it.
        overrides: recipe parameters replacing the defaults (recorded in the manifest).
        force: regenerate even if the dataset exists (replaced atomically).
        progress: show a progress bar.
        on_chunk: called with ``(done, total)`` after each chunk (for tests and callers).
    """
    p = plan(env_id, variant_name, scale, seed, overrides)
    ref = dataset_ref(p)
    final = ref.path()
    lock_dir = datasets_root() / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / (ref.id.replace("/", "__") + ".lock"))):
        _clean_stale(final)
        if (final / "manifest.json").is_file() and not force:
            existing = stored_recipe(json.loads((final / "manifest.json").read_text()))
            if existing != json.loads(json.dumps(p.recipe())):
                raise IcrlBenchError(
                    f"{ref.id} exists with a different recipe; pass force=True (--force) to "
                    "replace it"
                )
            return ref.id
        chosen = _train_tasks(p)
        chunks = [
            (p, first, min(p.tasks_per_chunk, len(chosen) - first))
            for first in range(0, len(chosen), p.tasks_per_chunk)
        ]
        workers = min(workers or os.cpu_count() or 1, len(chunks))
        start = time.perf_counter()
        with staging(final) as tmp:
            writer = ArrayWriter(tmp)
            counts = _write_chunks(writer, chunks, p, workers, progress, on_chunk)
            arrays = writer.close()
            # the chosen tasks are the first of their split: their references are its first
            refs = task_references(p.env_id, chosen)
            n_tasks = len(chosen)
            manifest = {
                "schema_version": SCHEMA_VERSION,
                "id": ref.id,
                "env_id": p.env_id,
                "family": ref.family,
                "variant": p.variant.id,
                "scale": p.scale_name,
                "seed": p.seed,
                "recipe": p.recipe(),
                "counts": counts,
                "arrays": arrays,
                "has_optimal_actions": "optimal_actions" in arrays,
                "history_kinds": {str(k): v for k, v in HISTORY_KINDS.items()},
                "tasks": [t.to_dict() for t in chosen],
                # a locomotion family's expert reference exists once its SAC experts are
                # trained (None until then)
                "reference_returns": {
                    "random": refs["random"][:n_tasks].tolist(),
                    "oracle": refs["oracle"][:n_tasks].tolist() if "oracle" in refs else None,
                },
                "horizon": family(p.env_id).horizon,
                "provenance": {
                    "icrl_bench_version": __version__,
                    "git_sha": git_sha(),
                    "numpy_version": np.__version__,
                    "generation_seconds": round(time.perf_counter() - start, 3),
                    "workers": workers,
                },
            }
            manifest["floor_return"] = _floor_return(p, chosen)
            manifest["recipe_sha256"] = recipe_sha256(manifest)
            write_manifest(tmp, manifest)
    return ref.id


def _write_chunks(
    writer: ArrayWriter,
    chunks: Sequence[tuple[Plan, int, int]],
    p: Plan,
    workers: int,
    progress: bool,
    on_chunk: Callable[[int, int], None] | None,
) -> dict[str, int]:
    hist_base = 0
    trans_base = 0
    episodes = 0
    bar = tqdm(
        total=len(chunks), desc=f"generate {p.variant.id}", unit="chunk", disable=not progress
    )
    pool = (
        ProcessPoolExecutor(
            max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)
        )
        if workers > 1
        else None
    )
    results = pool.map(_run_chunk, chunks) if pool else map(_run_chunk, chunks)
    try:
        for done, ((_, first, _), c) in enumerate(zip(chunks, results, strict=True), start=1):
            h = p.scale.histories
            env_local = c.task * h + c.history
            n = len(c.actions)
            for name in ("observations", "next_observations", "actions", "rewards"):
                writer.append(name, getattr(c, name))
            writer.append("terminations", c.terminations)
            writer.append("truncations", c.truncations)
            opt = c.optimal_actions  # discrete labels fit int16; continuous keep the action dtype
            if opt is not None:
                labels = opt.astype(np.int16) if opt.dtype.kind in "iu" else opt
                writer.append("optimal_actions", labels)
            writer.append("task_index", (first + c.task).astype(np.int32))
            writer.append("history_index", (hist_base + env_local).astype(np.int32))
            writer.append("episode_index", c.episode.astype(np.int32))
            writer.append("step_index", c.step.astype(np.int32))
            ep_key = env_local * (c.episode.max(initial=0) + 1) + c.episode
            ep_starts = np.flatnonzero(np.diff(ep_key, prepend=-1))
            hist_starts = np.flatnonzero(np.diff(env_local, prepend=-1))
            writer.append("episode_offsets", (trans_base + ep_starts).astype(np.int64))
            writer.append("history_offsets", (trans_base + hist_starts).astype(np.int64))
            n_hist = len(hist_starts)
            writer.append("history_task", (first + np.arange(n_hist) // h).astype(np.int32))
            writer.append("history_kind", c.history_kind.astype(np.int8))
            hist_base += n_hist
            trans_base += n
            episodes += len(ep_starts)
            bar.update()
            if on_chunk is not None:
                on_chunk(done, len(chunks))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    # closing entries make the offsets arrays count + 1 long
    writer.append("episode_offsets", np.array([trans_base], dtype=np.int64))
    writer.append("history_offsets", np.array([trans_base], dtype=np.int64))
    return {
        "tasks": math.ceil(hist_base / p.scale.histories),
        "histories": hist_base,
        "episodes": episodes,
        "transitions": trans_base,
    }


def _floor_return(p: Plan, chosen: Sequence[Any]) -> float | None:
    """For ``ad-eps``: the demonstrator's expected return at its floor, by independent rollouts.

    This is the declared final performance that the end of every history should reach.
    """
    if p.learner != "noisy-oracle":
        return None
    floor = float(p.params["eps_floor"])
    params = {**p.params, "eps_start": floor, "eps_floor": floor}
    # a constant-eps demonstrator is stationary: a few hundred one-episode histories in one
    # batch (fewer for simulator families, whose steps cost a thousand times more)
    episodes = family(p.env_id).kind.floor_episodes
    histories = max(1, episodes // max(len(chosen), 1))
    c = collect(p.env_id, chosen, histories, 1, "noisy-oracle", params, seed=[p.seed, 0xF100])
    return float(c.rewards.sum() / (len(chosen) * histories))
