"""The function that is exported: a model's backbone and heads (or heads alone) on plain tensors.

ONNX graphs take tensors, not a :class:`~foundation.data.batch.JetBatch`; the wrappers here
rebuild the batch inside the graph and flatten the heads' output dicts into one tuple whose
names, ``{head}.{output}``, come from each head's ``output_names``. Nothing here knows a task by
name: the input and output layout follows from the heads' ``level`` and ``output_names``.

Input dtypes: every float input is float32; ``mask`` is **bool** (True = real particle), which
ONNX Runtime supports in every API (``bool`` / ``uint8``-sized elements in C and C++).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.export.errors import ExportError
from foundation.model import Model
from foundation.models.base import Features
from heads.base import Head

PARTICLES = "particles"
VECTORS = "vectors"
MASK = "mask"
JET = "jet"
PARTICLE_EMBEDDINGS = "particle_embeddings"
JET_EMBEDDING = "jet_embedding"
BATCH_AXIS = "batch"
PARTICLE_AXIS = "num_particles"

_LEVEL_AXES: dict[str, dict[int, str]] = {
    "jet": {0: BATCH_AXIS},
    "particle": {0: BATCH_AXIS, 1: PARTICLE_AXIS},
    "pair": {0: BATCH_AXIS, 1: PARTICLE_AXIS, 2: PARTICLE_AXIS},
}
"""Dynamic axes of an output, by the level of the head that makes it."""


@dataclass(frozen=True)
class InputSpec:
    """One graph input.

    Attributes:
        name: the ONNX input name.
        shape: axis names (dynamic) and sizes (fixed), e.g. ``("batch", "num_particles", 17)``.
        dtype: ``"float32"`` or ``"bool"``.
        description: what the input holds.
    """

    name: str
    shape: tuple[str | int, ...]
    dtype: str
    description: str

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """``{axis: name}`` of the dynamic axes."""
        return {axis: size for axis, size in enumerate(self.shape) if isinstance(size, str)}

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "description": self.description,
        }


@dataclass(frozen=True)
class OutputSpec:
    """One graph output: output ``output`` of head ``head``.

    Attributes:
        name: the ONNX output name, ``f"{head}.{output}"`` (or an embedding name when the graph
            has no heads).
        head: the head's name in the model ("" for embeddings).
        output: the key in the head's output dict.
        level: ``"jet"``, ``"particle"`` or ``"pair"``.
    """

    name: str
    head: str
    output: str
    level: str

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return dict(_LEVEL_AXES[self.level])


@dataclass(frozen=True)
class GraphSpec:
    """Inputs and outputs of an exported graph, in order.

    Attributes:
        embeddings_only: the graph holds heads only and takes the backbone's embeddings.
        heads: the exported heads, in output order.
        inputs: the inputs the wrapper takes (ONNX may prune one that no output reads).
        outputs: the outputs, in order.
    """

    embeddings_only: bool
    heads: tuple[str, ...]
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The ``dynamic_axes`` argument of :func:`torch.onnx.export`."""
        axes = {spec.name: spec.dynamic_axes for spec in self.inputs}
        axes.update({spec.name: spec.dynamic_axes for spec in self.outputs})
        return axes


class _GraphBatch(JetBatch):
    """A JetBatch without the Python-side shape checks.

    Inside a trace those checks compare traced sizes and only produce tracer warnings; the
    exported graph's declared input shapes are enforced by ONNX Runtime instead.
    """

    def __post_init__(self) -> None:
        pass


def collect_outputs(
    heads: Mapping[str, Head], features: Features, batch: JetBatch
) -> tuple[torch.Tensor, ...]:
    """Run each head and flatten its outputs in ``output_names`` order.

    Raises:
        ExportError: a head's output dict lacks a name of its ``output_names``.
    """
    outputs: list[torch.Tensor] = []
    for name, head in heads.items():
        result = head(features, batch)
        for output in head.output_names:
            if output not in result:
                raise ExportError(
                    f"head {name!r} ({type(head).__name__}) declares output_names "
                    f"{tuple(head.output_names)} but its forward returned {tuple(result)}; "
                    "make output_names list exactly the keys forward returns"
                )
            outputs.append(result[output])
    return tuple(outputs)


