"""The ``metadata_props`` of an exported graph: config, feature schema, labels, provenance.

Every key starts with ``foundation.``; values are strings, JSON for structured ones. A consumer
reads them with ``onnx.load(path).metadata_props``, ``InferenceSession.get_modelmeta()
.custom_metadata_map`` or the C/C++ API, or with :func:`read_metadata` here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from foundation import __version__
from foundation.errors import DataError
from foundation.export.graph import GraphSpec
from foundation.export.parity import ParityReport
from foundation.hub.config import model_config
from foundation.hub.schema import FeatureSchema
from foundation.model import Model

FORMAT = "foundation-onnx"
FORMAT_VERSION = 1
PREFIX = "foundation."
WEIGHTS_KEY = PREFIX + "weights_sha256"
"""sha256 of the graph's initializers (:func:`weights_sha256`), verified by every consumer."""

JSON_KEYS = frozenset(
    PREFIX + key
    for key in (
        "config",
        "embeddings_only",
        "feature_schema",
        "label_names",
        "heads",
        "inputs",
        "outputs",
        "parity",
        "quantization",
    )
)
"""Keys whose values are JSON documents (:func:`read_metadata` parses them)."""


def _shape(dims: Sequence[Any]) -> list[str | int]:
    """An ONNX Runtime shape as JSON (symbolic names stay strings, unknown dims are ``"?"``)."""
    return [dim if isinstance(dim, (int, str)) else "?" for dim in dims]


def export_metadata(
    model: Model,
    spec: GraphSpec,
    session: ort.InferenceSession,
    *,
    schema: FeatureSchema,
    opset: int,
    source: str | None,
    source_sha256: str | None,
    parity: ParityReport | None,
) -> dict[str, str]:
    """The ``metadata_props`` of an export.

    Args:
        model: the exported model.
        spec: the graph layout.
        session: a session of the exported graph (for the inputs it kept and output shapes).
        schema: the input feature schema, with normalization.
        opset: the ONNX opset.
        source: the checkpoint reference the model came from, if any.
        source_sha256: sha256 of its ``model.safetensors``, if known.
        parity: the parity report, if the gate ran.
    """
    loaded = (model.source or {}).get("config") or {}
    config = model_config(
        model, schema, loaded.get("provenance"), loaded.get("base"), loaded.get("name")
    )
    inputs = {spec_input.name: spec_input for spec_input in spec.inputs}
    graph_inputs = [
        {**inputs[node.name].to_dict(), "shape": _shape(node.shape)}
        for node in session.get_inputs()
    ]
    shapes = {node.name: _shape(node.shape) for node in session.get_outputs()}
    outputs = [
        {
            "name": o.name,
            "head": o.head,
            "output": o.output,
            "level": o.level,
            "shape": shapes.get(o.name),
        }
        for o in spec.outputs
    ]
    heads = {
        name: {
            "type": model.heads[name].head_type,
            "level": model.heads[name].level,
            "target": model.heads[name].target_key,
            "label_names": list(model.heads[name].label_names),
            "outputs": [o.name for o in spec.outputs if o.head == name],
        }
        for name in spec.heads
    }
    props = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "library_version": __version__,
        "backbone": str(model.backbone_name or ""),
        "embeddings_only": json.dumps(spec.embeddings_only),
        "opset": str(opset),
        "source": source or "",
        "source_sha256": source_sha256 or "",
        "config": json.dumps(config, sort_keys=True),
        "feature_schema": json.dumps(schema.to_dict(), sort_keys=True),
        "label_names": json.dumps({name: head["label_names"] for name, head in heads.items()}),
        "heads": json.dumps(heads),
        "inputs": json.dumps(graph_inputs),
        "outputs": json.dumps(outputs),
    }
    if parity is not None:
        props["parity"] = json.dumps(parity.to_dict())
    return {PREFIX + key: value for key, value in props.items()}


