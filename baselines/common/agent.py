"""What every transformer agent shares at evaluation: the batch of trials, a KV cache, prompts,
action selection, and the agent protocol's ``act`` and ``observe``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


#: the runner's per-step arrays (``[num_envs, ...]``)
Arr = np.ndarray


@dataclass(frozen=True)
class Step:
    """One transition of every trial, as the runner hands it to ``observe``.

    Attributes:
        obs: the observations the actions were taken at.
        action: the actions taken.
        reward: the rewards received.
        next_obs: the observations after the step (the true last one where an episode ended).
        done: whether each trial's episode ended (terminated or truncated).
    """

    obs: Arr
    action: Arr
    reward: Arr
    next_obs: Arr
    done: Arr


class TransformerAgent:
    """Base of the transformer agents: the frozen model, its KV cache, the sampling stream.

    Subclasses define ``reset``, ``logits(obs)`` (the action head's output) and
    ``remember(step)`` (what a transition adds to the context); ``act`` turns the head's output
    into actions per ``cfg.action_selection``, and ``observe`` hands each transition to
    ``remember``. The model has an :class:`~baselines.common.heads.ActionHead` as
    ``model.head``.
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

    @torch.no_grad()
    def observe(
        self, obs: Arr, action: Arr, reward: Arr, next_obs: Arr, terminated: Arr, truncated: Arr
    ) -> None:
        """Append one transition of every trial to the context (the agent protocol's
        ``observe``; see :meth:`remember`)."""
        done = np.asarray(terminated) | np.asarray(truncated)
        o, a, r, n = (np.asarray(x) for x in (obs, action, reward, next_obs))
        self.remember(Step(o, a, r, n, done))

    def remember(self, step: Step) -> None:
        """Add a transition of every trial to the context."""
        raise NotImplementedError

    def _reward(self, step: Step) -> Tensor:
        """The step's rewards as a float tensor on the model's device."""
        return self._t(step.reward, torch.float32)
