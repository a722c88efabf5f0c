"""JetFormer: a lean jet transformer on fused attention, with pair geometry at ``O(N)`` cost.

Why rotary (Δη, Δφ) instead of ParT's per-head pair tensors: ParT's pair embedding builds a
``[B, H, N, N]`` bias (a pointwise MLP over ``N²`` pairs, then one ``N × N`` matrix per head) and
passes it as an additive mask, which costs memory and FLOPs that grow with ``N²`` independently
of the model width and rules out the fastest attention kernels. Most of what ParT's pair
features carry is the angular separation ln Δ, and the rest (ln kT, ln z, ln m²) combines that
separation with the two particles' momenta, which the queries and keys already see through the
particle features. A 2-D rotary encoding (:class:`~foundation.models.layers.EtaPhiRotary`)
makes every attention logit a function of the two particles' contents *and* their separation
(Δη_ij, Δφ_ij), for ``O(N)`` work and no pair tensor at all. For ablations, ``pair_bias_dims``
adds ParT's pair features back cheaply: one bias per pair, computed once per forward and shared
by every head and every layer (a single ``[B, 1, N, N]`` tensor).

Other speed choices: padding is trimmed per batch (eagerly, and inside exported graphs); in
eager mode every per-particle layer (embedding, projections, MLPs, norms) runs on the packed
real particles only, attention being the one padded step, while exported graphs stay dense.
The attention mask is additive and built once per forward, and an exported graph swaps rotary
channel pairs with a constant permutation matrix: both keep ONNX Runtime off slow
``Where``/``IsNaN``/negative-step ``Slice`` nodes. Plain pre-LN blocks, and masked attention
pooling instead of class attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from foundation.models.builder import build_backbone
from foundation.models.checks import check_batch
from foundation.models.layers import (
    EtaPhiRotary,
    MultiheadAttention,
    Packing,
    PairEmbedding,
    Pooling,
    attention_bias,
    is_exporting,
    jet_relative_eta_phi,
    pad_particles,
    trim_padding,
    zero_padding,
)
from foundation.models.registry import register_backbone


class JetFormerBlock(nn.Module):
    """Pre-LN transformer block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))`` with GELU.

    Args:
        dim: width ``D``.
        num_heads: attention heads.
        ffn_ratio: hidden width of the MLP in units of ``D``.
        dropout: dropout on attention weights and residual branches.

    Shapes:
        - x: ``[B, N, D]``, or packed ``[M, D]`` with ``packing``
        - attn_mask: ``[B, 1, N, N]`` bool or float (additive)
        - rotary: ``(cos, sin)`` each ``[B, H, N, D/H]`` or ``None``
        - packing: :class:`~foundation.models.layers.packing.Packing` or ``None``
        - output: same shape as ``x``
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_ratio: float = 4.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        hidden = int(dim * ffn_ratio)
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = MultiheadAttention(dim, num_heads, dropout=dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
        packing: Packing | None = None,
    ) -> torch.Tensor:
        attended = self.attn(self.attn_norm(x), attn_mask=attn_mask, rotary=rotary, packing=packing)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class JetFormer(Backbone):
    """JetFormer backbone (see the module docstring for the design).

    Particles are embedded by ``Linear -> GELU -> Linear``; jet-level inputs, when given, are
    projected and added to every particle embedding. The per-particle output is the final
    layer-normalised stream; the jet embedding pools it over real particles.

    Args:
        in_features: particle features ``F``.
        in_jet_features: jet-level inputs ``J`` (0: none).
        dim: model width ``D``.
        num_layers: transformer blocks.
        num_heads: attention heads.
        ffn_ratio: MLP width in units of ``D``.
        dropout: dropout rate.
        rotary_dim: rotated channels per head (multiple of 4, at most the head width); ``None``
            picks half the head width, 0 switches the (Δη, Δφ) rotary encoding off.
        rotary_min_freq: lowest rotary frequency (per unit of η or φ).
        rotary_max_freq: highest rotary frequency.
        pair_bias_dims: hidden widths of an optional shared pair-bias MLP over ParT's 4 pair
            features (``None``: off).
        pooling: ``"attention"``, ``"mean"`` or ``"sum"`` over real particles.

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.mask: ``[B, N]``; batch.vectors: ``[B, N, 4]``;
          batch.jet: ``[B, J]``
        - output.particles: ``[B, N, D]``; output.jet: ``[B, D]``
    """

    def __init__(
        self,
        in_features: int,
        in_jet_features: int = 0,
        dim: int = 128,
        num_layers: int = 6,
        num_heads: int = 8,
        ffn_ratio: float = 4.0,
        dropout: float = 0.0,
        rotary_dim: int | None = None,
        rotary_min_freq: float = 1.0,
        rotary_max_freq: float = 100.0,
        pair_bias_dims: Sequence[int] | None = None,
        pooling: str = "attention",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"JetFormer: dim={dim} is not divisible by num_heads={num_heads}")
        head_dim = dim // num_heads
        if rotary_dim is None:
            rotary_dim = head_dim // 2 // 4 * 4
        if rotary_dim > head_dim:
            raise ValueError(
                f"JetFormer: rotary_dim={rotary_dim} exceeds the head width {head_dim}"
            )
        self.record_resolved(rotary_dim=rotary_dim)  # a checkpoint keeps its width
        self.num_features = dim
        self.embed = nn.Sequential(nn.Linear(in_features, dim), nn.GELU(), nn.Linear(dim, dim))
        self.jet_embed = nn.Linear(in_jet_features, dim) if in_jet_features > 0 else None
        self.rotary = (
            EtaPhiRotary(head_dim, rotary_dim, num_heads, rotary_min_freq, rotary_max_freq)
            if rotary_dim
            else None
        )
        self.pair_bias = None if pair_bias_dims is None else PairEmbedding(pair_bias_dims, 1)
        self.blocks = nn.ModuleList(
            JetFormerBlock(dim, num_heads, ffn_ratio, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.pool = Pooling(dim, pooling)

    def forward(self, batch: JetBatch) -> Features:
        check_batch(
            type(self).__name__, batch, self.config["in_features"], self.config["in_jet_features"]
        )
        input_mask, full_count = batch.mask, batch.num_particles
        batch = trim_padding(batch)
        mask = batch.mask
        packing = None if is_exporting() else Packing(mask)
        if packing is None:
            x = self.embed(batch.particles)
            if self.jet_embed is not None:
                x = x + self.jet_embed(batch.jet).unsqueeze(1)
        else:
            x = self.embed(packing.pack(batch.particles))
            if self.jet_embed is not None:
                x = x + packing.per_jet(self.jet_embed(batch.jet))

        attn_mask = attention_bias(mask, mask, batch.particles.dtype)
        if self.pair_bias is not None:
            attn_mask = attn_mask + self.pair_bias(batch.vectors, mask)
        rotary = None
        if self.rotary is not None:
            rotary = self.rotary(jet_relative_eta_phi(batch.vectors, mask))
        for block in self.blocks:
            x = block(x, attn_mask, rotary, packing)

        x = self.norm(x)
        x = zero_padding(x, mask) if packing is None else packing.pad(x)
        jet = self.pool(x, mask)
        return Features(particles=pad_particles(x, full_count), jet=jet, mask=input_mask)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embeddings (particle, jet, pair bias), each block, final norm and pooling."""
        first = list(self.embed.parameters())
        for module in (self.jet_embed, self.pair_bias):
            if module is not None:
                first += list(module.parameters())
        groups = [first] + [list(block.parameters()) for block in self.blocks]
        groups.append(list(self.norm.parameters()) + list(self.pool.parameters()))
        return groups


@register_backbone("jetformer-tiny")
def jetformer_tiny(**kwargs: Any) -> JetFormer:
    """JetFormer-tiny: width 32, 2 blocks, 2 heads (rotary on 8 of 16 head channels)."""
    defaults = {"dim": 32, "num_layers": 2, "num_heads": 2}
    return build_backbone(JetFormer, defaults, kwargs)


@register_backbone("jetformer-s")
def jetformer_s(**kwargs: Any) -> JetFormer:
    """JetFormer-S: width 128, 4 blocks, 4 heads of 32 channels (rotary on 16).

    ParT's width at a fraction of its cost: fewer, wider heads than ParT's 8 × 16 halve the
    ``[B, H, N, N]`` attention weights, and on D1 it matches a 6-block, 8-head model at 5,000
    training jets (``benchmarks/README.md``).
    """
    defaults = {"dim": 128, "num_layers": 4, "num_heads": 4}
    return build_backbone(JetFormer, defaults, kwargs)


@register_backbone("jetformer-base")
def jetformer_base(**kwargs: Any) -> JetFormer:
    """JetFormer-Base: width 256, 8 blocks, 8 heads."""
    defaults = {"dim": 256, "num_layers": 8, "num_heads": 8}
    return build_backbone(JetFormer, defaults, kwargs)
