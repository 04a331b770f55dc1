"""Decision Transformer (DT; Chen et al., 2021), the multi-task offline baseline.

DT models trajectories as a sequence of interleaved tokens, three per step: the return-to-go
``R_t`` (the return still to be collected from step ``t`` to the episode's end, divided by
``Config.return_scale``), the state ``s_t`` and the action ``a_t``. It predicts ``a_t`` from the
``s_t`` token, by supervised learning on the dataset's actions. Trained across the trajectories
of every training task, with no task information, it is the multi-task DT baseline that Meta-DT
compares against: whatever it adapts, it adapts from the current episode alone.

Context: ``Config.context`` steps (K=20 in DT and Meta-DT). Attention is windowed to those
``3K`` tokens, and tokens attend only within their own episode (the core's segments), so a
training window that crosses an episode boundary trains the start of the next episode with a
short context, as DT's left padding does.

Evaluation (``zero-shot-v1`` and ``online-v1``): every episode starts from the target return
(``Config.target``: by default the best episode return in the training data, Meta-DT's choice;
the median over training tasks of each task's best return; or a fixed ``target_return`` per
family). After each step the reward is subtracted
(``R_{t+1} = R_t - r_t``), and when an env's episode ends its return-to-go is reset to the
target and its earlier tokens become invisible (a new segment), while the other envs of the
batch run on. DT takes no prompt: prompted protocols are refused.

Differences from the original code: rotary relative positions instead of learned timestep
embeddings; a sliding KV cache instead of recomputing the last K steps (exact within K steps,
and one well-defined computation beyond); pre-LayerNorm blocks from the shared core.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from baselines.common.agent import Step, TransformerAgent
from baselines.common.config import ReturnModelConfig
from baselines.common.data import WindowSampler
from baselines.common.model import SequenceModel
from baselines.common.pipeline import Recipe
from baselines.common.trainer import Batch
from baselines.common.transformer import KVCache
from icrl_bench.data.dataset import Dataset
from icrl_bench.errors import IcrlBenchError

METHOD = "dt"
VERSION = "1"


class Token(IntEnum):
    """DT's token types, in their order within a step (rows of ``embed.kind``)."""

    RETURN_TO_GO = 0
    STATE = 1
    ACTION = 2


@dataclass
class Config(ReturnModelConfig):
    """DT hyperparameters: the shared fields (:class:`~baselines.common.config.ModelConfig`,
    :class:`~baselines.common.config.ReturnModelConfig`), whose defaults are those of Meta-DT's
    DT baseline: a window of K=20 steps, d_model 128, 3 blocks, 1 head, dropout 0.1 (DT's), and
    actions by their mode (DT is deterministic; ``action_head="auto"`` regresses continuous
    actions with a squared error, as DT does). DT adds no field of its own. Training settings
    are in ``TrainConfig``.
    """


class DTModel(SequenceModel):
    """Return-to-go, state and action embeddings, the shared core (windowed to ``context``
    steps) and an action head.

    The buffer ``target`` holds the evaluation target return (raw units), set from the training
    data or the config before training.
    """

    cfg: Config
    target: Tensor

    token_types = Token

    def build(self, obs_info: dict[str, Any], act_info: dict[str, Any]) -> None:
        """The ``target`` buffer, from the config until the data sets it."""
        self.register_buffer("target", torch.tensor(float(self.cfg.target_return)))

    @classmethod
    def attention_window(cls, cfg: Config) -> int:
        """``context`` steps of three tokens."""
        return len(Token) * cfg.context

    def rtg_tokens(self, rtg: Tensor) -> Tensor:
        """``[B, T]`` returns-to-go (raw units) -> ``[B, T, d]``."""
        return self.embed.tag(self.embed.rewards(rtg / self.cfg.return_scale), Token.RETURN_TO_GO)

    def state_tokens(self, obs: Tensor) -> Tensor:
        """``[B, T, ...]`` states -> ``[B, T, d]``."""
        return self.embed.tag(self.embed.obs(obs), Token.STATE)

    def action_tokens(self, actions: Tensor) -> Tensor:
        """``[B, T, ...]`` actions -> ``[B, T, d]``."""
        return self.embed.tag(self.embed.action(actions), Token.ACTION)

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Training forward over windows: ``(head output [B, T, out], target actions)``."""
        r, s, a = batch["returns_to_go"], batch["observations"], batch["actions"]
        e = self.embed
        rtg = e.rewards(r / self.cfg.return_scale)
        x = e.interleave(
            {Token.RETURN_TO_GO: rtg, Token.STATE: e.obs(s), Token.ACTION: e.action(a)}
        )
        segments = batch["episode_index"].long().repeat_interleave(len(Token), dim=1)
        h = self.core(x, segments=segments)  # [B, 3T, d]
        return self.head(h[:, Token.STATE :: len(Token)]), a


def loss_fn(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """The head's loss (squared error for continuous actions, cross-entropy for discrete ones)
    of every step's action, predicted from its state token."""
    assert isinstance(model, DTModel)
    out, targets = model(batch)
    return model.head.loss(out, targets)


