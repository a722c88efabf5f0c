"""Per-feature normalization: robust center/scale from the training split, carried as plain JSON.

``x -> clip((x - center) / scale, -clip, clip)``, with center the median and scale half of the
16–84 % interval over real particles (a robust σ). Identity features (charge and the five flags)
keep center 0 and scale 1. Padding stays exactly 0.

A normalization given by hand (e.g. a weaver data config, :mod:`foundation.convert`) may clip
each feature to its own ``[clip_min, clip_max]`` instead, an infinite bound leaving that side
open, and names its ``method``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from foundation.errors import DataError

UNTOUCHED_FEATURES: tuple[str, ...] = (
    "part_charge",
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
)
"""Features left as they are (center 0, scale 1): the charge and the identity flags."""

METHOD = "median/half-68%"
_ArrayT = TypeVar("_ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class Normalizer:
    """Center, scale and clip of each named feature.

    Attributes:
        names: feature names, in the order of the last axis of the arrays it applies to.
        center: value subtracted from each feature.
        scale: positive value each centered feature is divided by.
        clip: normalized values are clipped to ``[-clip, clip]`` (None: no clipping).
        clip_min, clip_max: per-feature bounds used instead of ``clip`` (which must then be
            None); ``-inf`` / ``inf`` leave a side open. None: ``clip`` applies.
        method: how center and scale were obtained (recorded in :meth:`to_dict`).

    Shapes:
        - center, scale, clip_min, clip_max: ``[F]`` float32.
    """

    names: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    clip: float | None = 5.0
    clip_min: np.ndarray | None = None
    clip_max: np.ndarray | None = None
    method: str = METHOD

    def __post_init__(self) -> None:
        size = len(self.names)
        for attribute in ("center", "scale"):
            values = np.asarray(getattr(self, attribute), dtype=np.float32)
            if values.shape != (size,) or not np.isfinite(values).all():
                raise DataError(
                    "normalization",
                    attribute,
                    f"{size} finite numbers (one per feature name)",
                    values.tolist(),
                )
            object.__setattr__(self, attribute, values)
        if (self.scale <= 0).any():
            raise DataError("normalization", "scale", "positive scales", self.scale.tolist())
        if self.clip is not None and not self.clip > 0:
            raise DataError("normalization", "clip", "a positive number or None", self.clip)
        self._check_bounds(size)

    def _check_bounds(self, size: int) -> None:
        """Validate (and store as float32) the per-feature clip bounds."""
        given = (self.clip_min is not None, self.clip_max is not None)
        if not any(given):
            return
        if not all(given) or self.clip is not None:
            raise DataError(
                "normalization",
                "clip_min/clip_max",
                "both per-feature bounds, with clip None",
                f"clip_min={self.clip_min}, clip_max={self.clip_max}, clip={self.clip}",
            )
        for attribute in ("clip_min", "clip_max"):
            values = np.asarray(getattr(self, attribute), dtype=np.float32)
            if values.shape != (size,) or np.isnan(values).any():
                raise DataError(
                    "normalization", attribute, f"{size} numbers or ±inf", values.tolist()
                )
            object.__setattr__(self, attribute, values)
        if (self.clip_min > self.clip_max).any():
            raise DataError(
                "normalization",
                "clip_min/clip_max",
                "clip_min <= clip_max for every feature",
                f"{self.clip_min.tolist()} / {self.clip_max.tolist()}",
            )

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        names: Sequence[str],
        mask: np.ndarray | None = None,
        untouched: Sequence[str] = UNTOUCHED_FEATURES,
        clip: float | None = 5.0,
        max_rows: int = 2_000_000,
        seed: int = 0,
    ) -> Normalizer:
        """Fit on training data only: median and half of the 16–84 % interval per feature.

        Args:
            values: training rows ``[M, F]``, or padded ``[B, N, F]`` with ``mask``.
            names: feature names of the last axis.
            mask: real-particle mask of padded values; only real particles are used.
            untouched: features kept as they are (center 0, scale 1).
            clip: clip bound of the normalized values (None: none).
            max_rows: at most this many rows (a seeded random subset) are used.
            seed: seed of that subset.

        Raises:
            DataError: no rows to fit on, or the names do not match the last axis.

        Shapes:
            - values: ``[M, F]`` or ``[B, N, F]``; mask: ``[B, N]``
        """
        names = tuple(names)
        rows = np.asarray(values[mask] if mask is not None else values)
        rows = rows.reshape(-1, rows.shape[-1]) if rows.ndim else rows
        if rows.ndim != 2 or rows.shape[1] != len(names):
            raise DataError(
                "normalization", "values", f"rows of {len(names)} features {names}", rows.shape
            )
        if len(rows) == 0:
            raise DataError(
                "normalization",
                "values",
                "at least one real particle (or jet) in the training split",
                "none",
            )
        if len(rows) > max_rows:
            pick = np.random.default_rng(seed).choice(len(rows), max_rows, replace=False)
            rows = rows[np.sort(pick)]
        low, center, high = np.percentile(rows.astype(np.float64), [16.0, 50.0, 84.0], axis=0)
        scale = (high - low) / 2
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        keep = np.array([name in set(untouched) for name in names], dtype=bool)
        center = np.where(keep, 0.0, center)
        scale = np.where(keep, 1.0, scale)
        return cls(names=names, center=center, scale=scale, clip=clip)

    def apply(self, values: _ArrayT, mask: _ArrayT | None = None) -> _ArrayT:
        """Normalize ``values`` (numpy or torch, any leading shape); padding becomes exactly 0.

        Returns float32 (a new array; ``values`` is not modified).

        Shapes:
            - values: ``[..., F]``; mask: ``values.shape[:-1]``; output: like ``values``.
        """
        if values.shape[-1] != len(self.names):
            raise DataError(
                "normalization",
                "values",
                f"a last axis of {len(self.names)} features {self.names}",
                tuple(values.shape),
            )
        if isinstance(values, torch.Tensor):
            return self._apply_torch(values, mask)
        # through torch: several times faster than numpy on float16 input, and zero-copy back
        array = np.asarray(values)
        if not array.flags.writeable:
            array = array.copy()
        tensor_mask = None if mask is None else torch.from_numpy(np.asarray(mask, dtype=bool))
        return self._apply_torch(torch.from_numpy(array), tensor_mask).numpy()

    def _apply_torch(self, values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        center = torch.as_tensor(self.center, device=values.device)
        inverse = torch.as_tensor(1.0 / self.scale, device=values.device)
        out = values.float()
        out = out.clone() if out is values else out
        out.sub_(center).mul_(inverse)
        if self.clip is not None:
            out.clamp_(-self.clip, self.clip)
        elif self.clip_min is not None and self.clip_max is not None:
            low = torch.as_tensor(self.clip_min, device=values.device)
            high = torch.as_tensor(self.clip_max, device=values.device)
            out.clamp_(low, high)
        if mask is not None:
            out.mul_(mask.bool().unsqueeze(-1))
        return out

    def select(self, names: Sequence[str]) -> Normalizer:
        """The normalizer of a subset of the features, in the order of ``names``.

        Raises:
            KeyError: a name is not among :attr:`names`.
        """
        missing = [name for name in names if name not in self.names]
        if missing:
            raise KeyError(f"features {missing} are not normalized here: have {self.names}")
        where = [self.names.index(name) for name in names]
        bounds = {}
        if self.clip_min is not None and self.clip_max is not None:
            bounds = {"clip_min": self.clip_min[where], "clip_max": self.clip_max[where]}
        return Normalizer(
            tuple(names),
            self.center[where],
            self.scale[where],
            self.clip,
            method=self.method,
            **bounds,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``names`` (the order), ``center``, ``scale``, ``clip``, ``method``.

        Per-feature bounds add ``clip_min`` and ``clip_max`` (None for an open side).
        """
        data: dict[str, Any] = {
            "names": list(self.names),
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
            "clip": self.clip,
            "method": self.method,
        }
        if self.clip_min is not None and self.clip_max is not None:
            data["clip_min"] = [float(v) if np.isfinite(v) else None for v in self.clip_min]
            data["clip_max"] = [float(v) if np.isfinite(v) else None for v in self.clip_max]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalizer:
        """Rebuild from :meth:`to_dict` output (e.g. read from a checkpoint's config.json).

        Raises:
            DataError: a key is missing or a value is malformed.
        """
        for key in ("names", "center", "scale"):
            if key not in data:
                raise DataError(
                    "normalization", key, "keys names, center, scale, clip", sorted(data)
                )
        clip = data.get("clip")
        bounds = {}
        for key, open_side in (("clip_min", -np.inf), ("clip_max", np.inf)):
            if data.get(key) is not None:
                try:
                    values = [open_side if value is None else value for value in data[key]]
                    bounds[key] = np.asarray(values, dtype=np.float32)
                except (TypeError, ValueError):
                    raise DataError(
                        "normalization", key, "a list of numbers or null", data[key]
                    ) from None
        return cls(
            names=tuple(str(name) for name in data["names"]),
            center=np.asarray(data["center"], dtype=np.float32),
            scale=np.asarray(data["scale"], dtype=np.float32),
            clip=None if clip is None else float(clip),
            method=str(data.get("method", METHOD)),
            **bounds,
        )
