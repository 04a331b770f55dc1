"""The causal transformer every baseline shares.

* Pre-LayerNorm blocks; attention through ``torch.nn.functional.scaled_dot_product_attention``.
* Rotary position embeddings (RoPE): attention depends on how far apart two tokens are, not on
  where the trial started.
* Sliding-window attention (``window``): every token attends to itself and the ``window - 1``
  tokens before it, in every layer. Training sequences no longer than the window are plain causal
  attention. A trial longer than the window is then one well-defined computation, and the KV
  cache reproduces it exactly: it keeps the last ``window - 1`` keys and values of every layer.
* A :class:`KVCache` for step-by-step inference: ``forward(x, cache=c)`` attends to the cached
  tokens and appends the new ones; ``store=False`` attends without appending (DPT's query).
* Segments (optional): an integer id per token. A token attends only to earlier tokens of its
  own segment, and to tokens of segment :data:`SHARED` (a prompt every token may read). Decision
  Transformer's episodes inside one training window, an evaluation env whose episode restarted
  while the others run on, and left padding (its own segment) are all segments. The KV cache
  keeps the segment of every cached token.
* A pluggable feed-forward block: ``ffn_factory(layer_index, d_model)`` returns the module of
  each layer (T2MIR swaps in mixture-of-experts layers). A block may expose ``aux_loss``
  (a scalar tensor set during its forward), which :meth:`CausalTransformer.aux_loss` sums.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """The standard feed-forward block: Linear, GELU, Linear, dropout."""

    def __init__(self, d_model: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, hidden)
        self.out = nn.Linear(hidden, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., d_model] -> [..., d_model]``."""
        return self.drop(self.out(F.gelu(self.fc(x))))


FfnFactory = Callable[[int, int], nn.Module]

#: the segment id of tokens every token may attend to (prompts)
SHARED = -1


