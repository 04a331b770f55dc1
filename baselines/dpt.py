"""Decision-Pretrained Transformer (DPT; Lee et al., 2023).

DPT takes a query state and an in-context set of transitions ``(s, a, r, s')`` from the same
task, and predicts the optimal action at the query state. It is trained by supervised learning on
the optimal-action labels that the dataset store keeps for every step.

Layout. The reference code puts the query first and reads a prediction after every context
token, so one sequence trains every context size at once. A query in front would have to be
re-encoded with the whole context at every step, so here the query comes *after* the context:
the sequence is ``c_1 .. c_N, q_0 .. q_N``, where the query token ``q_j`` (same state, position
``j``) attends to ``c_1 .. c_j`` and itself only. That trains all ``N + 1`` context sizes in one
pass, like the reference, and at evaluation the context lives in a KV cache: each step runs one
query token against it without storing it (``store=False``), then appends the new transition.

Evaluation: ``online-v1`` (the context is the agent's own transitions so far, the last
``context`` of them) and ``offline-prompt-v1`` (the context starts as the prompt from the
dataset; the agent's own transitions are appended when ``append_own`` is true). Actions are
sampled from the predicted distribution (the reference's online mode) or taken by argmax (its
"greedy" offline mode), per ``action_selection``.

Continuous actions: the reference's continuous DPT regresses the optimal action with a squared
error; ``action_head="auto"`` does the same here (``"gaussian"`` is the alternative), and
continuous observations are standardised with the training data's statistics.
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

METHOD = "dpt"
VERSION = "1"


@dataclass
class Config:
    """DPT hyperparameters (training settings are in ``TrainConfig``).

    Attributes:
        context: most context transitions (the reference: the horizon, 500 on bandits and 100
            on Dark Room 10x10).
        d_model: token width (the reference: 32).
        n_layers: transformer blocks (the reference: 4).
        n_heads: attention heads (the reference's GPT-2 config hard-codes 1).
        dropout: dropout (the reference: 0).
        action_head: ``"auto"`` (categorical, or ``"mse"`` for continuous actions as in the
            reference), ``"mse"`` or ``"gaussian"``.
        action_selection: ``"sample"`` (online in the reference) or ``"argmax"`` (greedy).
        append_own: after a prompt, append the agent's own transitions to the context.
        obs_coords: also embed a grid cell's ``(x, y)`` (the reference's Dark Room states are
            coordinates; ours are cell indices).
        device: ``"auto"`` (CUDA, MPS, CPU) or a device name.
    """

    context: int = 100
    d_model: int = 32
    n_layers: int = 4
    n_heads: int = 1
    dropout: float = 0.0
    action_head: str = "auto"
    action_selection: str = "sample"
    append_own: bool = True
    obs_coords: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        check_action_settings(self.action_head, self.action_selection)
        if self.context < 1:
            raise ValueError("context must be at least 1")


def query_mask(n: int, device: torch.device | None = None) -> Tensor:
    """Attention mask ``[2n+1, 2n+1]`` of ``c_1..c_n, q_0..q_n`` (True attends): context causal,
    query ``q_j`` sees ``c_1..c_j`` and itself."""
    size = 2 * n + 1
    mask = torch.zeros(size, size, dtype=torch.bool, device=device)
    mask[:n, :n] = torch.ones(n, n, dtype=torch.bool, device=device).tril()
    j = torch.arange(n + 1, device=device)
    mask[n + j, n + j] = True
    mask[n:, :n] = torch.arange(n, device=device)[None, :] < j[:, None]
    return mask


class DPTModel(nn.Module):
    """Transition embeddings, the shared causal transformer and an action head.

    ``ffn_factory`` replaces the feed-forward blocks (T2MIR-DPT's mixture-of-experts layers).
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
            obs_info, act_info, cfg.d_model, parts=2, coords=cfg.obs_coords
        )
        # a query reads the last `context` transitions: a window of context + 1 tokens
        self.core = CausalTransformer(
            cfg.d_model,
            cfg.n_layers,
            cfg.n_heads,
            cfg.dropout,
            ffn_factory=ffn_factory,
            window=cfg.context + 1,
        )
        self.head = ActionHead(act_info, cfg.d_model, cfg.action_head)

    def context_tokens(
        self, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor
    ) -> Tensor:
        """``[B, T, d]`` tokens of context transitions."""
        e = self.embed
        x = e.obs(obs) + e.action(actions) + e.rewards(rewards) + e.next_obs(next_obs)
        return x + e.kind.weight[1]

    def query_tokens(self, obs: Tensor) -> Tensor:
        """``[B, T, d]`` tokens of query states."""
        return self.embed.obs(obs) + self.embed.kind.weight[0]

    def forward(self, batch: Batch) -> Tensor:
        """Training forward: the head's output ``[B, N + 1, out]`` for the query after 0..N
        context transitions."""
        obs = batch["observations"]
        b, n = obs.shape[:2]
        ctx = self.context_tokens(
            obs, batch["actions"], batch["rewards"], batch["next_observations"]
        )
        q = self.query_tokens(batch["query"][:, None]).expand(b, n + 1, -1)
        positions = torch.cat([torch.arange(n), torch.arange(n + 1)]).to(obs.device)
        h = self.core(
            torch.cat([ctx, q], dim=1), attn_mask=query_mask(n, obs.device), positions=positions
        )
        return self.head(h[:, n:])


