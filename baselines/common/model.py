"""The body every baseline's model shares: token embeddings, the causal transformer and an action
head, sized by the config's shared fields (:class:`~baselines.common.config.ModelConfig`)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar

from torch import nn

from baselines.common.embed import TransitionEmbedder
from baselines.common.heads import ActionHead
from baselines.common.transformer import CausalTransformer, FfnFactory


class SequenceModel(nn.Module):
    """``embed`` (a :class:`~baselines.common.embed.TransitionEmbedder`), ``core`` (the shared
    :class:`~baselines.common.transformer.CausalTransformer`) and ``head`` (an
    :class:`~baselines.common.heads.ActionHead`), built in that order (the order fixes how the
    seeded initialisation is drawn, so it is part of a run's reproducibility).

    A baseline's model sets :attr:`token_types` (its ``Token`` enum) and :attr:`grid`, and
    defines :meth:`attention_window` and, for parts of its own, :meth:`build`.

    Args:
        cfg: the baseline's config (kept as ``cfg``).
        obs_info: the observation space's :func:`~baselines.common.embed.space_info`.
        act_info: the action space's.
        ffn_factory: replaces the feed-forward blocks (T2MIR's mixture-of-experts layers).
    """

    #: the token types the embedder tags (the baseline's ``Token`` enum)
    token_types: ClassVar[type[IntEnum]]
    #: embed grid cells per the config's ``obs_coords`` and ``obs_table`` (configs that have
    #: them), rather than by a per-cell table alone
    grid: ClassVar[bool] = False

    def __init__(
        self,
        cfg: Any,
        obs_info: dict[str, Any],
        act_info: dict[str, Any],
        ffn_factory: FfnFactory | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        cells = {"coords": cfg.obs_coords, "obs_table": cfg.obs_table} if self.grid else {}
        kinds = len(self.token_types)
        self.embed = TransitionEmbedder(obs_info, act_info, cfg.d_model, kinds=kinds, **cells)
        self.core = CausalTransformer(
            cfg.d_model,
            cfg.n_layers,
            cfg.n_heads,
            cfg.dropout,
            ffn_factory=ffn_factory,
            window=self.attention_window(cfg),
        )
        self.head = ActionHead(act_info, cfg.d_model, cfg.action_head)
        self.build(obs_info, act_info)

    def build(self, obs_info: dict[str, Any], act_info: dict[str, Any]) -> None:
        """Add the baseline's own modules and buffers, after the shared ones (none here)."""

    @classmethod
    def attention_window(cls, cfg: Any) -> int | None:
        """How many tokens each token attends to, itself included (``None``: all before it)."""
        return None
