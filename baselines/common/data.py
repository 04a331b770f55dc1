"""The bridge from the dataset store to training batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from icrl_bench.data.dataset import Dataset


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
    """

    def __init__(
        self,
        ds: Dataset,
        length: int,
        device: torch.device,
        lhf: dict[str, Any] | None = None,
    ) -> None:
        self.ds = ds
        self.length = length
        self.device = device
        self.weights = None
        if lhf:
            from icrl_bench.data.lhf import lhf_weights

            self.weights = lhf_weights(ds, **lhf)

    def __call__(self, batch: int, rng: np.random.Generator) -> dict[str, Tensor]:
        """``batch`` windows: every per-step array as a ``[batch, length, ...]`` tensor."""
        raw = self.ds.sample_windows(batch, self.length, rng, weights=self.weights)
        return {k: torch.as_tensor(v).to(self.device) for k, v in raw.items()}


def dataset_ref(ds: Dataset) -> dict[str, str]:
    """``{"id", "sha256"}`` of a dataset, as results files record it."""
    return {"id": ds.id, "sha256": ds.sha256}
