"""ParticleNet's EdgeConv on packed graphs, through ``torch_geometric.nn.MessagePassing``.

The dense :class:`~foundation.models.particlenet.EdgeConvBlock` works on padded ``[B, N, k]``
neighbour slots; :class:`PackedEdgeConv` is the same function on a packed graph of real
particles (``x [M, C]``, a ``batch`` vector) with an ``edge_index`` that holds real edges only,
so its edge MLP and batch norms never see a padded particle. weaver's rule for jets with fewer
than ``k + 1`` particles (``missing_neighbours="zero_features"``: the missing neighbours are
padding slots with zero features) is kept with one extra zero-feature node that those edges
point to (:func:`knn_graph_packed_slots`). It has the same parameters under the same names:
:meth:`PackedEdgeConv.from_dense` shares a dense block's modules, and the two give the same
output (``tests/test_graph.py``).

The kNN graph (:func:`knn_graph_packed`) is computed per jet with the project's dense
:func:`~foundation.models.layers.knn_graph_dense` on a ``to_dense_batch`` view: ``torch_cluster``
(behind ``torch_geometric.nn.knn_graph``) is not installed, and jets are small.

Importing this module imports ``torch_geometric`` (a few seconds): it is not re-exported by
:mod:`foundation.models.layers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from foundation.extras import requires_extra
from foundation.models.layers.knn import knn_graph_dense

with requires_extra("pyg"):
    from torch_geometric.nn import MessagePassing
    from torch_geometric.utils import segment, to_dense_batch

if TYPE_CHECKING:
    from foundation.models.particlenet import EdgeConvBlock, MissingNeighbours


def knn_graph_packed(
    coords: torch.Tensor, batch: torch.Tensor, k: int, num_graphs: int | None = None
) -> torch.Tensor:
    """The ``k`` nearest neighbours of every node within its own graph (itself excluded).

    The same neighbours as :func:`~foundation.models.layers.knn_graph_dense` on the padded jets
    (a node of a graph with ``n <= k`` nodes gets its ``n - 1`` others); only real edges are
    returned. The edge order follows PyG's ``knn_graph(..., flow="source_to_target")``: row 0
    holds the neighbour ``j`` (source), row 1 the node ``i`` whose neighbour it is (target).
    Edges are sorted by target node (nearest neighbour first), so that a CSR pointer over row 1
    describes them.

    Args:
        coords: coordinates the distance is measured in.
        batch: graph of each node, sorted (as in a PyG ``Batch``).
        k: neighbours per node.
        num_graphs: number of graphs ``B`` (default ``batch.max() + 1``).

    Returns:
        ``edge_index`` ``[2, E]`` int64, ``E = Σ_i min(k, n_i - 1)``.

    Shapes:
        - coords: ``[M, C]``
        - batch: ``[M]``
        - output: ``[2, E]``
    """
    if coords.shape[0] == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=coords.device)
    dense, mask, offsets, node = _padded_view(coords, batch, num_graphs)
    index, valid = knn_graph_dense(dense, mask, k)  # [B, n, k]
    source = (offsets + index)[valid]
    target = node.expand_as(index)[valid]
    return torch.stack([source, target])


def _padded_view(
    coords: torch.Tensor, batch: torch.Tensor, num_graphs: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The padded jets of a packed graph, with the packed index of each graph's first node and
    of each slot.

    Shapes:
        - coords: ``[M, C]``; batch: ``[M]``
        - output: dense ``[B, n, C]``, mask ``[B, n]``, offsets ``[B, 1, 1]``, node ``[B, n, 1]``
    """
    dense, mask = to_dense_batch(coords, batch, batch_size=num_graphs)
    counts = mask.sum(dim=1)
    offsets = (torch.cumsum(counts, 0) - counts).view(-1, 1, 1)  # first node of each graph
    node = offsets + torch.arange(dense.shape[1], device=coords.device).view(1, -1, 1)
    return dense, mask, offsets, node


def knn_graph_packed_slots(
    coords: torch.Tensor, batch: torch.Tensor, k: int, num_graphs: int | None = None
) -> torch.Tensor:
    """weaver's kNN on a packed graph: every node gets exactly ``k`` edges.

    The neighbours are those of :func:`~foundation.models.particlenet.knn_graph_slots` on the
    padded jets (the ``k + 1`` nearest minus the nearest, ties to the lower slot); where a jet
    has fewer than ``k + 1`` nodes, the missing neighbours (padding slots in weaver, with zero
    features) are edges from the extra node ``M``, which the caller gives zero features. Rows
    and order as :func:`knn_graph_packed`: row 0 the source ``j``, row 1 the target ``i``,
    sorted by target.

    Args:
        coords: coordinates the distance is measured in.
        batch: graph of each node, sorted (as in a PyG ``Batch``).
        k: neighbours per node.
        num_graphs: number of graphs ``B`` (default ``batch.max() + 1``).

    Returns:
        ``edge_index`` ``[2, M k]`` int64, sources in ``[0, M]``.

    Shapes:
        - coords: ``[M, C]``
        - batch: ``[M]``
        - output: ``[2, M k]``
    """
    from foundation.models.particlenet import knn_graph_slots

    nodes = coords.shape[0]
    if nodes == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=coords.device)
    dense, mask, offsets, node = _padded_view(coords, batch, num_graphs)
    index, real = knn_graph_slots(dense, mask, k)  # [B, n, k]
    source = torch.where(real, offsets + index, torch.full_like(index, nodes))
    rows = mask.unsqueeze(-1).expand_as(index)  # all k slots of every real node
    return torch.stack([source[rows], node.expand_as(index)[rows]])