def rope_angles(positions: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """``cos`` and ``sin`` of the rotary angles, ``[T, head_dim // 2]`` float32.

    Angles are formed in float64, so that positions in the tens of thousands keep float32
    accuracy in the result.
    """
    inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = positions.to(torch.float64)[:, None] * inv.to(positions.device)[None, :]
    return ang.cos().float(), ang.sin().float()


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Apply RoPE to ``x`` ``[B, H, T, Dh]`` (pairs are the two halves of the head)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class KVCache:
    """Keys and values of every layer for a batch of trials.

    The model trims it to its attention window as tokens arrive; :attr:`position` counts every
    token ever stored (the absolute position of the next one).
    """

    def __init__(self) -> None:
        self.keys: list[Tensor | None] = []
        self.values: list[Tensor | None] = []
        #: segment id ``[B, n]`` of every cached token (``None`` when segments are not used)
        self.segments: Tensor | None = None
        #: absolute position of the next token
        self.position = 0

    def __len__(self) -> int:
        k = self.keys[0] if self.keys else None
        return 0 if k is None else int(k.shape[2])

    def past(self, layer: int, keep: int | None) -> tuple[Tensor | None, Tensor | None]:
        """The last ``keep`` cached keys and values of ``layer`` (all if ``keep`` is None)."""
        while len(self.keys) <= layer:
            self.keys.append(None)
            self.values.append(None)
        k, v = self.keys[layer], self.values[layer]
        if k is not None and v is not None and keep is not None and k.shape[2] > keep:
            k, v = k[:, :, k.shape[2] - keep :], v[:, :, v.shape[2] - keep :]
        return k, v

    def store(self, layer: int, k: Tensor, v: Tensor) -> None:
        """Replace ``layer``'s cache (the caller passes past and new tokens together)."""
        self.keys[layer], self.values[layer] = k, v


def segment_mask(band: Tensor, query: Tensor, keys: Tensor) -> Tensor:
    """``band`` ``[rows, cols]`` restricted to same-segment or :data:`SHARED` keys, for segment
    ids ``query`` ``[B, rows]`` and ``keys`` ``[B, cols]``; returns ``[B, 1, rows, cols]``."""
    same = (query[:, :, None] == keys[:, None, :]) | (keys[:, None, :] == SHARED)
    return (band[None] & same)[:, None]


def band_mask(rows: int, cols: int, window: int | None, device: torch.device) -> Tensor:
    """Boolean ``[rows, cols]`` mask (True attends) of the last ``rows`` tokens of a sequence of
    ``cols``: causal, and at most ``window`` tokens back (itself included)."""
    r = torch.arange(cols - rows, cols, device=device)[:, None]
    c = torch.arange(cols, device=device)[None, :]
    mask = c <= r
    if window is not None:
        mask &= c > r - window
    return mask


class Block(nn.Module):
    """Pre-LN transformer block: attention then the feed-forward module."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, ffn: nn.Module) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = ffn
        self.dropout = dropout
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        cos: Tensor | None,
        sin: Tensor | None,
        mask: Tensor | None,
        past: tuple[Tensor | None, Tensor | None],
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Returns the output and this layer's keys and values (past and new together)."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        if cos is not None and sin is not None:  # None: every token at position 0 (a set)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        pk, pv = past
        if pk is not None and pv is not None:
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
        p = self.dropout if self.training else 0.0
        if mask is None:
            att = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, t, d)))
        x = x + self.ffn(self.ln2(x))
        return x, k, v


class CausalTransformer(nn.Module):
    """A stack of :class:`Block` with a final LayerNorm, over already-embedded tokens.

    Args:
        d_model: token width.
        n_layers: blocks.
        n_heads: attention heads per block.
        dropout: dropout on attention, residual branches and the default MLP.
        ffn_factory: ``(layer_index, d_model) -> module``; default a 4x GELU :class:`MLP`.
        window: tokens each token attends to (itself included); ``None`` is unlimited.
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        n_heads: int,
        dropout: float = 0.0,
        ffn_factory: FfnFactory | None = None,
        window: int | None = None,
    ) -> None:
        super().__init__()
        if window is not None and window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        if (d_model // n_heads) % 2:
            raise ValueError("RoPE needs an even head width (d_model / n_heads)")
        make = ffn_factory or (lambda _i, d: MLP(d, 4 * d, dropout))
        self.d_model, self.n_heads = d_model, n_heads
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, dropout, make(i, d_model)) for i in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.apply(_init)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        positions: Tensor | None = None,
        cache: KVCache | None = None,
        store: bool = True,
        segments: Tensor | None = None,
    ) -> Tensor:
        """Run the blocks.

        Args:
            x: ``[B, T, d_model]`` embedded tokens.
            attn_mask: boolean ``[T, T_total]`` (True attends); default causal.
            positions: absolute positions ``[T]`` of the tokens; default the next ``T``
                positions of the cache (or ``0..T-1``).
            cache: attend to and (if ``store``) append to this cache.
            store: append the new tokens to ``cache``; ``False`` only reads it.
            segments: segment ids ``[B, T]`` of the new tokens (see the module docstring);
                combined with ``attn_mask`` when both are given.

        Returns:
            ``[B, T, d_model]``.
        """
        t = x.shape[1]
        start = cache.position if cache is not None else 0
        if positions is None:
            positions = torch.arange(start, start + t, device=x.device)
            rotate = start + t > 1  # known without reading the tensor (torch.compile-friendly)
        else:
            rotate = bool(positions.any())
        cos: Tensor | None = None
        sin: Tensor | None = None
        if rotate:  # at position 0 the rotation is the identity: skip it
            cos, sin = rope_angles(positions, self.d_model // self.n_heads)
            cos, sin = cos.to(x.device), sin.to(x.device)
        keep = None if self.window is None else self.window - 1
        n_past = len(cache) if cache is not None else 0
        if n_past and keep is not None:
            n_past = min(n_past, keep)
        key_segments = None
        if segments is not None:
            past_seg = cache.segments if cache is not None and n_past else None
            if n_past and past_seg is None:
                past_seg = torch.zeros(x.shape[0], n_past, dtype=segments.dtype, device=x.device)
            if past_seg is not None:
                past_seg = past_seg[:, past_seg.shape[1] - n_past :]
                key_segments = torch.cat([past_seg, segments], dim=1)
            else:
                key_segments = segments
        mask = attn_mask
        if mask is None and (
            n_past or segments is not None or (self.window is not None and t > self.window)
        ):
            mask = band_mask(t, n_past + t, self.window, x.device)
        if mask is not None and segments is not None and key_segments is not None:
            mask = segment_mask(mask, segments, key_segments)
        for i, block in enumerate(self.blocks):
            past = cache.past(i, keep) if cache is not None else (None, None)
            x, k, v = block(x, cos, sin, mask, past)
            if cache is not None and store:
                cache.store(i, k, v)
        if cache is not None and store:
            cache.position = start + t
            if key_segments is not None:
                cache.segments = key_segments
        return self.ln_f(x)

    def aux_loss(self) -> Tensor | None:
        """Sum of the ``aux_loss`` the feed-forward blocks set in the last forward, if any."""
        losses = [getattr(b.ffn, "aux_loss", None) for b in self.blocks]
        found = [loss for loss in losses if loss is not None]
        return torch.stack(found).sum() if found else None


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)


__all__ = [
    "MLP",
    "SHARED",
    "Block",
    "CausalTransformer",
    "FfnFactory",
    "KVCache",
    "band_mask",
    "rope_angles",
    "segment_mask",
]
