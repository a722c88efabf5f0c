"""weaver's / CMSSW's ONNX signature: ``pf_points``, ``pf_features``, ``pf_vectors``, ``pf_mask``.

weaver-core exports a network with the inputs its data pipeline feeds, float32 and channels
first, and one output ``softmax``; beside the graph it writes ``preprocess.json``, from which
CMSSW's jet taggers build those inputs (per input: the variable names, the slot count and, per
variable, ``median`` / ``norm_factor`` / bounds / pad value). :func:`export_weaver_onnx` writes
both for a checkpoint of this project, parity-gated like every export.

The graph takes what weaver's pipeline produces, features already standardized (``(x - median)
* norm_factor``, clipped), padding slots filled by repeating the jet's particles (``wrap``)
and ``pf_mask`` 0 there; it does not normalize. Inside, the model sees ``pf_features``
transposed, padding zeroed; a backbone whose first kNN graph runs on two of its input features
(ParticleNet's ``coordinates``, as in weaver's configs where ``pf_points`` repeats two untouched
``pf_features``) takes those columns from ``pf_points``. Every input stays in the graph even
when the network does not read it (weaver's own export drops unread ones, e.g. ``pf_vectors``
of a ParticleNet): a CMSSW producer feeds all four.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.data.normalization import Normalizer
from foundation.export.errors import ExportError, ExportParityError
from foundation.export.files import atomic_file
from foundation.export.graph import BATCH_AXIS, PARTICLE_AXIS, GraphSpec, InputSpec, OutputSpec
from foundation.export.graph import _GraphBatch as GraphBatch
from foundation.export.inputs import random_jets, to_numpy
from foundation.export.metadata import PREFIX, export_metadata, set_metadata
from foundation.export.parity import (
    OutputParity,
    ParityConfig,
    ParityReport,
    check_tolerance,
    compare_output,
)
from foundation.export.session import run_session
from foundation.export.source import resolve_source
from foundation.model import Model
from foundation.models.layers import jet_relative_eta_phi
from heads.base import Head

POINTS, FEATURES, VECTORS, MASK = "pf_points", "pf_features", "pf_vectors", "pf_mask"
INPUT_NAMES: tuple[str, ...] = (POINTS, FEATURES, VECTORS, MASK)
"""weaver's input names, in the order of its JetClass data configs."""
OUTPUT = "softmax"
POINT_NAMES: tuple[str, str] = ("part_deta", "part_dphi")
"""``pf_points`` of a backbone that does not take its coordinates from the features."""
VECTOR_NAMES: tuple[str, ...] = ("part_px", "part_py", "part_pz", "part_energy")
MASK_NAME = "part_mask"
PREPROCESS_FILE = "preprocess.json"
_OPEN = 1e32
"""weaver's bound of an untouched variable."""
_TRACE_COUNTS = (23, 9, 1)


@dataclass(frozen=True)
class WeaverLayout:
    """What the weaver-signature graph of a model looks like.

    Attributes:
        head: the exported jet-level classification head (e.g. ``jet_classification``).
        labels: its class names (the ``softmax`` columns, weaver's ``output_names``).
        features: the ``pf_features`` variable names (the checkpoint's particle features).
        points: the ``pf_points`` variable names.
        coordinates: positions in ``features`` that the graph takes from ``pf_points`` (the
            backbone's first-graph coordinates), or None.
        length: ``var_length`` of every input.
    """

    head: str
    labels: tuple[str, ...]
    features: tuple[str, ...]
    points: tuple[str, ...]
    coordinates: tuple[int, ...] | None
    length: int


