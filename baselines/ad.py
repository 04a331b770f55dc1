"""Algorithm Distillation (AD; Laskin et al., 2022), with AD-epsilon's data (Zisman et al., 2023).

AD trains a causal transformer on windows of learning histories that span several episodes, to
predict the next action of the source learner. Because the windows cross episode boundaries, the
model learns the learner's improvement itself; at evaluation it acts from its own accumulated
context (``online-v1``), keeping a rolling window of ``context`` transitions, and improves in
context with frozen weights.

Attention is windowed: each token sees the ``context`` transitions up to itself, in training and
at evaluation, where a sliding KV cache carries the trial along exactly.

Tokens (``Config.tokens``):

* ``"transition"``: one token per step, ``emb(s_t) + emb(a_{t-1}) + emb(r_{t-1})``; the action
  ``a_t`` is read from that token. Training windows hold ``context + 1`` transitions so that the
  first token has its real previous action and reward. The first step of a trial has no previous
  action: it uses the action table's extra "none" row.
* ``"interleaved"``: three tokens per step, ``s_t, a_t, r_t``, as in the AD-epsilon code; ``a_t``
  is read from the ``s_t`` token.

Both use the shared core (:mod:`baselines.common`). Continuous actions (``Box``) use a continuous
action head (``Config.action_head``) and the zero vector, the middle of the action box, as "no
previous action"; continuous observations are standardised with the training data's statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from baselines.common.agent import TransformerAgent, rebuild_agent, stack_prompts
from baselines.common.data import WindowSampler
from baselines.common.embed import TransitionEmbedder
from baselines.common.heads import ActionHead, check_action_settings
from baselines.common.pipeline import fit
from baselines.common.trainer import Batch
from baselines.common.transformer import CausalTransformer, FfnFactory, KVCache

METHOD = "ad"
#: 2: action sampling with a temperature and coordinate embeddings of grid cells (new fields
#: whose defaults are version 1's behaviour, so version-1 checkpoints load unchanged)
VERSION = "2"


@dataclass
class Config:
    """AD hyperparameters (training settings are in ``TrainConfig``).

    Attributes:
        context: transitions in the model's window, in training and at evaluation (AD-epsilon:
            80 on Dark Room, i.e. 4 episodes of 20 steps).
        tokens: ``"transition"`` or ``"interleaved"`` (see the module docstring).
        d_model: token width.
        n_layers: transformer blocks (AD-epsilon: 4).
        n_heads: attention heads (AD-epsilon: 4).
        dropout: dropout in attention, residual branches and the feed-forward block.
        label_smoothing: of the cross-entropy (AD-epsilon: 0).
        action_head: ``"auto"`` (categorical, or ``"mse"`` for continuous actions),
            ``"mse"`` or ``"gaussian"`` (see :mod:`baselines.common.heads`).
        action_selection: ``"argmax"`` (AD-epsilon evaluates the mode) or ``"sample"`` (DICP,
            tommyma3's AD: without it, every test task walks the same path until a reward
            appears).
        temperature: softmax temperature of ``"sample"``.
        obs_coords: embed a grid cell's ``(x, y)`` (see :mod:`baselines.common.embed`).
        obs_table: also give every cell its own learned vector (``False`` with ``obs_coords``:
            held-out goal cells are embedded like any other cell).
        device: ``"auto"`` (CUDA, MPS, CPU) or a device name.
    """

    context: int = 80
    tokens: str = "transition"
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    dropout: float = 0.1
    label_smoothing: float = 0.0
    action_head: str = "auto"
    action_selection: str = "argmax"
    temperature: float = 1.0
    obs_coords: bool = False
    obs_table: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError("temperature must be positive")
        if self.tokens not in ("transition", "interleaved"):
            raise ValueError(f"tokens must be 'transition' or 'interleaved', got {self.tokens!r}")
        check_action_settings(self.action_head, self.action_selection)
        if self.context < 1:
            raise ValueError("context must be at least 1")


class ADModel(nn.Module):
    """Embeddings, the shared causal transformer and an action head.

    ``ffn_factory`` replaces the feed-forward blocks (T2MIR-AD's mixture-of-experts layers).
    """

    def __init__(
        self,
        cfg: Config,
        obs_info: dict[str, Any],
        act_info: dict[str, Any],
        ffn_factory: FfnFactory | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = TransitionEmbedder(
            obs_info, act_info, cfg.d_model, parts=3, coords=cfg.obs_coords, obs_table=cfg.obs_table
        )
        self.tokens_per_step = 1 if cfg.tokens == "transition" else 3
        self.core = CausalTransformer(
            cfg.d_model,
            cfg.n_layers,
            cfg.n_heads,
            cfg.dropout,
            ffn_factory=ffn_factory,
            window=cfg.context * self.tokens_per_step,
        )
        self.head = ActionHead(act_info, cfg.d_model, cfg.action_head)
        self.none_action = self.embed.action.none_index

    def none_actions(self, n: int, device: torch.device) -> Tensor:
        """ "No previous action" for ``n`` trials: the extra table row, or the zero vector."""
        if self.head.kind == "categorical":
            return torch.full((n,), self.none_action, device=device)
        return torch.zeros(n, self.head.dim, device=device)

    def step_tokens(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """``"transition"`` tokens ``[B, T, d]`` of ``(s_t, a_{t-1}, r_{t-1})``."""
        e = self.embed
        return e.obs(obs) + e.action(prev_action) + e.rewards(prev_reward)

    def sequence(self, obs: Tensor, actions: Tensor, rewards: Tensor) -> Tensor:
        """``"interleaved"`` tokens ``[B, 3T, d]``: ``s_0, a_0, r_0, s_1, ...``."""
        e = self.embed
        return e.interleave(e.obs(obs), e.action(actions), e.rewards(rewards))

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Training forward over windows: ``(logits [B, T, A], targets [B, T])``."""
        obs, act, rew = batch["observations"], batch["actions"], batch["rewards"]
        if self.cfg.tokens == "transition":
            x = self.step_tokens(obs[:, 1:], act[:, :-1], rew[:, :-1])
            return self.head(self.core(x)), act[:, 1:]
        h = self.core(self.sequence(obs, act, rew))
        return self.head(h[:, 0::3]), act


def loss_fn(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """The action head's loss (cross-entropy, or the continuous head's) of the next action over
    every position of every window."""
    assert isinstance(model, ADModel)
    out, targets = model(batch)
    return model.head.loss(out, targets, label_smoothing=model.cfg.label_smoothing)


def make_sampler(
    cfg: Config, ds: Any, batch_size: int, device: torch.device, paired: bool = False
) -> Any:
    """Batches of windows of ``context`` transitions (plus the one before, for
    ``"transition"`` tokens); ``paired``: two windows per learning history (T2MIR)."""
    length = cfg.context + (1 if cfg.tokens == "transition" else 0)
    windows = WindowSampler(ds, length, device)
    return lambda rng: windows(batch_size, rng, paired=paired)


def train(
    env_id: str, dataset_id: str, raw: dict[str, Any], out_dir: str | Path, progress: bool = True
) -> Path:
    """Train AD on a dataset of learning histories; returns the checkpoint directory."""
    return fit(
        METHOD,
        VERSION,
        Config,
        env_id,
        dataset_id,
        raw,
        out_dir,
        make_model=lambda cfg, o, a: ADModel(cfg, o, a),
        make_sampler=make_sampler,
        loss_fn=loss_fn,
        progress=progress,
    )


class ADAgent(TransformerAgent):
    """AD acting from its own accumulated context, batched over trials.

    Its context is a KV cache trimmed to the attention window; ``reset`` clears it (and encodes
    a prompt when the protocol gives one).
    """

    name = METHOD

    def __init__(self, model: ADModel) -> None:
        super().__init__(model)
        self.model: ADModel = model
        self.prev_action: Tensor | None = None
        self.prev_reward: Tensor | None = None

    @torch.no_grad()
    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """Clear the context of ``num_envs`` trials; encode the prompts if given."""
        self.cache = KVCache()
        none = self.model.none_actions(num_envs, self.device)
        self.prev_action, self.prev_reward = none, torch.zeros(num_envs, device=self.device)
        p = stack_prompts(prompts, self.cfg.context) if prompts else None
        if p is None:
            return
        obs = self._t(p["observations"])
        act = self._actions(p["actions"])
        rew = self._t(p["rewards"], torch.float32)
        if self.cfg.tokens == "transition":
            prev_a = torch.cat([none[:, None], act[:, :-1]], dim=1)
            prev_r = torch.cat([torch.zeros_like(rew[:, :1]), rew[:, :-1]], dim=1)
            self.model.core(self.model.step_tokens(obs, prev_a, prev_r), cache=self.cache)
        else:
            self.model.core(self.model.sequence(obs, act, rew), cache=self.cache)
        self.prev_action, self.prev_reward = act[:, -1], rew[:, -1]

    @torch.no_grad()
    def logits(self, obs: np.ndarray) -> Tensor:
        """The head's output ``[B, out]`` for the current observations (appends their tokens)."""
        o = self._t(obs)[:, None]
        assert self.prev_action is not None and self.prev_reward is not None
        if self.cfg.tokens == "transition":
            x = self.model.step_tokens(o, self.prev_action[:, None], self.prev_reward[:, None])
        else:
            e = self.model.embed
            x = e.obs(o) + e.kind.weight[0]
        return self.model.head(self.model.core(x, cache=self.cache)[:, -1])

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
        """Remember the step: its action and reward enter the next token(s)."""
        a = self._actions(action)
        r = self._t(reward, torch.float32)
        if self.cfg.tokens == "interleaved":
            e = self.model.embed
            x = torch.cat(
                [e.action(a[:, None]) + e.kind.weight[1], e.rewards(r[:, None]) + e.kind.weight[2]],
                1,
            )
            self.model.core(x, cache=self.cache)
        self.prev_action, self.prev_reward = a, r


def load_agent_from(ckpt_dir: Path, meta: dict[str, Any]) -> ADAgent:
    """Rebuild the agent of a checkpoint directory."""
    return rebuild_agent(ckpt_dir, meta, Config, ADModel, ADAgent)
