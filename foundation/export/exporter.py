"""``export_onnx``: a model (or checkpoint) to one ONNX graph, parity-checked, with metadata."""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import onnx
import onnxruntime as ort
import torch

from foundation.data.batch import JetBatch
from foundation.export.errors import ExportError, ExportParityError
from foundation.export.files import atomic_file
from foundation.export.graph import GraphSpec, build_graph, input_widths, select_heads
from foundation.export.inputs import random_jets
from foundation.export.metadata import (
    WEIGHTS_KEY,
    export_metadata,
    set_metadata,
    weights_sha256,
)
from foundation.export.options import DEFAULT_OPSET
from foundation.export.parity import ParityConfig, ParityReport, check_parity
from foundation.export.quiet import replay_warnings
from foundation.export.session import create_session, session_input_names
from foundation.export.source import resolve_source
from foundation.hub.schema import FeatureSchema
from foundation.model import Model

_EXAMPLE_COUNTS = (23, 9, 1)
"""Real particles of the traced example jets (``N = 23``, distinct from every other size)."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ``.onnx`` file.
        inputs: the graph's inputs (an input that no output reads is dropped by ONNX, e.g.
            ``jet`` for a backbone that ignores jet-level inputs).
        outputs: the graph's outputs, ``{head}.{output}``.
        heads: the exported heads.
        embeddings_only: whether the graph is the heads alone.
        opset: the ONNX opset.
        parity: the parity table (None when the gate was switched off).
        metadata: the ``metadata_props`` written.
        source_sha256: sha256 of the source checkpoint's ``model.safetensors``, if any.
        size_bytes: file size.
        export_seconds: time spent tracing and converting.
        parity_seconds: time spent in the parity gate.
    """

    path: Path
    inputs: list[str]
    outputs: list[str]
    heads: tuple[str, ...]
    embeddings_only: bool
    opset: int
    parity: ParityReport | None
    metadata: dict[str, str]
    source_sha256: str | None
    size_bytes: int
    export_seconds: float
    parity_seconds: float

    def summary(self) -> str:
        """Several lines for a terminal: file, inputs, outputs, source, parity table."""
        lines = [
            f"wrote {self.path} ({self.size_bytes / 1024:.1f} KiB, opset {self.opset}, "
            f"{'heads on embeddings' if self.embeddings_only else 'backbone + heads'})",
            f"inputs:  {', '.join(self.inputs)}",
            f"outputs: {', '.join(self.outputs)}",
            f"source sha256: {self.source_sha256 or 'none (model built in memory)'}",
            f"export {self.export_seconds:.1f} s, parity {self.parity_seconds:.1f} s",
        ]
        if self.parity is not None:
            lines += ["parity (ONNX Runtime vs PyTorch):", self.parity.table()]
        return "\n".join(lines)


