"""Rotary encoding in the (Δη, Δφ) plane: geometry enters attention without pair tensors."""

from __future__ import annotations

import math

import torch
from torch import nn


class EtaPhiRotary(nn.Module):
    """2-D rotary embedding (RoFormer-style) driven by each particle's (Δη, Δφ).

    The first ``rotary_dim`` channels of every query and key head are split in two halves; the
    η half is rotated by angles ``ω Δη`` and the φ half by ``ω Δφ``. Because rotations compose,
    the logit between particles ``i`` and ``j`` then depends on their angular separation
    ``(η_j - η_i, φ_j - φ_i)`` (not on where the jet sits) — like ParT's ln Δ pair feature, but
    for ``O(N)`` work instead of an ``N × N`` tensor per head. The other channels stay
    content-only.

    The ``num_heads * rotary_dim / 4`` frequencies are spaced geometrically in
    ``[min_freq, max_freq]`` (radians per unit of η or φ) and dealt out to the heads in turn, so
    each head sees the whole range at a different offset: together the heads resolve separations
    from about ``1 / max_freq`` to ``1 / min_freq``. They are a fixed, non-persistent buffer.

    Args:
        rotary_dim: rotated channels per head, a multiple of 4.
        num_heads: attention heads ``H``.
        min_freq: lowest angular frequency.
        max_freq: highest angular frequency.

    Shapes:
        - coords: ``[B, N, 2]`` (Δη, Δφ)
        - output: ``(cos, sin)``, each ``[B, H, N, rotary_dim / 2]``
    """

    def __init__(
        self, rotary_dim: int, num_heads: int = 1, min_freq: float = 1.0, max_freq: float = 100.0
    ) -> None:
        super().__init__()
        if rotary_dim <= 0 or rotary_dim % 4:
            raise ValueError(f"rotary_dim must be a positive multiple of 4, found {rotary_dim}")
        if not 0 < min_freq <= max_freq:
            raise ValueError(
                f"rotary frequencies must satisfy 0 < min_freq <= max_freq, "
                f"found min_freq={min_freq}, max_freq={max_freq}"
            )
        self.rotary_dim = rotary_dim
        per_head = rotary_dim // 4
        total = per_head * num_heads
        freqs = torch.exp(torch.linspace(math.log(min_freq), math.log(max_freq), total))
        # Head h gets frequencies h, h + H, h + 2H, ...: shape [H, per_head].
        self.register_buffer("freqs", freqs.view(per_head, num_heads).t().contiguous(), False)

    def forward(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # [B, 1, N, 2, 1] * [H, 1, per_head] -> [B, H, N, 2, per_head] -> [B, H, N, R/2]
        angles = coords.float()[:, None, :, :, None] * self.freqs[:, None, None, :]
        angles = angles.flatten(-2)
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``2 * cos.shape[-1]`` channels of ``x`` pairwise (rotate-half layout).

    Shapes:
        - x: ``[B, H, N, Dh]``
        - cos, sin: ``[B, H or 1, N, R/2]`` with ``R <= Dh``
        - output: ``[B, H, N, Dh]``
    """
    half = cos.shape[-1]
    first, second, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([first * cos - second * sin, second * cos + first * sin, rest], dim=-1)
