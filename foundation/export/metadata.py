"""The ``metadata_props`` of an exported graph: config, feature schema, labels, provenance.

Every key starts with ``foundation.``; values are strings, JSON for structured ones. A consumer
reads them with ``onnx.load(path).metadata_props``, ``InferenceSession.get_modelmeta()
.custom_metadata_map`` or the C/C++ API, or with :func:`read_metadata` here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import onnx
import onnxruntime as ort

from foundation import __version__
from foundation.export.graph import GraphSpec
from foundation.export.parity import ParityReport
from foundation.hub.config import model_config
from foundation.hub.schema import FeatureSchema
from foundation.model import Model

FORMAT = "foundation-onnx"
FORMAT_VERSION = 1
PREFIX = "foundation."

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
    """Write ``props`` into ``model.metadata_props``, replacing entries with the same keys."""
    kept = [entry for entry in model.metadata_props if entry.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=str(value))


def metadata_of(model: onnx.ModelProto) -> dict[str, str]:
    """The raw ``metadata_props`` as a dict of strings."""
    return {entry.key: entry.value for entry in model.metadata_props}


def read_metadata(path: str | PathLike[str] | onnx.ModelProto) -> dict[str, Any]:
    """The ``foundation.*`` metadata of an exported file, JSON values parsed.

    Returns:
        ``{key: value}`` with the ``foundation.`` prefix removed.

    Raises:
        ValueError: the file has no foundation metadata (it was not written by this exporter).
    """
    model = path if isinstance(path, onnx.ModelProto) else onnx.load(str(path))
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
