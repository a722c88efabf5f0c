"""Evaluation inputs: a run's checkpoint, its normalization, and data cached to its schema.

The checkpoint's ``config.json`` carries the input feature schema (names, order and the
normalization fitted on the training split); data to evaluate is cached with exactly those
features and refused when it cannot provide them.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from foundation.data.batch import JetBatch
from foundation.data.cache import CacheInfo, read_cache_info, write_cache
from foundation.data.loading import JetCacheDataset
from foundation.data.normalization import Normalizer
from foundation.errors import DataError
from foundation.evaluation.predict import RAW_JET
from foundation.hub.config import CONFIG_FILE
from foundation.hub.schema import FeatureSchema
from foundation.model import Model

BEST_CHECKPOINT = "best"
"""Folder of a training run holding its best checkpoint."""

SOURCE_FIELDS: dict[str, str] = {
    "part_d0": "part_d0val",
    "part_dz": "part_dzval",
    "part_d0err": "part_d0err",
    "part_dzerr": "part_dzerr",
    "part_charge": "part_charge",
    "part_isChargedHadron": "part_isChargedHadron",
    "part_isNeutralHadron": "part_isNeutralHadron",
    "part_isPhoton": "part_isPhoton",
    "part_isElectron": "part_isElectron",
    "part_isMuon": "part_isMuon",
}
"""Particle features that come from a file field (the others are computed from 4-vectors); a
file without that field gives 0 for the feature."""


class EvaluationDataset(JetCacheDataset):
    """A :class:`~foundation.data.loading.JetCacheDataset` whose batches also carry the
    unnormalized jet-level inputs, as the target ``raw_jet`` ``[B, J]``: the detector-level jet
    pT and mass that ratio regression targets are defined against."""

    def __getitem__(self, position: int | np.ndarray | Sequence[int]) -> dict[str, Any]:
        batch = super().__getitem__(position)
        rows = self.indices[np.atleast_1d(np.asarray(position, dtype=np.int64))]
        raw = np.asarray(self.arrays["jet"][rows], dtype=np.float32)
        batch[RAW_JET] = raw[0] if np.ndim(position) == 0 else raw
        return batch


def run_checkpoint(path: str | Path) -> tuple[str, Path | None]:
    """The checkpoint of a run folder (``RUN/best``) or the reference itself.

    Returns:
        ``(checkpoint reference, run folder or None)``.
    """
    folder = Path(path)
    if (folder / BEST_CHECKPOINT / CONFIG_FILE).is_file():
        return str(folder / BEST_CHECKPOINT), folder
    return str(path), None


def normalizers_from_schema(
    schema: FeatureSchema, source: str | Path = "checkpoint"
) -> tuple[Normalizer | None, Normalizer | None]:
    """The particle and jet-level normalizers stored in a checkpoint's feature schema.

    Accepted forms of ``feature_schema.normalization``:

    - None: no normalization;
    - ``{"particles": Normalizer.to_dict(), "jet": Normalizer.to_dict()}`` (either may be
      absent; ``"particle"`` is accepted for ``"particles"``);
    - one ``Normalizer.to_dict()`` (``names``, ``center``, ``scale``): the particle features;
    - ``{feature: {"mean" | "center": c, "std" | "scale": s}}``: per-feature values, features
      not listed are left as they are (no clipping).

    Raises:
        DataError: another form, or malformed values.
    """
    data = schema.normalization
    field = "feature_schema.normalization"
    if not data:
        return None, None
    if not isinstance(data, Mapping):
        raise DataError(source, field, "a dict", type(data).__name__)
    if {"names", "center", "scale"} <= set(data):
        return Normalizer.from_dict(data), None
    if set(data) & {"particles", "particle", "jet"}:
        particles = data.get("particles", data.get("particle"))
        jet = data.get("jet")
        return (
            Normalizer.from_dict(particles) if particles else None,
            Normalizer.from_dict(jet) if jet else None,
        )
    if all(isinstance(value, Mapping) for value in data.values()):
        return (
            _per_feature(data, schema.particle_features, source),
            _per_feature(data, schema.jet_features, source),
        )
    raise DataError(
        source,
        field,
        "None, {'particles': ..., 'jet': ...} with Normalizer.to_dict() values, one "
        "Normalizer.to_dict(), or {feature: {'mean', 'std'}}",
        sorted(data),
    )


def _per_feature(
    data: Mapping[str, Any], names: Sequence[str], source: str | Path
) -> Normalizer | None:
    if not names or not any(name in data for name in names):
        return None
    center, scale = [], []
    for name in names:
        entry = data.get(name, {})
        try:
            center.append(float(entry.get("mean", entry.get("center", 0.0))))
            scale.append(float(entry.get("std", entry.get("scale", 1.0))))
        except (TypeError, ValueError):
            raise DataError(
                source, f"feature_schema.normalization.{name}", "numbers mean and std", entry
            ) from None
    return Normalizer(tuple(names), np.array(center), np.array(scale), clip=None)


def unavailable_features(feature_names: Sequence[str], particle_fields: Sequence[str]) -> list[str]:
    """Features that need a file field the data lacks (they would silently be 0)."""
    fields = set(particle_fields)
    return [
        name
        for name in feature_names
        if name in SOURCE_FIELDS and SOURCE_FIELDS[name] not in fields
    ]


def check_cache(model: Model, info: CacheInfo, *, allow_missing_fields: bool = False) -> None:
    """Refuse a cache whose inputs differ from the checkpoint's feature schema.

    Raises:
        DataError: other particle or jet features (names or order), or features that the
            data's files cannot provide (unless ``allow_missing_fields``).
    """
    batch = JetBatch(
        particles=torch.zeros(0, 0, len(info.feature_names)),
        mask=torch.zeros(0, 0, dtype=torch.bool),
        vectors=torch.zeros(0, 0, 4),
        jet=torch.zeros(0, len(info.jet_feature_names)),
        feature_names=info.feature_names,
        jet_feature_names=info.jet_feature_names,
    )
    problems = model.check_feature_schema(batch)
    if problems:
        raise DataError(
            info.folder,
            "features",
            "the checkpoint's input features",
            "; ".join(problems),
            hint="build the cache with the checkpoint's features (leave out --cache)",
        )
    missing = unavailable_features(info.feature_names, info.particle_fields)
    if missing and not allow_missing_fields and info.particle_fields:
        needed = sorted({SOURCE_FIELDS[name] for name in missing})
        raise DataError(
            info.folder,
            "particle fields",
            f"the fields {needed} that the checkpoint's features {missing} are computed from",
            f"data with the fields {list(info.particle_fields)}",
            hint="evaluate on data with these fields, or pass --allow-missing-fields to use 0",
        )


@contextlib.contextmanager
def evaluation_dataset(
    model: Model,
    data: str | Path | Sequence[str | Path] | None,
    *,
    cache: str | Path | None = None,
    max_particles: int | None = None,
    allow_missing_fields: bool = False,
) -> Iterator[EvaluationDataset]:
    """A normalized dataset of ``data`` cached with the checkpoint's features.

    Args:
        model: a model loaded from a checkpoint (its ``feature_schema`` is used).
        data: jet files or glob patterns (any format of :func:`foundation.data.readers.read_jets`);
            may be None when ``cache`` holds a cache already.
        cache: a cache folder to reuse, or to create from ``data`` and keep (default: a
            temporary folder, removed afterwards).
        max_particles: particle slots per jet of a new cache (default: the checkpoint's
            ``feature_schema.max_particles``, 128 for checkpoints that do not record it).
        allow_missing_fields: accept data that lacks fields some features are computed from.

    Yields:
        The dataset (all jets, the checkpoint's normalization applied, raw jet inputs kept).

    Raises:
        DataError: data that does not fit the checkpoint, or a cache made from other files.
        ValueError: no data and no existing cache.
    """
    from foundation.data.readers import expand_paths, iter_jets

    schema = model.feature_schema
    if schema is None:
        raise ValueError("the model has no feature schema: load it from a checkpoint")
    files = None if data is None else expand_paths(data)
    with contextlib.ExitStack() as stack:
        folder = Path(cache) if cache is not None else None
        if folder is None:
            temporary = stack.enter_context(tempfile.TemporaryDirectory(prefix="foundation-eval-"))
            folder = Path(temporary) / "cache"
        if (folder / "cache.json").is_file():
            info = read_cache_info(folder)
            if files is not None:
                _check_sources(info, files)
        elif files is None:
            raise ValueError(f"no data files given and {folder} holds no cache: pass --data FILES")
        else:
            info = write_cache(
                iter_jets(files),
                folder,
                features=schema.particle_features,
                max_particles=schema.particle_slots if max_particles is None else max_particles,
                jet_feature_names=schema.jet_features,
            )
        check_cache(model, info, allow_missing_fields=allow_missing_fields)
        source = model.source["folder"] if model.source else "checkpoint"
        particle_norm, jet_norm = normalizers_from_schema(schema, source)
        yield EvaluationDataset(
            folder,
            features=schema.particle_features,
            normalizer=particle_norm,
            jet_normalizer=jet_norm,
        )


def _check_sources(info: CacheInfo, files: Sequence[Path]) -> None:
    cached = sorted(str(Path(entry["path"]).resolve()) for entry in info.sources)
    given = sorted(str(Path(path).resolve()) for path in files)
    if cached and cached != given:
        raise DataError(
            info.folder,
            "sources",
            f"a cache of the files given with --data {given}",
            cached,
            hint="use another --cache folder, or leave out --data to evaluate the cached jets",
        )
