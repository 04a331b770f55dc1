"""The bridge from the dataset store to training batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from icrl_bench.data.dataset import Dataset
from icrl_bench.data.lhf import lhf_weights


class WindowSampler:
    """Draws windows of consecutive transitions (spanning episode boundaries within a history)
    and returns them as tensors on ``device``.

    Args:
        ds: an opened dataset.
        length: transitions per window.
        device: where the tensors go.
        lhf: Filtering-Learning-Histories weighting of the histories (``None``: uniform), as
            ``{"lam": ..., "temperature": ..., "keep": ...}`` for
            :func:`icrl_bench.data.lhf.lhf_weights`.
        returns_to_go: add ``returns_to_go``, each step's return to the end of its episode.
    """

    def __init__(
        self,
        ds: Dataset,
        length: int,
        device: torch.device,
        lhf: dict[str, Any] | None = None,
        returns_to_go: bool = False,
    ) -> None:
        self.ds = ds
        self.length = length
        self.device = device
        # computed once, in memory (4 bytes per transition), for Decision Transformers
        self.returns_to_go = ds.returns_to_go() if returns_to_go else None
        self.weights = None
        if lhf:
            self.weights = lhf_weights(ds, **lhf)

    def __call__(
        self, batch: int, rng: np.random.Generator, paired: bool = False
    ) -> dict[str, Tensor]:
        """``batch`` windows: every per-step array as a ``[batch, length, ...]`` tensor.

        With ``paired``, window ``i + batch // 2`` comes from the same learning history (so the
        same task) as window ``i``, at an independent position: the positive pairs of a
        contrastive loss (``batch`` must be even).
        """
        rows = self.returns_to_go is not None
        if not paired:
            raw = self.ds.sample_windows(
                batch, self.length, rng, weights=self.weights, with_rows=rows
            )
        else:
            if batch % 2:
                raise ValueError(f"a paired batch needs an even size, got {batch}")
            first = self.ds.sample_windows(
                batch // 2, self.length, rng, weights=self.weights, with_rows=rows
            )
            hist = first["history_index"][:, 0]
            second = self.ds.sample_windows(
                batch // 2, self.length, rng, histories=hist, with_rows=rows
            )
            raw = {k: np.concatenate([first[k], second[k]]) for k in first}
        if self.returns_to_go is not None:
            raw["returns_to_go"] = self.returns_to_go[raw.pop("rows")]
        return {k: torch.as_tensor(v).to(self.device) for k, v in raw.items()}


def dataset_ref(ds: Dataset) -> dict[str, str]:
    """``{"id", "sha256"}`` of a dataset, as results files record it."""
    return {"id": ds.id, "sha256": ds.sha256}
