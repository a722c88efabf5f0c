"""Model inputs from :class:`JetRecords`: the ParT particle features, jet-level inputs, padding.

Particle features follow ParT's ``JetClass_full.yaml`` (weaver): ``part_pt_log = ln pT``,
``part_e_log = ln E``, ``part_logptrel = ln(pT / jet_pt)``, ``part_logerel = ln(E / jet_energy)``,
``part_deltaR = hypot(Δη, Δφ)``, the charge and five identity flags as stored,
``part_d0 = tanh(d0val)``, ``part_d0err``, ``part_dz = tanh(dzval)``, ``part_dzerr``,
``part_deta = η - η_jet`` and ``part_dphi = φ - φ_jet`` (wrapped to [-π, π)). Δη and Δφ come
from the ``part_deta`` / ``part_dphi`` branches when the file has them, else from the 4-vectors
and the jet axis. A field the file lacks (e.g. impact parameters in Top Landscape) gives 0, never
silently: :func:`particle_features` warns (or, with ``on_missing="error"``, refuses) naming the
features and the feature sets the file does fit, and :func:`check_feature_fields` is the check for
code that meets a checkpoint (evaluation, fine-tuning). Logarithms of a zero pT or E are floored
at ln(1e-8) rather than -inf.

Everything is vectorized over the flat particle arrays; there is no loop over jets.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from foundation.data.kinematics import jet_mass, jets_from_particles, pt_eta_phi, wrap_phi
from foundation.data.records import JetRecords
from foundation.data.schema import (
    FEATURE_SETS,
    JET_INPUTS,
    PARTICLE_FEATURES_FULL,
    TRUTH_JET_BRANCHES,
    TRUTH_PARTICLE_BRANCHES,
)
from foundation.data.slots import DEFAULT_MAX_PARTICLES
from foundation.errors import DataError

_FLOOR = 1e-8
_STORED = (
    "part_charge",
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
    "part_d0err",
    "part_dzerr",
)
SOURCE_FIELDS: dict[str, str] = {
    "part_d0": "part_d0val",
    "part_dz": "part_dzval",
    **{name: name for name in _STORED},
}
"""Particle features read from (or computed from one) file field; the others need only the
4-vectors (and the jet axis)."""


class MissingFieldsWarning(UserWarning):
    """Features computed as 0 because the data lacks the fields they come from."""


def missing_source_fields(names: Iterable[str], fields: Iterable[str]) -> dict[str, str]:
    """``{feature: field}`` of the features whose file field is not among ``fields``."""
    present = set(fields)
    return {
        name: SOURCE_FIELDS[name]
        for name in names
        if name in SOURCE_FIELDS and SOURCE_FIELDS[name] not in present
    }


def fitting_feature_sets(fields: Iterable[str]) -> list[str]:
    """The feature sets (``kin``, ``kinpid``, ``full``) that data with ``fields`` provides."""
    fields = set(fields)
    return [
        name for name, names in FEATURE_SETS.items() if not missing_source_fields(names, fields)
    ]


def check_feature_fields(
    names: Sequence[str],
    fields: Iterable[str],
    source: str = "data",
    *,
    allow_missing: bool = False,
) -> dict[str, str]:
    """Refuse data that lacks the fields some features are computed from (they would be 0).

    Args:
        names: the features a backbone was trained on (or is about to be fed).
        fields: the particle fields the data has (e.g. ``CacheInfo.particle_fields``).
        source: the data, for the message.
        allow_missing: accept it with a :class:`MissingFieldsWarning` instead (the features are
            then 0 for every particle).

    Returns:
        ``{feature: missing field}`` (empty when everything is there).

    Raises:
        DataError: fields are missing and ``allow_missing`` is False; the message names the
            features, their fields, and the feature sets (backbones) that fit the data.
    """
    fields = set(fields)
    missing = missing_source_fields(names, fields)
    if not missing:
        return missing
    fitting = fitting_feature_sets(fields)
    suggestion = (
        f"use a backbone trained on the {' or '.join(repr(n) for n in fitting)} feature set "
        f"(e.g. particlenet.jetclass-{fitting[-1]}; `foundation hub list` shows each "
        "checkpoint's feature count)"
        if fitting
        else "use data with these fields"
    )
    message = (
        f"the features {sorted(missing)} need the fields {sorted(set(missing.values()))}, absent "
        f"from {source} (it has {sorted(fields)})"
    )
    if allow_missing:
        warnings.warn(
            f"{message}: these features are 0 for every particle", MissingFieldsWarning, 2
        )
        return missing
    raise DataError(
        source,
        "particle fields",
        f"the fields {sorted(set(missing.values()))} that the features {sorted(missing)} are "
        "computed from",
        f"only {sorted(fields)}",
        hint=f"{suggestion}, or allow missing features explicitly (they become 0)",
    )


TRUTH_PAD = -1
"""Value of particle-level truth targets (``part_origin``, ``part_vertex``) on padding."""


def resolve_feature_names(features: str | Sequence[str]) -> tuple[str, ...]:
    """Feature names from a set name (``"kin"``, ``"kinpid"``, ``"full"``) or a list of names.

    Raises:
        KeyError: an unknown set or feature name; the message lists the known ones.
    """
    if isinstance(features, str):
        if features not in FEATURE_SETS:
            raise KeyError(
                f"unknown feature set {features!r}: expected one of {list(FEATURE_SETS)}"
            )
        return FEATURE_SETS[features]
    names = tuple(features)
    unknown = [name for name in names if name not in PARTICLE_FEATURES_FULL]
    if unknown:
        raise KeyError(
            f"unknown particle features {unknown}: expected names from {PARTICLE_FEATURES_FULL}"
        )
    return names


def _jet_axis(records: JetRecords) -> dict[str, np.ndarray]:
    """jet_pt, jet_eta, jet_phi, jet_energy: from the jet branches, else summed from particles."""
    names = ("jet_pt", "jet_eta", "jet_phi", "jet_energy")
    if all(name in records.jets for name in names):
        return {name: np.asarray(records.jets[name]) for name in names}
    vectors = (records.particles[n] for n in ("part_px", "part_py", "part_pz", "part_energy"))
    summed = jets_from_particles(records.counts, *vectors)
    return {name: np.asarray(records.jets.get(name, summed[name])) for name in names}


def particle_features(
    records: JetRecords,
    names: str | Sequence[str] = PARTICLE_FEATURES_FULL,
    *,
    on_missing: Literal["warn", "error"] = "warn",
) -> np.ndarray:
    """Compute particle features for every particle, in the flat (unsorted) order of ``records``.

    Args:
        records: the jets.
        names: a feature set name or feature names (see :func:`resolve_feature_names`).
        on_missing: a feature whose file field the records lack is 0 with a
            :class:`MissingFieldsWarning` (``"warn"``), or an error (``"error"``).

    Returns:
        float32 array, one column per name.

    Raises:
        DataError: ``on_missing="error"`` and fields are missing (see
            :func:`check_feature_fields`).

    Shapes:
        - output: ``[n_particles, F]``
    """
    names = resolve_feature_names(names)
    parts = records.particles
    source = ", ".join(records.sources) or "the records"
    check_feature_fields(names, parts.keys(), source, allow_missing=on_missing == "warn")
    px, py, pz, energy = (parts[n] for n in ("part_px", "part_py", "part_pz", "part_energy"))
    index = records.jet_index()
    axis = _jet_axis(records)
    cache: dict[str, np.ndarray] = {}

    def kinematics() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if "pt" not in cache:
            cache["pt"], cache["eta"], cache["phi"] = pt_eta_phi(px, py, pz)
        return cache["pt"], cache["eta"], cache["phi"]

    def deta() -> np.ndarray:
        if "part_deta" in parts:
            return parts["part_deta"]
        return kinematics()[1] - axis["jet_eta"][index]

    def dphi() -> np.ndarray:
        if "part_dphi" in parts:
            return parts["part_dphi"]
        return wrap_phi(kinematics()[2] - axis["jet_phi"][index])

    def log(values: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(values, _FLOOR))

    def compute(name: str) -> np.ndarray:
        if name == "part_pt_log":
            return log(kinematics()[0])
        if name == "part_e_log":
            return log(energy)
        if name == "part_logptrel":
            return log(kinematics()[0] / np.maximum(axis["jet_pt"][index], _FLOOR))
        if name == "part_logerel":
            return log(energy / np.maximum(axis["jet_energy"][index], _FLOOR))
        if name == "part_deltaR":
            return np.hypot(deta(), dphi())
        if name == "part_deta":
            return deta()
        if name == "part_dphi":
            return dphi()
        if name in ("part_d0", "part_dz"):
            source = name + "val"
            return np.tanh(parts[source]) if source in parts else np.zeros_like(px)
        if name in _STORED:
            return parts[name] if name in parts else np.zeros_like(px)
        raise KeyError(name)  # unreachable: names are resolved above

    out = np.empty((records.n_particles, len(names)), dtype=np.float32)
    for column, name in enumerate(names):
        out[:, column] = compute(name)
    return out


def jet_inputs(records: JetRecords, names: Sequence[str] = JET_INPUTS) -> np.ndarray:
    """Jet-level inputs :data:`~foundation.data.schema.JET_INPUTS` of every jet.

    ``jet_pt_log`` is ln pT (0 for a jet of zero pT), ``jet_mass_log1p`` is ln(1 + m) with the
    mass from the jet 4-vector, ``jet_nparticles`` the number of particles before truncation.

    Shapes:
        - output: ``[n_jets, J]`` float32.
    """
    axis = _jet_axis(records)
    pt = axis["jet_pt"].astype(np.float64)
    if "jet_mass" in records.jets:
        mass = np.asarray(records.jets["jet_mass"])
    else:
        mass = jet_mass(pt, axis["jet_eta"], axis["jet_energy"])
    available = {
        "jet_pt_log": np.where(pt > 0, np.log(np.maximum(pt, _FLOOR)), 0.0),
        "jet_eta": axis["jet_eta"],
        "jet_mass_log1p": np.log1p(np.maximum(mass, 0.0)),
        "jet_nparticles": records.counts,
    }
    unknown = [name for name in names if name not in available]
    if unknown:
        raise KeyError(f"unknown jet inputs {unknown}: expected names from {list(available)}")
    out = np.empty((records.n_jets, len(names)), dtype=np.float32)
    for column, name in enumerate(names):
        out[:, column] = available[name]
    return out


@dataclass(frozen=True)
class PaddingIndex:
    """Where each kept particle goes: particles sorted by decreasing pT, truncated to ``N`` slots.

    Attributes:
        jet, slot: destination (jet, slot) of each kept particle.
        source: flat position of each kept particle in the records.
        mask: True for a slot holding a real particle.

    Shapes:
        - jet, slot, source: ``[n_kept]``; mask: ``[n_jets, N]``
    """

    jet: np.ndarray
    slot: np.ndarray
    source: np.ndarray
    mask: np.ndarray

    def gather(self, flat: np.ndarray, fill: float = 0) -> np.ndarray:
        """Lay a flat per-particle array out on the padded slots, ``fill`` on padding.

        Shapes:
            - flat: ``[n_particles, ...]``; output: ``[n_jets, N, ...]``
        """
        out = np.full((*self.mask.shape, *flat.shape[1:]), fill, dtype=flat.dtype)
        out[self.jet, self.slot] = flat[self.source]  # scatter: touches real particles only
        return out


def padding_index(counts: np.ndarray, pt: np.ndarray, max_particles: int) -> PaddingIndex:
    """Sort each jet's particles by decreasing pT and keep the first ``max_particles``.

    Ties keep file order. Jets with fewer particles are padded; ``max_particles`` may be 0.

    Shapes:
        - counts: ``[n_jets]``; pt: ``[n_particles]``; mask: ``[n_jets, max_particles]``
    """
    if max_particles < 0:
        raise ValueError(f"max_particles: expected >= 0, found {max_particles}")
    counts = np.asarray(counts, dtype=np.int64)
    n_jets = len(counts)
    jet = np.repeat(np.arange(n_jets, dtype=np.int64), counts)
    order = np.lexsort((-np.asarray(pt, dtype=np.float64), jet))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n_jets else counts
    slot = np.arange(len(jet), dtype=np.int64) - starts[jet]
    keep = slot < max_particles
    mask = np.zeros((n_jets, max_particles), dtype=bool)
    jet, slot = jet[keep], slot[keep]
    mask[jet, slot] = True
    return PaddingIndex(jet=jet, slot=slot, source=order[keep], mask=mask)


@dataclass(frozen=True)
class PaddedJets:
    """Padded model inputs and targets of a set of jets (numpy), ready for the cache or a batch.

    Shapes:
        - particles: ``[n, N, F]`` float32; mask: ``[n, N]`` bool; vectors: ``[n, N, 4]`` float32
          (px, py, pz, E); jet: ``[n, J]`` float32; label, event_id: ``[n]`` int64
        - truth: ``jet_truth_*`` ``[n]``, ``part_origin`` / ``part_vertex`` ``[n, N]`` with
          :data:`TRUTH_PAD` on padding.
    """

    particles: np.ndarray
    mask: np.ndarray
    vectors: np.ndarray
    jet: np.ndarray
    label: np.ndarray
    event_id: np.ndarray
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    feature_names: tuple[str, ...] = ()
    jet_feature_names: tuple[str, ...] = ()
    label_names: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The arrays and names, keyed as :func:`foundation.data.loading.collate_jets` reads."""
        return {
            "particles": self.particles,
            "mask": self.mask,
            "vectors": self.vectors,
            "jet": self.jet,
            "label": self.label,
            "event_id": self.event_id,
            **self.truth,
            "feature_names": self.feature_names,
            "jet_feature_names": self.jet_feature_names,
        }