@dataclass
class WeaverExportReport:
    """What :func:`export_weaver_onnx` wrote.

    Attributes:
        path: the ``.onnx`` file.
        preprocess_path: the ``preprocess.json`` file.
        layout: inputs, head and labels.
        parity: the parity table (None when the gate was switched off).
        size_bytes: size of the ``.onnx`` file.
        export_seconds: time spent tracing and converting.
        parity_seconds: time spent in the parity gate.
    """

    path: Path
    preprocess_path: Path
    layout: WeaverLayout
    parity: ParityReport | None
    size_bytes: int
    export_seconds: float
    parity_seconds: float

    def summary(self) -> str:
        """Several lines for a terminal: files, inputs, output, parity table."""
        width = len(self.layout.features)
        lines = [
            f"wrote {self.path} ({self.size_bytes / 1024:.1f} KiB, weaver/CMSSW signature) and "
            f"{self.preprocess_path}",
            f"inputs:  {POINTS} [B, {len(self.layout.points)}, N], {FEATURES} [B, {width}, N], "
            f"{VECTORS} [B, 4, N], {MASK} [B, 1, N] (float32, standardized, N = "
            f"{self.layout.length} in preprocess.json)",
            f"output:  {OUTPUT} [B, {len(self.layout.labels)}] of head {self.layout.head!r}: "
            f"{', '.join(self.layout.labels)}",
            f"export {self.export_seconds:.1f} s, parity {self.parity_seconds:.1f} s",
        ]
        if self.parity is not None:
            lines += ["parity (ONNX Runtime on weaver inputs vs PyTorch):", self.parity.table()]
        return "\n".join(lines)


def is_jet_classifier(head: Head) -> bool:
    """Whether weaver's ``softmax`` output can carry ``head``: a jet-level classification head
    (its :meth:`~heads.base.Head.class_probabilities` are the ``softmax`` columns)."""
    return head.level == "jet" and head.task == "classification"


class WeaverGraph(nn.Module):
    """A model's backbone and one classification head on weaver's channels-first inputs.

    Shapes:
        - pf_points: ``[B, 2, N]``; pf_features: ``[B, F, N]``; pf_vectors: ``[B, 4, N]``;
          pf_mask: ``[B, 1, N]`` (non-zero = real particle); all float32
        - softmax: ``[B, K]`` class probabilities
    """

    def __init__(self, model: Model, head: str, coordinates: Sequence[int] | None) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.head = model.heads[head]
        width = int(model.backbone.config["in_features"])
        columns = list(range(width))
        for point, column in enumerate(coordinates or ()):
            columns[column] = width + point
        self.replace = coordinates is not None
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.long), persistent=False)

    def forward(
        self,
        pf_points: torch.Tensor,
        pf_features: torch.Tensor,
        pf_vectors: torch.Tensor,
        pf_mask: torch.Tensor,
    ) -> torch.Tensor:
        mask = pf_mask[:, 0, :] != 0
        keep = mask.unsqueeze(-1)
        particles = pf_features.transpose(1, 2)
        if self.replace:
            joined = torch.cat([particles, pf_points.transpose(1, 2)], dim=-1)
            particles = joined.index_select(-1, self.columns)
        particles = torch.where(keep, particles, torch.zeros_like(particles))
        vectors = pf_vectors.transpose(1, 2)
        vectors = torch.where(keep, vectors, torch.zeros_like(vectors))
        batch = GraphBatch(
            particles=particles,
            mask=mask,
            vectors=vectors,
            jet=particles.new_zeros(particles.shape[0], 0),
        )
        outputs = self.head(self.backbone(batch), batch)
        return self.head.class_probabilities(outputs)


