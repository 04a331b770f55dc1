"""Automatic device selection."""

from __future__ import annotations

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then the CPU; anything else is taken as a device name.

    Raises:
        ValueError: the requested device is not available here.
    """
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was requested but MPS is not available")
    return device