class PackedEdgeConv(MessagePassing):
    """ParticleNet's EdgeConv block on a packed graph (see the module docstring).

    For each edge ``j -> i`` of the kNN graph in ``coords``, ``(x_i, x_j - x_i)`` passes the
    ``Linear -> BN -> ReLU`` layers (the first linear evaluated per node, as in the dense
    block); messages are averaged per node (a node without edges gets zero); a ``Linear -> BN``
    shortcut of ``x_i`` is added and a ReLU applied. Batch norms see the real edges and nodes
    only, so training-mode statistics equal the dense block's masked ones. With
    ``missing_neighbours="zero_features"`` every node has ``k`` edges, those beyond its jet's
    other particles from a zero-feature node (:func:`knn_graph_packed_slots`), as in the dense
    block.

    Args:
        in_dim: input width ``C``.
        channels: widths of the edge MLP; the output width is ``channels[-1]``.
        k: neighbours per node.
        missing_neighbours: see :data:`~foundation.models.particlenet.MISSING_NEIGHBOURS`.

    Shapes:
        - x: ``[M, C]``
        - coords: ``[M, Cc]`` (where the kNN is measured)
        - batch: ``[M]`` graph of each node, sorted
        - output: ``[M, channels[-1]]``
    """

    def __init__(
        self,
        in_dim: int,
        channels: Sequence[int],
        k: int,
        missing_neighbours: MissingNeighbours = "ignore",
    ) -> None:
        from foundation.models.particlenet import EdgeConvBlock

        super().__init__(aggr="mean")
        self._share(EdgeConvBlock(in_dim, channels, k, missing_neighbours))

    @classmethod
    def from_dense(cls, block: EdgeConvBlock) -> PackedEdgeConv:
        """A packed block that shares ``block``'s modules (parameters and running statistics)."""
        packed = cls.__new__(cls)  # no fresh layers to initialise and throw away
        MessagePassing.__init__(packed, aggr="mean")
        packed._share(block)
        return packed

    def _share(self, block: EdgeConvBlock) -> None:
        """Take ``block``'s settings and modules (the same objects, not copies)."""
        self.k, self.in_dim, self.zero_features = block.k, block.in_dim, block.zero_features
        self.linears, self.norms = block.linears, block.norms
        self.shortcut, self.shortcut_norm = block.shortcut, block.shortcut_norm

    def forward(
        self,
        x: torch.Tensor,
        coords: torch.Tensor,
        batch: torch.Tensor,
        num_graphs: int | None = None,
    ) -> torch.Tensor:
        weight = self.linears[0].weight
        w_center, w_diff = weight[:, : self.in_dim], weight[:, self.in_dim :]
        center = F.linear(x, w_center - w_diff)
        neighbour = F.linear(x, w_diff)
        if self.zero_features:
            edge_index = knn_graph_packed_slots(coords, batch, self.k, num_graphs)
            # node M: the zero-feature padding neighbour (W_b x_j = 0)
            neighbour = torch.cat([neighbour, neighbour.new_zeros(1, neighbour.shape[1])])
        else:
            edge_index = knn_graph_packed(coords, batch, self.k, num_graphs)
        # The edges come grouped by target node (knn_graph_packed): a CSR mean over segments
        # is several times faster on CPU than PyG's default scatter.
        degree = torch.bincount(edge_index[1], minlength=x.shape[0])
        target_ptr = torch.cat([degree.new_zeros(1), torch.cumsum(degree, 0)])
        aggregated = self.propagate(
            edge_index,
            size=(neighbour.shape[0], x.shape[0]),
            center=center,
            neighbour=neighbour,
            target_ptr=target_ptr,
        )
        return F.relu(aggregated + self.shortcut_norm(self.shortcut(x)))

    def message(self, center_i: torch.Tensor, neighbour_j: torch.Tensor) -> torch.Tensor:
        """``h(x_i, x_j - x_i)`` for every edge: ``[E, C1]`` -> ``[E, channels[-1]]``."""
        edges = F.relu(self.norms[0](center_i + neighbour_j))
        for linear, norm in zip(self.linears[1:], self.norms[1:], strict=True):
            edges = F.relu(norm(linear(edges)))
        return edges

    def aggregate(
        self,
        inputs: torch.Tensor,
        index: torch.Tensor,
        target_ptr: torch.Tensor,
        dim_size: int | None = None,
    ) -> torch.Tensor:
        """Mean of each node's messages (zero without any), edges grouped by target node."""
        return segment(inputs, target_ptr, reduce="mean")

    def __repr__(self) -> str:
        widths = [linear.out_features for linear in self.linears]
        rule = ", missing_neighbours='zero_features'" if self.zero_features else ""
        return f"{type(self).__name__}({self.in_dim}, {widths}, k={self.k}{rule})"
