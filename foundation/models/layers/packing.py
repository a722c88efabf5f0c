"""Packing of real particles: run per-particle layers on ``M = Σ n_b`` rows instead of ``B × N``."""

from __future__ import annotations

import torch


class Packing:
    """Maps between padded ``[B, N, C]`` tensors and packed ``[M, C]`` rows of real particles.

    Per-particle layers (embeddings, projections, feed-forward MLPs, layer norms) give the same
    result on the packed rows and skip the padding, which is about half of a trimmed JetClass
    batch. Attention still runs padded (:meth:`pad` before it, :meth:`unpack` after). Packing
    reads the mask's values, so it is an eager-mode optimisation: exported graphs stay dense.

    Args:
        mask: True for real particles.

    Shapes:
        - mask: ``[B, N]`` bool
        - packed rows: ``[M, C]`` with ``M = mask.sum()``, in row-major order of the mask
    """

    def __init__(self, mask: torch.Tensor) -> None:
        self.batch, self.count = mask.shape
        self.rows = mask.reshape(-1).nonzero().squeeze(-1)
        self.batch_index = torch.div(self.rows, max(self.count, 1), rounding_mode="floor")

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, C]`` -> ``[M, C]`` (real rows only)."""
        return x.reshape(self.batch * self.count, x.shape[-1]).index_select(0, self.rows)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``[M, C]`` -> ``[B, N, C]`` with zero padding rows."""
        out = x.new_zeros(self.batch * self.count, x.shape[-1])
        return out.index_copy(0, self.rows, x).view(self.batch, self.count, x.shape[-1])

    def per_jet(self, x: torch.Tensor) -> torch.Tensor:
        """Broadcast a per-jet ``[B, C]`` tensor to the packed rows: ``[M, C]``."""
        return x.index_select(0, self.batch_index)
