"""Permutation-invariant pooling of per-particle embeddings into a jet embedding."""

from __future__ import annotations

import torch
from torch import nn

from foundation.models.layers.masking import masked_mean, masked_softmax, masked_sum

POOLINGS = ("attention", "mean", "sum")


class AttentionPooling(nn.Module):
    """Weighted mean of real particles, weights = masked softmax of a learned linear score.

    A jet without real particles pools to zero.

    Args:
        dim: embedding width ``D``.

    Shapes:
        - x: ``[B, N, D]``
        - mask: ``[B, N]`` bool
        - output: ``[B, D]``
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = masked_softmax(self.score(x).squeeze(-1), mask, dim=-1)
        return torch.einsum("bn,bnd->bd", weights, x)


class Pooling(nn.Module):
    """Masked ``"attention"``, ``"mean"`` or ``"sum"`` pooling over particles.

    Args:
        dim: embedding width ``D``.
        mode: one of :data:`POOLINGS`.

    Shapes:
        - x: ``[B, N, D]``
        - mask: ``[B, N]`` bool
        - output: ``[B, D]``
    """

    def __init__(self, dim: int, mode: str = "mean") -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, found {mode!r}")
        self.mode = mode
        self.attention = AttentionPooling(dim) if mode == "attention" else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.attention is not None:
            return self.attention(x, mask)
        if self.mode == "sum":
            return masked_sum(x, mask)
        return masked_mean(x, mask)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
