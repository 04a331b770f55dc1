"""Reading datasets: memory-mapped arrays, windows of learning histories, trajectories, checks."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from icrl_bench.data.store import (
    CORE_ARRAYS,
    MANIFEST,
    STEP_ARRAYS,
    DatasetError,
    datasets_root,
    open_array,
    recipe_sha256,
    resolve,
    sha256_file,
    stored_recipe,
)
from icrl_bench.registry import family
from icrl_bench.tasks import Task

SLICES = ("early", "mid", "late")
#: the dtypes an array file may declare (little-endian numbers and booleans); anything else, an
#: object or structured dtype above all, is refused before the file is mapped
ALLOWED_DTYPES = frozenset(
    {"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8"}
)
#: manifest fields every dataset has, with their JSON types
REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "env_id": str,
    "family": str,
    "variant": str,
    "seed": int,
    "horizon": int,
    "arrays": dict,
    "counts": dict,
    "tasks": list,
    "recipe": dict,
    "reference_returns": dict,
    "provenance": dict,
}
COUNT_KEYS = ("transitions", "histories", "episodes", "tasks")
#: a manifest larger than this is refused unread (Meta-World's task lists are the largest, <1 MB)
MAX_MANIFEST_BYTES = 64 * 2**20
#: the file beside the manifest that records a passed ``verify`` (see :func:`ensure_verified`)
STAMP = ".verified.json"


def _label(path: Path) -> str:
    """A dataset's id as its directory names it (the manifest's own may be what is broken)."""
    try:
        return "/".join(path.resolve().relative_to(datasets_root().resolve()).parts)
    except ValueError:
        return str(path)


def _expected_rows(name: str, counts: Mapping[str, int]) -> int | None:
    """How many rows an array must have, from the manifest's counts (None: not constrained)."""
    if name in STEP_ARRAYS or name == "optimal_actions":
        return counts["transitions"]
    if name in ("history_offsets", "episode_offsets"):
        return counts["histories" if name == "history_offsets" else "episodes"] + 1
    if name in ("history_task", "history_kind"):
        return counts["histories"]
    return None


