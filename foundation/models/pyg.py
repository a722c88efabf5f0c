"""Any PyTorch Geometric module as a registered backbone (:class:`PyGBackbone`).

A graph network written for PyG — a module ``module(x, pos, batch) -> [M, D]`` on the packed
real particles of a batch of jets — becomes a backbone of the registry with one call, and from
there fine-tunes with the recipes, saves to a checkpoint folder and reloads from its
``config.json`` like the built-in ones::

    from foundation.models.pyg import register_pyg_backbone

    def my_gnn(in_features: int, hidden: int = 64) -> torch.nn.Module:
        ...  # a module with forward(x, pos, batch) and an ``out_channels`` attribute

    register_pyg_backbone("my-gnn", my_gnn, hidden=64)
    backbone = create_backbone("my-gnn", in_features=17)  # what config.json rebuilds

The backbone batch-normalises the particle features over real particles, packs the jets with
:func:`~foundation.data.graph.to_graph` (``x`` the features, ``pos`` the (Δη, Δφ) to the jet
axis, ``batch`` the jet of each particle), runs the module, and returns the node embeddings
padded back to ``[B, N, D]`` and their mean per jet. ``config.json`` holds the factory's keyword
arguments (they must be JSON values); the factory itself is found by the registered name, so a
user's module must be registered (imported) before its checkpoint is loaded.

The example variant ``pyg-edgeconv-tiny`` is a dynamic-graph EdgeConv network built from
``torch_geometric.nn.EdgeConv`` (:func:`dynamic_edgeconv_net`).

ONNX: a packed graph has data-dependent sizes (node and edge counts), which the exporter would
freeze into the graph; exporting a PyG backbone raises
:class:`~foundation.export.errors.ExportError` saying so. Export a dense backbone (e.g.
``particlenet``) instead.

``torch_geometric`` is imported when a PyG backbone is built, not when this module is (the
registry imports it with the zoo).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.extras import requires_extra
from foundation.models.base import Backbone, Features
from foundation.models.checks import check_batch
from foundation.models.layers import MaskedBatchNorm, is_exporting
from foundation.models.registry import register_backbone

ModuleFactory = Callable[..., nn.Module]


class PyGBackbone(Backbone):
    """A PyG module on the packed real particles of each batch (see the module docstring).

    Args:
        module_factory: ``module_factory(in_features=F, **module_kwargs)`` returns an
            ``nn.Module`` whose ``forward(x, pos, batch)`` gives node embeddings ``[M, D]`` and
            whose ``out_channels`` attribute is ``D``.
        in_features: particle features ``F``.
        in_jet_features: jet-level inputs ``J`` (accepted and recorded, not used).
        **module_kwargs: the factory's arguments (JSON values: they go to ``config.json``).

    Raises:
        TypeError: the module has no integer ``out_channels``.
        ValueError: ``module_kwargs`` are not JSON values.

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.mask: ``[B, N]``; batch.vectors: ``[B, N, 4]``
        - module input: ``x [M, F]``, ``pos [M, 2]``, ``batch [M]`` with ``M`` real particles
        - output.particles: ``[B, N, D]`` (padding rows zero); output.jet: ``[B, D]``
    """

    config_exclude = ("module_factory",)

    def __init__(
        self,
        module_factory: ModuleFactory,
        in_features: int,
        in_jet_features: int = 0,
        **module_kwargs: Any,
    ) -> None:
        super().__init__()
        self.input_norm = MaskedBatchNorm(in_features)
        self.module = module_factory(in_features=in_features, **module_kwargs)
        width = getattr(self.module, "out_channels", None)
        if not isinstance(width, int) or width < 1:
            raise TypeError(
                f"PyGBackbone: {type(self.module).__name__} needs an integer out_channels "
                f"attribute (the node embedding width D), found {width!r}"
            )
        self.num_features = width

    def forward(self, batch: JetBatch) -> Features:
        if is_exporting():
            from foundation.export.errors import ExportError

            raise ExportError(
                f"{type(self.module).__name__} (a PyG backbone) runs on packed graphs whose "
                "node and edge counts depend on the data, which ONNX export would freeze; "
                "export a dense backbone (e.g. particlenet) instead"
            )
        with requires_extra("pyg"):
            from torch_geometric.nn import global_mean_pool

        from foundation.data.graph import to_graph, unpack_nodes

        check_batch(type(self).__name__, batch, self.config["in_features"])
        graph = to_graph(JetBatch(batch.particles, batch.mask, batch.vectors, batch.jet))
        x = self.input_norm(graph.x)
        nodes = self.module(x, graph.pos, graph.batch)
        jet = global_mean_pool(nodes, graph.batch, size=len(batch))
        return Features(particles=unpack_nodes(nodes, graph), jet=jet, mask=batch.mask)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The input norm with the module's first group, then its later groups: the module's own
        ``layer_groups()`` if it has one, else one group per child with parameters (its direct
        parameters join the last group)."""
        inputs = list(self.input_norm.parameters())
        if callable(getattr(self.module, "layer_groups", None)):
            groups = [list(group) for group in self.module.layer_groups()]
            return [inputs + groups[0], *groups[1:]] if groups else [inputs]
        groups = [list(child.parameters()) for child in self.module.children()]
        groups = [group for group in groups if group]
        own = list(self.module.parameters(recurse=False))
        if not groups:
            groups = [own] if own else []
        elif own:
            groups[-1] += own
        return [inputs + groups[0], *groups[1:]] if groups else [inputs]


