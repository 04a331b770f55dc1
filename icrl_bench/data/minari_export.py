"""Export a dataset to Minari's format, so that ``minari.load_dataset`` reads our data.

Each of our episodes becomes one Minari episode. Its observations are the episode's observations
followed by the last next-observation, as Minari expects. Its metadata (Minari's episode
``options``) records the task (as JSON), the task index, the history index and the episode
index within the history; per-step ``infos`` carry the same indices and the optimal action.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np

from icrl_bench.data.dataset import load
from icrl_bench.errors import IcrlBenchError


def default_minari_id(dataset_id: str) -> str:
    """``icrl_bench/<family>-<variant>-<instance>-v0`` in Minari's lower-case id form."""
    return "icrl_bench/" + dataset_id.lower().replace("/", "-") + "-v0"


def export_minari(dataset_id: str, minari_id: str | None = None) -> Path:
    """Write ``dataset_id`` as a Minari dataset and return its directory.

    The target is Minari's datasets directory (``$MINARI_DATASETS_PATH`` or its default).

    Raises:
        IcrlBenchError: if Minari (with HDF5 support) is not installed or the id exists.
    """
    try:  # the optional minari extra
        import minari
        from minari.data_collector.episode_buffer import EpisodeBuffer
    except ImportError:
        raise IcrlBenchError('Minari export needs `pip install "minari[hdf5]"`') from None
    ds = load(dataset_id)
    minari_id = minari_id or default_minari_id(ds.id)
    if minari_id in minari.list_local_datasets():
        raise IcrlBenchError(f"Minari dataset {minari_id!r} already exists")
    a = {k: np.asarray(v) for k, v in ds.arrays.items()}
    tasks = ds.manifest["tasks"]
    off = a["episode_offsets"]
    buffers = []
    for i in range(ds.num_episodes):
        s, e = int(off[i]), int(off[i + 1])
        task_index = int(a["task_index"][s])
        infos = {
            "task_index": a["task_index"][s:e],
            "history_index": a["history_index"][s:e],
            "episode_index": a["episode_index"][s:e],
        }
        if "optimal_actions" in a:
            infos["optimal_action"] = a["optimal_actions"][s:e].astype(np.int64)
        buffers.append(
            EpisodeBuffer(
                id=i,
                options={
                    "task": json.dumps(tasks[task_index], sort_keys=True),
                    "task_index": task_index,
                    "history_index": int(a["history_index"][s]),
                    "episode_index": int(a["episode_index"][s]),
                },
                observations=np.concatenate(
                    [a["observations"][s:e], a["next_observations"][e - 1 : e]]
                ),
                actions=a["actions"][s:e],
                rewards=a["rewards"][s:e].astype(np.float64),
                terminations=a["terminations"][s:e],
                truncations=a["truncations"][s:e],
                infos=infos,
            )
        )
    refs = ds.manifest["reference_returns"]
    spec = gym.spec(ds.manifest["env_id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari warns about unset author and permalink fields
        out = minari.create_dataset_from_buffers(
            dataset_id=minari_id,
            buffer=buffers,
            env=spec,
            algorithm_name=f"icrl-bench {ds.manifest['variant']}",
            description=f"icrl-bench dataset {ds.id}; recipe: {json.dumps(ds.manifest['recipe'])}",
            ref_min_score=float(np.mean(refs["random"])),
            ref_max_score=float(np.mean(refs["oracle"])),
            data_format="hdf5",
        )
    return Path(out.spec.data_path).parent