def check_manifest(label: str, manifest: Any) -> None:
    """The manifest's structure: required keys and their types, counts, and every array entry
    (a plain file name, an allowed dtype, a shape whose rows match the counts).

    Raises:
        DatasetError: ``<label>: <problem>``, one line.
    """
    if not isinstance(manifest, dict):
        raise DatasetError(f"{label}: the manifest is not a JSON object")
    for key, kind in REQUIRED_KEYS.items():
        if key not in manifest:
            raise DatasetError(f"{label}: the manifest lacks {key!r}")
        value = manifest[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise DatasetError(f"{label}: manifest field {key!r} has the wrong type")
    counts = manifest["counts"]
    for key in COUNT_KEYS:
        value = counts.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DatasetError(f"{label}: manifest count {key!r} is not a non-negative integer")
    missing = [n for n in CORE_ARRAYS if n not in manifest["arrays"]]
    if missing:
        raise DatasetError(f"{label}: the manifest lacks the arrays {', '.join(missing)}")
    for name, meta in manifest["arrays"].items():
        if not isinstance(meta, dict) or not {"dtype", "shape", "file", "sha256"} <= set(meta):
            raise DatasetError(f"{label}: array {name!r} needs dtype, shape, file and sha256")
        if meta["file"] != f"{name}.bin":
            raise DatasetError(f"{label}: array {name!r} must be stored in {name}.bin")
        if meta["dtype"] not in ALLOWED_DTYPES:
            raise DatasetError(
                f"{label}: array {name!r} has dtype {meta['dtype']!r}; allowed: "
                f"{', '.join(sorted(ALLOWED_DTYPES))}"
            )
        shape = meta["shape"]
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= 4
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise DatasetError(f"{label}: array {name!r} has an invalid shape {shape!r}")
        rows = _expected_rows(name, counts)
        if rows is not None and shape[0] != rows:
            raise DatasetError(
                f"{label}: array {name!r} has {shape[0]} rows; the counts give {rows}"
            )


class Dataset:
    """A read-only, memory-mapped dataset.

    Attributes:
        id: the fully qualified dataset id.
        path: its directory.
        manifest: the parsed ``manifest.json``.
        arrays: every array, memory-mapped read-only (nothing is loaded until indexed).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        label = _label(path)
        try:
            with (path / MANIFEST).open("rb") as fh:
                text = fh.read(MAX_MANIFEST_BYTES + 1)
            if len(text) > MAX_MANIFEST_BYTES:
                raise DatasetError(f"{label}: the manifest is over {MAX_MANIFEST_BYTES} bytes")
            manifest = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise DatasetError(f"{label}: unreadable manifest ({str(exc)[:120]})") from None
        check_manifest(label, manifest)
        self.manifest: dict[str, Any] = manifest
        in_store = not label.startswith("/") and label.count("/") == 2
        if in_store and manifest["id"] != label:
            raise DatasetError(f"{label}: the manifest names itself {manifest['id']!r}")
        self.id: str = manifest["id"]
        self.arrays: dict[str, np.ndarray] = {}
        self._fds: dict[str, int] = {}
        self._episode_returns: np.ndarray | None = None  # cached by sample_episode_sets
        for name, meta in self.manifest["arrays"].items():
            file = path / meta["file"]
            expected = int(np.prod(meta["shape"])) * np.dtype(meta["dtype"]).itemsize
            if not file.is_file():
                raise DatasetError(f"{self.id}: array file {meta['file']} is missing")
            if file.stat().st_size != expected:
                raise DatasetError(
                    f"{self.id}: array file {meta['file']} has {file.stat().st_size} bytes, "
                    f"expected {expected} (truncated or corrupt)"
                )
            self.arrays[name] = open_array(path, meta)

    # -- sizes --------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of transitions."""
        return int(self.manifest["counts"]["transitions"])

    @property
    def num_histories(self) -> int:
        """Number of learning histories."""
        return len(self.arrays["history_offsets"]) - 1

    @property
    def num_episodes(self) -> int:
        """Number of episodes."""
        return len(self.arrays["episode_offsets"]) - 1

    @property
    def sha256(self) -> str:
        """The dataset's content hash: sha256 over the sorted per-array checksums of the
        manifest (what results files record as the training data's identity)."""
        sums = {name: meta["sha256"] for name, meta in sorted(self.manifest["arrays"].items())}
        return hashlib.sha256(json.dumps(sums, sort_keys=True).encode()).hexdigest()

    @property
    def has_optimal_actions(self) -> bool:
        """Whether every step carries the oracle's action as a label."""
        return "optimal_actions" in self.arrays

    def tasks(self) -> list[Any]:
        """The dataset's tasks as :class:`~icrl_bench.tasks.Task` values, by ``task_index``."""
        return [Task.from_dict(t) for t in self.manifest["tasks"]]

    # -- access -------------------------------------------------------------------------------
    def _read_rows(self, first: np.ndarray, length: int) -> dict[str, np.ndarray]:
        """Rows ``first[i] .. first[i] + length - 1`` of every per-step array, ``[n, length, ...]``.

        Uses positional reads straight into the output arrays: only the requested bytes are
        read, and no file pages are mapped into this process. (Fancy-indexing the memory maps
        instead would map the kernel's whole page-cache folio around every window, so random
        sampling would soon count most of a large dataset in the process's RSS.)
        """
        names = [*STEP_ARRAYS, *(["optimal_actions"] if self.has_optimal_actions else [])]
        first = np.asarray(first, dtype=np.int64).reshape(-1)
        out: dict[str, np.ndarray] = {}
        for name in names:
            arr = self.arrays[name]
            if not hasattr(os, "preadv"):  # pragma: no cover - platforms without preadv
                out[name] = np.array(arr[first[:, None] + np.arange(length)])
                continue
            buf = np.empty((len(first), length, *arr.shape[1:]), dtype=arr.dtype)
            row_bytes = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
            fd = self._fd(name)
            for i, start in enumerate(first.tolist()):
                os.preadv(fd, [buf[i]], start * row_bytes)
            out[name] = buf
        return out

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is None:
            fd = os.open(self.path / self.manifest["arrays"][name]["file"], os.O_RDONLY)
            self._fds[name] = fd
        return fd

    def close(self) -> None:
        """Close the file descriptors used for window reads (the memory maps stay valid)."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __del__(self) -> None:
        if getattr(self, "_fds", None):
            self.close()

    def _take_range(self, start: int, end: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self._read_rows(np.array([start]), end - start).items()}

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Every array of episode ``i`` (global episode number), as in-memory copies."""
        off = self.arrays["episode_offsets"]
        if not 0 <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range [0, {self.num_episodes})")
        return self._take_range(int(off[i]), int(off[i + 1]))

    def history(self, h: int) -> dict[str, np.ndarray]:
        """Every array of learning history ``h``, as in-memory copies."""
        off = self.arrays["history_offsets"]
        if not 0 <= h < self.num_histories:
            raise IndexError(f"history {h} out of range [0, {self.num_histories})")
        return self._take_range(int(off[h]), int(off[h + 1]))

    def history_bounds(self, part: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Start and end transition of every history, or of its ``early``/``mid``/``late`` third.

        Thirds are cut on episode boundaries; a history of fewer than three episodes is cut
        into thirds of its steps.
        """
        off = np.asarray(self.arrays["history_offsets"])
        start, end = off[:-1].copy(), off[1:].copy()
        if part is None:
            return start, end
        if part not in SLICES:
            raise DatasetError(f"unknown slice {part!r}; known: {', '.join(SLICES)}")
        k = SLICES.index(part)
        ep_off = np.asarray(self.arrays["episode_offsets"])
        first_ep = np.searchsorted(ep_off, start)
        n_ep = np.searchsorted(ep_off, end) - first_ep
        by_episode = n_ep >= 3
        lo_ep = first_ep + (n_ep * k) // 3
        hi_ep = first_ep + (n_ep * (k + 1)) // 3
        length = end - start
        lo = np.where(
            by_episode, ep_off[np.minimum(lo_ep, len(ep_off) - 1)], start + (length * k) // 3
        )
        hi = np.where(
            by_episode, ep_off[np.minimum(hi_ep, len(ep_off) - 1)], start + (length * (k + 1)) // 3
        )
        return lo, hi

    def sample_windows(
        self,
        batch: int,
        length: int,
        rng: np.random.Generator,
        weights: np.ndarray | None = None,
        part: str | None = None,
        histories: np.ndarray | None = None,
        with_rows: bool = False,
    ) -> dict[str, np.ndarray]:
        """Windows of ``length`` consecutive transitions, each inside one learning history.

        Windows may span episode boundaries (their ``episode_index`` and ``step_index`` show
        where). Only the sampled rows are read from disk.

        Args:
            batch: number of windows.
            length: transitions per window.
            rng: the sampling generator (keep it separate from env and model streams).
            weights: optional per-history sampling weights (for example from LHF).
            part: restrict to the ``early``, ``mid`` or ``late`` third of every history.
            histories: draw window ``i`` from history ``histories[i]`` (``batch`` of them)
                instead of at random, e.g. a second window from each history of a first batch.
            with_rows: also return ``rows``, the dataset row of every step (int64).

        Returns:
            Arrays shaped ``[batch, length, ...]``, plus ``optimal_actions`` where stored.
        """
        start, end = self.history_bounds(part)
        room = end - start - length
        ok = room >= 0
        if not ok.any():
            raise DatasetError(f"{self.id}: no history holds a window of {length} transitions")
        probs = ok.astype(np.float64)
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (self.num_histories,) or (w < 0).any() or not np.isfinite(w).all():
                raise DatasetError(f"weights must be {self.num_histories} finite values >= 0")
            probs = probs * w
            if probs.sum() <= 0:
                raise DatasetError("the weights give zero mass to every usable history")
        usable = probs if histories is None else ok.astype(np.float64)  # given: weights aside
        hist = self._pick_histories(
            batch, usable, rng, histories, f"no window of {length} transitions"
        )
        first = start[hist] + rng.integers(0, room[hist] + 1)
        out = self._read_rows(first, length)
        if with_rows:
            out["rows"] = first[:, None] + np.arange(length, dtype=np.int64)
        return out

    def _pick_histories(
        self,
        batch: int,
        probs: np.ndarray,
        rng: np.random.Generator,
        histories: np.ndarray | None,
        unusable: str,
    ) -> np.ndarray:
        """``batch`` history indices: drawn with weights ``probs`` (zero for a history that
        cannot serve), or the given ``histories`` checked (``unusable`` says what a history of
        zero weight holds)."""
        if histories is None:
            return rng.choice(self.num_histories, size=batch, p=probs / probs.sum())
        hist = np.asarray(histories, dtype=np.int64).reshape(-1)
        if len(hist) != batch or ((hist < 0) | (hist >= self.num_histories)).any():
            raise DatasetError(f"histories must be {batch} indices below {self.num_histories}")
        if not (probs[hist] > 0).all():
            raise DatasetError(f"a chosen history holds {unusable}")
        return hist

    def episode_length(self) -> int:
        """The one length every episode of the dataset has.

        Raises:
            DatasetError: the episodes differ in length (some end early), or there are none.
        """
        lengths = np.diff(np.asarray(self.arrays["episode_offsets"]))
        if len(lengths) == 0:
            raise DatasetError(f"{self.id}: no episodes")
        if (lengths != lengths[0]).any():
            raise DatasetError(
                f"{self.id}: episodes of {int(lengths.min())} to {int(lengths.max())} steps; "
                "sets of whole episodes need one episode length"
            )
        return int(lengths[0])

    def sample_episode_sets(
        self,
        batch: int,
        n: int,
        rng: np.random.Generator,
        histories: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """``n`` distinct episodes drawn at random from each of ``batch`` learning histories.

        T2MIR-AD's training context: a few episodes of one task in any order (the caller sorts
        them). Every episode must have the same length ``H`` (:meth:`episode_length`).

        Args:
            batch: number of sets.
            n: episodes per set; a history with fewer episodes is never drawn.
            rng: the sampling generator.
            histories: draw set ``i`` from history ``histories[i]`` instead of at random.

        Returns:
            Every per-step array as ``[batch, n, H, ...]``, plus ``episode_returns``
            ``[batch, n]`` (float64) and the drawn ``histories`` ``[batch]``.
        """
        length = self.episode_length()
        ep_off = np.asarray(self.arrays["episode_offsets"])
        start, end = self.history_bounds()
        first_ep = np.searchsorted(ep_off, start)
        n_ep = np.searchsorted(ep_off, end) - first_ep
        ok = n_ep >= n
        if not ok.any():
            raise DatasetError(f"{self.id}: no history holds {n} episodes")
        hist = self._pick_histories(
            batch, ok.astype(np.float64), rng, histories, f"fewer than {n} episodes"
        )
        # n distinct episodes per history: the n smallest of random keys over its episodes
        keys = rng.random((batch, int(n_ep[hist].max())))
        keys[np.arange(keys.shape[1])[None, :] >= n_ep[hist][:, None]] = np.inf
        episodes = first_ep[hist][:, None] + np.argsort(keys, axis=1)[:, :n]  # [batch, n]
        rows = self._read_rows(ep_off[episodes].reshape(-1), length)
        out = {k: v.reshape(batch, n, length, *v.shape[2:]) for k, v in rows.items()}
        if self._episode_returns is None:
            self._episode_returns = self.episode_returns()
        out["episode_returns"] = self._episode_returns[episodes]
        out["histories"] = hist
        return out

    def sample_rows(self, histories: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One transition drawn uniformly from each of the given learning histories.

        DPT's query: from a history of independent uniform-state transitions (the
        ``uniform-rollin`` variant) it is a uniformly drawn state of that task, with its label.

        Args:
            histories: history indices ``[n]``.
            rng: the sampling generator.

        Returns:
            Every per-step array as ``[n, ...]``, plus ``optimal_actions`` where stored.
        """
        hist = np.asarray(histories, dtype=np.int64).reshape(-1)
        if ((hist < 0) | (hist >= self.num_histories)).any():
            raise DatasetError(f"history indices must lie below {self.num_histories}")
        start, end = self.history_bounds()
        rows = start[hist] + rng.integers(0, end[hist] - start[hist])
        return {k: v[:, 0] for k, v in self._read_rows(rows, 1).items()}

    def returns_to_go(self) -> np.ndarray:
        """Undiscounted return from every step to the end of its episode, float32 ``[N]``."""
        rewards = np.asarray(self.arrays["rewards"], dtype=np.float64)
        if len(rewards) == 0:
            return np.zeros(0, dtype=np.float32)
        off = np.asarray(self.arrays["episode_offsets"])
        total = np.cumsum(rewards)
        # return-to-go(t) = sum of rewards t..end = total[end - 1] - total[t] + r[t]
        end = np.repeat(off[1:] - 1, np.diff(off))
        return (total[end] - total + rewards).astype(np.float32)

    # -- statistics ---------------------------------------------------------------------------
    def episode_returns(self) -> np.ndarray:
        """Return of every episode, float64 ``[num_episodes]``."""
        rewards = np.asarray(self.arrays["rewards"], dtype=np.float64)
        off = np.asarray(self.arrays["episode_offsets"])
        if len(rewards) == 0:
            return np.zeros(0)
        return np.add.reduceat(rewards, off[:-1])

    def returns_by_episode_index(self) -> dict[str, np.ndarray]:
        """Mean and std of the return at each episode index within a history (a learning curve)."""
        off = np.asarray(self.arrays["episode_offsets"])
        ep_idx = np.asarray(self.arrays["episode_index"])[off[:-1]]
        returns = self.episode_returns()
        n = np.bincount(ep_idx)
        mean = np.bincount(ep_idx, returns) / np.maximum(n, 1)
        var = np.bincount(ep_idx, returns**2) / np.maximum(n, 1) - mean**2
        return {"mean": mean, "std": np.sqrt(np.maximum(var, 0.0)), "count": n}

    # -- integrity ----------------------------------------------------------------------------
    def verify(self) -> None:
        """Recompute every checksum, the recipe hash, the structural invariants and the value
        ranges (actions inside the family's action space, finite rewards and observations).

        Raises:
            DatasetError: ``<id>: <problem>`` for the first array or invariant that fails.
        """
        for name, meta in self.manifest["arrays"].items():
            if sha256_file(self.path / meta["file"]) != meta["sha256"]:
                raise DatasetError(f"{self.id}: checksum mismatch in {meta['file']} ({name})")
        recorded = self.manifest.get("recipe_sha256")
        if recorded is None:
            raise DatasetError(
                f"{self.id}: the manifest records no recipe_sha256 (written before datasets "
                "recorded one); regenerate it with `icrl-bench data generate ... --force`"
            )
        try:
            actual = recipe_sha256(self.manifest)
        except ValueError:
            actual = ""
        if actual != recorded:
            raise DatasetError(
                f"{self.id}: the recipe, tasks or references in the manifest were edited "
                "(recipe_sha256 does not match)"
            )
        _check_invariants(self)
        _check_values(self)


def ensure_verified(ds: Dataset) -> None:
    """Verify ``ds`` unless a stamp shows it passed with exactly these files.

    The stamp (:data:`STAMP`, beside the manifest) records every file's size and modification
    time at the last passed :meth:`Dataset.verify`; any change to the manifest or an array file
    (a flipped byte included) changes them, and the next load verifies again. A store that
    cannot be written is verified at every load.

    Raises:
        DatasetError: the dataset fails :meth:`Dataset.verify`.
    """
    files = [MANIFEST, *(meta["file"] for meta in ds.manifest["arrays"].values())]
    try:
        seen = {f: [(st := (ds.path / f).stat()).st_size, st.st_mtime_ns] for f in files}
    except OSError as exc:
        raise DatasetError(f"{ds.id}: {exc.strerror}: {exc.filename}") from None
    stamp = ds.path / STAMP
    try:
        if json.loads(stamp.read_text()) == seen:
            return
    except (OSError, ValueError):
        pass
    ds.verify()
    for stale in ds.path.glob(f"{STAMP}.*.tmp"):  # left by a process killed while stamping
        stale.unlink(missing_ok=True)
    tmp = stamp.with_name(f"{STAMP}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(seen, sort_keys=True))
        os.replace(tmp, stamp)
    except OSError:
        tmp.unlink(missing_ok=True)


def _check_values(ds: Dataset) -> None:
    """Actions inside the family's action space; rewards and observations finite."""
    env = gym.make(family(ds.manifest["env_id"]).env_id)
    space = env.unwrapped.action_space
    env.close()
    for name in ("actions", "optimal_actions"):
        if name not in ds.arrays:
            continue
        acts = np.asarray(ds.arrays[name])
        if isinstance(space, gym.spaces.Discrete):
            low, high = float(space.start), float(space.start + space.n - 1)
            bad = (acts < low) | (acts > high)
        elif isinstance(space, gym.spaces.Box):
            # recorded actions are the ones the env executed: within its box (float32 slack)
            bad = ~np.isfinite(acts) | (acts < space.low - 1e-5) | (acts > space.high + 1e-5)
            low, high = float(np.min(space.low)), float(np.max(space.high))
        else:  # pragma: no cover - every family has a Discrete or Box action space
            continue
        if bad.any():
            row = int(np.flatnonzero(bad.reshape(len(acts), -1).any(axis=1))[0])
            raise DatasetError(
                f"{ds.id}: {name}[{row}] = {acts[row].tolist()} lies outside the action space "
                f"[{low}, {high}]"
            )
    for name in ("rewards", "observations", "next_observations"):
        arr = np.asarray(ds.arrays[name])
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            row = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0])
            raise DatasetError(f"{ds.id}: {name}[{row}] is not finite")


