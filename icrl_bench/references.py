"""Reference returns of the simulator families, measured by rollouts and cached on disk.

The NumPy families compute their references exactly (their cores' ``reference_returns``). A
simulator family's references are measured here, by rollouts of its registered vector env: the
random policy over seeded episodes, the scripted expert (Meta-World) over one episode, or the SAC
expert of the ``expert`` dataset recipe (locomotion; trained by
:func:`icrl_bench.data.sac.train_expert_references`). Each result is cached
under ``$ICRL_BENCH_HOME/references/`` keyed by the family, the tasks' hash, the horizon and the
measurement's settings, so scoring never repeats a rollout; deleting the cache only costs time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from icrl_bench.envs.core import random_actions
from icrl_bench.errors import MissingReferenceError
from icrl_bench.tasks import Task, split_hash

#: random-policy episodes per task
RANDOM_EPISODES = 5


def references_dir() -> Path:
    """``$ICRL_BENCH_HOME/references`` (default ``~/.icrl_bench/references``)."""
    return Path(os.environ.get("ICRL_BENCH_HOME", Path.home() / ".icrl_bench")) / "references"


def cache_path(family: str, tasks: Sequence[Task], horizon: int, tag: str) -> Path:
    """Where a measurement of ``tag`` over ``tasks`` is cached."""
    key = hashlib.sha256(f"{split_hash(tasks)}|{horizon}|{tag}".encode()).hexdigest()[:16]
    return references_dir() / f"{family}-{tag}-{key}.json"


def cached(
    family: str,
    tasks: Sequence[Task],
    horizon: int,
    tag: str,
    measure: Callable[[], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Load a cached measurement, or run ``measure`` and cache it (atomically)."""
    path = cache_path(family, tasks, horizon, tag)
    if path.exists():
        return {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(path.read_text()).items()}
    out = measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in out.items()}))
    tmp.replace(path)
    return out


def rollout_returns(
    family: str, tasks: Sequence[Task], horizon: int, policy: str, episodes: int
) -> dict[str, np.ndarray]:
    """Mean return (and success rate where defined) per task of ``policy`` (``"oracle"`` or
    ``"random"``) over ``episodes`` seeded episodes, all tasks batched across the cores."""
    venv = gym.make_vec(
        f"icrl_bench/{family}",
        num_envs=len(tasks),
        vectorization_mode="vector_entry_point",
        tasks=list(tasks),
        autoreset_mode="Disabled",
        max_episode_steps=horizon,
    )
    rng = np.random.default_rng(0)
    n = len(tasks)
    total, success = np.zeros(n), np.zeros(n)
    for e in range(episodes):
        venv.reset(seed=[1000 * e + i for i in range(n)])  # type: ignore[arg-type]
        alive = np.ones(n, dtype=bool)
        hit = np.zeros(n, dtype=bool)
        for _ in range(horizon):
            if policy == "oracle":
                act = venv.unwrapped.oracle_action()  # type: ignore[attr-defined]
            else:
                act = random_actions(venv.single_action_space, n, rng)
            _, rew, term, trunc, info = venv.step(act)
            total += alive * rew
            hit |= alive & np.asarray(info.get("success", np.zeros(n)), dtype=bool)
            alive &= ~(term | trunc)
            if not alive.any():
                break
        success += hit
    venv.close()
    return {"return": total / episodes, "success": success / episodes}


def random_reference(family: str, tasks: Sequence[Task], horizon: int) -> np.ndarray:
    """The uniform-random policy's mean return per task (cached)."""
    tag = f"random{RANDOM_EPISODES}"
    return cached(
        family,
        tasks,
        horizon,
        tag,
        lambda: rollout_returns(family, tasks, horizon, "random", RANDOM_EPISODES),
    )["return"]


def scripted_expert_references(
    family: str, tasks: Sequence[Task], horizon: int
) -> dict[str, np.ndarray]:
    """Meta-World: the scripted expert (one episode: the env and policy are deterministic) and
    the random policy (:data:`RANDOM_EPISODES` seeded episodes), both measured and cached."""
    expert = cached(
        family,
        tasks,
        horizon,
        "expert",
        lambda: rollout_returns(family, tasks, horizon, "oracle", 1),
    )
    return {"random": random_reference(family, tasks, horizon), "oracle": expert["return"]}


def sac_expert_references(
    family: str, tasks: Sequence[Task], horizon: int
) -> dict[str, np.ndarray]:
    """Locomotion: random (measured) and expert (the SAC expert recipe's per-task return, once
    trained; without it only ``"random"``, and scoring says how to train it)."""
    random = random_reference(family, tasks, horizon)
    path = cache_path(family, tasks, horizon, "expert")
    if not path.exists():
        return {"random": random}
    expert = np.asarray(json.loads(path.read_text())["return"], dtype=np.float64)
    return {"random": random, "oracle": expert}


def missing_expert(family: str) -> MissingReferenceError:
    """The error for scoring a locomotion family whose expert reference is not trained yet."""
    return MissingReferenceError(
        f"{family}: no expert reference for its test tasks yet; train it with "
        f"`icrl-bench data references {family}` (SAC per test task; docs/tasks.md)"
    )
