"""Embeddings of observations, actions and rewards, and the two tokenisations.

* ``"transition"``: one token per transition, the sum of its parts' embeddings (AD-epsilon's
  ``(s_t, a_{t-1}, r_{t-1})`` token; DPT's ``(s, a, r, s')`` context token).
* ``"interleaved"``: one token per part, ``s_0, a_0, r_0, s_1, ...`` (AD's original layout and
  Decision Transformer's), each part tagged with a learned type embedding.

Each baseline names its token types in an ``enum.IntEnum`` (``Token.OBS``, ...): a type's value
is its row of :attr:`TransitionEmbedder.kind`, so the values are part of a checkpoint's weights.

Discrete spaces use lookup tables, optionally with (or, ``table=False``, replaced by) a linear map
of a grid cell's coordinates; continuous ones a linear map of the flattened value. A per-cell table
learns a separate vector for every cell, so a cell that was never a goal in training keeps an
untrained vector; coordinates make every cell an instance of one map, which is what lets a model
generalise to held-out goal cells. Action tables carry one extra row,
:attr:`SpaceEmbedding.none_index`, for "no previous action"; a continuous "none" is the zero
vector (the middle of the action box).

Continuous values are standardised before the linear map: observations with the training data's
per-dimension mean and standard deviation (set once by the training pipeline with
:meth:`SpaceEmbedding.set_stats`; they are buffers, so they travel in
``model.pt``), actions from their box ``[low, high]`` to ``[-1, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn


def space_info(space: gym.Space[Any]) -> dict[str, Any]:
    """A JSON-serialisable description of a space (stored in checkpoints)."""
    if isinstance(space, gym.spaces.Discrete):
        return {"kind": "discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        info: dict[str, Any] = {"kind": "box", "shape": list(space.shape)}
        if np.isfinite(space.low).all() and np.isfinite(space.high).all():
            info["low"] = np.asarray(space.low, dtype=np.float64).reshape(-1).tolist()
            info["high"] = np.asarray(space.high, dtype=np.float64).reshape(-1).tolist()
        return info
    raise TypeError(f"unsupported space {space}")


def box_scale(info: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """Centre and half-width ``[dim]`` of a box (``0`` and ``1`` where it is unbounded): the
    affine map between the box and ``[-1, 1]``."""
    dim = int(np.prod(info["shape"]))
    if "low" not in info:
        return torch.zeros(dim), torch.ones(dim)
    low = torch.tensor(info["low"], dtype=torch.float32)
    high = torch.tensor(info["high"], dtype=torch.float32)
    return (high + low) / 2, ((high - low) / 2).clamp_min(1e-8)


class SpaceEmbedding(nn.Module):
    """Embed values of one space into ``d_model``.

    Args:
        info: :func:`space_info` of the space.
        d_model: output width.
        with_none: add a "none" entry (discrete: an extra row; continuous: the zero vector).
        coords: on a square grid's cell indices, also embed the cell's ``(x, y)``.
        table: discrete values get a lookup table (``False`` needs ``coords``: the cell is then
            embedded by its coordinates alone).
        scale: how a continuous value is standardised: ``"stats"`` (observations: the
            ``mean``/``std`` buffers, identity until set) or ``"box"`` (actions: the box to
            ``[-1, 1]``).
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        info: dict[str, Any],
        d_model: int,
        with_none: bool = False,
        coords: bool = False,
        scale: str = "stats",
        table: bool = True,
    ) -> None:
        super().__init__()
        self.discrete = info["kind"] == "discrete"
        self.scale = scale
        self.side = 0
        self.use_table = table
        if self.discrete:
            if not table and not coords:
                raise ValueError("a discrete embedding needs a table or coordinates (obs_coords)")
            self.none_index = int(info["n"])
            if table:
                self.table = nn.Embedding(int(info["n"]) + int(with_none), d_model)
            if coords:  # a square grid's cell x * side + y: also embed (x, y) linearly
                side = math.isqrt(int(info["n"]))
                if side * side != int(info["n"]):
                    raise ValueError(f"coords needs a square grid, got {info['n']} cells")
                self.side = side
                self.coords = nn.Linear(2, d_model)
        else:
            self.none_index = -1
            dim = int(np.prod(info["shape"]))
            self.linear = nn.Linear(dim, d_model)
            if scale == "box":
                mid, half = box_scale(info)
            else:
                mid, half = torch.zeros(dim), torch.ones(dim)
            self.register_buffer("mean", mid)
            self.register_buffer("std", half)

    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        """Standardise with these statistics (continuous ``"stats"`` embeddings; else a no-op)."""
        if not self.discrete and self.scale == "stats":
            self.mean.copy_(mean.reshape(self.mean.shape))
            self.std.copy_(std.reshape(self.std.shape))

    def standardise(self, x: Tensor) -> Tensor:
        """A continuous value ``[B, T, ...]`` flattened to ``[B, T, dim]`` and standardised."""
        return (x.flatten(2).float() - self.mean) / self.std

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T] (int) or [B, T, ...] (float) -> [B, T, d_model]``."""
        if self.discrete:
            out = self.table(x.long()) if self.use_table else None
            if self.side:
                cell = x.long()
                xy = torch.stack([cell // self.side, cell % self.side], dim=-1)
                at = self.coords(xy.float() / max(self.side - 1, 1))
                out = at if out is None else out + at
            assert out is not None
            return out
        return self.linear(self.standardise(x))


class TransitionEmbedder(nn.Module):
    """Embeddings of every part of a transition, plus type tags for interleaving.

    Args:
        obs_info: :func:`space_info` of the observation space.
        act_info: :func:`space_info` of the action space.
        d_model: token width.
        kinds: how many token types to learn a tag for (the size of the baseline's ``Token``).
        coords: on a square grid's cell-index observations, also embed the cell's ``(x, y)``
            (DPT's Dark Room states are coordinates).
        obs_table: observations get a per-value lookup table (``False`` with ``coords``: cells
            are embedded by their coordinates alone).
    """

    def __init__(
        self,
        obs_info: dict[str, Any],
        act_info: dict[str, Any],
        d_model: int,
        kinds: int = 4,
        coords: bool = False,
        obs_table: bool = True,
    ) -> None:
        super().__init__()
        self.obs = SpaceEmbedding(obs_info, d_model, coords=coords, table=obs_table)
        self.next_obs = SpaceEmbedding(obs_info, d_model, coords=coords, table=obs_table)
        self.action = SpaceEmbedding(act_info, d_model, with_none=True, scale="box")
        self.reward = nn.Linear(1, d_model)
        self.kind = nn.Embedding(kinds, d_model)

    def rewards(self, r: Tensor) -> Tensor:
        """``[B, T] -> [B, T, d_model]``."""
        return self.reward(r.float().unsqueeze(-1))

    def tag(self, tokens: Tensor, kind: int) -> Tensor:
        """``[..., d_model]`` tokens plus the type embedding of ``kind``."""
        return tokens + self.kind.weight[kind]

    def interleave(self, parts: Mapping[int, Tensor]) -> Tensor:
        """``k`` tensors ``[B, T, d]`` by token type -> ``[B, k*T, d]``, each tagged with its
        type, in the mapping's order per step: ``p0[0], p1[0], ..., p0[1], ...``."""
        tagged = [self.tag(tok, kind) for kind, tok in parts.items()]
        b, t, d = tagged[0].shape
        return torch.stack(tagged, dim=2).reshape(b, len(tagged) * t, d)