def _check_invariants(ds: Dataset) -> None:
    n = len(ds)
    a = {k: np.asarray(v) for k, v in ds.arrays.items()}
    for name in STEP_ARRAYS:
        if len(a[name]) != n:
            raise DatasetError(f"{ds.id}: {name} has {len(a[name])} rows, expected {n}")
    for name in ("episode_offsets", "history_offsets"):
        off = a[name]
        if off[0] != 0 or off[-1] != n or (np.diff(off) <= 0).any():
            raise DatasetError(f"{ds.id}: {name} is not a strictly increasing cover of [0, {n}]")
    hist = a["history_index"]
    if (np.diff(hist) < 0).any() or (np.diff(a["task_index"]) < 0).any():
        raise DatasetError(f"{ds.id}: transitions are not ordered by task and history")
    starts = np.flatnonzero(np.diff(hist, prepend=-1))
    if not np.array_equal(starts, a["history_offsets"][:-1]):
        raise DatasetError(f"{ds.id}: history_offsets disagree with history_index")
    ep_off = a["episode_offsets"]
    ends = ep_off[1:] - 1
    done = a["terminations"] | a["truncations"]
    if not done[ends].all() or done.sum() != len(ends):
        raise DatasetError(f"{ds.id}: episodes must end exactly at their last transition")
    if (a["step_index"][ep_off[:-1]] != 0).any():
        raise DatasetError(f"{ds.id}: an episode does not start at step 0")
    horizon = int(ds.manifest["horizon"])
    if (a["step_index"] >= horizon).any():
        raise DatasetError(f"{ds.id}: step_index beyond the horizon {horizon}")
    inner = np.ones(n, dtype=bool)
    inner[ends] = False
    connected = bool(stored_recipe(ds.manifest)["connected"])
    if connected and not np.array_equal(
        a["observations"][1:][inner[:-1]], a["next_observations"][:-1][inner[:-1]]
    ):
        raise DatasetError(f"{ds.id}: next_observations do not chain within episodes")
    if (a["task_index"] >= len(ds.manifest["tasks"])).any():
        raise DatasetError(f"{ds.id}: task_index beyond the task list")