def export_onnx(
    model_or_checkpoint: Model | str | PathLike[str],
    path: str | PathLike[str],
    *,
    heads: str | Sequence[str] | None = None,
    embeddings_only: bool = False,
    opset: int = DEFAULT_OPSET,
    parity: bool = True,
    tolerance: float | None = None,
    parity_config: ParityConfig | None = None,
    batches: Sequence[JetBatch] = (),
    feature_schema: FeatureSchema | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Export a model's backbone and heads (or heads alone) to one ONNX graph, atomically.

    The graph has dynamic batch and particle axes. Inputs: ``particles [B, N, F]`` float32,
    ``vectors [B, N, 4]`` float32 (px, py, pz, E), ``mask [B, N]`` **bool** (True = real) and,
    when the backbone takes jet-level inputs, ``jet [B, J]``; with ``embeddings_only``:
    ``particle_embeddings [B, N, D]``, ``jet_embedding [B, D]``, ``mask`` and, with pair heads,
    ``vectors``. Outputs are named ``{head}.{output}`` from each head's ``output_names`` (a model
    exported without heads outputs ``particle_embeddings`` and ``jet_embedding``). The
    ``metadata_props`` hold the config, feature schema with normalization, label names,
    library version, source checkpoint and its sha256 and the parity summary
    (see :mod:`foundation.export.metadata`).

    The parity gate compares ONNX Runtime with PyTorch (eval mode) on random jets at several
    particle counts (0 included) and batch sizes and on ``batches``; on failure nothing is
    written.

    For weaver's / CMSSW's signature (``pf_*`` inputs, ``softmax``, ``preprocess.json``) use
    :func:`foundation.export.weaver_signature.export_weaver_onnx`.

    Args:
        model_or_checkpoint: a :class:`Model`, a checkpoint folder, a training run folder
            holding ``best/``, or a pretrained name.
        path: the ``.onnx`` file to write.
        heads: head names (list or comma-separated); None exports every head, ``[]`` none.
        embeddings_only: export the heads alone, taking the backbone's embeddings.
        opset: ONNX opset (TorchScript-based exporter).
        parity: run the parity gate (leave on; off only for debugging).
        tolerance: largest accepted ``|onnx - torch| / max(1, |torch|)`` (default
            ``parity_config``'s, 1e-4): absolute below 1, relative above (large logits).
        parity_config: counts, batch sizes and seed of the random parity batches.
        batches: real batches to check parity on as well.
        feature_schema: the input schema (default: the model's, from its checkpoint).
        overwrite: replace an existing file.

    Returns:
        The :class:`ExportReport`.

    Raises:
        ValueError: no feature schema, or bad arguments.
        KeyError: an unknown head name.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ExportError: the model cannot be exported or run by ONNX Runtime.
        ExportParityError: ONNX Runtime and PyTorch disagree (the message has the table).
    """
    source = resolve_source(model_or_checkpoint)
    model = source.model
    schema = feature_schema or model.feature_schema
    if schema is None:
        raise ValueError(
            "export needs the model's input feature schema, to store it in the ONNX metadata: "
            "load the model from a checkpoint, set model.feature_schema, or pass "
            "feature_schema=FeatureSchema([...])"
        )
    if not model.backbone_name:
        raise ValueError(
            "export records the backbone's registered name in the metadata: build the model "
            "with Model.create(name, ...) or Model(backbone, backbone_name=name)"
        )
    if opset < 14:
        raise ValueError(f"opset must be >= 14 (scaled dot-product attention), found {opset}")
    if any(p.device.type != "cpu" for p in [*model.parameters(), *model.buffers()]):
        model = copy.deepcopy(model).cpu()
    selected = select_heads(model, heads)
    config = parity_config or ParityConfig()
    if tolerance is not None:
        config = dataclasses.replace(config, tolerance=tolerance)
    was_training = model.training
    model.eval()
    try:
        return _export(
            model,
            source.reference,
            source.sha256,
            Path(path),
            selected,
            embeddings_only,
            opset,
            config if parity else None,
            batches,
            schema,
            overwrite,
        )
    finally:
        model.train(was_training)


def _export(
    model: Model,
    reference: str | None,
    sha256: str | None,
    path: Path,
    heads: tuple[str, ...],
    embeddings_only: bool,
    opset: int,
    config: ParityConfig | None,
    batches: Sequence[JetBatch],
    schema: FeatureSchema,
    overwrite: bool,
) -> ExportReport:
    graph, spec = build_graph(model, heads, embeddings_only=embeddings_only)
    example = _example_args(model, spec, graph)
    start = time.perf_counter()
    with atomic_file(path, overwrite=overwrite, what="an ONNX file") as temporary:
        _trace(graph, spec, example, temporary, opset, _describe(model, heads))
        model.eval()  # the exporter restores modes on exit; the reference runs in eval mode
        proto = onnx.load(str(temporary))
        session = checked_session(proto, temporary, _describe(model, heads))
        export_seconds = time.perf_counter() - start
        report = None
        if config is not None:
            report = check_parity(session, model, spec, config=config, batches=batches)
            if not report.passed:
                raise ExportParityError(
                    f"ONNX Runtime and PyTorch disagree for {_describe(model, heads)} (nothing "
                    f"was written to {path}):\n{report.table()}",
                    report,
                )
        props = export_metadata(
            model,
            spec,
            session,
            schema=schema,
            opset=opset,
            source=reference,
            source_sha256=sha256,
            parity=report,
        )
        set_metadata(proto, props)  # adds the weights hash that consumers verify
        props = {**props, WEIGHTS_KEY: weights_sha256(proto)}
        proto.doc_string = (
            f"foundation export of {_describe(model, heads)}; see metadata_props 'foundation.*'"
        )
        onnx.save(proto, str(temporary))
        inputs = session_input_names(session)
    return ExportReport(
        path=path,
        inputs=inputs,
        outputs=spec.output_names,
        heads=heads,
        embeddings_only=embeddings_only,
        opset=opset,
        parity=report,
        metadata=props,
        source_sha256=sha256,
        size_bytes=path.stat().st_size,
        export_seconds=export_seconds,
        parity_seconds=time.perf_counter() - start - export_seconds,
    )


def checked_session(proto: onnx.ModelProto, path: Path, what: str) -> ort.InferenceSession:
    """Check an exported graph and open it with ONNX Runtime.

    Raises:
        ExportError: the ONNX checker or ONNX Runtime refuses the graph (naming ``what``).
    """
    try:
        onnx.checker.check_model(proto)
        return create_session(path)
    except Exception as error:
        raise ExportError(
            f"ONNX Runtime cannot load the exported graph of {what}: {error}"
        ) from error


def _describe(model: Model, heads: Sequence[str]) -> str:
    names = ", ".join(heads) or "no heads"
    return f"backbone {model.backbone_name or type(model.backbone).__name__!r} ({names})"


@torch.no_grad()
def _example_args(
    model: Model, spec: GraphSpec, graph: torch.nn.Module
) -> tuple[torch.Tensor, ...]:
    """Inputs to trace with, in the order of ``spec.inputs``, checked by an eager run.

    Raises:
        ExportError: the model fails on them, or a head's outputs do not match its names.
    """
    width, jet_width = input_widths(model)
    batch = random_jets(
        len(_EXAMPLE_COUNTS),
        _EXAMPLE_COUNTS[0],
        width,
        jet_width,
        counts=_EXAMPLE_COUNTS,
        seed=12345,
    )
    values = {
        "particles": batch.particles,
        "vectors": batch.vectors,
        "mask": batch.mask,
        "jet": batch.jet,
    }
    if spec.embeddings_only:
        features = model.features(batch)
        values.update(particle_embeddings=features.particles, jet_embedding=features.jet)
    args = tuple(values[name] for name in spec.input_names)
    try:
        outputs = graph(*args)
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(
            f"{_describe(model, spec.heads)} fails on a random example batch before export: "
            f"{type(error).__name__}: {error}"
        ) from error
    if len(outputs) != len(spec.outputs):  # pragma: no cover - collect_outputs guarantees it
        raise ExportError(f"expected {len(spec.outputs)} outputs, found {len(outputs)}")
    return args


def _trace(
    graph: torch.nn.Module,
    spec: GraphSpec,
    example: tuple[torch.Tensor, ...],
    path: Path,
    opset: int,
    what: str,
) -> None:
    """Run the TorchScript-based exporter; tracer warnings are errors.

    Why not ``dynamo=True`` (torch 2.13, onnxscript 0.7.2, measured on the tiny test models):
    jetformer's graph fails the parity gate at N = 0 (a ``Reshape`` of a zero-length axis),
    part's does not convert (FX decomposition error), and pfn's, which passes, took 23-39 s to
    export against 0.8 s with this exporter (2 shared CPU cores). This exporter's deprecation
    warning and internal notes are dropped (:data:`~foundation.export.quiet.TORCHSCRIPT_NOISE`);
    any other warning is emitted again.

    Raises:
        ExportError: the exporter failed, or the trace read tensor values in Python (its graph
            would hold constants where the model branches on data or sizes).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.onnx.export(
                graph,
                example,
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=spec.input_names,
                output_names=spec.output_names,
                dynamic_axes=spec.dynamic_axes(),
                do_constant_folding=True,
            )
        except ExportError:
            raise
        except Exception as error:
            raise ExportError(
                f"cannot export {what} to ONNX opset {opset} with the TorchScript-based "
                f"exporter: {type(error).__name__}: {error}"
            ) from error
    replay_warnings([w for w in caught if not issubclass(w.category, torch.jit.TracerWarning)])
    tracer = sorted(
        {
            f"{w.filename}:{w.lineno}: {str(w.message).split('.')[0]}"
            for w in caught
            if issubclass(w.category, torch.jit.TracerWarning)
        }
    )
    if tracer:
        listing = "\n  ".join(tracer)
        raise ExportError(
            f"the trace of {what} depends on tensor values read in Python, so the exported "
            f"graph would freeze them as constants:\n  {listing}\nuse tensor operations "
            "(torch.where, masks) instead of Python control flow on tensors, or skip the step "
            "while exporting (foundation.models.layers.is_exporting())"
        )
