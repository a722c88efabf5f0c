"""Write checkpoint folders: a model through :func:`save_pretrained`, or a config and tensors.

A checkpoint folder holds ``config.json`` (everything needed to rebuild the model),
``model.safetensors`` (weights; never pickle), ``README.md`` (model card) and ``SHA256SUMS``
(sha256 of ``config.json`` and the weights: editing the card never breaks loading).
A fine-tuned *delta* checkpoint stores only its heads and adapter parameters and names its base
checkpoint with the sha256 of the base's ``model.safetensors`` (:mod:`foundation.hub.delta`).
Reading a folder back is :func:`foundation.hub.reading.read_checkpoint`; building a model from
it, ``foundation.load_pretrained``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from foundation.hub.atomic import atomic_folder
from foundation.hub.card import render_card
from foundation.hub.config import (
    CARD_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    SavableModel,
    model_config,
    write_config,
)
from foundation.hub.delta import DeltaBase, read_delta_base
from foundation.hub.hashing import write_sums
from foundation.hub.schema import FeatureSchema


def save_pretrained(
    model: SavableModel,
    folder: str | PathLike[str],
    *,
    feature_schema: FeatureSchema | Sequence[str] | Mapping[str, Any] | None = None,
    normalization: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    card: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    base: str | PathLike[str] | Mapping[str, Any] | DeltaBase | None = None,
    name: str | None = None,
) -> Path:
    """Write ``model`` to a checkpoint folder, atomically.

    Args:
        model: the model (its ``backbone_name`` must be set).
        folder: destination; an existing non-empty folder needs ``overwrite=True``.
        feature_schema: input feature names (a :class:`FeatureSchema`, a list of particle
            feature names or the dict form); default ``model.feature_schema``.
        normalization: input normalisation (JSON-serialisable), stored in the schema.
        provenance: data provenance (datasets, files, seeds, simulation cards...).
        card: model-card sections (``data``, ``recipe``, ``metrics``, ``intended_use``,
            ``limitations``, ``license``, ``citation``, ``title``, ``summary``); missing
            sections say "Not provided" - nothing is invented.
        overwrite: replace an existing checkpoint.
        base: for a fine-tuned *delta*: the base checkpoint (name, folder or Hub id, or
            ``{"name_or_path": ..., "revision": ...}``, resolved and read here), or a
            :class:`~foundation.hub.delta.DeltaBase` read before (nothing of the base is read
            again: what a training run passes at every save). Only parameters whose names are
            not in the base backbone (heads, adapters) are saved; the backbone's own parameters
            must be unchanged from the base. A local base is recorded as an absolute path, a
            Hub base at its commit hash.
        name: optional checkpoint name recorded in config.json (e.g. ``part-s.sim10``).

    Returns:
        The folder.

    Raises:
        ValueError: no feature schema, a schema that does not match the backbone's input width,
            unserialisable arguments, or backbone weights that differ from ``base``.
        CheckpointError: a ``base`` that cannot be read or holds another architecture.
        OutputExistsError: the folder exists and ``overwrite`` is False.
    """
    schema_source = feature_schema if feature_schema is not None else model.feature_schema
    if schema_source is None:
        raise ValueError(
            "save_pretrained needs feature_schema (the names of the input features, in order) "
            "so that users can check their inputs against the checkpoint"
        )
    schema = FeatureSchema.coerce(schema_source, normalization)
    width = (getattr(model.backbone, "config", None) or {}).get("in_features")
    if isinstance(width, int) and width != len(schema.particle_features):
        raise ValueError(
            f"feature_schema lists {len(schema.particle_features)} particle features but the "
            f"backbone takes in_features={width}"
        )
    tensors = {
        key: value.detach().to("cpu").contiguous().clone()
        for key, value in model.state_dict().items()
    }
    base_entry = None
    if base is not None:
        delta = base if isinstance(base, DeltaBase) else read_delta_base(base)
        backbone = {
            "name": model.backbone_name,
            "kwargs": dict(getattr(model.backbone, "config", {}) or {}),
        }
        tensors = delta.delta_tensors(backbone, tensors)
        base_entry = delta.entry()
    config = model_config(model, schema, provenance, base_entry, name)
    return write_checkpoint(folder, config, tensors, render_card(config, card), overwrite)


def write_checkpoint(
    folder: str | PathLike[str],
    config: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    card: str,
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint folder from plain data, atomically: ``config.json``, the weights, the
    ``README.md`` card and ``SHA256SUMS``.

    Args:
        folder: destination; an existing non-empty folder needs ``overwrite=True``.
        config: the ``config.json`` content (see :func:`~foundation.hub.config.model_config`).
        tensors: the weights by ``state_dict`` key (CPU, contiguous).
        card: the rendered model card (see :func:`~foundation.hub.card.render_card`).
        overwrite: replace an existing checkpoint.

    Returns:
        The folder.

    Raises:
        OutputExistsError: the folder exists and ``overwrite`` is False.
    """
    with atomic_folder(folder, overwrite=overwrite) as temporary:
        write_config(temporary, config)
        write_weights(
            tensors,
            temporary / WEIGHTS_FILE,
            {"format": "pt", "foundation_format_version": str(FORMAT_VERSION)},
        )
        (temporary / CARD_FILE).write_text(card, encoding="utf-8")
        write_sums(temporary)
    return Path(folder)


def write_weights(
    tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]
) -> Path:
    """Write a safetensors file whose bytes depend on the tensors and metadata only.

    safetensors keeps the metadata in a hash map whose key order changes from one process to
    the next, so the same weights could get another sha256 at every save, and fine-tune deltas
    record their base's sha256. The header is written again with sorted metadata keys (the
    tensor entries and the data are kept as they are; the header stays padded to 8 bytes).
    """
    blob = save(dict(tensors), metadata=dict(metadata))
    length = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + length])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + length :])
    return path
