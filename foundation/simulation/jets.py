"""Jets from candidates: anti-kT clustering, selection, truth matching and JetClass branches."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from foundation.data.schema import NO_VERTEX, PRIMARY_VERTEX
from foundation.extras import requires_extra
from foundation.simulation.delphes_card import OutputConventions
from foundation.simulation.detector import (
    CHARGED_HADRON,
    ELECTRON,
    MUON,
    NEUTRAL_HADRON,
    PHOTON,
    Candidates,
)
from foundation.simulation.processes import Process

with requires_extra("sim"):
    import fastjet

PRIMARY_DISPLACEMENT = 1e-3
"""mm: tracks produced closer than this to their interaction point come from the primary vertex."""
MAX_JETS_PER_EVENT = 2
"""Only the two leading jets of an event are considered (as in JetClass)."""


@dataclass
class EventTruth:
    """What jet selection and labelling need from the generator, for one event.

    Attributes:
        particles: ``[P, 4]`` (px, py, pz, E) of stable visible hard-scatter particles.
        decays: per resonance, ``[K, 2]`` (eta, phi) of its visible decay products, and the
            number of charged leptons among them.
        partons: ``[H, 3]`` (eta, phi, |pdg id|) of the outgoing hard partons.
        event_id: unique integer of the event.
    """

    particles: np.ndarray
    decays: list[tuple[np.ndarray, int]]
    partons: np.ndarray
    event_id: int


@dataclass
class JetTable:
    """Selected jets, flat per-particle arrays with ``counts``, ready to write."""

    jets: dict[str, list] = field(default_factory=dict)
    particles: dict[str, list] = field(default_factory=dict)

    def add(self, jet: dict[str, float], particles: dict[str, np.ndarray]) -> None:
        for name, value in jet.items():
            self.jets.setdefault(name, []).append(value)
        for name, value in particles.items():
            self.particles.setdefault(name, []).append(value)

    def __len__(self) -> int:
        return len(self.jets.get("jet_pt", []))


def _delta_phi(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    return np.remainder(np.asarray(a) - b + math.pi, 2 * math.pi) - math.pi


def _kinematics(px: float, py: float, pz: float, energy: float) -> tuple[float, ...]:
    pt = math.hypot(px, py)
    eta = math.asinh(pz / pt) if pt > 0 else 0.0
    rapidity = 0.5 * math.log(max(energy + pz, 1e-12) / max(energy - pz, 1e-12))
    mass = math.sqrt(max(energy**2 - px**2 - py**2 - pz**2, 0.0))
    return pt, eta, math.atan2(py, px), rapidity, mass


@dataclass
class _Clustered:
    """Jets of many events as flat numpy arrays.

    Shapes:
        - jet_offsets: ``[E + 1]``, jets of event ``e`` are ``jet_offsets[e]:jet_offsets[e+1]``
          (sorted by decreasing pT);
        - momenta: ``[n_jets, 4]`` (px, py, pz, E);
        - member_offsets: ``[n_jets + 1]`` into ``members`` (indices into the event's inputs).
    """

    jet_offsets: np.ndarray
    momenta: np.ndarray
    member_offsets: np.ndarray
    members: np.ndarray


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


@functools.cache
def _silence_banner() -> None:
    """No FastJet banner in every simulation worker (the README cites FastJet instead)."""
    from fastjet import _swig

    _swig.ClusterSequence.set_fastjet_banner_stream(None)


def _cluster(vectors: list[np.ndarray], radius: float, min_pt: float) -> _Clustered:
    """Anti-kT jets and their constituent indices for many events in one FastJet call."""
    counts = np.array([len(v) for v in vectors], dtype=np.int64)
    flat = np.concatenate(vectors) if vectors else np.zeros((0, 4))
    array = ak.unflatten(
        ak.zip({"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]}),
        counts,
    )
    _silence_banner()
    sequence = fastjet.ClusterSequence(
        array, fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    )
    jets = sequence.inclusive_jets(min_pt)
    constituents = sequence.constituent_index(min_pt)
    momenta = np.stack(
        [np.asarray(ak.flatten(jets[name]), dtype=np.float64) for name in ("px", "py", "pz", "E")],
        axis=1,
    )
    # FastJet returns inclusive jets unordered: sort each event's jets by decreasing pT.
    jet_offsets = _offsets(np.asarray(ak.num(jets), dtype=np.int64))
    member_counts = np.asarray(ak.flatten(ak.num(constituents, axis=2)), dtype=np.int64)
    members = np.asarray(ak.flatten(constituents, axis=None), dtype=np.int64)
    event_of_jet = np.repeat(np.arange(len(counts)), np.diff(jet_offsets))
    order = np.lexsort((-np.hypot(momenta[:, 0], momenta[:, 1]), event_of_jet))
    member_offsets = _offsets(member_counts)
    members = (
        np.concatenate([members[member_offsets[j] : member_offsets[j + 1]] for j in order])
        if len(order)
        else members
    )
    return _Clustered(jet_offsets, momenta[order], _offsets(member_counts[order]), members)


def _vertex_indices(candidates: Candidates, order: np.ndarray) -> np.ndarray:
    """Production-vertex index of each candidate of a jet (0 primary, 1.. displaced, -1 neutral)."""
    count = len(order)
    vertex = np.full(count, NO_VERTEX, dtype=np.int32)
    tracked = candidates.charge[order] != 0
    if not tracked.any():
        return vertex
    source = candidates.source[order][tracked]
    x = candidates.vertex_x[order][tracked]
    y = candidates.vertex_y[order][tracked]
    z = candidates.vertex_z[order][tracked]
    # Pileup interactions sit at (0, 0, z_k): displacement is measured from each one's own origin.
    origin_z = np.where(source > 0, z, 0.0)
    displaced = np.sqrt(x**2 + y**2 + (z - origin_z) ** 2) > PRIMARY_DISPLACEMENT
    primary = (source == 0) & ~displaced
    # Decay products of one decay share their production point exactly; prompt pileup tracks
    # share their interaction's vertex.
    keys = np.stack([source, np.round(x, 7), np.round(y, 7), np.round(z, 7)], axis=1)
    keys[(source > 0) & ~displaced, 1:3] = 0.0
    tracked_vertex = np.full(len(source), PRIMARY_VERTEX, dtype=np.int32)
    if (~primary).any():
        _, first_seen, inverse = np.unique(
            keys[~primary], axis=0, return_index=True, return_inverse=True
        )
        rank = np.empty(len(first_seen), dtype=np.int32)
        rank[np.argsort(first_seen)] = np.arange(len(first_seen), dtype=np.int32)
        tracked_vertex[~primary] = 1 + rank[inverse.ravel()]
    vertex[tracked] = tracked_vertex
    return vertex


def kept_constituents(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, conventions: OutputConventions
) -> np.ndarray:
    """Which constituents the ntupliser keeps: not ``|pz| >`` max, ``|eta| >`` max or ``pT <=`` min.

    Shapes:
        - px, py, pz, output: ``[C]``.
    """
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    return ~(
        (np.abs(pz) > conventions.constituent_max_abs_pz)
        | (np.abs(eta) > conventions.constituent_max_abs_eta)
        | (pt <= conventions.constituent_min_pt)
    )


def relative_eta(eta: np.ndarray, jet_eta: float, sign_flip: bool) -> np.ndarray:
    """``eta - jet_eta``, times ``sign(jet_eta)`` (with sign(0) = -1) when ``sign_flip``.

    Shapes:
        - eta, output: ``[C]``.
    """
    sign = (1.0 if jet_eta > 0 else -1.0) if sign_flip else 1.0
    return sign * (eta - jet_eta)


def _particle_branches(
    candidates: Candidates, members: np.ndarray, jet_eta: float, jet_phi: float
) -> dict[str, np.ndarray]:
    """JetClass per-particle branches (plus truth) of one jet, sorted by decreasing pT.

    Constituents the card's output conventions drop are left out.
    """
    conventions = candidates.conventions
    members = members[
        kept_constituents(
            candidates.px[members], candidates.py[members], candidates.pz[members], conventions
        )
    ]
    pt = np.hypot(candidates.px[members], candidates.py[members])
    order = members[np.argsort(-pt, kind="stable")]
    px, py, pz = candidates.px[order], candidates.py[order], candidates.pz[order]
    eta = np.arcsinh(pz / np.maximum(np.hypot(px, py), 1e-12))
    kind = candidates.kind[order]
    as_float = np.float32
    return {
        "px": px.astype(as_float),
        "py": py.astype(as_float),
        "pz": pz.astype(as_float),
        "energy": candidates.energy[order].astype(as_float),
        "deta": relative_eta(eta, jet_eta, conventions.deta_sign_flip).astype(as_float),
        "dphi": _delta_phi(np.arctan2(py, px), jet_phi).astype(as_float),
        "d0val": candidates.d0[order].astype(as_float),
        "d0err": candidates.d0_error[order].astype(as_float),
        "dzval": candidates.dz[order].astype(as_float),
        "dzerr": candidates.dz_error[order].astype(as_float),
        "charge": candidates.charge[order].astype(as_float),
        "isChargedHadron": (kind == CHARGED_HADRON).astype(as_float),
        "isNeutralHadron": (kind == NEUTRAL_HADRON).astype(as_float),
        "isPhoton": (kind == PHOTON).astype(as_float),
        "isElectron": (kind == ELECTRON).astype(as_float),
        "isMuon": (kind == MUON).astype(as_float),
        "origin": candidates.origin[order].astype(np.int32),
        "vertex": _vertex_indices(candidates, order),
    }


def _matches_decay(process: Process, truth: EventTruth, eta: float, phi: float) -> bool:
    """Whether all visible decay products of one resonance lie within ΔR < R of the jet."""
    for products, leptons in truth.decays:
        if len(products) == 0:
            continue
        if process.leptons_required is not None and leptons != process.leptons_required:
            continue
        distance = np.hypot(products[:, 0] - eta, _delta_phi(products[:, 1], phi))
        if np.all(distance < process.jet_radius):
            return True
    return False


def _parton_flavour(truth: EventTruth, eta: float, phi: float, radius: float) -> int:
    """|PDG id| of the closest outgoing hard parton within ΔR < R (0 when none)."""
    if len(truth.partons) == 0:
        return 0
    distance = np.hypot(truth.partons[:, 0] - eta, _delta_phi(truth.partons[:, 1], phi))
    closest = int(np.argmin(distance))
    return int(truth.partons[closest, 2]) if distance[closest] < radius else 0


def _jets_per_event(candidates: Candidates, available: int) -> int:
    """How many leading jets of an event are considered (the card's conventions; 0 = all)."""
    limit = candidates.conventions.max_jets_per_event
    return available if limit == 0 else limit


def select_jets(
    process: Process,
    pt_range: tuple[float, float],
    events: list[tuple[Candidates, EventTruth]],
    table: JetTable,
    max_jets: int | None = None,
) -> None:
    """Cluster, select, match and label jets of ``events``; append them to ``table``.

    Jets are taken in event order (at most ``max_jets_per_event`` leading jets per event, from
    the candidates' output conventions: :data:`MAX_JETS_PER_EVENT` for the default card) until
    ``table`` holds ``max_jets`` jets.
    """
    radius = process.jet_radius
    low, high = pt_range
    candidate_vectors = [np.stack([c.px, c.py, c.pz, c.energy], axis=1) for c, _ in events]
    jets = _cluster(candidate_vectors, radius, 0.8 * low)
    # Particle-level jets only need the particles around a candidate jet: anti-kT jets are
    # rigid cones, so particles beyond 2R of every candidate axis cannot change them.
    jet_pt = np.hypot(jets.momenta[:, 0], jets.momenta[:, 1])
    jet_eta = np.arcsinh(jets.momenta[:, 2] / np.maximum(jet_pt, 1e-12))
    jet_phi = np.arctan2(jets.momenta[:, 1], jets.momenta[:, 0])
    truth_vectors = []
    for position, (candidates, truth) in enumerate(events):
        first, last = jets.jet_offsets[position : position + 2]
        axes = slice(first, min(last, first + _jets_per_event(candidates, last - first)))
        in_window = (jet_pt[axes] >= low) & (jet_pt[axes] < high)
        particles = truth.particles
        if not in_window.any():
            truth_vectors.append(particles[:0])
            continue
        pt = np.hypot(particles[:, 0], particles[:, 1])
        eta = np.arcsinh(particles[:, 2] / np.maximum(pt, 1e-12))
        phi = np.arctan2(particles[:, 1], particles[:, 0])
        distance = np.hypot(
            eta[:, None] - jet_eta[axes][None, in_window],
            _delta_phi(phi[:, None], jet_phi[axes][None, in_window]),
        )
        truth_vectors.append(particles[distance.min(axis=1) < 2 * radius])
    truth_jets = _cluster(truth_vectors, radius, 0.5 * low)
    truth_kinematics = [_kinematics(*momentum) for momentum in truth_jets.momenta.tolist()]
    for position, (candidates, truth) in enumerate(events):
        first_truth, last_truth = truth_jets.jet_offsets[position : position + 2]
        event_truth_jets = truth_kinematics[first_truth:last_truth]
        first, last = jets.jet_offsets[position : position + 2]
        for jet_index in range(first, min(last, first + _jets_per_event(candidates, last - first))):
            if max_jets is not None and len(table) >= max_jets:
                return
            momentum = jets.momenta[jet_index]
            pt, eta, phi, rapidity, mass = _kinematics(*momentum.tolist())
            position_variable = rapidity if process.use_rapidity else eta
            if not (low <= pt < high and abs(position_variable) < process.eta_max):
                continue
            truth_match = [
                (math.hypot(t_eta - eta, float(_delta_phi(t_phi, phi))), t_pt, t_eta, t_phi, t_m)
                for t_pt, t_eta, t_phi, _, t_m in event_truth_jets
            ]
            truth_match = [entry for entry in truth_match if entry[0] < 0.5 * radius]
            if not truth_match:
                continue
            _, truth_pt, truth_eta, truth_phi, truth_mass = min(truth_match)
            parton = _parton_flavour(truth, eta, phi, radius)
            if process.parton_label:
                if parton == 0:
                    continue
                label = process.label_names[1] if parton != 21 else process.label_names[0]
            else:
                if process.resonance and not _matches_decay(process, truth, eta, phi):
                    continue
                label = process.label
            members = jets.members[
                jets.member_offsets[jet_index] : jets.member_offsets[jet_index + 1]
            ]
            particles = _particle_branches(candidates, members, eta, phi)
            n_particles = len(particles["px"])
            record = {
                "jet_pt": pt,
                "jet_eta": eta,
                "jet_phi": phi,
                "jet_energy": float(momentum[3]),
                "jet_mass": mass,
                "jet_nparticles": float(n_particles),
                "jet_truth_pt": truth_pt,
                "jet_truth_eta": truth_eta,
                "jet_truth_phi": truth_phi,
                "jet_truth_mass": truth_mass,
                "jet_truth_parton_id": parton,
                "event_id": truth.event_id,
            }
            record.update({name: name == label for name in process.label_names})
            table.add(record, particles)


SOFT_DROP_Z_CUT = 0.1
"""Soft drop with beta = 0 (modified mass-drop tagger), z_cut = 0.1, as in JetClass."""
MAX_SUBJETTINESS = 4


def _soft_drop_mass(sequence: fastjet.ClusterSequence) -> float:
    """Groomed mass: decluster the C/A jet along its harder branch until z > z_cut."""
    jet = sequence.exclusive_jets(1)[0]
    first, second = fastjet.PseudoJet(), fastjet.PseudoJet()
    while jet.has_parents(first, second):
        pt_first, pt_second = first.pt(), second.pt()
        if min(pt_first, pt_second) > SOFT_DROP_Z_CUT * (pt_first + pt_second):
            return jet.m()
        jet = first if pt_first >= pt_second else second
        first, second = fastjet.PseudoJet(), fastjet.PseudoJet()
    return jet.m()


def _subjettiness(
    sequence: fastjet.ClusterSequence,
    pt: np.ndarray,
    rapidity: np.ndarray,
    phi: np.ndarray,
    radius: float,
) -> list[float]:
    """Normalized N-subjettiness tau_N (beta = 1) with exclusive-kT axes, N = 1..4."""
    normalization = pt.sum() * radius
    taus = []
    for n in range(1, MAX_SUBJETTINESS + 1):
        if n > len(pt):
            taus.append(0.0)
            continue
        axes = sequence.exclusive_jets(n)
        axis_rapidity = np.array([axis.rap() for axis in axes])
        axis_phi = np.array([axis.phi() for axis in axes])
        distance = np.hypot(
            rapidity[:, None] - axis_rapidity[None, :],
            _delta_phi(phi[:, None], axis_phi[None, :]),
        )
        taus.append(float((pt * distance.min(axis=1)).sum() / max(normalization, 1e-12)))
    return taus


def substructure(table: JetTable, radius: float) -> dict[str, np.ndarray]:
    """Soft-drop mass and N-subjettiness tau_1..4 of every jet of ``table``.

    Soft drop: beta = 0, z_cut = 0.1, from a C/A reclustering. N-subjettiness: normalized
    measure with beta = 1 and R0 = the jet radius, exclusive-kT axes (without the one-pass axis
    minimization of FastJet contrib's default).

    Returns:
        ``jet_sdmass`` and ``jet_tau1`` ... ``jet_tau4``, each ``[n_jets]`` float32.
    """
    cambridge = fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0)
    kt = fastjet.JetDefinition(fastjet.kt_algorithm, 10.0)
    masses, taus = [], []
    for px, py, pz, energy in zip(
        table.particles.get("px", []),
        table.particles.get("py", []),
        table.particles.get("pz", []),
        table.particles.get("energy", []),
        strict=True,
    ):
        if len(px) == 0:
            masses.append(0.0)
            taus.append([0.0] * MAX_SUBJETTINESS)
            continue
        vectors = np.stack([px, py, pz, energy], axis=1).astype(np.float64)
        inputs = [fastjet.PseudoJet(*row) for row in vectors.tolist()]
        masses.append(_soft_drop_mass(fastjet.ClusterSequence(inputs, cambridge)))
        pt = np.hypot(vectors[:, 0], vectors[:, 1])
        rapidity = 0.5 * np.log(
            np.maximum(vectors[:, 3] + vectors[:, 2], 1e-12)
            / np.maximum(vectors[:, 3] - vectors[:, 2], 1e-12)
        )
        phi = np.arctan2(vectors[:, 1], vectors[:, 0])
        taus.append(_subjettiness(fastjet.ClusterSequence(inputs, kt), pt, rapidity, phi, radius))
    tau_array = np.asarray(taus, dtype=np.float32).reshape(-1, MAX_SUBJETTINESS)
    result = {"jet_sdmass": np.asarray(masses, dtype=np.float32)}
    for n in range(MAX_SUBJETTINESS):
        result[f"jet_tau{n + 1}"] = tau_array[:, n]
    return result
