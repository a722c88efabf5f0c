"""Packed graphs for PyTorch Geometric users: a :class:`JetBatch` to a ``torch_geometric`` batch
of real particles only, and back.

:func:`to_graph` drops the padding: every real particle becomes a node, and each jet a graph of
a :class:`torch_geometric.data.Batch` (the ``batch`` vector and ``ptr`` say which). It is the
batch :meth:`torch_geometric.data.Batch.from_data_list` would build from one ``Data`` per jet
(``to_data_list()`` and ``get_example(i)`` work on it), made with tensor operations instead of a
Python loop over jets. :func:`from_graph` is the inverse (``to_dense_batch`` with the original
slots restored). No edges are made here: a kNN graph depends on the model
(:func:`foundation.models.layers.packed_edgeconv.knn_graph_packed`).

Attributes of the graph batch (``M`` real particles, ``B`` jets, ``P = Σ n_b²`` particle pairs):

====================  ==============  ================================================
attribute             shape           meaning
====================  ==============  ================================================
``x``                 ``[M, F]``      particle features (``JetBatch.particles``)
``pos``               ``[M, 2]``      (Δη, Δφ) to the jet axis (the sum of the 4-vectors)
``vectors``           ``[M, 4]``      (px, py, pz, E)
``slot``              ``[M]``         the particle's position along ``N`` in the JetBatch
``batch``, ``ptr``    ``[M]``, [B+1]  jet of each node; node offsets of the jets
``jet``               ``[B, J]``      jet-level inputs
``num_slots``         ``[B]``         the padded size ``N`` of the JetBatch
``y_<name>``          ``[B, ...]``    jet-level target ``<name>``
``node_y_<name>``     ``[M, ...]``    particle-level target ``<name>``
``pair_index``        ``[2, P]``      every ordered pair (i, j) of real particles of a jet,
                                      ``i == j`` included (only with pair-level targets)
``pair_y_<name>``     ``[P, ...]``    pair-level target ``<name>`` (names start ``pair_``)
====================  ==============  ================================================

Levels follow :meth:`JetBatch.trimmed`: a target whose second axis is ``N`` is per particle, a
``pair_`` target whose second and third axes are ``N`` is per pair, any other is per jet.
"""

from __future__ import annotations

import torch

from foundation.data.batch import JetBatch
from foundation.extras import requires_extra
from foundation.models.layers.geometry import jet_relative_eta_phi

with requires_extra("pyg"):
    from torch_geometric.data import Batch

JET_TARGET = "y_"
PARTICLE_TARGET = "node_y_"
PAIR_TARGET = "pair_y_"


def _target_level(name: str, value: torch.Tensor, count: int) -> str:
    """``"jet"``, ``"particle"`` or ``"pair"``, by the rule of :meth:`JetBatch.trimmed`."""
    if value.dim() >= 2 and value.shape[1] == count:
        if name.startswith("pair_") and value.dim() >= 3 and value.shape[2] == count:
            return "pair"
        return "particle"
    return "jet"


