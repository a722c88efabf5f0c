"""Particle Transformer (ParT; Qu, Li, Qian, ICML 2022, arXiv:2202.03772), from the paper.

Particles are embedded by an MLP; the 4 pair features (ln Δ, ln kT, ln z, ln m²) of every pair
are embedded by a pointwise MLP into one bias per head, added to the attention logits of every
particle attention block; class-attention blocks then let a learned class token read the
particles into the jet embedding.
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
    MaskedBatchNorm,
    MultiheadAttention,
    PairEmbedding,
    attention_allowed,
    pad_particles,
    trim_padding,
    zero_padding,
)
from foundation.models.registry import register_backbone


class ParticleEmbedding(nn.Module):
    """ParT's particle embedding: an MLP with GELU and layer normalisation in between.

    ``Linear -> GELU``, then ``LayerNorm -> Linear -> GELU`` for every further width. weaver-core's
    ParT also normalises the inputs with a batch-norm (``input_norm``) and puts a ``LayerNorm``
    before the first ``Linear`` too (``norm_first``).

    Args:
        in_features: particle features ``F``.
        dims: layer widths, e.g. ``(128, 512, 128)``; the output width is ``dims[-1]``.
        input_norm: a batch-norm of the inputs, its statistics from real particles only.
        norm_first: a ``LayerNorm`` before the first ``Linear``.

    Shapes:
        - x: ``[B, N, F]``
        - mask: ``[B, N]`` bool (used by ``input_norm`` in training), or ``None``
        - output: ``[B, N, dims[-1]]``
    """

    def __init__(
        self,
        in_features: int,
        dims: Sequence[int],
        *,
        input_norm: bool = False,
        norm_first: bool = False,
    ) -> None:
        super().__init__()
        if not dims:
            raise ValueError("embed_dims must name at least one layer width, found []")
        self.input_norm = MaskedBatchNorm(in_features) if input_norm else None
        layers: list[nn.Module] = []
        width = in_features
        for index, out in enumerate(dims):
            if index or norm_first:
                layers.append(nn.LayerNorm(width))
            layers += [nn.Linear(width, out), nn.GELU()]
            width = out
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.input_norm is not None:
            x = self.input_norm(x, mask)
        return self.mlp(x)


class ParTBlock(nn.Module):
    """ParT attention block, pre-LN with the paper's extra (NormFormer) norms.

    ``x + LN(MHA(LN(x)))`` then ``x + Linear(LN(GELU(Linear(LN(x)))))``. As a particle
    attention block (``context=None``) it is self-attention with the pair biases in
    ``attn_mask``; as a class attention block the class token (``x``, ``L = 1``) attends to
    ``context = [class token, particles]`` normalised by the same first norm.

    weaver-core's block differs in two ways, each an option: its class token queries without
    the first norm (``query_norm=False``; the keys and values are normalised), and the
    feed-forward residual is scaled per channel (``residual_scale``: ``w ⊙ x + FFN(x)``). Its
    per-head scales of the attention output are folded into ``attn.out_proj`` on conversion.

    Args:
        dim: width ``D``.
        num_heads: attention heads.
        ffn_ratio: hidden width of the feed-forward part, in units of ``D``.
        dropout: dropout on attention weights, after attention and in the feed-forward part.
        query_norm: normalise a class token before it queries (class attention only).
        residual_scale: a learned per-channel scale of the feed-forward residual.

    Shapes:
        - x: ``[B, L, D]``
        - attn_mask: ``[B, 1 or H, L, S]`` bool or float (additive), see
          :class:`~foundation.models.layers.MultiheadAttention`
        - context: ``[B, S, D]`` or ``None`` (self-attention)
        - output: ``[B, L, D]``
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_ratio: float = 4.0,
        dropout: float = 0.1,
        *,
        query_norm: bool = True,
        residual_scale: bool = False,
    ) -> None:
        super().__init__()
        hidden = int(dim * ffn_ratio)
        self.query_norm = query_norm
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = MultiheadAttention(dim, num_heads, dropout=dropout)
        self.attn_out_norm = nn.LayerNorm(dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.activation = nn.GELU()
        self.ffn_mid_norm = nn.LayerNorm(hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)
        self.residual_scale = nn.Parameter(torch.ones(dim)) if residual_scale else None

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        query = self.attn_norm(x) if context is None or self.query_norm else x
        keys = None if context is None else self.attn_norm(context)
        x = x + self.dropout(self.attn_out_norm(self.attn(query, keys, attn_mask)))
        hidden = self.dropout(self.activation(self.fc1(self.ffn_norm(x))))
        residual = x if self.residual_scale is None else self.residual_scale * x
        return residual + self.dropout(self.fc2(self.ffn_mid_norm(hidden)))


class ParticleTransformer(Backbone):
    """Particle Transformer backbone.

    The jet embedding is the layer-normalised class token after the class-attention blocks; the
    per-particle embeddings are the output of the last particle attention block. Trailing padding
    is trimmed per batch (in eager mode and in exported graphs, not under ``torch.compile``),
    which changes speed only.
    Jet-level inputs are not used (``in_jet_features`` is accepted and recorded).

    The keyword-only options reproduce weaver-core's ParT exactly (see
    :mod:`foundation.convert.weaver_part`); their defaults keep the model described above, and
    ``config`` records only those set to anything else
    (:class:`~foundation.models.base.ConstructorConfig`), so a default model's config, and every
    checkpoint saved before the options existed, is unchanged.

    Args:
        in_features: particle features ``F``.
        in_jet_features: jet-level inputs ``J`` (ignored).
        embed_dims: particle-embedding MLP widths; the model width is ``embed_dims[-1]``.
        pair_embed_dims: hidden widths of the pair-embedding MLP; ``None`` gives "plain" ParT
            without interaction biases.
        num_heads: attention heads.
        num_layers: particle attention blocks.
        num_class_layers: class attention blocks.
        ffn_ratio: feed-forward width in units of the model width.
        dropout: dropout rate (attention weights, residual branches, feed-forward).
        class_dropout: dropout rate of the class attention blocks (``None``: ``dropout``;
            weaver-core uses 0).
        embed_input_norm: batch-norm the particle inputs first (weaver-core's ``input_bn``).
        embed_norm_first: a ``LayerNorm`` before the first embedding ``Linear`` too.
        pair_features: ``"foundation"`` (:func:`foundation.data.pairs.pair_features`) or
            ``"weaver"`` (weaver-core's order and definitions,
            :func:`foundation.models.layers.weaver_pairs.weaver_pair_features`).
        pair_output_norm: batch-norm the pair embedding's output biases.
        pair_output_activation: a GELU on the pair embedding's output biases (weaver-core's
            ``use_pre_activation_pair=False``).
        class_query_norm: normalise the class token before it queries the particles (weaver-core
            does not).
        residual_scale: learned per-channel scales of the feed-forward residuals
            (weaver-core's ``w_resid``).

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.mask: ``[B, N]``; batch.vectors: ``[B, N, 4]``
        - output.particles: ``[B, N, D]``; output.jet: ``[B, D]`` with ``D = embed_dims[-1]``
    """

    def __init__(
        self,
        in_features: int,
        in_jet_features: int = 0,
        embed_dims: Sequence[int] = (128, 512, 128),
        pair_embed_dims: Sequence[int] | None = (64, 64, 64),
        num_heads: int = 8,
        num_layers: int = 8,
        num_class_layers: int = 2,
        ffn_ratio: float = 4.0,
        dropout: float = 0.1,
        *,
        class_dropout: float | None = None,
        embed_input_norm: bool = False,
        embed_norm_first: bool = False,
        pair_features: str = "foundation",
        pair_output_norm: bool = False,
        pair_output_activation: bool = False,
        class_query_norm: bool = True,
        residual_scale: bool = False,
    ) -> None:
        super().__init__()
        dim = embed_dims[-1]
        self.num_features = dim
        self.embed = ParticleEmbedding(
            in_features, embed_dims, input_norm=embed_input_norm, norm_first=embed_norm_first
        )
        self.pair_embed = (
            None
            if pair_embed_dims is None
            else PairEmbedding(
                pair_embed_dims,
                num_heads,
                features=pair_features,
                output_norm=pair_output_norm,
                output_activation=pair_output_activation,
            )
        )
        self.blocks = nn.ModuleList(
            ParTBlock(dim, num_heads, ffn_ratio, dropout, residual_scale=residual_scale)
            for _ in range(num_layers)
        )
        self.class_blocks = nn.ModuleList(
            ParTBlock(
                dim,
                num_heads,
                ffn_ratio,
                dropout if class_dropout is None else class_dropout,
                query_norm=class_query_norm,
                residual_scale=residual_scale,
            )
            for _ in range(num_class_layers)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.norm = nn.LayerNorm(dim)

    def forward(self, batch: JetBatch) -> Features:
        check_batch(type(self).__name__, batch, self.config["in_features"])
        input_mask, full_count = batch.mask, batch.num_particles
        batch = trim_padding(batch)
        mask = batch.mask
        x = zero_padding(self.embed(batch.particles, mask), mask)

        allowed = attention_allowed(mask, mask)
        attn_mask: torch.Tensor = allowed
        if self.pair_embed is not None:
            bias = self.pair_embed(batch.vectors, mask)
            attn_mask = bias.masked_fill(~allowed, float("-inf"))
        for block in self.blocks:
            x = block(x, attn_mask)
        x = zero_padding(x, mask)

        # A copy, not a view of the parameter: module hooks (e.g. FlopCounterMode's) reject
        # inputs that require grad without a grad_fn, which a view made under no_grad is.
        cls = self.cls_token.repeat(x.shape[0], 1, 1).to(x.dtype)
        # The class token is always a key, so no row of the class attention is fully masked.
        keys = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)[:, None, None, :]
        for block in self.class_blocks:
            cls = block(cls, keys, context=torch.cat([cls, x], dim=1))
        jet = self.norm(cls.squeeze(1))
        return Features(particles=pad_particles(x, full_count), jet=jet, mask=input_mask)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embeddings (particle and pair), each particle block, each class block, final norm."""
        first = list(self.embed.parameters())
        if self.pair_embed is not None:
            first += list(self.pair_embed.parameters())
        groups = [first] + [list(block.parameters()) for block in self.blocks]
        last = [self.cls_token]
        for block in self.class_blocks:
            groups.append(last + list(block.parameters()))
            last = []
        groups.append(last + list(self.norm.parameters()))
        return groups


@register_backbone("part-tiny")
def part_tiny(**kwargs: Any) -> ParticleTransformer:
    """ParT-tiny: width 32, 2 particle + 1 class blocks, 4 heads (trains on a CPU in minutes)."""
    defaults = {
        "embed_dims": (32, 64, 32),
        "pair_embed_dims": (16, 16),
        "num_heads": 4,
        "num_layers": 2,
        "num_class_layers": 1,
    }
    return build_backbone(ParticleTransformer, defaults, kwargs)


@register_backbone("part-s")
def part_s(**kwargs: Any) -> ParticleTransformer:
    """ParT-S: width 64, 6 particle + 2 class blocks, 8 heads, pair embedding (32, 32, 32)."""
    defaults = {
        "embed_dims": (64, 256, 64),
        "pair_embed_dims": (32, 32, 32),
        "num_heads": 8,
        "num_layers": 6,
        "num_class_layers": 2,
    }
    return build_backbone(ParticleTransformer, defaults, kwargs)


@register_backbone("part")
def part(**kwargs: Any) -> ParticleTransformer:
    """ParT as in the paper: embedding (128, 512, 128), 8 + 2 blocks, 8 heads, pairs (64,) * 3."""
    defaults = {
        "embed_dims": (128, 512, 128),
        "pair_embed_dims": (64, 64, 64),
        "num_heads": 8,
        "num_layers": 8,
        "num_class_layers": 2,
    }
    return build_backbone(ParticleTransformer, defaults, kwargs)