def weaver_layout(model: Model, head: str | None = None, length: int | None = None) -> WeaverLayout:
    """Check that ``model`` fits weaver's signature and describe its graph.

    Args:
        model: a model with a feature schema and a jet-level classification head (see
            :func:`is_jet_classifier`, e.g. ``jet_classification``).
        head: the head to export (default: the model's only jet-level classification head).
        length: ``var_length`` (default: the backbone's ``pool_slots``, else the checkpoint's
            ``max_particles``, 128 when unknown: weaver's JetClass configs).

    Raises:
        ValueError: no feature schema, jet-level inputs (weaver's signature has none), no or
            several classification heads, or a length that contradicts ``pool_slots``.
        KeyError: ``head`` is not a head of the model.
    """
    schema = model.feature_schema
    if schema is None:
        raise ValueError(
            "the weaver signature writes preprocess.json from the model's feature schema: load "
            "the model from a checkpoint or set model.feature_schema"
        )
    config = getattr(model.backbone, "config", None) or {}
    if int(config.get("in_jet_features", 0) or 0):
        raise ValueError(
            f"backbone {model.backbone_name!r} takes {config['in_jet_features']} jet-level "
            "inputs; weaver's signature has particle inputs only (export it with the project's "
            "signature)"
        )
    classifiers = [n for n, h in model.heads.items() if is_jet_classifier(h)]
    if head is None:
        if len(classifiers) != 1:
            raise ValueError(
                "the weaver signature has one output, softmax: expected one jet_classification "
                f"head, found {classifiers or 'none'} (choose one with heads=...)"
            )
        head = classifiers[0]
    if head not in model.heads:
        raise KeyError(f"the model has no head {head!r}; its heads: {', '.join(model.heads)}")
    if head not in classifiers:
        raise ValueError(
            f"head {head!r} is a {model.heads[head].head_type} head; weaver's softmax output "
            f"needs a jet-level classification head such as jet_classification "
            f"({classifiers or 'the model has none'})"
        )
    pool_slots = config.get("pool_slots")
    if length is None:
        length = int(pool_slots) if pool_slots else schema.particle_slots
    if length < 1 or (pool_slots and int(pool_slots) != length):
        raise ValueError(
            "length: expected a positive slot count"
            + (f" equal to the backbone's pool_slots {pool_slots}" if pool_slots else "")
            + f", found {length}"
        )
    features = tuple(schema.particle_features)
    coordinates = config.get("coordinates")
    points = POINT_NAMES
    if coordinates is not None:
        coordinates = tuple(int(i) for i in coordinates)
        points = tuple(features[i] for i in coordinates)
    return WeaverLayout(
        head=head,
        labels=tuple(model.heads[head].label_names),
        features=features,
        points=points,
        coordinates=coordinates,
        length=int(length),
    )


def _weaver_number(value: float) -> float:
    """A float32 parameter as the short decimal written in a weaver config (0.7, not 0.69999)."""
    return float(str(np.float32(value)))


def _var_info(center: float, scale: float, low: float, high: float) -> dict[str, float]:
    """weaver's ``var_infos`` entry of one variable (``(x - median) * norm_factor``, clipped)."""
    untouched = center == 0 and scale == 1 and not np.isfinite(low) and not np.isfinite(high)
    return {
        "median": 0 if untouched else _weaver_number(center),
        "norm_factor": 1 if untouched else _weaver_number(1.0 / scale),
        "replace_inf_value": 0,
        "lower_bound": -_OPEN if not np.isfinite(low) else _weaver_number(low),
        "upper_bound": _OPEN if not np.isfinite(high) else _weaver_number(high),
        "pad": 0,
    }


def _feature_infos(normalizer: Normalizer) -> dict[str, dict[str, float]]:
    size = len(normalizer.names)
    if normalizer.clip_min is not None and normalizer.clip_max is not None:
        low, high = normalizer.clip_min, normalizer.clip_max
    elif normalizer.clip is not None:
        low, high = np.full(size, -normalizer.clip), np.full(size, normalizer.clip)
    else:
        low, high = np.full(size, -np.inf), np.full(size, np.inf)
    return {
        name: _var_info(
            float(normalizer.center[i]), float(normalizer.scale[i]), float(low[i]), float(high[i])
        )
        for i, name in enumerate(normalizer.names)
    }