def _pair_rows(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat ``[B * N * N]`` positions of the real pairs, their (i, j) node ids, pair offsets.

    Returns:
        ``(rows [P], pair_index [2, P], pair_ptr [B + 1])``; pairs run jet by jet, ``i`` then
        ``j`` in slot order.
    """
    batch, count = mask.shape
    pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
    rows = pair_mask.reshape(-1).nonzero().squeeze(-1)
    node_id = torch.cumsum(mask.reshape(-1).long(), 0).view(batch, count) - 1
    per_jet, per_row = max(count * count, 1), max(count, 1)
    jet, rest = torch.div(rows, per_jet, rounding_mode="floor"), rows % per_jet
    first, second = torch.div(rest, per_row, rounding_mode="floor"), rest % per_row
    pair_index = torch.stack([node_id[jet, first], node_id[jet, second]])
    sizes = mask.sum(dim=1).square()
    pair_ptr = torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)])
    return rows, pair_index, pair_ptr


def to_graph(batch: JetBatch) -> Batch:
    """The real particles of ``batch`` as a packed ``torch_geometric`` batch (see the module
    docstring for the attributes).

    Args:
        batch: padded jets; jets with 0 or 1 real particles are kept (a graph without nodes, a
            graph with one node).

    Returns:
        A :class:`torch_geometric.data.Batch` with ``num_graphs == len(batch)``.

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.mask: ``[B, N]``
        - output.x: ``[M, F]`` with ``M = batch.mask.sum()``; output.batch: ``[M]``
    """
    mask = batch.mask
    size, count = mask.shape
    rows = mask.reshape(-1).nonzero().squeeze(-1)
    jet_of_node = torch.div(rows, max(count, 1), rounding_mode="floor")
    counts = mask.sum(dim=1)
    ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

    def pack(values: torch.Tensor) -> torch.Tensor:
        return values.reshape(size * count, *values.shape[2:]).index_select(0, rows)

    pos = jet_relative_eta_phi(batch.vectors, mask)
    graph = Batch(
        x=pack(batch.particles),
        pos=pack(pos),
        vectors=pack(batch.vectors),
        slot=rows % max(count, 1),
        batch=jet_of_node,
        ptr=ptr,
        jet=batch.jet,
        num_slots=torch.full((size,), count, dtype=torch.long, device=mask.device),
    )
    graph_slices = torch.arange(size + 1, device=mask.device)
    zeros = torch.zeros(size, dtype=torch.long, device=mask.device)
    slices = {key: ptr for key in ("x", "pos", "vectors", "slot")}
    slices.update(jet=graph_slices, num_slots=graph_slices)
    increments = {key: zeros for key in slices}
    pairs = None
    for name, value in batch.targets.items():
        level = _target_level(name, value, count)
        if level == "jet":
            key, graph[f"{JET_TARGET}{name}"] = f"{JET_TARGET}{name}", value
            slices[key] = graph_slices
        elif level == "particle":
            key, graph[f"{PARTICLE_TARGET}{name}"] = f"{PARTICLE_TARGET}{name}", pack(value)
            slices[key] = ptr
        else:
            if pairs is None:
                pairs = _pair_rows(mask)
                graph.pair_index = pairs[1]
                slices["pair_index"], increments["pair_index"] = pairs[2], ptr[:-1]
            flat = value.reshape(size * count * count, *value.shape[3:])
            key = f"{PAIR_TARGET}{name}"
            graph[key] = flat.index_select(0, pairs[0])
            slices[key] = pairs[2]
        increments.setdefault(key, zeros)
    graph._num_graphs = size
    graph._slice_dict = slices
    graph._inc_dict = increments
    graph.feature_names = tuple(batch.feature_names)
    graph.jet_feature_names = tuple(batch.jet_feature_names)
    return graph


def unpack_nodes(
    values: torch.Tensor,
    graph: Batch,
    num_particles: int | None = None,
    fill_value: float = 0.0,
) -> torch.Tensor:
    """Node values of a :func:`to_graph` batch back to padded ``[B, N, ...]`` (each node in its
    original slot; ``to_dense_batch`` with the JetBatch's layout).

    Args:
        values: one row per node.
        graph: the batch the nodes came from (``batch``, ``slot``, ``num_slots``).
        num_particles: padded size ``N`` (default: the JetBatch's, from ``num_slots``).
        fill_value: value of the padding entries.

    Raises:
        ValueError: ``values`` has not one row per node, or ``num_particles`` is too small for
            the slots.

    Shapes:
        - values: ``[M, ...]``
        - output: ``[B, N, ...]``
    """
    nodes = int(graph.batch.numel())
    if values.shape[0] != nodes:
        raise ValueError(
            f"unpack_nodes: expected one row per node ({nodes}), found {values.shape[0]} rows"
        )
    size, count = graph.num_graphs, _num_slots(graph, num_particles)
    out = values.new_full((size * count, *values.shape[1:]), fill_value)
    flat = graph.batch * count + _slots(graph)
    return out.index_copy(0, flat, values).view(size, count, *values.shape[1:])


def _num_slots(graph: Batch, num_particles: int | None) -> int:
    slots = _slots(graph)
    needed = int(slots.max()) + 1 if slots.numel() else 0
    if num_particles is None:
        stored = getattr(graph, "num_slots", None)
        num_particles = int(stored.max()) if stored is not None and stored.numel() else needed
    if num_particles < needed:
        raise ValueError(
            f"num_particles={num_particles} is too small: the graph's nodes need {needed} slots"
        )
    return num_particles


def _slots(graph: Batch) -> torch.Tensor:
    """Each node's slot: the stored ``slot``, else its rank within its jet (packed in front)."""
    slot = getattr(graph, "slot", None)
    if slot is not None:
        return slot
    return torch.arange(graph.batch.numel(), device=graph.batch.device) - graph.ptr[graph.batch]


def from_graph(
    graph: Batch, num_particles: int | None = None, target_fill: float = -1.0
) -> JetBatch:
    """The inverse of :func:`to_graph`: a padded :class:`JetBatch` from a packed graph batch.

    Nodes go back to their ``slot`` (to the front of each jet when the batch has none, e.g. one
    collated from the user's own ``Data`` objects with ``x``, ``vectors`` and ``jet``).

    Args:
        graph: a batch with ``x``, ``vectors``, ``batch``, ``ptr`` and ``jet`` (and optionally
            ``slot``, ``num_slots`` and the target attributes of the module docstring).
        num_particles: padded size ``N`` (default: the original ``N`` when stored, else the
            largest jet).
        target_fill: value of particle- and pair-level targets on padding (the loaders' -1,
            "ignore").

    Raises:
        ValueError: a required attribute is missing (named), or ``num_particles`` is too small.

    Shapes:
        - graph.x: ``[M, F]``; graph.batch: ``[M]``
        - output.particles: ``[B, N, F]``; output.mask: ``[B, N]``
    """
    for name in ("x", "vectors", "jet", "batch", "ptr"):
        if getattr(graph, name, None) is None:
            raise ValueError(
                f"from_graph: the graph batch has no attribute {name!r}; expected x [M, F], "
                "vectors [M, 4], jet [B, J], batch [M] and ptr [B + 1] (see to_graph)"
            )
    count = _num_slots(graph, num_particles)
    ones = torch.ones(graph.x.shape[0], dtype=torch.bool, device=graph.x.device)
    mask = unpack_nodes(ones, graph, count, fill_value=False)
    targets = {}
    for key in graph.keys():  # noqa: SIM118 - a PyG batch is not a mapping
        if key.startswith(PARTICLE_TARGET):
            targets[key[len(PARTICLE_TARGET) :]] = unpack_nodes(
                graph[key], graph, count, fill_value=target_fill
            )
        elif key.startswith(PAIR_TARGET):
            targets[key[len(PAIR_TARGET) :]] = _unpack_pairs(graph, key, count, target_fill)
        elif key.startswith(JET_TARGET):
            targets[key[len(JET_TARGET) :]] = graph[key]
    return JetBatch(
        particles=unpack_nodes(graph.x, graph, count),
        mask=mask,
        vectors=unpack_nodes(graph.vectors, graph, count),
        jet=graph.jet,
        targets=targets,
        feature_names=tuple(getattr(graph, "feature_names", ()) or ()),
        jet_feature_names=tuple(getattr(graph, "jet_feature_names", ()) or ()),
    )


def _unpack_pairs(graph: Batch, key: str, count: int, fill_value: float) -> torch.Tensor:
    """A ``pair_y_*`` attribute back to ``[B, N, N, ...]`` through ``pair_index``."""
    values, pair_index = graph[key], graph.pair_index
    slots = _slots(graph)
    jet = graph.batch[pair_index[0]]
    flat = (jet * count + slots[pair_index[0]]) * count + slots[pair_index[1]]
    size = graph.num_graphs
    out = values.new_full((size * count * count, *values.shape[1:]), fill_value)
    return out.index_copy(0, flat, values).view(size, count, count, *values.shape[1:])
