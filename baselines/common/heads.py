"""Action heads: what every baseline puts on top of the transformer to predict an action.

* Discrete actions: ``"categorical"``, logits and cross-entropy.
* Continuous actions (a ``Box``), in the box scaled to ``[-1, 1]`` (the action embedding's
  scaling, :func:`~baselines.common.embed.box_scale`):

  - ``"mse"``: a deterministic ``tanh`` output and the squared error to the target action.
    Decision Transformer, Meta-DT and DPT's continuous code use it.
  - ``"gaussian"``: a diagonal Gaussian (mean and a state-dependent log standard deviation,
    clamped to ``[-5, 2]``) and the target's negative log-likelihood; sampled at evaluation
    (``action_selection="sample"``) or its mean taken (``"argmax"``), then clipped to the box.

The head's output is one tensor (logits, ``tanh`` means, or means and log standard deviations
side by side), so the agents handle every kind alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.common.config import ACTION_HEADS, check_choice
from baselines.common.embed import box_scale

#: the head kinds a config may name
KINDS = ACTION_HEADS
LOG_STD_RANGE = (-5.0, 2.0)


def resolve_kind(kind: str, act_info: dict[str, Any]) -> str:
    """The head kind for an action space: ``"auto"`` is categorical for discrete actions and
    ``"mse"`` for continuous ones; a mismatch is an error."""
    check_choice("action_head", kind, KINDS)
    discrete = act_info["kind"] == "discrete"
    if kind == "auto":
        return "categorical" if discrete else "mse"
    if discrete != (kind == "categorical"):
        space = "discrete" if discrete else "continuous"
        raise ValueError(f"action_head {kind!r} does not fit a {space} action space")
    return kind


class ActionHead(nn.Module):
    """A linear map from the transformer's width to the action distribution's parameters.

    Continuous heads hold the box's centre ``center`` and half-width ``radius`` as buffers.

    Args:
        act_info: :func:`~baselines.common.embed.space_info` of the action space.
        d_model: input width.
        kind: one of :data:`KINDS`.
    """

    center: Tensor
    radius: Tensor

    def __init__(self, act_info: dict[str, Any], d_model: int, kind: str = "auto") -> None:
        super().__init__()
        self.kind = resolve_kind(kind, act_info)
        if self.kind == "categorical":
            self.dim = int(act_info["n"])
            self.linear = nn.Linear(d_model, self.dim)
        else:
            self.dim = int(np.prod(act_info["shape"]))
            width = 2 * self.dim if self.kind == "gaussian" else self.dim
            self.linear = nn.Linear(d_model, width)
            mid, half = box_scale(act_info)
            self.register_buffer("center", mid)
            self.register_buffer("radius", half)

    def forward(self, h: Tensor) -> Tensor:
        """``[..., d_model] -> [..., out]`` (logits, ``tanh`` means, or means + log stds)."""
        out = self.linear(h)
        if self.kind == "mse":
            return torch.tanh(out)
        if self.kind == "gaussian":
            mean, log_std = out.split(self.dim, dim=-1)
            return torch.cat([torch.tanh(mean), log_std.clamp(*LOG_STD_RANGE)], dim=-1)
        return out

    def scale(self, actions: Tensor) -> Tensor:
        """Continuous actions in the box -> ``[-1, 1]`` (clipped)."""
        return ((actions.float() - self.center) / self.radius).clamp(-1.0, 1.0)

    def loss(
        self, out: Tensor, target: Tensor, mask: Tensor | None = None, label_smoothing: float = 0.0
    ) -> tuple[Tensor, dict[str, float]]:
        """The training loss of head outputs ``[..., out]`` against target actions.

        Args:
            out: the head's output.
            target: actions ``[...]`` (discrete) or ``[..., dim]`` (continuous, in the box).
            mask: optional boolean ``[...]``: which positions count.
            label_smoothing: of the cross-entropy (categorical only).

        Returns:
            The mean loss over counted positions, and a scalar to log (``accuracy`` or
            ``action_mse``, the latter in the ``[-1, 1]`` scale).
        """
        if self.kind == "categorical":
            per = F.cross_entropy(
                out.flatten(0, -2),
                target.flatten().long(),
                label_smoothing=label_smoothing,
                reduction="none",
            ).view(target.shape)
            hit = (out.argmax(-1) == target).float()
            return _masked(per, mask), {"accuracy": float(_masked(hit, mask))}
        y = self.scale(target.reshape(*out.shape[:-1], self.dim))
        mean = out[..., : self.dim]
        mse = (mean - y).pow(2).mean(-1)
        if self.kind == "mse":
            per = mse
        else:
            log_std = out[..., self.dim :]
            z = (y - mean) * torch.exp(-log_std)
            per = (0.5 * z.pow(2) + log_std).sum(-1) + 0.5 * self.dim * float(np.log(2 * np.pi))
        return _masked(per, mask), {"action_mse": float(_masked(mse.detach(), mask))}

    def act(self, out: Tensor, mode: str, generator: torch.Generator) -> np.ndarray:
        """Actions from head outputs ``[B, out]``: ``"argmax"`` (the mode) or ``"sample"``."""
        out = out.detach()
        if self.kind == "categorical":
            if mode == "argmax":
                return out.argmax(dim=-1).cpu().numpy()
            probs = torch.softmax(out.float(), dim=-1).cpu()
            return torch.multinomial(probs, 1, generator=generator).squeeze(1).numpy()
        x = out[..., : self.dim].float().cpu()
        if self.kind == "gaussian" and mode == "sample":
            std = torch.exp(out[..., self.dim :].float().cpu())
            noise = torch.randn(x.shape, generator=generator)
            x = (x + std * noise).clamp(-1.0, 1.0)
        actions = self.center.cpu() + self.radius.cpu() * x
        return actions.numpy().astype(np.float32)


def _masked(per: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return per.mean()
    m = mask.to(per.dtype)
    return (per * m).sum() / m.sum().clamp_min(1.0)
