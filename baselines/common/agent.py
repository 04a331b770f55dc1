"""What every transformer agent shares at evaluation: the batch of trials, a KV cache, prompts,
action selection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from baselines.common.transformer import KVCache


def select(logits: Tensor, mode: str, generator: torch.Generator) -> np.ndarray:
    """Actions from ``[B, A]`` logits: ``"sample"`` from the softmax or ``"argmax"``."""
    if mode == "argmax":
        return logits.argmax(dim=-1).cpu().numpy()
    probs = torch.softmax(logits.float(), dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).numpy()


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

    Subclasses define ``reset``, ``logits(obs)`` and ``observe``; ``act`` turns the logits into
    actions per ``cfg.action_selection``.
    """

    name = "transformer"

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()
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

    def logits(self, obs: np.ndarray) -> Tensor:
        """Action logits ``[B, A]`` for the current observations."""
        raise NotImplementedError

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Choose actions from the logits (argmax or sampled, per the config)."""
        return select(self.logits(obs), self.cfg.action_selection, self.generator)