def pad_jets(
    records: JetRecords,
    features: str | Sequence[str] = "full",
    max_particles: int = DEFAULT_MAX_PARTICLES,
    jet_feature_names: Sequence[str] = JET_INPUTS,
) -> PaddedJets:
    """Compute features and lay every jet out on ``max_particles`` slots sorted by decreasing pT.

    Args:
        records: the jets.
        features: a feature set name or particle feature names.
        max_particles: slots per jet ``N``; more particles are dropped (softest first).
        jet_feature_names: jet-level inputs.

    Shapes:
        - see :class:`PaddedJets`.
    """
    names = resolve_feature_names(features)
    px, py = records.particles["part_px"], records.particles["part_py"]
    layout = padding_index(records.counts, np.hypot(px, py), max_particles)
    vectors = np.stack(
        [records.particles[n] for n in ("part_px", "part_py", "part_pz", "part_energy")], axis=1
    ).astype(np.float32, copy=False)
    truth: dict[str, np.ndarray] = {}
    for name in TRUTH_JET_BRANCHES:
        if name in records.truth:
            truth[name] = np.asarray(records.truth[name])
    for name in TRUTH_PARTICLE_BRANCHES:
        if name in records.truth:
            truth[name] = layout.gather(np.asarray(records.truth[name]), fill=TRUTH_PAD)
    return PaddedJets(
        particles=layout.gather(particle_features(records, names)),
        mask=layout.mask,
        vectors=layout.gather(vectors),
        jet=jet_inputs(records, jet_feature_names),
        label=records.labels.astype(np.int64, copy=False),
        event_id=records.event_id.astype(np.int64, copy=False),
        truth=truth,
        feature_names=names,
        jet_feature_names=tuple(jet_feature_names),
        label_names=records.label_names,
    )
