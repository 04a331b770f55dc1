"""What every transformer agent shares at evaluation: the batch of trials, a KV cache, prompts,
action selection."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from baselines.common.heads import ActionHead
from baselines.common.transformer import KVCache


def stack_prompts(
    prompts: Sequence[Mapping[str, np.ndarray]], keep: int
) -> dict[str, np.ndarray] | None:
    """The last ``min(keep, shortest prompt)`` transitions of every prompt, stacked ``[B, T]``.

    A batched KV cache holds the same number of tokens for every trial, so prompts of different
    lengths (episodes that terminate early) are cut to the shortest one.
    """
    n = min(min(len(p["actions"]) for p in prompts), keep)
    if n == 0:
        return None
    names = ("observations", "actions", "rewards", "next_observations")
    return {k: np.stack([np.asarray(p[k])[len(p[k]) - n :] for p in prompts]) for k in names}


class TransformerAgent:
    """Base of the transformer agents: the frozen model, its KV cache, the sampling stream.

    Subclasses define ``reset``, ``logits(obs)`` (the action head's output) and ``observe``;
    ``act`` turns the head's output into actions per ``cfg.action_selection``. The model has an
    :class:`~baselines.common.heads.ActionHead` as ``model.head``.
    """

    name = "transformer"

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()
        self.head: ActionHead = model.head  # type: ignore[assignment]
        self.cfg: Any = model.cfg
        self.device = next(model.parameters()).device
        self.generator = torch.Generator().manual_seed(0)
        self.cache = KVCache()

    def seed(self, seed: int) -> None:
        """Seed the action sampling stream (the runner calls this before a trial)."""
        self.generator.manual_seed(seed)

    def _t(self, x: Any, dtype: torch.dtype | None = None) -> Tensor:
        """A tensor on the model's device (observations keep their dtype: the embedding casts)."""
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    def _actions(self, actions: Any) -> Tensor:
        """Actions as a tensor of the head's kind: ``long`` indices or ``float`` vectors."""
        discrete = self.head.kind == "categorical"
        return self._t(actions, torch.long if discrete else torch.float32)

    def logits(self, obs: np.ndarray) -> Tensor:
        """The action head's output ``[B, out]`` for the current observations."""
        raise NotImplementedError

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Choose actions from the head's output: its mode, or a sample (a categorical head's
        logits divided by the config's ``temperature``, where it has one), per the config."""
        out = self.logits(obs)
        temperature = float(getattr(self.cfg, "temperature", 1.0))
        if self.head.kind == "categorical" and temperature != 1.0:
            out = out / temperature
        return self.head.act(out, self.cfg.action_selection, self.generator)


A = TypeVar("A")


def rebuild_agent(
    ckpt_dir: Path,
    meta: dict[str, Any],
    config_cls: type,
    make_model: Callable[[Any, dict[str, Any], dict[str, Any]], nn.Module],
    agent_cls: Callable[[Any], A],
) -> A:
    """The agent of a checkpoint directory: its resolved config, the model with its weights on
    the config's device, wrapped in ``agent_cls``."""
    from baselines.common.checkpoint import load_weights
    from baselines.common.config import build
    from baselines.common.device import pick_device

    cfg: Any = build(config_cls, dict(meta["config"]["model"]), "model")
    model = make_model(cfg, meta["observation_space"], meta["action_space"])
    load_weights(model, ckpt_dir)
    return agent_cls(model.to(pick_device(cfg.device)))
