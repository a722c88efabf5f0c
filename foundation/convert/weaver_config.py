"""Read a weaver-core data config (YAML) and map it onto the project's features and normalization.

A weaver data config names the network inputs (``inputs.pf_points``, ``pf_features``,
``pf_vectors``, ``pf_mask``), each a list of variables ``[name, subtract_by, multiply_by,
clip_min, clip_max, pad_value]`` (weaver: with ``preprocess.method: manual`` a variable whose
``subtract_by`` is null is left untouched, else it becomes ``clip((x - subtract_by) *
multiply_by, clip_min, clip_max)`` with clip bounds -5 and 5 by default), the formulas of derived
variables (``new_variables``) and the class labels (``labels.value``, in class-index order).

:func:`read_weaver_data_config` reads it with ``yaml.safe_load`` and checks that every feature is
one the project computes (:data:`~foundation.data.schema.PARTICLE_FEATURES_FULL`) with the same
formula, so that a converted network sees exactly the inputs it was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from foundation.data.normalization import Normalizer
from foundation.data.schema import JET_INPUTS, PARTICLE_FEATURES_FULL
from foundation.errors import DataError

WEAVER_METHOD = "manual (weaver data config)"
"""``method`` recorded in the normalization of a converted checkpoint."""

DEFINITIONS: dict[str, str] = {
    "part_mask": "ak.ones_like(part_energy)",
    "part_pt": "np.hypot(part_px, part_py)",
    "part_pt_log": "np.log(part_pt)",
    "part_e_log": "np.log(part_energy)",
    "part_logptrel": "np.log(part_pt/jet_pt)",
    "part_logerel": "np.log(part_energy/jet_energy)",
    "part_deltaR": "np.hypot(part_deta, part_dphi)",
    "part_d0": "np.tanh(part_d0val)",
    "part_dz": "np.tanh(part_dzval)",
}
"""The ``new_variables`` formulas the project's features implement (ParT's JetClass configs;
:mod:`foundation.data.features`). A config defining one differently is refused."""

_DEFAULT_CLIP = (-5.0, 5.0)


@dataclass(frozen=True)
class WeaverVariable:
    """One input variable of a weaver data config, with its preprocessing.

    Attributes:
        name: the variable (a branch or a ``new_variables`` entry).
        center: ``subtract_by``; None: the variable is left untouched (no scaling, no clip).
        multiply_by: factor applied after subtracting ``center``.
        clip_min, clip_max: bounds of the transformed value.
        pad_value: value of padding slots (constant padding).
    """

    name: str
    center: float | None
    multiply_by: float = 1.0
    clip_min: float = _DEFAULT_CLIP[0]
    clip_max: float = _DEFAULT_CLIP[1]
    pad_value: float = 0.0

    def apply(self, values: np.ndarray) -> np.ndarray:
        """weaver's transformation of raw values (for checks; the project uses a Normalizer).

        Shapes:
            - values: any shape; output: the same shape.
        """
        if self.center is None:
            return values
        return np.clip((values - self.center) * self.multiply_by, self.clip_min, self.clip_max)


@dataclass(frozen=True)
class WeaverDataConfig:
    """What a converted network needs from its weaver data config.

    Attributes:
        source: the file it was read from (for messages).
        features: the ``pf_features`` variables, in input order.
        points: the ``pf_points`` variable names (the first kNN graph's coordinates).
        vectors: the ``pf_vectors`` variable names.
        length: padded slots per jet of ``pf_features`` (weaver's ``length``).
        labels: class names in class-index order.
        definitions: the ``new_variables`` formulas.
    """

    source: str
    features: tuple[WeaverVariable, ...]
    points: tuple[str, ...]
    vectors: tuple[str, ...]
    length: int
    labels: tuple[str, ...]
    definitions: dict[str, str]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the particle features, in input order."""
        return tuple(variable.name for variable in self.features)

    def coordinates(self) -> list[int]:
        """Positions in :attr:`feature_names` of the ``pf_points`` variables.

        Raises:
            DataError: a point variable is not an untouched feature.
        """
        positions = []
        for name in self.points:
            if name not in self.feature_names:
                raise DataError(
                    self.source,
                    "inputs.pf_points",
                    f"variables that are also pf_features {list(self.feature_names)}",
                    name,
                )
            variable = self.features[self.feature_names.index(name)]
            if variable.center is not None:
                raise DataError(
                    self.source,
                    f"inputs.pf_features.{name}",
                    "no preprocessing (null), as the same variable in pf_points",
                    [variable.center, variable.multiply_by],
                )
            positions.append(self.feature_names.index(name))
        return positions

    def normalizer(self) -> Normalizer:
        """The project's :class:`Normalizer` equal to weaver's manual preprocessing.

        ``scale = 1 / multiply_by`` (exactly representable back in float32 for weaver's usual
        factors), per-feature clip bounds, and untouched features with center 0, scale 1 and
        open bounds.
        """
        center, scale, low, high = [], [], [], []
        for variable in self.features:
            untouched = variable.center is None
            center.append(0.0 if untouched else variable.center)
            scale.append(1.0 if untouched else 1.0 / variable.multiply_by)
            low.append(-math.inf if untouched else variable.clip_min)
            high.append(math.inf if untouched else variable.clip_max)
        return Normalizer(
            self.feature_names,
            np.asarray(center),
            np.asarray(scale),
            clip=None,
            clip_min=np.asarray(low),
            clip_max=np.asarray(high),
            method=WEAVER_METHOD,
        )

    def normalization_record(self) -> dict[str, Any]:
        """``feature_schema.normalization`` of a converted checkpoint.

        The jet-level inputs (unused by the converted networks) are listed untouched, so that
        fine-tuning data with the default jet inputs loads with the checkpoint's record.
        """
        size = len(JET_INPUTS)
        jet = Normalizer(
            JET_INPUTS, np.zeros(size), np.ones(size), clip=None, method="none (unused)"
        )
        return {"particles": self.normalizer().to_dict(), "jet": jet.to_dict()}


def read_weaver_data_config(path: str | PathLike[str]) -> WeaverDataConfig:
    """Read and check a weaver data config.

    Raises:
        DataError: an unreadable file, a missing section, a non-manual preprocessing, a feature
            the project does not compute, or a formula that differs from the project's.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        found = str(error).splitlines()[0]
        raise DataError(path, "<file>", "a readable weaver data config (YAML)", found) from None
    if not isinstance(data, Mapping):
        raise DataError(path, "<top level>", "a mapping", type(data).__name__)
    method = (data.get("preprocess") or {}).get("method")
    if method != "manual":
        raise DataError(
            path,
            "preprocess.method",
            "manual (the standardization parameters are written in the config)",
            method,
        )
    inputs = data.get("inputs")
    if not isinstance(inputs, Mapping) or "pf_features" not in inputs:
        found = sorted(inputs) if isinstance(inputs, Mapping) else inputs
        raise DataError(path, "inputs", "a mapping with pf_features", found)
    definitions = {
        str(k): str(v).replace(" ", "") for k, v in (data.get("new_variables") or {}).items()
    }
    features = tuple(
        _variable(path, "pf_features", entry) for entry in _vars(path, inputs, "pf_features")
    )
    _check_features(path, features, definitions)
    points = tuple(_variable(path, "pf_points", e).name for e in _vars(path, inputs, "pf_points"))
    vectors = tuple(
        _variable(path, "pf_vectors", e).name for e in _vars(path, inputs, "pf_vectors")
    )
    length = inputs["pf_features"].get("length")
    if not isinstance(length, int) or length < 1:
        raise DataError(path, "inputs.pf_features.length", "a positive integer", length)
    labels = data.get("labels") or {}
    if labels.get("type") != "simple" or not isinstance(labels.get("value"), list):
        raise DataError(path, "labels", "type: simple with a list of label names", labels or None)
    return WeaverDataConfig(
        source=str(path),
        features=features,
        points=points,
        vectors=vectors,
        length=length,
        labels=tuple(str(name) for name in labels["value"]),
        definitions=definitions,
    )


def _vars(path: Path, inputs: Mapping[str, Any], group: str) -> list[Any]:
    entry = inputs.get(group)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("vars"), list):
        raise DataError(path, f"inputs.{group}.vars", "a list of variables", entry)
    return entry["vars"]


def _variable(path: Path, group: str, entry: Any) -> WeaverVariable:
    """One ``vars`` entry: a name, or ``[name, subtract_by, multiply_by, min, max, pad]``."""
    items: Sequence[Any] = [entry] if isinstance(entry, str) else entry
    if not isinstance(items, list) or not items or not isinstance(items[0], str) or len(items) > 6:
        raise DataError(
            path,
            f"inputs.{group}.vars",
            "a name or [name, subtract_by, multiply_by, clip_min, clip_max, pad_value]",
            entry,
        )
    defaults = [None, None, 1.0, _DEFAULT_CLIP[0], _DEFAULT_CLIP[1], 0.0]
    values = list(items) + defaults[len(items) :]
    for position, value in enumerate(values[1:], start=1):
        if value is not None and not isinstance(value, (int, float)):
            raise DataError(path, f"inputs.{group}.vars.{items[0]}", "numbers or null", entry)
        if position > 1 and value is None:
            values[position] = defaults[position]
    name, center, multiply_by, low, high, pad = values
    if multiply_by == 0 or (low is not None and high is not None and low > high):
        raise DataError(
            path, f"inputs.{group}.vars.{name}", "multiply_by != 0 and clip_min <= clip_max", entry
        )
    return WeaverVariable(
        name=str(name),
        center=None if center is None else float(center),
        multiply_by=float(multiply_by),
        clip_min=float(low),
        clip_max=float(high),
        pad_value=float(pad),
    )


def _check_features(
    path: Path, features: Sequence[WeaverVariable], definitions: Mapping[str, str]
) -> None:
    """Every feature is one of the project's, defined by the same formula."""
    unknown = [v.name for v in features if v.name not in PARTICLE_FEATURES_FULL]
    if unknown:
        raise DataError(
            path,
            "inputs.pf_features",
            f"features the project computes ({', '.join(PARTICLE_FEATURES_FULL)})",
            unknown,
        )
    used = {v.name for v in features} | {"part_pt"}
    for name in sorted(used & set(definitions)):
        expected = DEFINITIONS.get(name, "").replace(" ", "")
        if definitions[name] != expected:
            raise DataError(
                path,
                f"new_variables.{name}",
                f"the project's definition {DEFINITIONS.get(name, '(a file branch)')!r}",
                definitions[name],
            )
    for variable in features:
        if variable.name in DEFINITIONS and variable.name not in definitions:
            raise DataError(
                path,
                f"new_variables.{variable.name}",
                f"a definition (the project computes {DEFINITIONS[variable.name]!r})",
                "none",
            )
