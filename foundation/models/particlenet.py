"""ParticleNet (Qu, Gouskos, PRD 101 (2020) 056019, arXiv:1902.08570): EdgeConv on kNN graphs.

The first EdgeConv block builds its k-nearest-neighbour graph in the (Δη, Δφ) plane; each later
block builds it in the feature space of the block before (a dynamic graph CNN). The jet
embedding is the mean of the last block's output over real particles.

Why not ``torch_geometric.nn.EdgeConv``: it works on a sparse ``edge_index`` and needs
``knn_graph`` from ``torch-cluster`` (not installed here). Jets are small and the graph has a
fixed ``k``, so the dense form — a ``[B, N, k]`` neighbour index from ``topk`` on pairwise
distances and a gather — is faster on padded batches, needs no ragged conversion and exports to
ONNX. The edge function is the same: ``h(x_i, x_j - x_i)`` followed by a mean over neighbours.
The same network also runs through ``torch_geometric.nn`` on a packed graph of the real particles
(:meth:`ParticleNet.use_graph`, :mod:`foundation.models.particlenet_packed`): equal outputs,
faster on ragged batches (``benchmarks/bench_packed_graph.py``), eager mode only.

Options reproduce weaver-core's ``ParticleNet`` (the network the JetClass ParticleNet weights
were trained with) exactly, so that its weights convert (:mod:`foundation.convert`):
``missing_neighbours="zero_features"`` (weaver always runs on padded slots: a particle with fewer
than ``k`` real neighbours gets zero-feature padding slots as its remaining neighbours, and the
graph is ``topk(k + 1)`` minus the nearest), ``coordinates`` (the first graph in two input
features, weaver's ``pf_points``, instead of (Δη, Δφ) from the 4-vectors), ``fusion`` (weaver's
``use_fusion``) and ``pool_slots`` (weaver's ``use_counts=False``: sum over a fixed slot count).
The defaults are the project's own ParticleNet.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from foundation.models.builder import build_backbone
from foundation.models.checks import check_batch
from foundation.models.layers import (
    MaskedBatchNorm,
    gather_neighbours,
    is_exporting,
    jet_relative_eta_phi,
    knn_graph_dense,
    masked_mean,
    masked_sum,
    pad_particles,
    trim_padding,
    zero_padding,
)
from foundation.models.registry import register_backbone

MissingNeighbours = Literal["ignore", "zero_features"]
MISSING_NEIGHBOURS: tuple[str, ...] = ("ignore", "zero_features")
"""How a particle with fewer than ``k`` real neighbours is treated: ``"ignore"`` averages over
its real neighbours only; ``"zero_features"`` fills the missing ones with zero-feature
neighbours and averages over all ``k`` (weaver-core, which runs on padded slots)."""


def fusion_width(in_width: int) -> int:
    """Output width of the fusion block for the concatenated block outputs (weaver's rule:
    ``in_width`` rounded down to a multiple of 128, clipped to [128, 1024])."""
    return int(min(max((in_width // 128) * 128, 128), 1024))


def knn_graph_slots(
    coords: torch.Tensor, mask: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """kNN the way a network on padded slots builds it: the ``k + 1`` nearest minus the nearest.

    Distances are ``(|a|² - 2 a·b) + |b|²`` clamped at 0 (self included), padding columns are
    farther than any real particle; of the ``k + 1`` nearest the first (normally the particle
    itself) is dropped. Slots beyond the real particles (a jet with fewer than ``k + 1``) are
    invalid: they stand for padding neighbours, whose features are zero. Equal distances are
    broken by the lower slot index (a stable sort eagerly, ONNX TopK's rule in exported graphs),
    so a jet's graph does not depend on its batch or padding; weaver's ``topk`` picks among ties
    in an order that depends on the tensor's shape. Works for any ``N``, also 0 and 1.

    Args:
        coords: coordinates the distance is measured in.
        mask: True for real particles.
        k: neighbours per particle.

    Returns:
        ``(index, valid)``: neighbour positions along ``N`` (0 where invalid) and the mask of
        real neighbours (all False on padding rows).

    Shapes:
        - coords: ``[B, N, C]``; mask: ``[B, N]`` bool
        - index, valid: ``[B, N, k]``
    """
    batch, count, _ = coords.shape
    coords = coords.float()
    sq = coords.square().sum(dim=-1)
    inner = torch.bmm(coords, coords.transpose(1, 2))
    dist = ((sq.unsqueeze(2) + (-2 * inner)) + sq.unsqueeze(1)).clamp(min=0)
    dist = dist.masked_fill(~mask.unsqueeze(1), float("inf"))
    if is_exporting():
        # ONNX TopK needs k + 1 <= N: k + 1 never-chosen columns make any N (0 too) run; its
        # ties go to the lower index, as the stable sort's below
        dist = F.pad(dist, (0, k + 1), value=float("inf"))
        take = k + 1
        values, index = dist.topk(take, dim=-1, largest=False, sorted=True)
    else:
        # a stable sort, not topk: equal distances (calorimeter cells on a grid) go to the lower
        # index whatever the padding or the batch, so a jet's graph is its own
        take = min(k + 1, count)
        values, index = dist.sort(dim=-1, stable=True)
        values, index = values[..., :take], index[..., :take]
    values, index = values[..., 1:], index[..., 1:]
    valid = torch.isfinite(values) & mask.unsqueeze(-1)
    index = torch.where(valid, index, torch.zeros_like(index))
    if take < k + 1:  # eager only: fewer than k + 1 slots
        missing = k + 1 - take
        index = torch.cat([index, index.new_zeros(batch, count, missing)], dim=-1)
        valid = torch.cat([valid, valid.new_zeros(batch, count, missing)], dim=-1)
    return index, valid


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
        missing_neighbours: see :data:`MISSING_NEIGHBOURS`.

    Shapes:
        - x: ``[B, N, C]``
        - coords: ``[B, N, Cc]`` (where the kNN is measured)
        - mask: ``[B, N]`` bool
        - output: ``[B, N, channels[-1]]``, padding rows zero
    """

    def __init__(
        self,
        in_dim: int,
        channels: Sequence[int],
        k: int,
        missing_neighbours: MissingNeighbours = "ignore",
    ) -> None:
        super().__init__()
        if k < 1 or not channels:
            raise ValueError(f"EdgeConv needs k >= 1 and some channels, found k={k}, {channels}")
        if missing_neighbours not in MISSING_NEIGHBOURS:
            raise ValueError(
                f"EdgeConv: missing_neighbours must be one of {MISSING_NEIGHBOURS}, "
                f"found {missing_neighbours!r}"
            )
        self.k = k
        self.zero_features = missing_neighbours == "zero_features"
        self.in_dim = in_dim
        widths = [2 * in_dim, *channels]
        self.linears = nn.ModuleList(
            nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(widths)
        )
        self.norms = nn.ModuleList(MaskedBatchNorm(width) for width in channels)
        self.shortcut = nn.Linear(in_dim, channels[-1], bias=False)
        self.shortcut_norm = MaskedBatchNorm(channels[-1])

    def forward(self, x: torch.Tensor, coords: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.zero_features:
            index, real = knn_graph_slots(coords, mask, self.k)
            valid = mask.unsqueeze(-1).expand_as(real)  # every slot is an edge, padding too
        else:
            index, valid = knn_graph_dense(coords, mask, self.k)
        weight = self.linears[0].weight
        w_center, w_diff = weight[:, : self.in_dim], weight[:, self.in_dim :]
        center = F.linear(x, w_center - w_diff)
        neighbour = gather_neighbours(F.linear(x, w_diff), index)
        if self.zero_features:  # a padding neighbour has zero features: W_b x_j = 0
            neighbour = neighbour * real.unsqueeze(-1).to(neighbour.dtype)
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
        missing_neighbours: see :data:`MISSING_NEIGHBOURS` (``"zero_features"``: weaver-core).
        coordinates: positions of the two particle features (as given, before the input
            normalisation) the first graph is built in, e.g. those of ``part_deta`` and
            ``part_dphi``; None: (Δη, Δφ) from the 4-vectors and the jet axis.
        fusion: concatenate every block's output and map it through ``Linear -> BN -> ReLU``
            (width :func:`fusion_width`) before pooling (weaver's ``use_fusion``).
        pool_slots: None: the jet embedding is the mean over real particles; an integer ``S``:
            the sum over real particles divided by ``S`` (weaver's ``use_counts=False`` on ``S``
            padded slots).

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.mask: ``[B, N]``; batch.vectors: ``[B, N, 4]``
        - output.particles: ``[B, N, D]``; output.jet: ``[B, D]`` with ``D`` the last width
          (the fusion width with ``fusion``)
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
        missing_neighbours: MissingNeighbours = "ignore",
        coordinates: Sequence[int] | None = None,
        fusion: bool = False,
        pool_slots: int | None = None,
    ) -> None:
        super().__init__()
        if not edge_convs:
            raise ValueError("ParticleNet needs at least one EdgeConv block, found edge_convs=[]")
        if coordinates is not None and (
            len(coordinates) != 2 or not all(0 <= int(i) < in_features for i in coordinates)
        ):
            raise ValueError(
                "ParticleNet: coordinates must be 2 particle-feature positions in "
                f"[0, {in_features}), found {list(coordinates)}"
            )
        if pool_slots is not None and int(pool_slots) < 1:
            raise ValueError(f"ParticleNet: pool_slots must be None or >= 1, found {pool_slots}")
        self.coordinates = None if coordinates is None else [int(i) for i in coordinates]
        self.pool_slots = None if pool_slots is None else int(pool_slots)
        self.input_norm = MaskedBatchNorm(in_features)
        self.blocks = nn.ModuleList()
        width = in_features
        for k, channels in edge_convs:
            self.blocks.append(EdgeConvBlock(width, channels, int(k), missing_neighbours))
            width = channels[-1]
        self.fusion: nn.Linear | None = None
        if fusion:
            concatenated = sum(int(channels[-1]) for _, channels in edge_convs)
            width = fusion_width(concatenated)
            self.fusion = nn.Linear(concatenated, width, bias=False)
            self.fusion_norm = MaskedBatchNorm(width)
        self.num_features = width

    graph: str = "dense"
    """``"dense"`` (padded slots) or ``"packed"`` (a PyG graph of real particles); see
    :meth:`use_graph`."""

    def use_graph(self, graph: str) -> ParticleNet:
        """Run on ``"dense"`` padded ``[B, N, k]`` slots (the default) or on a ``"packed"``
        ``torch_geometric`` graph of the real particles
        (:func:`~foundation.models.particlenet_packed.forward_packed`): the same outputs and
        batch-norm statistics, 2-3x faster training on ragged batches, slower for single jets.
        A runtime switch (not in ``config``; a recipe's ``model.graph``); exports always trace
        the dense path. Both neighbour rules run packed.

        Raises:
            ValueError: an unknown ``graph``.
        """
        if graph not in ("dense", "packed"):
            raise ValueError(
                f"ParticleNet.use_graph: expected 'dense' or 'packed', found {graph!r}"
            )
        if graph == "packed":
            from foundation.models.particlenet_packed import PackedParticleNet

            PackedParticleNet(self)  # torch_geometric missing: the error comes now
        self.graph = graph
        return self

    def forward(self, batch: JetBatch) -> Features:
        if self.graph == "packed" and not is_exporting():
            from foundation.models.particlenet_packed import forward_packed

            return forward_packed(self, batch)
        check_batch(type(self).__name__, batch, self.config["in_features"])
        input_mask, full_count = batch.mask, batch.num_particles
        batch = trim_padding(batch)
        mask = batch.mask
        if self.coordinates is None:
            coords = jet_relative_eta_phi(batch.vectors, mask)
        else:
            coords = batch.particles[..., self.coordinates].float()
        x = self.input_norm(batch.particles, mask)
        outputs = []
        for block in self.blocks:
            x = block(x, coords, mask)
            coords = x
            outputs.append(x)
        if self.fusion is not None:
            fused = self.fusion(torch.cat(outputs, dim=-1))
            x = zero_padding(F.relu(self.fusion_norm(fused, mask)), mask)
        if self.pool_slots is None:
            jet = masked_mean(x, mask)
        else:
            jet = masked_sum(x, mask) / self.pool_slots
        return Features(particles=pad_particles(x, full_count), jet=jet, mask=input_mask)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Input norm, then each EdgeConv block (the fusion block joins the last one)."""
        groups = [list(block.parameters()) for block in self.blocks]
        groups[0] = list(self.input_norm.parameters()) + groups[0]
        if self.fusion is not None:
            groups[-1] += [*self.fusion.parameters(), *self.fusion_norm.parameters()]
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
