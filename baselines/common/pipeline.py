"""Training a baseline end to end (dataset, device, model, metadata, trainer, checkpoint) and
loading it back, for every baseline alike: a baseline module declares its :class:`Recipe`, whose
:meth:`Recipe.fit` and :meth:`Recipe.load_agent` do both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from baselines.common.checkpoint import CheckpointError, load_weights, read_meta, write_meta
from baselines.common.config import ConfigError, TrainConfig, as_dict, build
from baselines.common.data import dataset_ref
from baselines.common.device import pick_device
from baselines.common.embed import SpaceEmbedding, space_info
from baselines.common.trainer import Batch, LossFn, seed_everything, train
from icrl_bench import data
from icrl_bench.data.dataset import Dataset
from icrl_bench.provenance import git_sha
from icrl_bench.registry import family


def spaces_of(env_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`space_info` of a family's observation and action spaces, read from one env (a
    simulator family's task space holds no simulator, so its spaces exist only in an env)."""
    env = gym.make(family(env_id).env_id)
    try:
        return space_info(env.observation_space), space_info(env.action_space)
    finally:
        env.close()


#: most rows read to estimate observation statistics (evenly strided over the dataset)
STATS_ROWS = 1_000_000


def observation_stats(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of a dataset's continuous observations.

    At most :data:`STATS_ROWS` evenly strided rows are read (the arrays are memory-mapped); a
    dimension that never varies gets a standard deviation of 1, so it maps to 0 rather than to
    infinity.
    """
    obs = ds.arrays["observations"]
    stride = max(1, len(obs) // STATS_ROWS)
    x = np.asarray(obs[::stride], dtype=np.float64).reshape(-1, int(np.prod(obs.shape[1:])))
    mean, std = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(std > 1e-6, std, 1.0)


def standardise_observations(model: nn.Module, ds: Dataset) -> dict[str, list[float]] | None:
    """Set every continuous observation embedding of ``model`` (each
    :class:`~baselines.common.embed.SpaceEmbedding` that standardises by statistics, including
    a world model's) to ``ds``'s statistics.

    Returns the statistics (for ``checkpoint.json``), or ``None`` for discrete observations.
    """
    if ds.arrays["observations"].dtype.kind in "iu":
        return None
    mean, std = observation_stats(ds)
    for module in model.modules():
        if isinstance(module, SpaceEmbedding):
            module.set_stats(
                torch.as_tensor(mean, dtype=torch.float32),
                torch.as_tensor(std, dtype=torch.float32),
            )
    return {"mean": mean.tolist(), "std": std.tolist()}


#: ``(cfg, obs_info, act_info) -> model``
ModelFactory = Callable[[Any, dict[str, Any], dict[str, Any]], nn.Module]
#: ``(cfg, dataset, batch_size, device) -> sample(rng)``
SamplerFactory = Callable[[Any, Dataset, int, torch.device], Callable[[np.random.Generator], Batch]]


@dataclass(frozen=True)
class Recipe:
    """What training and loading need from a baseline: each baseline module declares one, and
    :class:`baselines.methods.MethodSpec` names it.

    Attributes:
        version: the method's version (bumped when its model or training changes meaning).
        config: the baseline's ``Config`` dataclass (a
            :class:`~baselines.common.config.ModelConfig`).
        model: ``(cfg, obs_info, act_info) -> model``.
        sampler: ``(cfg, dataset, batch_size, device) -> sample(rng)``, the training batches.
        loss: ``(model, batch) -> (loss, scalars)``.
        agent: ``model -> agent``, the evaluation adapter.
        prepare: ``(model, dataset) -> facts`` run once before training, to set what the model
            takes from its data (a Decision Transformer's target return); the facts are
            recorded in ``checkpoint.json`` under ``data_facts``.
        upgrade: ``meta -> meta`` applied to a checkpoint's metadata before its config is
            built: an older version's missing fields set to the behaviour it was trained with.
    """

    version: str
    config: type
    model: ModelFactory
    sampler: SamplerFactory
    loss: LossFn
    agent: Callable[[Any], Any]
    prepare: Callable[[Any, Dataset], dict[str, Any]] | None = None
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def fit(
        self,
        method: str,
        env_id: str,
        dataset_id: str,
        raw: dict[str, Any],
        out_dir: str | Path,
        progress: bool = True,
        on_save: Callable[[int, nn.Module], None] | None = None,
    ) -> Path:
        """Train one baseline and write its checkpoint directory: the one training path of every
        baseline (dataset, device, model, metadata, then :func:`baselines.common.trainer.train`).

        Args:
            method: ``"ad"``, ``"dpt"``, ... (recorded in ``checkpoint.json``).
            env_id: the family it is trained for.
            dataset_id: the training dataset (must belong to ``env_id``'s family).
            raw: the raw config (``model``, ``train``, ``source``; see ``config.read_config``). The
                model config's ``context`` (transitions per sequence) sets the throughput shown.
            out_dir: the checkpoint directory (an existing run there is resumed).
            progress: show a progress bar.
            on_save: called with ``(step, model)`` after every checkpoint (see
                :func:`baselines.common.trainer.train`).
        """
        spec = family(env_id)
        cfg: Any = build(self.config, raw.get("model") or {}, "model")
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
        seed_everything(tcfg.seed)
        try:
            model = self.model(cfg, obs_info, act_info)
        except ValueError as exc:  # a setting that does not fit this family's spaces
            raise ConfigError(f"model: {exc}") from None
        stats = standardise_observations(model, ds)
        facts = self.prepare(model, ds) if self.prepare is not None else {}
        model = model.to(device)
        meta = {
            "method": method,
            "version": self.version,
            "env_id": spec.env_id,
            "dataset": dataset_ref(ds),
            "observation_space": obs_info,
            "action_space": act_info,
            "observation_stats": stats,
            "data_facts": facts,
            "config": resolved,
            "git_sha": git_sha(),
            "steps": tcfg.steps,
            "step": 0,
        }
        # the sampler checks the data against the config (a one-line ConfigError) before
        # anything is written
        sample = self.sampler(cfg, ds, tcfg.batch_size, device)
        if (out / "checkpoint.json").exists():  # a resume: the run must be this one
            previous = read_meta(out)
            check_resume(out, previous, meta)
            meta["step"] = int(previous.get("step", 0))
        for stale in out.glob(".*.tmp") if out.is_dir() else []:  # a killed run's partial writes
            stale.unlink(missing_ok=True)
        write_meta(out, meta)

        def saved(step: int, trained: nn.Module) -> None:
            write_meta(out, {**meta, "step": step})
            if on_save is not None:
                on_save(step, trained)

        train(
            model,
            sample,
            self.loss,
            tcfg,
            out,
            progress=progress,
            on_save=saved,
            tokens_per_batch=tcfg.batch_size * cfg.context,  # transitions per batch
        )
        write_meta(out, {**meta, "step": tcfg.steps})
        return out

    def load_agent(self, ckpt_dir: Path, meta: dict[str, Any]) -> Any:
        """The agent of a checkpoint directory: its resolved config, the model with its weights on
        the config's device, wrapped in the recipe's agent."""
        meta = self.upgrade(meta) if self.upgrade is not None else meta
        cfg: Any = build(self.config, dict(meta["config"]["model"]), "model")
        model = self.model(cfg, meta["observation_space"], meta["action_space"])
        load_weights(model, ckpt_dir)
        return self.agent(model.to(pick_device(cfg.device)))


#: train settings a resumed run may change: how long it trains and how often it logs and saves
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "log_every")


def check_resume(out: Path, previous: dict[str, Any], meta: dict[str, Any]) -> None:
    """Refuse to resume the run in ``out`` with another method, family, dataset or config,
    before any file there is touched.

    Raises:
        ConfigError: naming the first difference.
    """
    for key in ("method", "version", "env_id"):
        if previous.get(key) != meta[key]:
            raise ConfigError(
                f"{out} holds a run of {key} {previous.get(key)!r}, not {meta[key]!r}: train "
                "into another --out"
            )
    if (previous.get("dataset") or {}).get("sha256") != meta["dataset"]["sha256"]:
        raise ConfigError(
            f"{out} holds a run on dataset {(previous.get('dataset') or {}).get('id')!r}, not "
            f"{meta['dataset']['id']!r}: train into another --out"
        )
    old, new = previous.get("config") or {}, meta["config"]
    for section in ("model", "train"):
        before, after = old.get(section) or {}, new[section]
        for key in sorted(set(before) | set(after)):
            if section == "train" and key in RESUMABLE_CHANGES:
                continue
            if before.get(key) != after.get(key):
                raise ConfigError(
                    f"{out} holds a run with {section}.{key}={before.get(key)!r}, not "
                    f"{after.get(key)!r}: resume it with its own config or train into another "
                    "--out"
                )
