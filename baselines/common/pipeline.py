"""Training a baseline end to end: dataset, device, model, metadata, trainer, checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from baselines.common.checkpoint import CheckpointError, write_meta
from baselines.common.config import as_dict, build
from baselines.common.data import dataset_ref
from baselines.common.device import pick_device
from baselines.common.embed import space_info
from baselines.common.trainer import Batch, LossFn, TrainConfig, seed_everything, train
from icrl_bench import data
from icrl_bench.data.dataset import Dataset
from icrl_bench.registry import family


def spaces_of(env_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`space_info` of a family's observation and action spaces."""
    core = family(env_id).core()
    return space_info(core.single_observation_space), space_info(core.single_action_space)


def fit(
    method: str,
    version: str,
    config_cls: type,
    env_id: str,
    dataset_id: str,
    raw: dict[str, Any],
    out_dir: str | Path,
    make_model: Callable[[Any, dict[str, Any], dict[str, Any]], nn.Module],
    make_sampler: Callable[
        [Any, Dataset, int, torch.device], Callable[[np.random.Generator], Batch]
    ],
    loss_fn: LossFn,
    progress: bool = True,
) -> Path:
    """Train one baseline and write its checkpoint directory.

    Args:
        method: ``"ad"``, ``"dpt"``, ...
        version: the method's version (bumped when its model or training changes meaning).
        config_cls: the baseline's ``Config`` dataclass.
        env_id: the family it is trained for.
        dataset_id: the training dataset (must belong to ``env_id``'s family).
        raw: the raw config (``model``, ``train``, ``source``; see ``config.read_config``).
        out_dir: the checkpoint directory (an existing run there is resumed).
        make_model: ``(cfg, obs_info, act_info) -> model``.
        make_sampler: ``(cfg, dataset, batch_size, device) -> sample(rng)``.
        loss_fn: ``(model, batch) -> (loss, scalars)``. The config's ``context`` (transitions
            per sequence) sets the throughput shown.
        progress: show a progress bar.
    """
    spec = family(env_id)
    cfg: Any = build(config_cls, raw.get("model") or {}, "model")
    tcfg = build(TrainConfig, raw.get("train") or {}, "train")
    ds = data.load(dataset_id)
    if ds.manifest.get("family") != spec.name:
        raise CheckpointError(
            f"dataset {dataset_id} is for {ds.manifest.get('family')}, not {spec.name}"
        )
    device = pick_device(getattr(cfg, "device", "auto"))
    obs_info, act_info = spaces_of(spec.name)
    out = Path(out_dir)
    resolved = {"model": as_dict(cfg), "train": as_dict(tcfg), "source": raw.get("source", "")}
    write_meta(
        out,
        {
            "method": method,
            "version": version,
            "env_id": spec.env_id,
            "dataset": dataset_ref(ds),
            "observation_space": obs_info,
            "action_space": act_info,
            "config": resolved,
        },
    )
    seed_everything(tcfg.seed)
    model = make_model(cfg, obs_info, act_info).to(device)
    sample = make_sampler(cfg, ds, tcfg.batch_size, device)
    train(
        model,
        sample,
        loss_fn,
        tcfg,
        out,
        progress=progress,
        tokens_per_batch=tcfg.batch_size * cfg.context,  # transitions per batch
    )
    return out