class JetGraph(nn.Module):
    """Backbone and heads as one function of tensors (the graph of a full export).

    With no heads, the outputs are the backbone's ``particle_embeddings`` and ``jet_embedding``.

    Shapes:
        - particles: ``[B, N, F]`` float32; vectors: ``[B, N, 4]`` float32; mask: ``[B, N]``
          bool; jet: ``[B, J]`` float32 (only when ``J > 0``)
        - outputs: each head's outputs, in the order of :class:`GraphSpec`
    """

    def __init__(self, model: Model, heads: Sequence[str]) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.heads = nn.ModuleDict({name: model.heads[name] for name in heads})

    def forward(
        self,
        particles: torch.Tensor,
        vectors: torch.Tensor,
        mask: torch.Tensor,
        jet: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        if jet is None:
            jet = particles.new_zeros(particles.shape[0], 0)
        batch = _GraphBatch(particles=particles, mask=mask, vectors=vectors, jet=jet)
        features = self.backbone(batch)
        if not self.heads:
            return features.particles, features.jet
        return collect_outputs(self.heads, features, batch)  # type: ignore[arg-type]


class HeadsGraph(nn.Module):
    """Heads alone on precomputed embeddings (the graph of an ``embeddings_only`` export).

    Heads see a batch whose ``vectors`` is the ``vectors`` input when the graph has one (pair
    heads), zeros otherwise, and whose ``jet`` inputs are empty.

    Shapes:
        - particle_embeddings: ``[B, N, D]``; jet_embedding: ``[B, D]``; mask: ``[B, N]`` bool;
          vectors: ``[B, N, 4]`` (with pair heads)
        - outputs: each head's outputs, in the order of :class:`GraphSpec`
    """

    def __init__(self, model: Model, heads: Sequence[str]) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({name: model.heads[name] for name in heads})

    def forward(
        self,
        particle_embeddings: torch.Tensor,
        jet_embedding: torch.Tensor,
        mask: torch.Tensor,
        vectors: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        batch_size, count = particle_embeddings.shape[0], particle_embeddings.shape[1]
        if vectors is None:
            vectors = particle_embeddings.new_zeros(batch_size, count, 4)
        batch = _GraphBatch(
            particles=particle_embeddings,
            mask=mask,
            vectors=vectors,
            jet=particle_embeddings.new_zeros(batch_size, 0),
        )
        features = Features(particles=particle_embeddings, jet=jet_embedding, mask=mask)
        return collect_outputs(self.heads, features, batch)  # type: ignore[arg-type]


def input_widths(model: Model) -> tuple[int, int]:
    """``(F, J)``: particle features and jet-level inputs the backbone takes.

    Read from the backbone's ``config`` (``in_features``, ``in_jet_features``), else from the
    model's feature schema.

    Raises:
        ValueError: neither says how many particle features the backbone takes.
    """
    config = getattr(model.backbone, "config", None) or {}
    schema = model.feature_schema
    width = config.get("in_features")
    if width is None and schema is not None:
        width = len(schema.particle_features)
    if width is None:
        raise ValueError(
            "cannot tell the particle feature count F of this backbone: its config has no "
            "'in_features' and the model has no feature_schema"
        )
    jet_width = config.get("in_jet_features")
    if jet_width is None:
        jet_width = len(schema.jet_features) if schema is not None else 0
    return int(width), int(jet_width)


def select_heads(model: Model, heads: str | Sequence[str] | None) -> tuple[str, ...]:
    """The head names to export: all (None), or the given ones, comma-separated or listed.

    Raises:
        KeyError: a name is not a head of the model (the message lists its heads).
    """
    if heads is None:
        return tuple(model.heads)
    names = [n.strip() for n in heads.split(",")] if isinstance(heads, str) else list(heads)
    names = [name for name in names if name]
    unknown = [name for name in names if name not in model.heads]
    if unknown:
        raise KeyError(
            f"the model has no head(s) {unknown}; its heads: {', '.join(model.heads) or 'none'}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"heads repeat a name: {names}")
    return tuple(names)


def build_graph(
    model: Model, heads: Sequence[str], *, embeddings_only: bool = False
) -> tuple[nn.Module, GraphSpec]:
    """The module to export and its input/output layout.

    Args:
        model: the model (put in eval mode by the caller).
        heads: names of the heads to include, in output order.
        embeddings_only: export the heads alone, on the backbone's embeddings.

    Raises:
        ValueError: ``embeddings_only`` without heads.
    """
    width, jet_width = input_widths(model)
    dim = int(model.backbone.num_features)
    particle_axes: tuple[str, str] = (BATCH_AXIS, PARTICLE_AXIS)
    mask = InputSpec(MASK, particle_axes, "bool", "True for a real particle, False for padding")
    vectors = InputSpec(
        VECTORS, (*particle_axes, 4), "float32", "(px, py, pz, E) in GeV, zero on padding"
    )
    modules = {name: model.heads[name] for name in heads}
    outputs = tuple(
        OutputSpec(f"{name}.{output}", name, output, head.level)
        for name, head in modules.items()
        for output in head.output_names
    )
    if embeddings_only:
        if not heads:
            raise ValueError("embeddings_only=True needs at least one head to export")
        inputs = [
            InputSpec(
                PARTICLE_EMBEDDINGS,
                (*particle_axes, dim),
                "float32",
                "per-particle embeddings of the backbone, zero on padding",
            ),
            InputSpec(JET_EMBEDDING, (BATCH_AXIS, dim), "float32", "jet embedding of the backbone"),
            mask,
        ]
        if any(head.level == "pair" for head in modules.values()):
            inputs.append(vectors)
        graph: nn.Module = HeadsGraph(model, heads)
        return graph.eval(), GraphSpec(True, tuple(heads), tuple(inputs), outputs)
    inputs = [
        InputSpec(
            PARTICLES,
            (*particle_axes, width),
            "float32",
            "particle features in the order and normalization of the feature schema, zero on "
            "padding",
        ),
        vectors,
        mask,
    ]
    if jet_width > 0:
        inputs.append(
            InputSpec(JET, (BATCH_AXIS, jet_width), "float32", "jet-level inputs of the schema")
        )
    if not heads:
        outputs = (
            OutputSpec(PARTICLE_EMBEDDINGS, "", "particles", "particle"),
            OutputSpec(JET_EMBEDDING, "", "jet", "jet"),
        )
    # eval(): torch.onnx.export restores the wrapper's mode, and with it its children's.
    return JetGraph(model, heads).eval(), GraphSpec(False, tuple(heads), tuple(inputs), outputs)