def set_target(model: nn.Module, ds: Dataset) -> dict[str, Any]:
    """Set the evaluation target return from the training data (``target`` ``"data-max"`` or
    ``"task-median"``; ``"fixed"`` keeps ``target_return``).

    Works for any model with a ``target`` buffer and a ``cfg.target`` (DT and Meta-DT).
    """
    returns = ds.episode_returns()
    best = float(returns.max()) if len(returns) else 0.0
    median = best
    if len(returns):
        starts = np.asarray(ds.arrays["episode_offsets"])[:-1]
        tasks = np.asarray(ds.arrays["task_index"])[starts]
        per_task = np.full(int(tasks.max()) + 1, -np.inf)
        np.maximum.at(per_task, tasks, returns)
        median = float(np.median(per_task[np.isfinite(per_task)]))
    target: Tensor = model.target  # type: ignore[assignment]
    choice = model.cfg.target  # type: ignore[union-attr]
    if choice == "data-max":
        target.fill_(best)
    elif choice == "task-median":
        target.fill_(median)
    return {
        "best_episode_return": best,
        "task_median_best_return": median,
        "target_return": float(target),
    }


def make_sampler(cfg: Config, ds: Any, batch_size: int, device: torch.device) -> Any:
    """Batches of windows of ``context`` steps with their returns-to-go."""
    windows = WindowSampler(ds, cfg.context, device, returns_to_go=True)
    return functools.partial(windows, batch_size)


class DTAgent(TransformerAgent):
    """DT acting from a target return, batched, with a sliding KV cache.

    Attributes:
        rtg: the return-to-go of every env (raw units), as the next state token will see it.
        segment: every env's current episode number (its tokens' segment).
    """

    name = METHOD

    def __init__(self, model: DTModel) -> None:
        super().__init__(model)
        self.model: DTModel = model
        self.rtg = torch.zeros(0)
        self.segment = torch.zeros(0, dtype=torch.long)

    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """Start ``num_envs`` trials from the target return."""
        if prompts:
            raise IcrlBenchError("DT takes no prompt: evaluate it under zero-shot-v1 or online-v1")
        self.cache = KVCache()
        self.rtg = torch.full((num_envs,), float(self.model.target), device=self.device)
        self.segment = torch.zeros(num_envs, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def logits(self, obs: np.ndarray) -> Tensor:
        """The head's output ``[B, out]`` at the current states (appends ``R_t, s_t``)."""
        m = self.model
        x = torch.cat([m.rtg_tokens(self.rtg[:, None]), m.state_tokens(self._t(obs)[:, None])], 1)
        h = m.core(x, cache=self.cache, segments=self.segment[:, None].expand(-1, 2))
        return m.head(h[:, -1])

    def remember(self, step: Step) -> None:
        """Append ``a_t``, subtract the reward from the return-to-go, restart finished
        episodes from the target."""
        m = self.model
        m.core(
            m.action_tokens(self._actions(step.action)[:, None]),
            cache=self.cache,
            segments=self.segment[:, None],
        )
        self.rtg = self.rtg - self._reward(step)
        done = self._t(step.done, torch.bool)
        self.rtg = torch.where(done, m.target.to(self.rtg.dtype), self.rtg)
        self.segment = self.segment + done.long()


RECIPE = Recipe(VERSION, Config, DTModel, make_sampler, loss_fn, DTAgent, prepare=set_target)
