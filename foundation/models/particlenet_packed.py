"""A :class:`~foundation.models.particlenet.ParticleNet` run on packed graphs (PyG).

:class:`PackedParticleNet` wraps a dense ParticleNet and shares its modules (same parameters,
same names, same running statistics): the input batch norm, then one
:class:`~foundation.models.layers.packed_edgeconv.PackedEdgeConv` per EdgeConv block, then the
mean over each jet's particles. :func:`forward_packed` runs it on a :class:`JetBatch` and returns
the dense model's :class:`Features` (equal to ``model(batch)`` to float rounding, in train and
eval mode: ``tests/test_graph.py``).

Both neighbour rules: ParticleNet's default (``missing_neighbours="ignore"``: a jet with
``n <= k`` particles gives each particle its ``n - 1`` real neighbours) and weaver's
(``"zero_features"``: the missing ones are padding slots with zero features, one extra
zero-feature node in the packed graph), and where the dense model has them, ``coordinates``,
``fusion`` and ``pool_slots``: the converted JetClass ParticleNets run packed too.

Where it pays: ``benchmarks/bench_packed_graph.py`` (figures in its docstring).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from foundation.data.batch import JetBatch
from foundation.data.graph import to_graph, unpack_nodes
from foundation.extras import requires_extra
from foundation.models.base import Features
from foundation.models.checks import check_batch
from foundation.models.layers.packed_edgeconv import PackedEdgeConv
from foundation.models.particlenet import ParticleNet

with requires_extra("pyg"):
    from torch_geometric.data import Batch
    from torch_geometric.nn import global_add_pool, global_mean_pool


class PackedParticleNet(nn.Module):
    """ParticleNet's layers on a packed graph, sharing a dense model's modules.

    Args:
        model: the dense ParticleNet whose modules are used (not copied).

    Shapes:
        - x: ``[M, F]`` features of the real particles
        - pos: ``[M, 2]`` (Δη, Δφ) to the jet axis
        - batch: ``[M]`` jet of each particle, sorted
        - output: ``([M, D], [B, D])`` particle and jet embeddings
    """

    def __init__(self, model: ParticleNet) -> None:
        super().__init__()
        self.input_norm = model.input_norm
        self.blocks = nn.ModuleList(PackedEdgeConv.from_dense(block) for block in model.blocks)
        self.fusion = getattr(model, "fusion", None)
        if self.fusion is not None:
            self.fusion_norm = model.fusion_norm
        self.coordinates: list[int] | None = getattr(model, "coordinates", None)
        self.pool_slots: int | None = getattr(model, "pool_slots", None)
        self.num_features = model.num_features

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, batch: torch.Tensor, num_graphs: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        coords = pos if self.coordinates is None else x[:, self.coordinates].float()
        x = self.input_norm(x)
        outputs = []
        for block in self.blocks:
            x = block(x, coords, batch, num_graphs)
            coords = x
            outputs.append(x)
        if self.fusion is not None:
            x = F.relu(self.fusion_norm(self.fusion(torch.cat(outputs, dim=-1))))
        if self.pool_slots is None:
            return x, global_mean_pool(x, batch, size=num_graphs)
        return x, global_add_pool(x, batch, size=num_graphs) / self.pool_slots

    def forward_graph(self, graph: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Run on a :func:`~foundation.data.graph.to_graph` batch (``x``, ``pos``, ``batch``)."""
        return self(graph.x, graph.pos, graph.batch, graph.num_graphs)


def forward_packed(model: ParticleNet, batch: JetBatch) -> Features:
    """``model(batch)`` computed on the packed graph of the real particles.

    Args:
        model: a dense ParticleNet (its train/eval mode is used, and in train mode its batch-norm
            running statistics are updated as by the dense forward).
        batch: padded jets.

    Returns:
        The dense :class:`Features` (particles padded back to ``batch``'s layout).

    Shapes:
        - batch.particles: ``[B, N, F]``; output.particles: ``[B, N, D]``; output.jet: ``[B, D]``
    """
    check_batch(type(model).__name__, batch, model.config["in_features"])
    plain = JetBatch(batch.particles, batch.mask, batch.vectors, batch.jet)
    graph = to_graph(plain)
    packed = PackedParticleNet(model).train(model.training)
    nodes, jet = packed.forward_graph(graph)
    return Features(particles=unpack_nodes(nodes, graph), jet=jet, mask=batch.mask)