def set_metadata(model: onnx.ModelProto, props: Mapping[str, str]) -> None:
    """Write ``props`` into ``model.metadata_props``, replacing entries with the same keys.

    The weights hash (:data:`WEIGHTS_KEY`) is always recomputed from ``model``'s own
    initializers (a copied hash of another graph, e.g. the float32 source of a quantized copy,
    is replaced), so set the metadata after the weights are final.
    """
    props = {key: value for key, value in props.items() if key != WEIGHTS_KEY}
    props[WEIGHTS_KEY] = weights_sha256(model)
    kept = [entry for entry in model.metadata_props if entry.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=str(value))


def weights_sha256(model: onnx.ModelProto) -> str:
    """sha256 over the graph's initializers, in order: for each, its serialized ``TensorProto``
    preceded by its length (8 bytes, little-endian).

    The same bytes sit in the ``.onnx`` file, so a consumer without the ``onnx`` package can
    recompute it from the file (``deploy/python/score_jet.py`` does).
    """
    digest = hashlib.sha256()
    for tensor in model.graph.initializer:
        blob = tensor.SerializeToString()
        digest.update(len(blob).to_bytes(8, "little"))
        digest.update(blob)
    return digest.hexdigest()


def verify_weights(model: onnx.ModelProto, source: str | PathLike[str]) -> None:
    """Check the weights against the hash written at export (files without one pass).

    Raises:
        DataError: the weights differ from what was exported (a corrupted or edited file).
    """
    stored = metadata_of(model).get(WEIGHTS_KEY)
    if not stored:
        return
    found = weights_sha256(model)
    if found != stored:
        raise DataError(
            source,
            WEIGHTS_KEY,
            f"the weights written at export (sha256 {stored[:16]}...)",
            f"weights with sha256 {found[:16]}...",
            hint="the file is corrupted or was edited: export it again",
        )


def load_model(path: str | PathLike[str] | bytes, source: str | None = None) -> onnx.ModelProto:
    """Read an ``.onnx`` file (or its bytes) and verify its weights hash.

    Raises:
        FileNotFoundError: no such file.
        DataError: not a readable ONNX model (truncated, corrupt, not ONNX), or weights that do
            not match the hash written at export.
    """
    name = source or ("model" if isinstance(path, bytes) else str(path))
    if not isinstance(path, bytes) and not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        data = path if isinstance(path, bytes) else Path(path).read_bytes()
        model = onnx.load_from_string(data)
    except Exception as error:  # a boundary: protobuf raises DecodeError and others
        found = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        raise DataError(
            name,
            "<file>",
            "an ONNX model",
            found,
            hint="the file is truncated or corrupt: export it again",
        ) from None
    verify_weights(model, name)
    return model


def metadata_of(model: onnx.ModelProto) -> dict[str, str]:
    """The raw ``metadata_props`` as a dict of strings."""
    return {entry.key: entry.value for entry in model.metadata_props}


def read_metadata(path: str | PathLike[str] | onnx.ModelProto) -> dict[str, Any]:
    """The ``foundation.*`` metadata of an exported file, JSON values parsed.

    Returns:
        ``{key: value}`` with the ``foundation.`` prefix removed.

    Raises:
        ValueError: the file has no foundation metadata (it was not written by this exporter).
        DataError: the file is not a readable ONNX model, or its weights do not match the hash
            written at export.
    """
    model = path if isinstance(path, onnx.ModelProto) else load_model(path)
    raw = metadata_of(model)
    if raw.get(PREFIX + "format") != FORMAT:
        raise ValueError(
            f"{path if not isinstance(path, onnx.ModelProto) else 'model'}: no "
            f"'{PREFIX}format' = {FORMAT!r} in metadata_props; it was not written by "
            "foundation.export"
        )
    return {
        key.removeprefix(PREFIX): json.loads(value) if key in JSON_KEYS and value else value
        for key, value in raw.items()
        if key.startswith(PREFIX)
    }