def register_pyg_backbone(name: str, module_factory: ModuleFactory, **defaults: Any) -> None:
    """Register ``name`` as a :class:`PyGBackbone` of ``module_factory`` with ``defaults``.

    ``create_backbone(name, in_features=F, **overrides)`` then builds it, and a checkpoint of
    it rebuilds from its ``config.json``.

    Args:
        name: registry name (e.g. ``"my-gnn"``; a ``-tiny`` name joins the test matrix).
        module_factory: see :class:`PyGBackbone`.
        **defaults: the variant's factory arguments.

    Raises:
        ValueError: the name is malformed or taken (from the registry).
        TypeError: a default is not an argument of the factory.
    """
    accepted = _factory_arguments(module_factory)
    _check_arguments(name, accepted, defaults)

    def build(**kwargs: Any) -> PyGBackbone:
        _check_arguments(name, accepted, kwargs)
        arguments = {**defaults, **kwargs}
        if "in_features" not in arguments:
            raise TypeError(
                f"{name} needs in_features (the particle feature count F of the JetBatch), "
                f"e.g. create_backbone({name!r}, in_features=17)"
            )
        return PyGBackbone(module_factory, **arguments)

    build.__doc__ = f"PyG backbone {name!r}: {module_factory.__doc__ or module_factory.__name__}"
    register_backbone(name)(build)


def _factory_arguments(module_factory: ModuleFactory) -> list[str] | None:
    """Keyword arguments of the factory besides ``in_features`` (None: it takes ``**kwargs``)."""
    parameters = inspect.signature(module_factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.name != "in_features"]


def _check_arguments(name: str, accepted: list[str] | None, given: dict[str, Any]) -> None:
    if accepted is None:
        return
    allowed = ["in_features", "in_jet_features", *accepted]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(f"{name} got unknown argument(s) {unknown}; accepted: {', '.join(allowed)}")


class DynamicEdgeConvNet(nn.Module):
    """EdgeConv layers (``torch_geometric.nn.EdgeConv``, mean aggregation) on kNN graphs built
    per jet: the first in ``pos``, each later one in the features of the layer before.

    Each layer's edge network is ``Linear -> LayerNorm -> ReLU`` per width on
    ``(x_i, x_j - x_i)``; a linear shortcut of ``x_i`` is added. The kNN graph comes from
    :func:`~foundation.models.layers.packed_edgeconv.knn_graph_packed` (``torch_cluster`` is not
    needed).

    Args:
        in_features: node input width.
        edge_convs: ``(k, widths)`` of each layer.

    Shapes:
        - x: ``[M, in_features]``; pos: ``[M, 2]``; batch: ``[M]``
        - output: ``[M, out_channels]`` with ``out_channels`` the last width
    """

    def __init__(self, in_features: int, edge_convs: Sequence[tuple[int, Sequence[int]]]) -> None:
        super().__init__()
        with requires_extra("pyg"):
            from torch_geometric.nn import EdgeConv

        if not edge_convs:
            raise ValueError("DynamicEdgeConvNet needs at least one layer, found edge_convs=[]")
        self.ks = [int(k) for k, _ in edge_convs]
        self.convs = nn.ModuleList()
        self.shortcuts = nn.ModuleList()
        width = in_features
        for _, widths in edge_convs:
            layers: list[nn.Module] = []
            previous = 2 * width
            for size in widths:
                layers += [nn.Linear(previous, size), nn.LayerNorm(size), nn.ReLU()]
                previous = size
            self.convs.append(EdgeConv(nn.Sequential(*layers), aggr="mean"))
            self.shortcuts.append(nn.Linear(width, previous, bias=False))
            width = previous
        self.out_channels = width

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """One group per layer (its edge network and shortcut), input to output."""
        return [
            [*conv.parameters(), *shortcut.parameters()]
            for conv, shortcut in zip(self.convs, self.shortcuts, strict=True)
        ]

    def forward(self, x: torch.Tensor, pos: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        from foundation.models.layers.packed_edgeconv import knn_graph_packed

        coords = pos
        for k, conv, shortcut in zip(self.ks, self.convs, self.shortcuts, strict=True):
            edge_index = knn_graph_packed(coords, batch, k)
            x = torch.relu(conv(x, edge_index) + shortcut(x))
            coords = x
        return x


def dynamic_edgeconv_net(
    in_features: int,
    edge_convs: Sequence[tuple[int, Sequence[int]]] = ((8, (16, 16)), (8, (32, 32))),
) -> DynamicEdgeConvNet:
    """A dynamic-graph EdgeConv network from ``torch_geometric.nn`` layers."""
    return DynamicEdgeConvNet(in_features, edge_convs)


register_pyg_backbone(
    "pyg-edgeconv-tiny", dynamic_edgeconv_net, edge_convs=[[8, [16, 16]], [8, [32, 32]]]
)