def preprocess_config(model: Model, layout: WeaverLayout) -> dict[str, Any]:
    """``preprocess.json`` in weaver's layout, from the checkpoint's feature normalization.

    ``output_names`` (the class names), ``input_names``, and per input ``var_names``,
    ``var_infos`` (``median``, ``norm_factor``, ``replace_inf_value``, ``lower_bound``,
    ``upper_bound``, ``pad``) and ``var_length``, as ``weaver --export-onnx`` writes them: an
    untouched variable has median 0, norm_factor 1 and bounds ±1e32; pad values are 0.

    Raises:
        ValueError: the feature schema has no normalization record, or one for other features.
    """
    from foundation.training.normalization import normalizers_from_record

    schema = model.feature_schema
    record = None if schema is None else schema.normalization
    if not record:
        raise ValueError(
            "preprocess.json needs the checkpoint's feature normalization "
            "(feature_schema.normalization), which this model lacks"
        )
    particles, _ = normalizers_from_record(record)
    if tuple(particles.names) != layout.features:
        particles = particles.select(layout.features)
    features = _feature_infos(particles)
    open_info = _var_info(0.0, 1.0, -np.inf, np.inf)
    points = {
        name: features[name] if layout.coordinates is not None else dict(open_info)
        for name in layout.points
    }
    groups = {
        POINTS: points,
        FEATURES: features,
        VECTORS: {name: dict(open_info) for name in VECTOR_NAMES},
        MASK: {MASK_NAME: dict(open_info)},
    }
    config: dict[str, Any] = {"output_names": list(layout.labels), "input_names": list(groups)}
    for name, infos in groups.items():
        config[name] = {
            "var_names": list(infos),
            "var_infos": infos,
            "var_length": layout.length,
        }
    return config


