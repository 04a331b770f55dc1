"""What every transformer agent shares at evaluation: the batch of trials, a KV cache, prompts,
action selection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor


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
