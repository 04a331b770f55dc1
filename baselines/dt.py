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
or a fixed ``target_return`` per family). After each step the reward is subtracted
(``R_{t+1} = R_t - r_t``), and when an env's episode ends its return-to-go is reset to the
target and its earlier tokens become invisible (a new segment), while the other envs of the
batch run on. DT takes no prompt: prompted protocols are refused.

Differences from the original code: rotary relative positions instead of learned timestep
embeddings; a sliding KV cache instead of recomputing the last K steps (exact within K steps,
and one well-defined computation beyond); pre-LayerNorm blocks from the shared core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from baselines.common.agent import TransformerAgent, rebuild_agent
from baselines.common.data import WindowSampler
from baselines.common.embed import TransitionEmbedder
from baselines.common.heads import ActionHead, check_action_settings
from baselines.common.pipeline import fit
from baselines.common.trainer import Batch
from baselines.common.transformer import CausalTransformer, KVCache
from icrl_bench.data.dataset import Dataset
from icrl_bench.errors import IcrlBenchError

METHOD = "dt"
VERSION = "1"
TARGETS = ("data-max", "fixed")


@dataclass
class Config:
    """DT hyperparameters (training settings are in ``TrainConfig``).

    Attributes:
        context: steps in the window, K (DT and Meta-DT: 20).
        d_model: token width (Meta-DT's DT: 128).
        n_layers: transformer blocks (Meta-DT's DT: 3).
        n_heads: attention heads (Meta-DT's DT: 1).
        dropout: dropout (DT: 0.1).
        return_scale: returns-to-go are divided by this (Meta-DT: 10 on PointRobot, 500 on
            HalfCheetahVel).
        target: ``"data-max"``, the best episode return in the training data, or ``"fixed"``,
            ``target_return``.
        target_return: the target return when ``target`` is ``"fixed"`` (raw units).
        action_head: ``"auto"`` (categorical, or ``"mse"`` for continuous actions as in DT),
            ``"mse"`` or ``"gaussian"``.
        action_selection: ``"argmax"`` (the mode; DT is deterministic) or ``"sample"``.
        device: ``"auto"`` (CUDA, MPS, CPU) or a device name.
    """

    context: int = 20
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 1
    dropout: float = 0.1
    return_scale: float = 1.0
    target: str = "data-max"
    target_return: float = 0.0
    action_head: str = "auto"
    action_selection: str = "argmax"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.context < 1:
            raise ValueError("context must be at least 1")
        if self.return_scale <= 0:
            raise ValueError("return_scale must be positive")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        check_action_settings(self.action_head, self.action_selection)


class DTModel(nn.Module):
    """Return-to-go, state and action embeddings, the shared core and an action head.

    The buffer ``target`` holds the evaluation target return (raw units), set from the training
    data or the config before training.
    """

    target: Tensor

    def __init__(self, cfg: Config, obs_info: dict[str, Any], act_info: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = TransitionEmbedder(obs_info, act_info, cfg.d_model, parts=3)
        self.core = CausalTransformer(
            cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.dropout, window=3 * cfg.context
        )
        self.head = ActionHead(act_info, cfg.d_model, cfg.action_head)
        self.register_buffer("target", torch.tensor(float(cfg.target_return)))

    def rtg_tokens(self, rtg: Tensor) -> Tensor:
        """``[B, T]`` returns-to-go (raw units) -> ``[B, T, d]`` (type 0)."""
        return self.embed.rewards(rtg / self.cfg.return_scale) + self.embed.kind.weight[0]

    def state_tokens(self, obs: Tensor) -> Tensor:
        """``[B, T, ...]`` states -> ``[B, T, d]`` (type 1)."""
        return self.embed.obs(obs) + self.embed.kind.weight[1]

    def action_tokens(self, actions: Tensor) -> Tensor:
        """``[B, T, ...]`` actions -> ``[B, T, d]`` (type 2)."""
        return self.embed.action(actions) + self.embed.kind.weight[2]

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Training forward over windows: ``(head output [B, T, out], target actions)``."""
        r, s, a = batch["returns_to_go"], batch["observations"], batch["actions"]
        e = self.embed
        x = e.interleave(e.rewards(r / self.cfg.return_scale), e.obs(s), e.action(a))
        segments = batch["episode_index"].long().repeat_interleave(3, dim=1)
        h = self.core(x, segments=segments)  # [B, 3T, d]
        return self.head(h[:, 1::3]), a


def loss_fn(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """The head's loss (squared error for continuous actions, cross-entropy for discrete ones)
    of every step's action, predicted from its state token."""
    assert isinstance(model, DTModel)
    out, targets = model(batch)
    return model.head.loss(out, targets)


def set_target(model: nn.Module, ds: Dataset) -> dict[str, Any]:
    """Set the evaluation target return from the training data (``target="data-max"``).

    Works for any model with a ``target`` buffer and a ``cfg.target`` (DT and Meta-DT).
    """
    returns = ds.episode_returns()
    best = float(returns.max()) if len(returns) else 0.0
    target: Tensor = model.target  # type: ignore[assignment]
    if model.cfg.target == "data-max":  # type: ignore[union-attr]
        target.fill_(best)
    return {"best_episode_return": best, "target_return": float(target)}


def _sampler(cfg: Config, ds: Any, batch_size: int, device: torch.device) -> Any:
    windows = WindowSampler(ds, cfg.context, device, returns_to_go=True)
    return lambda rng: windows(batch_size, rng)


def train(
    env_id: str, dataset_id: str, raw: dict[str, Any], out_dir: str | Path, progress: bool = True
) -> Path:
    """Train DT on a dataset of trajectories; returns the checkpoint directory."""
    return fit(
        METHOD,
        VERSION,
        Config,
        env_id,
        dataset_id,
        raw,
        out_dir,
        make_model=lambda cfg, o, a: DTModel(cfg, o, a),
        make_sampler=_sampler,
        loss_fn=loss_fn,
        progress=progress,
        prepare=set_target,
    )


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

    @torch.no_grad()
    def observe(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Append ``a_t``, subtract the reward from the return-to-go, restart finished
        episodes from the target."""
        m = self.model
        m.core(
            m.action_tokens(self._actions(action)[:, None]),
            cache=self.cache,
            segments=self.segment[:, None],
        )
        self.rtg = self.rtg - self._t(reward, torch.float32)
        done = self._t(np.asarray(terminated) | np.asarray(truncated), torch.bool)
        self.rtg = torch.where(done, m.target.to(self.rtg.dtype), self.rtg)
        self.segment = self.segment + done.long()


def load_agent_from(ckpt_dir: Path, meta: dict[str, Any]) -> DTAgent:
    """Rebuild the agent of a checkpoint directory."""
    return rebuild_agent(ckpt_dir, meta, Config, DTModel, DTAgent)