def weaver_feeds(
    batch: JetBatch, coordinates: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """The inputs weaver's pipeline feeds for ``batch``: channels first, ``wrap`` padding.

    Padding slots repeat the jet's real particles in order (slot ``j`` of a jet with ``n``
    real particles first holds particle ``j mod n``), as weaver's ``pad_mode: wrap`` does;
    ``pf_mask`` is 1 on real particles and 0 elsewhere; an empty jet is all zeros.

    Args:
        batch: jets whose particle features are already normalized.
        coordinates: feature positions of ``pf_points``; None: the particles' (Δη, Δφ) to the
            jet axis from the 4-vectors (weaver's ``part_deta`` / ``part_dphi``).

    Shapes:
        - batch.particles: ``[B, N, F]``; outputs: ``pf_points [B, 2, N]``,
          ``pf_features [B, F, N]``, ``pf_vectors [B, 4, N]``, ``pf_mask [B, 1, N]``
    """
    mask = batch.mask.cpu()
    size, slots = mask.shape
    order = torch.zeros(size, slots, dtype=torch.long)
    for row in range(size):
        real = torch.nonzero(mask[row]).flatten()
        if len(real):
            padded = torch.nonzero(~mask[row]).flatten()
            order[row] = torch.arange(slots)
            order[row, padded] = real[torch.arange(len(padded)) % len(real)]
    has = mask.any(dim=1, keepdim=True).unsqueeze(-1)

    def wrap(values: torch.Tensor) -> torch.Tensor:
        index = order.unsqueeze(-1).expand(-1, -1, values.shape[-1])
        wrapped = torch.gather(values.detach().cpu().float(), 1, index)
        return torch.where(has, wrapped, torch.zeros_like(wrapped)).transpose(1, 2)

    particles = batch.particles
    if coordinates is not None:
        points = particles[..., list(coordinates)]
    else:
        points = jet_relative_eta_phi(batch.vectors.float(), batch.mask)
    return {
        POINTS: to_numpy(wrap(points)),
        FEATURES: to_numpy(wrap(particles)),
        VECTORS: to_numpy(wrap(batch.vectors)),
        MASK: to_numpy(mask.float().unsqueeze(1)),
    }


def weaver_spec(layout: WeaverLayout) -> GraphSpec:
    """The graph's inputs and output (dynamic batch and particle axes)."""
    axes = (BATCH_AXIS, None, PARTICLE_AXIS)

    def spec(name: str, width: int, what: str) -> InputSpec:
        shape = tuple(width if size is None else size for size in axes)
        return InputSpec(name, shape, "float32", what)

    inputs = (
        spec(POINTS, len(layout.points), f"{', '.join(layout.points)} (kNN coordinates)"),
        spec(FEATURES, len(layout.features), "standardized particle features (preprocess.json)"),
        spec(VECTORS, 4, "px, py, pz, E in GeV"),
        spec(MASK, 1, "1 for a real particle, 0 for padding"),
    )
    output = OutputSpec(OUTPUT, layout.head, "softmax", "jet")
    return GraphSpec(False, (layout.head,), inputs, (output,))


@torch.no_grad()
def check_weaver_parity(
    session: ort.InferenceSession,
    model: Model,
    layout: WeaverLayout,
    *,
    config: ParityConfig | None = None,
    batches: Sequence[JetBatch] = (),
) -> ParityReport:
    """ONNX Runtime on weaver's inputs against the PyTorch model on the same jets.

    The PyTorch side gets each batch as a :class:`JetBatch` (zero padding); the graph gets
    :func:`weaver_feeds` of it (``wrap`` padding it must ignore). The compared output is the
    head's class probabilities (``softmax``) over every ``(N, B)`` of ``config`` (0, 1 and 128
    particles by default; scattered padding is not a layout weaver produces).
    """
    config = config or ParityConfig()
    width = len(layout.features)
    cases: list[tuple[str, JetBatch]] = []
    seed = config.seed
    for count in config.counts:
        for size in config.batch_sizes:
            seed += 1
            cases.append((f"N={count} B={size}", random_jets(size, count, width, seed=seed)))
    cases += [(f"batch[{i}] N={b.num_particles} B={len(b)}", b) for i, b in enumerate(batches)]
    parity = OutputParity(OUTPUT)
    for label, batch in cases:
        outputs = model(batch.to("cpu"), heads=[layout.head])[layout.head]
        reference = model.heads[layout.head].class_probabilities(outputs)
        try:
            actual = run_session(session, weaver_feeds(batch, layout.coordinates))[OUTPUT]
        except Exception as error:
            raise ExportError(
                f"ONNX Runtime fails on weaver parity case {label}: {type(error).__name__}: {error}"
            ) from error
        compare_output(parity, label, to_numpy(reference), actual)
    return ParityReport([parity], [label for label, _ in cases], config.tolerance)


def _restore_inputs(proto: onnx.ModelProto, spec: GraphSpec) -> None:
    """Put back, in weaver's order, the inputs the exporter dropped because nothing reads them."""
    present = {node.name: node for node in proto.graph.input}
    ordered = []
    for item in spec.inputs:
        if item.name in present:
            ordered.append(present[item.name])
            continue
        dims = [size if isinstance(size, str) else int(size) for size in item.shape]
        ordered.append(onnx.helper.make_tensor_value_info(item.name, onnx.TensorProto.FLOAT, dims))
    del proto.graph.input[:]
    proto.graph.input.extend(ordered)


def export_weaver_onnx(
    model_or_checkpoint: Model | str | PathLike[str],
    path: str | PathLike[str],
    *,
    head: str | None = None,
    length: int | None = None,
    preprocess_path: str | PathLike[str] | None = None,
    opset: int = 17,
    parity: bool = True,
    tolerance: float | None = None,
    parity_config: ParityConfig | None = None,
    batches: Sequence[JetBatch] = (),
    overwrite: bool = False,
) -> WeaverExportReport:
    """Export a classifier in weaver's / CMSSW's signature, with its ``preprocess.json``.

    Inputs ``pf_points [B, 2, N]``, ``pf_features [B, F, N]``, ``pf_vectors [B, 4, N]``,
    ``pf_mask [B, 1, N]`` (float32, channels first, dynamic ``B`` and ``N``), output
    ``softmax [B, K]``; ``preprocess.json`` (default: beside the ``.onnx`` file, as weaver writes
    it) holds the standardization CMSSW applies before feeding the graph. The graph's
    ``metadata_props`` carry the project's ``foundation.*`` keys (config, feature schema, weights
    hash) and ``foundation.signature = weaver``.

    Args:
        model_or_checkpoint: a :class:`Model`, a checkpoint folder, a run folder holding
            ``best/``, or a pretrained name.
        path: the ``.onnx`` file to write.
        head: the jet-level classification head (default: the only one).
        length: slots per jet in ``preprocess.json`` (default: ``pool_slots``, else the
            checkpoint's ``max_particles``, 128 when unknown).
        preprocess_path: where to write ``preprocess.json``.
        opset: ONNX opset.
        parity: run the parity gate (leave on).
        tolerance: largest accepted ``|Δ| / max(1, |p|)`` on the probabilities (1e-4).
        parity_config: the random parity batches.
        batches: real batches (normalized features) to check as well.
        overwrite: replace existing files.

    Raises:
        ValueError / KeyError: a model that does not fit the signature (see
            :func:`weaver_layout`).
        OutputExistsError: a file exists and ``overwrite`` is False.
        ExportError: the graph cannot be exported or run.
        ExportParityError: ONNX Runtime and PyTorch disagree (nothing is written).
    """
    from foundation.export.exporter import _trace, checked_session

    source = resolve_source(model_or_checkpoint)
    model = source.model
    if any(p.device.type != "cpu" for p in [*model.parameters(), *model.buffers()]):
        model = copy.deepcopy(model).cpu()
    layout = weaver_layout(model, head, length)
    settings = parity_config or ParityConfig()
    if tolerance is not None:
        settings = dataclasses.replace(settings, tolerance=check_tolerance(tolerance))
    path = Path(path)
    json_path = Path(preprocess_path) if preprocess_path else path.with_name(PREPROCESS_FILE)
    preprocess = preprocess_config(model, layout)
    spec = weaver_spec(layout)
    was_training = model.training
    model.eval()
    what = f"backbone {model.backbone_name!r} (head {layout.head!r}, weaver signature)"
    try:
        graph = WeaverGraph(model, layout.head, layout.coordinates).eval()
        example = weaver_feeds(
            random_jets(3, _TRACE_COUNTS[0], len(layout.features), counts=_TRACE_COUNTS, seed=7),
            layout.coordinates,
        )
        args = tuple(torch.from_numpy(example[name]) for name in INPUT_NAMES)
        start = time.perf_counter()
        with (
            atomic_file(path, overwrite=overwrite, what="an ONNX file") as temporary,
            atomic_file(json_path, overwrite=overwrite, what="a preprocess.json") as json_temp,
        ):
            _trace(graph, spec, args, temporary, opset, what)
            model.eval()
            proto = onnx.load(str(temporary))
            _restore_inputs(proto, spec)
            onnx.save(proto, str(temporary))
            session = checked_session(proto, temporary, what)
            export_seconds = time.perf_counter() - start
            report = None
            if parity:
                report = check_weaver_parity(
                    session, model, layout, config=settings, batches=batches
                )
                if not report.passed:
                    raise ExportParityError(
                        f"ONNX Runtime and PyTorch disagree for {what} (nothing was written to "
                        f"{path}):\n{report.table()}",
                        report,
                    )
            props = export_metadata(
                model,
                spec,
                session,
                schema=model.feature_schema,  # type: ignore[arg-type]  # checked by the layout
                opset=opset,
                source=source.reference,
                source_sha256=source.sha256,
                parity=report,
            )
            props[PREFIX + "signature"] = "weaver"
            props[PREFIX + "preprocess"] = json.dumps(preprocess)
            set_metadata(proto, props)
            proto.doc_string = f"foundation export of {what}; preprocess.json beside it"
            onnx.save(proto, str(temporary))
            json_temp.write_text(json.dumps(preprocess, indent=2) + "\n", encoding="utf-8")
    finally:
        model.train(was_training)
    return WeaverExportReport(
        path=path,
        preprocess_path=json_path,
        layout=layout,
        parity=report,
        size_bytes=path.stat().st_size,
        export_seconds=export_seconds,
        parity_seconds=time.perf_counter() - start - export_seconds,
    )
