"""From jet files to scores in one call: the checkpoint's own features and normalization.

A model loaded with :func:`foundation.load_pretrained` carries its input feature schema
(particle and jet feature names, order, and the normalization fitted on its training split).
:func:`to_batch` applies exactly that schema to :class:`~foundation.data.records.JetRecords`,
so a user never computes or normalizes features by hand; :func:`predict` scores files or
records batch by batch::

    model = load_pretrained("jetformer-tiny.sim300k")
    scores = predict(model, "data/top/*.root")  # {head: {output: numpy array}}
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any

import numpy as np
import torch

from foundation.data.batch import JetBatch
from foundation.data.features import check_feature_fields, pad_jets
from foundation.data.readers import read_jets
from foundation.data.records import JetRecords
from foundation.evaluation.inputs import (
    normalizers_from_schema,
)
from foundation.hub.schema import FeatureSchema
from foundation.model import Model


def to_batch(
    records: JetRecords,
    model: Model,
    *,
    max_particles: int | None = None,
    allow_missing_fields: bool = False,
) -> JetBatch:
    """The normalized :class:`JetBatch` of ``records`` for ``model``'s inputs.

    Args:
        records: jets from :func:`~foundation.data.readers.read_jets` (any format).
        model: a model loaded from a checkpoint (its ``feature_schema`` says what to compute).
        max_particles: particle slots per jet ``N`` (default: the checkpoint's
            ``feature_schema.max_particles``, 128 for checkpoints that do not record it); more
            particles are dropped, softest first.
        allow_missing_fields: accept records that lack a field some feature is computed from
            (impact parameters, identities): that feature is then 0 for every particle.

    Shapes:
        - output: particles ``[n, N, F]``, mask ``[n, N]``, vectors ``[n, N, 4]``, jet
          ``[n, J]`` with ``F``, ``J`` the checkpoint's features.

    Raises:
        ValueError: the model has no feature schema.
        DataError: the records lack fields the model's features need.
    """
    schema = _schema_of(model)
    source = ", ".join(records.sources) or "records"
    check_feature_fields(
        schema.particle_features,
        records.particles,
        source,
        allow_missing=allow_missing_fields,
    )
    slots = schema.particle_slots if max_particles is None else max_particles
    padded = pad_jets(records, schema.particle_features, slots, schema.jet_features)
    folder = (model.source or {}).get("folder", "checkpoint")
    particle_norm, jet_norm = normalizers_from_schema(schema, folder)
    particles = padded.particles
    if particle_norm is not None:
        particles = particle_norm.apply(particles, padded.mask)
    jet = padded.jet if jet_norm is None else jet_norm.apply(padded.jet)
    return JetBatch(
        particles=torch.from_numpy(np.ascontiguousarray(particles, dtype=np.float32)),
        mask=torch.from_numpy(padded.mask),
        vectors=torch.from_numpy(padded.vectors),
        jet=torch.from_numpy(np.ascontiguousarray(jet, dtype=np.float32)),
        feature_names=schema.particle_features,
        jet_feature_names=schema.jet_features,
    )


@torch.no_grad()
def predict(
    model: Model,
    jets: JetRecords | str | PathLike[str] | Sequence[str | PathLike[str]],
    *,
    batch_size: int = 512,
    max_particles: int | None = None,
    allow_missing_fields: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Every head's outputs on ``jets``, in eval mode, without gradients.

    Args:
        model: a model loaded from a checkpoint.
        jets: records, or files / glob patterns for :func:`~foundation.data.readers.read_jets`.
        batch_size: jets per forward pass.
        max_particles: particle slots per jet (default: the checkpoint's, see :func:`to_batch`).
        allow_missing_fields: see :func:`to_batch`.

    Returns:
        ``{head: {output: array}}`` with the jets along the first axis, e.g.
        ``{"top": {"logit": [n], "probability": [n]}}``. All jets are padded at once: for
        millions of jets, use ``foundation evaluate`` (it streams from a cache).
    """
    if batch_size < 1:
        raise ValueError(f"predict: batch_size must be >= 1, found {batch_size}")
    records = jets if isinstance(jets, JetRecords) else read_jets(jets)
    batch = to_batch(
        records, model, max_particles=max_particles, allow_missing_fields=allow_missing_fields
    )
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunks: dict[str, dict[str, list[np.ndarray]]] = {}
    try:
        for start in range(0, max(len(records.counts), 1), batch_size):
            part = _rows(batch, slice(start, start + batch_size)).to(device)
            for head, outputs in model(part).items():
                for name, value in outputs.items():
                    chunks.setdefault(head, {}).setdefault(name, []).append(_numpy(value))
    finally:
        model.train(was_training)
    return {
        head: {name: np.concatenate(parts) for name, parts in outputs.items()}
        for head, outputs in chunks.items()
    }


def _schema_of(model: Model) -> FeatureSchema:
    if model.feature_schema is None:
        raise ValueError(
            "the model has no feature schema (names and normalization of its inputs): load it "
            "with foundation.load_pretrained, or set model.feature_schema"
        )
    return model.feature_schema


def _rows(batch: JetBatch, rows: slice) -> JetBatch:
    """The jets ``rows`` of a batch (inputs only)."""
    return JetBatch(
        particles=batch.particles[rows],
        mask=batch.mask[rows],
        vectors=batch.vectors[rows],
        jet=batch.jet[rows],
        feature_names=batch.feature_names,
        jet_feature_names=batch.jet_feature_names,
    )


def _numpy(value: Any) -> np.ndarray:
    return value.detach().float().cpu().numpy()
