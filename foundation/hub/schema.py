"""The input feature schema that travels with a checkpoint: names, order, normalization."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from foundation.data.slots import DEFAULT_MAX_PARTICLES, MAX_PARTICLES

if TYPE_CHECKING:
    from foundation.data.batch import JetBatch


@dataclass(frozen=True)
class FeatureSchema:
    """Names and order of the inputs a backbone was trained on, and how they were normalised.

    Attributes:
        particle_features: names of the ``F`` particle features, in input order.
        jet_features: names of the ``J`` jet-level inputs, in input order.
        normalization: JSON-serialisable description of the input normalisation computed on the
            training split (e.g. ``{"part_pt_log": {"mean": 1.7, "std": 0.9}}``); opaque here.
        max_particles: particle slots per jet ``N`` the model was trained with; None when
            unknown (a checkpoint written before the field existed), read as
            :data:`~foundation.data.slots.DEFAULT_MAX_PARTICLES` by :attr:`particle_slots`.
    """

    particle_features: tuple[str, ...]
    jet_features: tuple[str, ...] = ()
    normalization: dict[str, Any] | None = field(default=None, compare=True)
    max_particles: int | None = None

    def __post_init__(self) -> None:
        for label, names in (
            ("particle_features", self.particle_features),
            ("jet_features", self.jet_features),
        ):
            names = tuple(names)
            if not all(isinstance(name, str) and name for name in names):
                raise ValueError(
                    f"feature schema: {label} must be non-empty strings, found {names}"
                )
            if len(set(names)) != len(names):
                duplicates = sorted({n for n in names if names.count(n) > 1})
                raise ValueError(f"feature schema: {label} repeats {duplicates}")
            object.__setattr__(self, label, names)
        if self.normalization is not None:
            try:
                json.dumps(self.normalization, allow_nan=False)
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"feature schema: normalization must be JSON-serialisable without NaN, {error}"
                ) from None
        slots = self.max_particles
        if slots is not None and (
            isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MAX_PARTICLES
        ):
            raise ValueError(
                "feature schema: max_particles must be an integer from 1 to "
                f"{MAX_PARTICLES} (particle slots per jet), found {slots!r}"
            )

    @property
    def particle_slots(self) -> int:
        """Slots per jet to pad inputs to: ``max_particles``, or the default when unknown."""
        return DEFAULT_MAX_PARTICLES if self.max_particles is None else self.max_particles

    @classmethod
    def coerce(
        cls,
        value: FeatureSchema | Sequence[str] | Mapping[str, Any],
        normalization: Mapping[str, Any] | None = None,
    ) -> FeatureSchema:
        """Build a schema from a schema, a list of particle feature names, or its dict form.

        ``normalization``, when given, replaces the schema's.
        """
        if isinstance(value, FeatureSchema):
            schema = value
        elif isinstance(value, Mapping):
            schema = cls.from_dict(value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            schema = cls(tuple(value))
        else:
            raise TypeError(
                "feature_schema: expected a FeatureSchema, a list of feature names or a dict, "
                f"found {type(value).__name__}"
            )
        if normalization is not None:
            schema = replace(schema, normalization=dict(normalization))
        return schema

    def to_dict(self) -> dict[str, Any]:
        """The ``feature_schema`` entry of ``config.json`` (``max_particles`` only when known)."""
        data: dict[str, Any] = {
            "particle_features": list(self.particle_features),
            "jet_features": list(self.jet_features),
            "normalization": self.normalization,
        }
        if self.max_particles is not None:
            data["max_particles"] = self.max_particles
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``particle_features`` is missing or not a list of names, or a bad
                ``max_particles``.
        """
        if not isinstance(data.get("particle_features"), list):
            raise ValueError(
                "feature schema: expected a list 'particle_features', "
                f"found {data.get('particle_features')!r}"
            )
        return cls(
            tuple(data["particle_features"]),
            tuple(data.get("jet_features") or ()),
            data.get("normalization"),
            data.get("max_particles"),
        )

    def differences(self, batch_or_names: JetBatch | Sequence[str]) -> list[str]:
        """What differs between this schema and a batch's feature names (or a list of names).

        A list is compared with the particle features only; a batch with both its particle and
        jet feature names.

        Returns:
            Human-readable differences (missing, unexpected, reordered); empty when they match.
        """
        if not isinstance(batch_or_names, Sequence):  # a JetBatch
            found = {
                "particle_features": tuple(batch_or_names.feature_names),
                "jet_features": tuple(batch_or_names.jet_feature_names),
            }
            if not found["particle_features"] and batch_or_names.particles.shape[-1]:
                return [
                    "the batch has no feature_names, so its "
                    f"{batch_or_names.particles.shape[-1]} particle features cannot be checked"
                ]
            if not found["jet_features"] and batch_or_names.jet.shape[-1] and self.jet_features:
                found.pop("jet_features")
        else:
            found = {"particle_features": tuple(batch_or_names)}
        problems: list[str] = []
        for label, names in found.items():
            problems += _compare(label, getattr(self, label), names)
        return problems


def _compare(label: str, expected: tuple[str, ...], found: tuple[str, ...]) -> list[str]:
    """Differences between two ordered name lists."""
    if expected == found:
        return []
    problems = []
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    if missing:
        problems.append(f"{label}: missing {missing}")
    if extra:
        problems.append(f"{label}: unexpected {extra}")
    if not missing and not extra and len(expected) != len(found):
        problems.append(f"{label}: expected {len(expected)} names, found {len(found)} (repeats)")
    elif not missing and not extra:
        position = next(i for i, (a, b) in enumerate(zip(expected, found, strict=True)) if a != b)
        problems.append(
            f"{label}: same names in another order (first difference at position {position}: "
            f"expected {expected[position]!r}, found {found[position]!r})"
        )
    return problems
