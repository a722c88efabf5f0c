"""ParticleNet (Qu, Gouskos, PRD 101 (2020) 056019, arXiv:1902.08570): EdgeConv on kNN graphs.

The first EdgeConv block builds its k-nearest-neighbour graph in the (Δη, Δφ) plane; each later
block builds it in the feature space of the block before (a dynamic graph CNN). The jet
embedding is the mean of the last block's output over real particles.

Why not ``torch_geometric.nn.EdgeConv``: it works on a sparse ``edge_index`` and needs
``knn_graph`` from ``torch-cluster`` (not installed here). Jets are small and the graph has a
fixed ``k``, so the dense form — a ``[B, N, k]`` neighbour index from ``topk`` on pairwise
distances and a gather — is faster on padded batches, needs no ragged conversion and exports to
ONNX. The edge function is the same: ``h(x_i, x_j - x_i)`` followed by a mean over neighbours.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from foundation.models.builder import build_backbone, jsonable
from foundation.models.checks import check_batch
from foundation.models.layers import (
    MaskedBatchNorm,
    gather_neighbours,
    jet_relative_eta_phi,
    knn_graph_dense,
    masked_mean,
    pad_particles,
    trim_padding,
    zero_padding,
)
from foundation.models.registry import register_backbone


class EdgeConvBlock(nn.Module):
    """ParticleNet's EdgeConv block on a dense kNN graph.

    For every particle ``i`` and each of its ``k`` nearest real neighbours ``j`` (in
    ``coords``), the edge feature ``(x_i, x_j - x_i)`` passes through ``Linear -> BN -> ReLU``
    layers; edges are averaged over the real neighbours; a ``Linear -> BN`` shortcut of ``x_i``
    is added and a ReLU applied. Batch norms use real particles / real edges only.

    The first linear layer keeps the usual ``[C1, 2C]`` weight on ``(x_i, x_j - x_i)`` but is
    evaluated per particle as ``(W_a - W_b) x_i + W_b x_j`` before the gather, which is the same
    function for ``k`` times fewer multiply-adds. A particle with no real neighbour (a jet with
    one real particle) keeps only its shortcut.

    Args:
        in_dim: input width ``C``.
        channels: widths of the edge MLP; the output width is ``channels[-1]``.
        k: neighbours per particle.

    Shapes:
        - x: ``[B, N, C]``
        - coords: ``[B, N, Cc]`` (where the kNN is measured)
        - mask: ``[B, N]`` bool
        - output: ``[B, N, channels[-1]]``, padding rows zero
    """

    def __init__(self, in_dim: int, channels: Sequence[int], k: int) -> None:
        super().__init__()
        if k < 1 or not channels:
            raise ValueError(f"EdgeConv needs k >= 1 and some channels, found k={k}, {channels}")
        self.k = k
        self.in_dim = in_dim
        widths = [2 * in_dim, *channels]
        self.linears = nn.ModuleList(
            nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(widths)
        )
        self.norms = nn.ModuleList(MaskedBatchNorm(width) for width in channels)
        self.shortcut = nn.Linear(in_dim, channels[-1], bias=False)
        self.shortcut_norm = MaskedBatchNorm(channels[-1])

    def forward(self, x: torch.Tensor, coords: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        index, valid = knn_graph_dense(coords, mask, self.k)
        weight = self.linears[0].weight
        w_center, w_diff = weight[:, : self.in_dim], weight[:, self.in_dim :]
        center = F.linear(x, w_center - w_diff)
        neighbour = gather_neighbours(F.linear(x, w_diff), index)
        edges = center.unsqueeze(2) + neighbour
        edges = F.relu(self.norms[0](edges, valid))
        for linear, norm in zip(self.linears[1:], self.norms[1:], strict=True):
            edges = F.relu(norm(linear(edges), valid))
        aggregated = masked_mean(edges, valid, dim=2)
        out = F.relu(aggregated + self.shortcut_norm(self.shortcut(x), mask))
        return zero_padding(out, mask)


class ParticleNet(Backbone):
    """ParticleNet backbone (see the module docstring).

    Input features are batch-normalised over real particles, then pass the EdgeConv blocks.
    Jet-level inputs are not used (``in_jet_features`` is accepted and recorded). Exported
    graphs run for any ``N``, also ``N < k + 1`` and ``N = 0`` (see
    :func:`~foundation.models.layers.knn_graph_dense`).

    Args:
        in_features: particle features ``F``.
        in_jet_features: jet-level inputs ``J`` (ignored).
        edge_convs: ``(k, channels)`` of each EdgeConv block, e.g. the paper's
            ``((16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256)))``.

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.mask: ``[B, N]``; batch.vectors: ``[B, N, 4]``
        - output.particles: ``[B, N, D]``; output.jet: ``[B, D]`` with ``D`` the last width
    """

    def __init__(
        self,
        in_features: int,
        in_jet_features: int = 0,
        edge_convs: Sequence[tuple[int, Sequence[int]]] = (
            (16, (64, 64, 64)),
            (16, (128, 128, 128)),
            (16, (256, 256, 256)),
        ),
    ) -> None:
        super().__init__()
        if not edge_convs:
            raise ValueError("ParticleNet needs at least one EdgeConv block, found edge_convs=[]")
        self.config: dict[str, Any] = jsonable(
            {
                "in_features": in_features,
                "in_jet_features": in_jet_features,
                "edge_convs": edge_convs,
            }
        )
        self.input_norm = MaskedBatchNorm(in_features)
        self.blocks = nn.ModuleList()
        width = in_features
        for k, channels in edge_convs:
            self.blocks.append(EdgeConvBlock(width, channels, int(k)))
            width = channels[-1]
        self.num_features = width

    def forward(self, batch: JetBatch) -> Features:
        check_batch(type(self).__name__, batch, self.config["in_features"])
        input_mask, full_count = batch.mask, batch.num_particles
        batch = trim_padding(batch)
        mask = batch.mask
        coords = jet_relative_eta_phi(batch.vectors, mask)
        x = self.input_norm(batch.particles, mask)
        for block in self.blocks:
            x = block(x, coords, mask)
            coords = x
        jet = masked_mean(x, mask)
        return Features(particles=pad_particles(x, full_count), jet=jet, mask=input_mask)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Input norm, then each EdgeConv block (the mean pooling has no parameters)."""
        groups = [list(block.parameters()) for block in self.blocks]
        groups[0] = list(self.input_norm.parameters()) + groups[0]
        return groups


@register_backbone("particlenet-tiny")
def particlenet_tiny(**kwargs: Any) -> ParticleNet:
    """ParticleNet-tiny: two EdgeConv blocks, k = 8, widths (16, 16) and (32, 32)."""
    defaults = {"edge_convs": ((8, (16, 16)), (8, (32, 32)))}
    return build_backbone(ParticleNet, defaults, kwargs)


@register_backbone("particlenet-s")
def particlenet_s(**kwargs: Any) -> ParticleNet:
    """ParticleNet-S: the paper's ParticleNet-Lite, k = 7, (32, 32, 32) and (64, 64, 64)."""
    defaults = {"edge_convs": ((7, (32, 32, 32)), (7, (64, 64, 64)))}
    return build_backbone(ParticleNet, defaults, kwargs)


@register_backbone("particlenet")
def particlenet(**kwargs: Any) -> ParticleNet:
    """ParticleNet as in the paper: k = 16, (64,)*3, (128,)*3, (256,)*3."""
    defaults = {"edge_convs": ((16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256)))}
    return build_backbone(ParticleNet, defaults, kwargs)
