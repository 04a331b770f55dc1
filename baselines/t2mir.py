"""T2MIR: token- and task-wise mixture-of-experts for in-context RL (T2MIR-AD and T2MIR-DPT).

T2MIR keeps AD's or DPT's model and training, and replaces the feed-forward block of the last
``moe_layers`` transformer blocks by two mixture-of-experts (MoE) layers side by side, whose
outputs (``d_model / 2`` wide each) are concatenated:

* **token-wise MoE** (6 experts, top-2): a router per token, with learned noise on its logits
  during training (noisy top-k gating); the softmax over the top-k logits weights the chosen
  experts. A load-balancing loss keeps experts in use:
  ``balance_weight * (CV^2(importance) + CV^2(load))``, where importance sums each expert's gate
  weights over the batch's tokens, load is the expected number of tokens routed to it under the
  gating noise (:func:`smooth_load`), and ``CV^2 = variance / mean^2`` (:func:`balance_loss`).
* **task-wise MoE** (8 experts, top-2): the same kind of router, no noise, no balance loss. A
  contrastive loss makes its routing task-aware (:func:`info_nce`): every training batch is
  two windows from each of ``batch / 2`` tasks; each window's task representation is its
  tokens' mean task-router distribution; a bilinear similarity ``q^T W k`` between the online
  router's representation (queries) and that of a slowly moving (EMA, ``ema_tau``) copy of the
  router (keys) is trained with a cross-entropy whose positive is the other window of the same
  task (both directions, averaged), weighted by ``contrastive_weight``.

Both variants reuse their base's agent: the MoE layers are ordinary feed-forward blocks at
evaluation, so the KV cache carries them exactly.

Differences from the reference code: its PointRobot configs route the task MoE on the mean over
the whole sequence (which, in training, lets every token see the future); here routing is per
token on every family, as in its Dark Room and HalfCheetah configs.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines import ad, dpt
from baselines.common.config import HistoryModelConfig, Validated
from baselines.common.pipeline import Recipe
from baselines.common.trainer import Batch
from baselines.common.transformer import MLP, CausalTransformer, FfnFactory

#: 2: rides on AD version 2 and DPT version 2 (their recipes; a version-1 T2MIR-DPT checkpoint
#: keeps DPT version 1's behaviour when loaded); 3: T2MIR-DPT's grid configs ride on DPT
#: version 3 (reward-gated context embedding)
VERSION = "3"


@dataclass
class MoESettings(Validated):
    """The T2MIR fields added to the base method's fields.

    Attributes:
        moe_layers: the last this many blocks get the MoE feed-forward (T2MIR: the last one).
        token_experts: experts of the token-wise MoE (T2MIR: 6).
        token_top_k: experts each token uses (T2MIR: 2).
        task_experts: experts of the task-wise MoE (T2MIR: 8; 12 for AD on Dark Room).
        task_top_k: experts each token uses in the task-wise MoE (T2MIR: 2).
        expert_hidden: hidden width of each expert (0: ``2 * d_model``).
        balance_weight: weight of the load-balancing loss (T2MIR: 0.1 for AD, 0.01 for DPT).
        contrastive_weight: weight of the contrastive loss (T2MIR: 0.01).
        ema_tau: update rate of the EMA router that gives the contrastive keys (T2MIR: 0.005).
    """

    moe_layers: int = 1
    token_experts: int = 6
    token_top_k: int = 2
    task_experts: int = 8
    task_top_k: int = 2
    expert_hidden: int = 0
    balance_weight: float = 0.1
    contrastive_weight: float = 0.01
    ema_tau: float = 0.005

    def check(self) -> None:
        """Validate the MoE fields together (a one-line ``ValueError``)."""
        super().check()
        if self.moe_layers < 1:
            raise ValueError("moe_layers must be at least 1")
        for n, k in (("token", self.token_top_k), ("task", self.task_top_k)):
            experts = getattr(self, f"{n}_experts")
            if not 1 <= k <= experts:
                raise ValueError(f"{n}_top_k must be between 1 and {n}_experts ({experts})")


@dataclass
class ADConfig(MoESettings, ad.ADFields, HistoryModelConfig):
    """T2MIR-AD: the shared fields, AD's (:class:`baselines.ad.ADFields`) and
    :class:`MoESettings`."""


@dataclass
class DPTConfig(MoESettings, dpt.DPTFields, HistoryModelConfig):
    """T2MIR-DPT: the shared fields, DPT's (:class:`baselines.dpt.DPTFields`) and
    :class:`MoESettings` (with T2MIR's balance weight for DPT)."""

    balance_weight: float = 0.01


def route(logits: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-``k`` routing: the chosen experts ``[N, k]`` and their weights, a softmax over the
    chosen logits only."""
    top, idx = logits.topk(k, dim=-1)
    return torch.softmax(top, dim=-1), idx


def smooth_load(clean: Tensor, noisy: Tensor, std: Tensor, k: int) -> Tensor:
    """Expected tokens per expert ``[E]`` under noisy top-``k`` gating (Shazeer et al., 2017).

    For each token and expert, the probability that the expert would be among the top ``k`` if
    only its own noise were redrawn: ``Phi((clean - threshold) / std)``, the threshold being the
    ``k``-th largest of the other experts' noisy logits. Unlike a count, it has a gradient for
    experts no token chose, which is what lets the balance loss revive them.
    """
    n_experts = clean.shape[-1]
    top = noisy.topk(min(k + 1, n_experts), dim=-1).values
    inside = noisy >= top[:, k - 1 : k]  # the expert is among the top k now
    if k < n_experts:
        threshold = torch.where(inside, top[:, k : k + 1], top[:, k - 1 : k])
    else:
        threshold = torch.full_like(noisy, -torch.inf)
    normal = torch.distributions.Normal(0.0, 1.0)
    return normal.cdf((clean - threshold) / std).sum(0)


def balance_loss(
    weights: Tensor, idx: Tensor, n_experts: int, load: Tensor | None = None
) -> Tensor:
    """``CV^2(importance) + CV^2(load)`` of one routing decision.

    Args:
        weights: gate weights ``[N, k]`` of the chosen experts.
        idx: chosen experts ``[N, k]``.
        n_experts: experts in the layer.
        load: the smooth load estimate ``[E]`` (:func:`smooth_load`); default the count of
            tokens routed to each expert (no gradient).

    Zero when every expert gets the same total weight and the same load.
    """
    importance = torch.zeros(n_experts, device=weights.device).index_add(
        0, idx.flatten(), weights.flatten().float()
    )
    if load is None:
        load = torch.bincount(idx.flatten(), minlength=n_experts).float()

    def cv2(x: Tensor) -> Tensor:
        return x.var(unbiased=False) / (x.mean().pow(2) + 1e-10)

    return cv2(importance) + cv2(load)


def info_nce(query: Tensor, key: Tensor, bilinear: Tensor) -> Tensor:
    """Symmetric InfoNCE of paired representations.

    Args:
        query: ``[2M, E]``; rows ``i`` and ``i + M`` come from the same task.
        key: ``[2M, E]``, the same windows through the key encoder (no gradient needed).
        bilinear: ``[E, E]``, the similarity ``q^T W k``.

    Returns:
        The mean of the cross-entropies that pick, for each window of one half, its partner
        among the other half's windows.
    """
    m = query.shape[0] // 2
    labels = torch.arange(m, device=query.device)
    losses = []
    for q, k in ((query[:m], key[m:]), (query[m:], key[:m])):
        logits = q @ bilinear @ k.T  # [M, M]
        losses.append(F.cross_entropy(logits - logits.max(dim=1, keepdim=True).values, labels))
    return 0.5 * (losses[0] + losses[1])


class Router(nn.Module):
    """``Linear(d, E, no bias) -> tanh -> Linear(E, E)``, with optional learned noise.

    A noisy router in training mode keeps ``last = (clean, noisy, std)`` of its last call, for
    :func:`smooth_load`.
    """

    def __init__(self, d_model: int, n_experts: int, noisy: bool) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, n_experts, bias=False), nn.Tanh(), nn.Linear(n_experts, n_experts)
        )
        self.noise = nn.Linear(d_model, n_experts) if noisy else None
        self.last: tuple[Tensor, Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        """Router logits ``[..., E]`` (noisy while training, when the router is noisy)."""
        logits = self.net(x)
        self.last = None
        if self.noise is not None and self.training:
            std = F.softplus(self.noise(x)) + 0.01
            noisy = logits + torch.randn_like(logits) * std
            self.last = (logits, noisy, std)
            return noisy
        return logits

    def load(self, k: int) -> Tensor | None:
        """The smooth load of the last call (``None`` unless it was noisy)."""
        return None if self.last is None else smooth_load(*self.last, k)


class MoE(nn.Module):
    """A top-k mixture of two-layer GELU experts, ``d_model -> out``."""

    def __init__(
        self,
        d_model: int,
        out: int,
        n_experts: int,
        top_k: int,
        hidden: int,
        noisy: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        self.n_experts, self.top_k = n_experts, top_k
        self.router = Router(d_model, n_experts, noisy)
        self.experts = nn.ModuleList(
            nn.Sequential(
                nn.Linear(d_model, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out)
            )
            for _ in range(n_experts)
        )
        self.out = out

    def mix(self, x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Route flat tokens ``x`` ``[N, d]`` by ``logits`` ``[N, E]``; returns the output
        ``[N, out]``, the weights and the chosen experts ``[N, k]``."""
        weights, idx = route(logits, self.top_k)
        y = x.new_zeros(x.shape[0], self.out)
        for e, expert in enumerate(self.experts):
            rows, slot = (idx == e).nonzero(as_tuple=True)
            if len(rows):
                y.index_add_(0, rows, expert(x[rows]) * weights[rows, slot, None])
        return y, weights, idx


class T2MIRFeedForward(nn.Module):
    """The token-wise and task-wise MoE side by side, outputs concatenated to ``d_model``.

    While training, it records for the loss: ``aux_loss`` (its load-balancing loss, unweighted)
    and ``task_probs`` / ``task_keys`` (``[B, T, E]`` task-router distributions of the online
    router and of its EMA copy).
    """

    def __init__(self, d_model: int, s: MoESettings, dropout: float) -> None:
        super().__init__()
        hidden = s.expert_hidden or 2 * d_model
        half = d_model // 2
        self.token = MoE(d_model, half, s.token_experts, s.token_top_k, hidden, True, dropout)
        self.task = MoE(
            d_model, d_model - half, s.task_experts, s.task_top_k, hidden, False, dropout
        )
        self.key_router = copy.deepcopy(self.task.router).requires_grad_(False)
        self.bilinear = nn.Parameter(torch.eye(s.task_experts))
        self.tau = s.ema_tau
        self.aux_loss: Tensor | None = None
        self.task_probs: Tensor | None = None
        self.task_keys: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, d] -> [B, T, d]``."""
        b, t, d = x.shape
        flat = x.reshape(b * t, d)
        tok_logits = self.token.router(flat)
        tok, w, idx = self.token.mix(flat, tok_logits)
        task_logits = self.task.router(flat)
        task, _, _ = self.task.mix(flat, task_logits)
        if self.training:
            with torch.no_grad():  # the EMA key router follows the online one
                for p_key, p in zip(
                    self.key_router.parameters(), self.task.router.parameters(), strict=True
                ):
                    p_key.lerp_(p, self.tau)
                keys = self.key_router(flat.detach())
            load = self.token.router.load(self.token.top_k)
            self.aux_loss = balance_loss(w, idx, self.token.n_experts, load)
            self.task_probs = torch.softmax(task_logits, -1).view(b, t, -1)
            self.task_keys = torch.softmax(keys, -1).view(b, t, -1)
        else:
            self.aux_loss = self.task_probs = self.task_keys = None
        return torch.cat([tok, task], dim=-1).view(b, t, d)


def moe_factory(n_layers: int, s: MoESettings, dropout: float) -> FfnFactory:
    """Feed-forward blocks: T2MIR's MoE in the last ``s.moe_layers``, the standard MLP before."""

    def make(i: int, d: int) -> nn.Module:
        if i >= n_layers - s.moe_layers:
            return T2MIRFeedForward(d, s, dropout)
        return MLP(d, 4 * d, dropout)

    return make


def contrastive(model: nn.Module, pool: Tensor | None = None) -> Tensor:
    """The InfoNCE loss of every MoE block's task routing over the last forward's windows.

    ``pool`` ``[B, T]`` selects the tokens averaged into a window's representation (all by
    default).
    """
    total = []
    for module in model.modules():
        if isinstance(module, T2MIRFeedForward) and module.task_probs is not None:
            q, k = module.task_probs, module.task_keys
            assert k is not None
            if pool is None:
                qm, km = q.mean(1), k.mean(1)
            else:
                w = pool.float()[..., None] / pool.float().sum(1).clamp_min(1)[:, None, None]
                qm, km = (q * w).sum(1), (k * w).sum(1)
            total.append(info_nce(qm, km, module.bilinear))
    return torch.stack(total).sum()


def _moe_loss(
    model: nn.Module, cfg: Any, base: Tensor, scalars: Mapping[str, float], pool: Tensor | None
) -> tuple[Tensor, Mapping[str, float]]:
    core: CausalTransformer = model.core  # type: ignore[assignment]
    balance = core.aux_loss()
    assert balance is not None
    nce = contrastive(model, pool)
    loss = base + cfg.balance_weight * balance + cfg.contrastive_weight * nce
    return loss, {**scalars, "balance": float(balance.detach()), "contrastive": float(nce.detach())}


def ad_loss(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """AD's loss plus the balance and contrastive losses."""
    base, scalars = ad.loss_fn(model, batch)
    return _moe_loss(model, model.cfg, base, scalars, None)


def dpt_loss(model: nn.Module, batch: Batch) -> tuple[Tensor, Mapping[str, float]]:
    """DPT's loss plus the balance and contrastive losses (pooled over context tokens, not
    queries)."""
    base, scalars = dpt.loss_fn(model, batch)
    n = batch["observations"].shape[1]
    device = batch["observations"].device
    cfg = model.cfg
    assert isinstance(cfg, dpt.DPTFields)
    tokens = n + len(dpt.prefix_sizes(n, cfg.query_every))  # context, then the queries
    pool = torch.zeros(batch["observations"].shape[0], tokens, dtype=torch.bool, device=device)
    pool[:, :n] = True
    return _moe_loss(model, model.cfg, base, scalars, pool)


def make_ad(cfg: ADConfig, obs_info: dict[str, Any], act_info: dict[str, Any]) -> ad.ADModel:
    """AD's model with T2MIR's MoE blocks."""
    return ad.ADModel(cfg, obs_info, act_info, moe_factory(cfg.n_layers, cfg, cfg.dropout))


def make_dpt(cfg: DPTConfig, obs_info: dict[str, Any], act_info: dict[str, Any]) -> dpt.DPTModel:
    """DPT's model with T2MIR's MoE blocks."""
    return dpt.DPTModel(cfg, obs_info, act_info, moe_factory(cfg.n_layers, cfg, cfg.dropout))


AD_RECIPE = Recipe(
    VERSION, ADConfig, make_ad, functools.partial(ad.make_sampler, paired=True), ad_loss, ad.ADAgent
)
DPT_RECIPE = Recipe(
    VERSION,
    DPTConfig,
    make_dpt,
    functools.partial(dpt.make_sampler, paired=True),
    dpt_loss,
    dpt.DPTAgent,
    upgrade=dpt.legacy_meta,
)

__all__ = [
    "AD_RECIPE",
    "DPT_RECIPE",
    "ADConfig",
    "DPTConfig",
    "MoE",
    "MoESettings",
    "T2MIRFeedForward",
    "balance_loss",
    "info_nce",
    "route",
    "smooth_load",
]