def load(dataset_id: str, verify: bool = True) -> Dataset:
    """Open a dataset read-only and memory-mapped, verified.

    Args:
        dataset_id: ``<Family>/<variant>-v<N>/<scale>-seed<S>``, or ``<Family>/<variant>-v<N>``
            when exactly one instance exists.
        verify: check it with :func:`ensure_verified` (checksums, recipe hash, invariants and
            value ranges at the first load and after any change to its files), so training and
            evaluation never use corrupt data. ``False`` only checks the manifest's structure
            and the files' sizes (``data show`` of a broken dataset, for example).

    Raises:
        UnknownIdError: no such dataset.
        DatasetError: a malformed manifest, a missing or truncated array file, or (with
            ``verify``) data that fails :meth:`Dataset.verify`.
    """
    ds = Dataset(resolve(dataset_id).path())
    if verify:
        ensure_verified(ds)
    return ds


def summary(ds: Dataset) -> Mapping[str, Any]:
    """A manifest summary for ``data list`` and ``data show``."""
    m = ds.manifest
    return {
        "id": m["id"],
        "variant": m["variant"],
        "scale": m["scale"],
        "seed": m["seed"],
        **m["counts"],
        "MB": round(sum(p.stat().st_size for p in ds.path.glob("*.bin")) / 2**20, 2),
        "seconds": m["provenance"]["generation_seconds"],
    }
