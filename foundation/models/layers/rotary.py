"""Rotary encoding in the (Δη, Δφ) plane: geometry enters attention without pair tensors."""

from __future__ import annotations

import math

import torch
from torch import nn


class EtaPhiRotary(nn.Module):
    """2-D rotary embedding (RoFormer-style) driven by each particle's (Δη, Δφ).

    The first ``rotary_dim`` channels of every query and key head form ``rotary_dim / 2``
    adjacent pairs; the first half of the pairs is rotated by angles ``ω Δη``, the second half by
    ``ω Δφ``. Because rotations compose, the logit between particles ``i`` and ``j`` then depends
    on their angular separation ``(η_j - η_i, φ_j - φ_i)`` (not on where the jet sits) — like
    ParT's ln Δ pair feature, but for ``O(N)`` work instead of an ``N × N`` tensor per head. The
    other ``head_dim - rotary_dim`` channels stay content-only (cos 1, sin 0).

    The ``num_heads * rotary_dim / 4`` frequencies are spaced geometrically in
    ``[min_freq, max_freq]`` (radians per unit of η or φ) and dealt out to the heads in turn, so
    each head sees the whole range at a different offset: together the heads resolve separations
    from about ``1 / max_freq`` to ``1 / min_freq``. They are a fixed, non-persistent buffer.

    The returned tables span the whole head width, so that :func:`apply_rotary` is two
    multiplies, an add and a pair swap — no slicing or concatenation — and the tables are
    computed once per forward and shared by all blocks.

    Args:
        head_dim: channels per head ``Dh``.
        rotary_dim: rotated channels per head, a multiple of 4, at most ``head_dim``.
        num_heads: attention heads ``H``.
        min_freq: lowest angular frequency.
        max_freq: highest angular frequency.

    Shapes:
        - coords: ``[B, N, 2]`` (Δη, Δφ)
        - output: ``(cos, sin)``, each ``[B, H, N, Dh]`` (``sin`` carries the rotation's sign)
    """

    def __init__(
        self,
        head_dim: int,
        rotary_dim: int,
        num_heads: int = 1,
        min_freq: float = 1.0,
        max_freq: float = 100.0,
    ) -> None:
        super().__init__()
        if rotary_dim <= 0 or rotary_dim % 4 or rotary_dim > head_dim:
            raise ValueError(
                f"rotary_dim must be a positive multiple of 4 and at most the head width "
                f"{head_dim}, found {rotary_dim}"
            )
        if head_dim % 2:
            raise ValueError(f"rotary encoding needs an even head width, found {head_dim}")
        if not 0 < min_freq <= max_freq:
            raise ValueError(
                f"rotary frequencies must satisfy 0 < min_freq <= max_freq, "
                f"found min_freq={min_freq}, max_freq={max_freq}"
            )
        self.head_dim = head_dim
        self.rotary_dim = rotary_dim
        per_head = rotary_dim // 4
        total = per_head * num_heads
        freqs = torch.exp(torch.linspace(math.log(min_freq), math.log(max_freq), total))
        # Head h gets frequencies h, h + H, h + 2H, ...: shape [H, per_head].
        freqs = freqs.view(per_head, num_heads).t()
        # Angle of each channel as a linear map of (Δη, Δφ): [H, 2, Dh], both channels of a pair
        # sharing one angle, zero beyond the rotated channels.
        pair_freqs = freqs.repeat_interleave(2, dim=-1)
        projection = torch.zeros(num_heads, 2, head_dim)
        projection[:, 0, : 2 * per_head] = pair_freqs
        projection[:, 1, 2 * per_head : 4 * per_head] = pair_freqs
        self.register_buffer("projection", projection, persistent=False)
        self.register_buffer("sign", torch.tensor([-1.0, 1.0]).repeat(head_dim // 2), False)

    def forward(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # [B, 1, N, 2] @ [H, 2, Dh] -> [B, H, N, Dh]
        angles = coords.float().unsqueeze(1) @ self.projection
        return angles.cos(), angles.sin() * self.sign


def apply_rotary(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pair_swap: torch.Tensor | None = None
) -> torch.Tensor:
    """Rotate adjacent channel pairs: ``(a, b) -> (a cos - b sin, b cos + a sin)``.

    The pair swap ``(a, b) -> (b, a)`` is a reshape and ``flip`` by default. With ``pair_swap``
    (from :func:`pair_swap_matrix`) it is a product with that permutation matrix instead: the
    same numbers, and faster in ONNX Runtime, which runs the flip as a negative-step ``Slice``.

    Shapes:
        - x: ``[B, H, N, Dh]``
        - cos, sin: ``[B, H or 1, N, Dh]`` from :class:`EtaPhiRotary`
        - pair_swap: ``[Dh, Dh]`` or ``None``
        - output: ``[B, H, N, Dh]``
    """
    if pair_swap is not None:
        swapped = x @ pair_swap.to(x.dtype)
    else:
        # reshape(x.shape), not flatten(-2): ONNX Reshape cannot infer a -1 when N = 0.
        swapped = x.unflatten(-1, (x.shape[-1] // 2, 2)).flip(-1).reshape(x.shape)
    return x * cos.to(x.dtype) + swapped * sin.to(x.dtype)


def pair_swap_matrix(width: int) -> torch.Tensor:
    """``[width, width]`` permutation matrix exchanging channels ``2i`` and ``2i + 1``."""
    return torch.eye(width)[torch.arange(width) ^ 1]