def loss_fn(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """The head's loss (cross-entropy, or squared error for continuous actions) of the optimal
    action at the query, averaged over every context size."""
    assert isinstance(model, DPTModel)
    out = model(batch)
    label = batch["label"]
    target = label[:, None].expand(-1, out.shape[1], *label.shape[1:])
    loss, _ = model.head.loss(out, target)
    _, full = model.head.loss(out[:, -1], label)
    return loss, {f"{k}_full_context": v for k, v in full.items()}


def make_sampler(
    cfg: Config, ds: Any, batch_size: int, device: torch.device, paired: bool = False
) -> Any:
    """Batches of ``context`` transitions and a query state of the same window with its
    optimal action; ``paired``: two windows per learning history (T2MIR)."""
    if not ds.has_optimal_actions:
        raise ValueError(f"DPT needs optimal-action labels, and {ds.id} has none")
    windows = WindowSampler(ds, cfg.context, device)

    def sample(rng: np.random.Generator) -> Batch:
        batch = windows(batch_size, rng, paired=paired)
        # the query is a state of the same task, with its optimal action as the label
        pick = torch.as_tensor(rng.integers(cfg.context, size=batch_size), device=device)
        rows = torch.arange(batch_size, device=device)
        batch["query"] = batch["observations"][rows, pick]
        batch["label"] = batch["optimal_actions"][rows, pick]
        return batch

    return sample


def train(
    env_id: str, dataset_id: str, raw: dict[str, Any], out_dir: str | Path, progress: bool = True
) -> Path:
    """Train DPT on a dataset with optimal-action labels; returns the checkpoint directory."""
    return fit(
        METHOD,
        VERSION,
        Config,
        env_id,
        dataset_id,
        raw,
        out_dir,
        make_model=lambda cfg, o, a: DPTModel(cfg, o, a),
        make_sampler=make_sampler,
        loss_fn=loss_fn,
        progress=progress,
    )


class DPTAgent(TransformerAgent):
    """DPT acting from a context of transitions held in a sliding KV cache, batched."""

    name = METHOD

    def __init__(self, model: DPTModel) -> None:
        super().__init__(model)
        self.model: DPTModel = model
        self.prompted = False

    @torch.no_grad()
    def _append(self, obs: Any, actions: Any, rewards: Any, next_obs: Any) -> None:
        x = self.model.context_tokens(
            self._t(obs),
            self._actions(actions),
            self._t(rewards, torch.float32),
            self._t(next_obs),
        )
        self.model.core(x, cache=self.cache)

    def reset(
        self, num_envs: int, prompts: Sequence[Mapping[str, np.ndarray]] | None = None
    ) -> None:
        """Clear the context; start it from the prompts when given."""
        self.cache = KVCache()
        self.prompted = bool(prompts)
        p = stack_prompts(prompts, self.cfg.context) if prompts else None
        if p is not None:
            self._append(p["observations"], p["actions"], p["rewards"], p["next_observations"])

    @torch.no_grad()
    def logits(self, obs: np.ndarray) -> Tensor:
        """The head's output ``[B, out]`` for the optimal action at the current states (the
        context is unchanged)."""
        q = self.model.query_tokens(self._t(obs)[:, None])
        h = self.model.core(q, cache=self.cache, store=False)
        return self.model.head(h[:, -1])

    def observe(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Append the transition to the context (unless a prompt is to stay fixed)."""
        if self.prompted and not self.cfg.append_own:
            return
        self._append(obs[:, None], action[:, None], reward[:, None], next_obs[:, None])


def load_agent_from(ckpt_dir: Path, meta: dict[str, Any]) -> DPTAgent:
    """Rebuild the agent of a checkpoint directory."""
    return rebuild_agent(ckpt_dir, meta, Config, DPTModel, DPTAgent)
