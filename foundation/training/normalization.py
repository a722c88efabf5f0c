"""The normalization record a checkpoint carries (``feature_schema.normalization``).

Format: ``{"particles": Normalizer.to_dict(), "jet": Normalizer.to_dict()}``, fitted on the
training split of the run that made the checkpoint. :func:`normalizers_from_record` turns it
back into the :class:`~foundation.data.normalization.Normalizer` pair that the data loaders
apply, so that evaluation and fine-tuning see the inputs exactly as the training did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foundation.data.normalization import Normalizer
from foundation.errors import DataError


def normalization_record(particles: Normalizer, jet: Normalizer) -> dict[str, Any]:
    """The JSON-ready record of a particle and a jet-input normalizer."""
    return {"particles": particles.to_dict(), "jet": jet.to_dict()}


def normalizers_from_record(
    record: Mapping[str, Any] | None, source: str = "checkpoint"
) -> tuple[Normalizer, Normalizer]:
    """The ``(particles, jet)`` normalizers of a record made by :func:`normalization_record`.

    Raises:
        DataError: the record is missing or not in this format.
    """
    if not isinstance(record, Mapping) or not {"particles", "jet"} <= set(record):
        raise DataError(
            source,
            "feature_schema.normalization",
            "a record {'particles': ..., 'jet': ...} written by foundation training",
            None if record is None else sorted(record),
            hint="set data.normalization: fit to fit a new normalization on the training split",
        )
    return Normalizer.from_dict(record["particles"]), Normalizer.from_dict(record["jet"])
