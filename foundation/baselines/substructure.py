"""Jet substructure observables from :class:`~foundation.data.records.JetRecords` (vectorized).

Every observable is computed for all jets at once from the flat particle arrays. What a file
cannot provide is NaN (gradient-boosted trees handle missing values): the soft-drop mass and
the N-subjettiness ratios come from the ``jet_sdmass`` / ``jet_tau1..3`` branches when present
(they need a reclustering that is not redone here), the charged multiplicity from
``part_charge``. A jet without particles has NaN shape observables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from foundation.data.kinematics import jet_mass, jets_from_particles, pt_eta_phi, wrap_phi
from foundation.data.records import JetRecords

SUBSTRUCTURE_FEATURES: tuple[str, ...] = (
    "jet_pt",
    "jet_eta",
    "mass",
    "sdmass",
    "tau21",
    "tau32",
    "multiplicity",
    "girth",
    "ptd",
    "lead_pt_fraction",
    "charged_multiplicity",
)
"""The observables, in the column order of :func:`substructure_matrix`:

- ``jet_pt``, ``jet_eta``: the jet's kinematics;
- ``mass``: the jet mass (from ``jet_pt``, ``jet_eta``, ``jet_energy``, else the summed
  constituents);
- ``sdmass``: soft-drop mass (``jet_sdmass``);
- ``tau21`` = τ2/τ1 and ``tau32`` = τ3/τ2 (``jet_tau*``);
- ``multiplicity``: number of constituents;
- ``girth``: pT-weighted width Σ pT,i ΔR_i / Σ pT,i;
- ``ptd``: pT_D = sqrt(Σ pT,i²) / Σ pT,i;
- ``lead_pt_fraction``: leading constituent pT / jet pT;
- ``charged_multiplicity``: constituents with a nonzero charge.
"""


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(
        numerator, denominator, out=np.full(numerator.shape, np.nan), where=denominator > 0
    )


def substructure_features(records: JetRecords) -> dict[str, np.ndarray]:
    """Every observable of :data:`SUBSTRUCTURE_FEATURES` for every jet (float64, NaN = missing).

    Shapes:
        - each output: ``[n_jets]``.
    """
    parts, jets = records.particles, records.jets
    n_jets = records.n_jets
    index = records.jet_index()
    px, py, pz, energy = (
        np.asarray(parts[name], dtype=np.float64)
        for name in ("part_px", "part_py", "part_pz", "part_energy")
    )
    summed = jets_from_particles(records.counts, px, py, pz, energy)
    axis = {
        name: np.asarray(jets.get(name, summed[name]), dtype=np.float64)
        for name in ("jet_pt", "jet_eta", "jet_phi", "jet_energy")
    }
    if "jet_mass" in jets:
        mass = np.asarray(jets["jet_mass"], dtype=np.float64)
    elif all(name in jets for name in ("jet_pt", "jet_eta", "jet_energy")):
        mass = jet_mass(axis["jet_pt"], axis["jet_eta"], axis["jet_energy"]).astype(np.float64)
    else:
        mass = summed["jet_mass"].astype(np.float64)
    pt, eta, phi = pt_eta_phi(px, py, pz)
    deta = parts["part_deta"] if "part_deta" in parts else eta - axis["jet_eta"][index]
    dphi = parts["part_dphi"] if "part_dphi" in parts else wrap_phi(phi - axis["jet_phi"][index])
    delta_r = np.hypot(np.asarray(deta, dtype=np.float64), np.asarray(dphi, dtype=np.float64))

    def per_jet(values: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=values, minlength=n_jets)

    sum_pt = per_jet(pt)
    leading = np.zeros(n_jets)
    np.maximum.at(leading, index, pt)
    empty = records.counts == 0
    leading[empty] = np.nan
    tau = {k: jets.get(f"jet_tau{k}") for k in (1, 2, 3)}
    nan = np.full(n_jets, np.nan)  # the value of every missing observable (copied below)
    features = {
        "jet_pt": axis["jet_pt"],
        "jet_eta": axis["jet_eta"],
        "mass": mass,
        "sdmass": np.asarray(jets["jet_sdmass"], np.float64) if "jet_sdmass" in jets else nan,
        "tau21": _ratio(tau[2], tau[1]) if tau[1] is not None and tau[2] is not None else nan,
        "tau32": _ratio(tau[3], tau[2]) if tau[2] is not None and tau[3] is not None else nan,
        "multiplicity": records.counts.astype(np.float64),
        "girth": _ratio(per_jet(pt * delta_r), sum_pt),
        "ptd": _ratio(np.sqrt(per_jet(pt * pt)), sum_pt),
        "lead_pt_fraction": _ratio(leading, axis["jet_pt"]),
        "charged_multiplicity": (
            per_jet((np.asarray(parts["part_charge"]) != 0).astype(np.float64))
            if "part_charge" in parts
            else nan
        ),
    }
    return {name: np.array(values, dtype=np.float64) for name, values in features.items()}


def substructure_matrix(
    records: JetRecords, names: Sequence[str] = SUBSTRUCTURE_FEATURES
) -> np.ndarray:
    """The observables ``names`` as columns of one matrix.

    Raises:
        KeyError: an unknown observable name.

    Shapes:
        - output: ``[n_jets, len(names)]`` float64.
    """
    unknown = [name for name in names if name not in SUBSTRUCTURE_FEATURES]
    if unknown:
        raise KeyError(f"unknown substructure features {unknown}; known: {SUBSTRUCTURE_FEATURES}")
    features = substructure_features(records)
    if not names:
        return np.zeros((records.n_jets, 0))
    return np.stack([features[name] for name in names], axis=1)
