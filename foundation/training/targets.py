"""Targets computed from the cache's arrays when a head asks for them by name.

- ``pt_ratio``, ``mass_ratio``: particle-level truth over detector-level jet pT and mass;
- ``log_pt_ratio``, ``log_mass_ratio``: their natural logarithms (the D3 regression targets:
  a network predicting them corrects a detector-level jet to particle level);
- ``pair_same_vertex``: 1 for two tracks from one production vertex, 0 for different ones, -1
  ignored (padding, the diagonal, neutral candidates without a vertex).

Jet-level ratios are NaN where undefined (a zero mass); regression heads ignore non-finite
targets. The detector-level pT and mass are read from the raw (unnormalized) jet inputs
``jet_pt_log`` (ln pT) and ``jet_mass_log1p`` (ln(1 + m)).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from foundation.data.loading import same_vertex_targets

JetTargetFunction = Callable[[Mapping[str, np.ndarray], Sequence[str]], np.ndarray]

PAIR_TARGETS: tuple[str, ...] = ("pair_same_vertex",)
"""Derived pair-level targets (computed from ``part_vertex`` and the mask in the collate)."""


def _reco(batch: Mapping[str, np.ndarray], names: Sequence[str], quantity: str) -> np.ndarray:
    jet = np.asarray(batch["raw_jet"], dtype=np.float64)
    if quantity == "pt":
        return np.exp(jet[:, list(names).index("jet_pt_log")])
    return np.expm1(jet[:, list(names).index("jet_mass_log1p")])


def _ratio(quantity: str, log: bool) -> JetTargetFunction:
    truth_name = f"jet_truth_{quantity}"

    def compute(batch: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
        truth = np.asarray(batch[truth_name], dtype=np.float64)
        reco = _reco(batch, names, quantity)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((reco > 0) & (truth > 0), truth / reco, np.nan)
            return (np.log(ratio) if log else ratio).astype(np.float32)

    return compute


JET_TARGETS: dict[str, tuple[str, str, JetTargetFunction]] = {
    "pt_ratio": ("jet_truth_pt", "jet_pt_log", _ratio("pt", log=False)),
    "mass_ratio": ("jet_truth_mass", "jet_mass_log1p", _ratio("mass", log=False)),
    "log_pt_ratio": ("jet_truth_pt", "jet_pt_log", _ratio("pt", log=True)),
    "log_mass_ratio": ("jet_truth_mass", "jet_mass_log1p", _ratio("mass", log=True)),
}
"""Derived jet-level targets: name -> (truth array needed, jet input needed, function)."""


def derived_target_names() -> list[str]:
    """Names of every derived target."""
    return sorted([*JET_TARGETS, *PAIR_TARGETS])


def required_inputs(name: str) -> tuple[str, ...]:
    """Cache arrays / jet inputs a derived target needs (``part_vertex`` for pair targets)."""
    if name in PAIR_TARGETS:
        return ("part_vertex",)
    truth, jet_input, _ = JET_TARGETS[name]
    return (truth, jet_input)


def add_jet_targets(
    batch: dict[str, np.ndarray],
    raw_jet: np.ndarray,
    jet_feature_names: Sequence[str],
    names: Iterable[str],
) -> None:
    """Add the derived jet-level targets ``names`` to a numpy batch dict, in place.

    Shapes:
        - raw_jet: ``[B, J]`` unnormalized jet inputs; each added target: ``[B]`` float32.
    """
    view = {**batch, "raw_jet": raw_jet}
    for name in names:
        batch[name] = JET_TARGETS[name][2](view, jet_feature_names)


def add_pair_targets(targets: dict[str, torch.Tensor], mask: torch.Tensor) -> None:
    """Add ``pair_same_vertex`` ``[B, N, N]`` from ``targets["part_vertex"]``, in place."""
    targets["pair_same_vertex"] = same_vertex_targets(targets["part_vertex"], mask)
