"""Multi-head attention on ``torch.nn.functional.scaled_dot_product_attention``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from foundation.models.layers.masking import is_exporting
from foundation.models.layers.packing import Packing
from foundation.models.layers.rotary import apply_rotary, pair_swap_matrix


class MultiheadAttention(nn.Module):
    """Multi-head (self or cross) attention with a boolean or additive mask and optional rotary.

    One ``[3D, D]`` input projection serves both uses: self-attention runs it as one fused
    matmul; cross-attention (e.g. a class token attending to particles) applies its query and
    key/value slices separately. The attention itself is a single fused
    :func:`~torch.nn.functional.scaled_dot_product_attention` call.

    Args:
        dim: model width ``D``.
        num_heads: number of heads ``H`` (must divide ``D``).
        dropout: dropout on the attention weights (training only).

    Shapes:
        - query: ``[B, L, D]``
        - context: ``[B, S, D]`` (``None``: self-attention, ``S = L``)
        - attn_mask: ``[B, 1 or H, L, S]`` bool (True = may attend) or float (added to the
          logits), or ``None``
        - packing: a :class:`~foundation.models.layers.packing.Packing` (self-attention only):
          ``query`` is then packed ``[M, D]`` and so is the output
        - rotary: ``(cos, sin)`` each ``[B, H or 1, L, D/H]`` (see
          :class:`~foundation.models.layers.EtaPhiRotary`), applied to queries and keys
          (self-attention only), or ``None``
        - output: ``[B, L, D]``
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by num_heads={num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        head_dim = dim // num_heads
        if head_dim % 2 == 0:
            self.register_buffer("pair_swap", pair_swap_matrix(head_dim), persistent=False)
        else:
            self.pair_swap = None

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, D]`` -> ``[B, H, L, D/H]``."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.dim // self.num_heads).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        context: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
        packing: Packing | None = None,
    ) -> torch.Tensor:
        if packing is not None and context is not None:
            raise ValueError("packed attention is self-attention only: pass context=None")
        if context is None:
            qkv = self.in_proj(query)
            if packing is not None:
                qkv = packing.pad(qkv)
            q, k, v = qkv.chunk(3, dim=-1)
        else:
            weight, bias = self.in_proj.weight, self.in_proj.bias
            q = F.linear(query, weight[: self.dim], bias[: self.dim])
            k, v = F.linear(context, weight[self.dim :], bias[self.dim :]).chunk(2, dim=-1)
        q, k, v = self._split(q), self._split(k), self._split(v)
        if rotary is not None:
            cos, sin = rotary
            swap = self.pair_swap if is_exporting() else None
            q, k = apply_rotary(q, cos, sin, swap), apply_rotary(k, cos, sin, swap)
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        batch, _, length, _ = out.shape
        out = out.transpose(1, 2).reshape(batch, length, self.dim)
        if packing is not None:
            out = packing.pack(out)
        return self.out_proj(out)
