"""The parametrized detector: generator particles in, particle-flow-style candidates out.

Charged particles inside the tracker acceptance are found with a pT-dependent efficiency and
become tracks (charged hadron, electron or muon candidates) with smeared momentum and impact
parameters. Every other visible particle deposits its energy in calorimeter cells (photons and
electrons in the ECAL, hadrons in the HCAL); each cell above threshold becomes a photon or
neutral-hadron candidate at the cell centre with the smeared cell energy. Track-cluster linking
is taken as ideal: the calorimeter deposits of tracked particles are removed, as particle flow
does. Muons leave no calorimeter deposit; neutrinos are invisible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from foundation.simulation.card import AnyCard, CalorimeterCard
from foundation.simulation.delphes_card import DelphesCard, OutputConventions

PION_MASS = 0.13957
ELECTRON_MASS = 0.000511
MUON_MASS = 0.10566


@dataclass
class GenParticles:
    """Stable visible generator particles of one event.

    Shapes:
        every array ``[P]``: momentum (GeV), production vertex (mm), charge, PDG id, origin class,
        and ``source`` (0 for the hard-scatter interaction, ``k >= 1`` for pileup interaction k).
    """

    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    energy: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    charge: np.ndarray
    pdg_id: np.ndarray
    origin: np.ndarray
    source: np.ndarray

    def select(self, keep: np.ndarray) -> GenParticles:
        """The particles where ``keep`` is True (a boolean or index array)."""
        return GenParticles(
            **{name: getattr(self, name)[keep] for name in self.__dataclass_fields__}
        )


@dataclass
class Candidates:
    """Particle-flow candidates of one event.

    Shapes:
        every array ``[C]``. ``kind``: 0 charged hadron, 1 electron, 2 muon, 3 photon, 4 neutral
        hadron, 5 another charged particle (a track with no identity flag). Impact parameters
        (mm) and their errors are 0 for neutral candidates. ``vertex_x``
        (y, z) is the true production vertex of a track's particle (NaN for neutral candidates);
        ``origin`` and ``source`` come from the particle (for a cell, from its most energetic one).
    """

    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    energy: np.ndarray
    charge: np.ndarray
    kind: np.ndarray
    d0: np.ndarray
    d0_error: np.ndarray
    dz: np.ndarray
    dz_error: np.ndarray
    origin: np.ndarray
    source: np.ndarray
    vertex_x: np.ndarray
    vertex_y: np.ndarray
    vertex_z: np.ndarray
    conventions: OutputConventions = field(default_factory=OutputConventions)
    """How jets of these candidates are written (from the card; not a per-candidate array)."""

    def __len__(self) -> int:
        return len(self.px)

    @classmethod
    def neutral(
        cls,
        energy: np.ndarray,
        eta: np.ndarray,
        phi: np.ndarray,
        kind: int,
        origin: np.ndarray,
        source: np.ndarray,
    ) -> Candidates:
        """Massless neutral candidates (photons or neutral hadrons) of calorimeter deposits.

        Shapes:
            - energy, eta, phi, origin, source: ``[C]``
        """
        pt = energy / np.cosh(eta)
        count = len(energy)
        zeros = np.zeros(count)
        nan = np.full(count, np.nan)
        return cls(
            px=pt * np.cos(phi),
            py=pt * np.sin(phi),
            pz=pt * np.sinh(eta),
            energy=energy,
            charge=np.zeros(count, dtype=np.float32),
            kind=np.full(count, kind, dtype=np.int8),
            d0=zeros,
            d0_error=zeros,
            dz=zeros,
            dz_error=zeros,
            origin=origin,
            source=source,
            vertex_x=nan,
            vertex_y=nan,
            vertex_z=nan,
        )

    @classmethod
    def concatenate(
        cls, parts: list[Candidates], conventions: OutputConventions | None = None
    ) -> Candidates:
        """The candidates of ``parts`` one after the other, with the given conventions."""
        arrays = {name: np.concatenate([getattr(part, name) for part in parts]) for name in ARRAYS}
        return cls(**arrays, conventions=conventions or OutputConventions())


ARRAYS = tuple(name for name in Candidates.__dataclass_fields__ if name != "conventions")
"""The per-candidate array fields of :class:`Candidates`."""

CHARGED_HADRON, ELECTRON, MUON, PHOTON, NEUTRAL_HADRON, OTHER_CHARGED = range(6)


def _pseudorapidity(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> np.ndarray:
    pt = np.hypot(px, py)
    return np.arcsinh(pz / np.maximum(pt, 1e-12))


def _resolution(value: np.ndarray, stochastic: float, constant: float, noise: float) -> np.ndarray:
    """Relative energy resolution ``a/sqrt(E) (+) b (+) c/E`` (added in quadrature)."""
    energy = np.maximum(value, 1e-6)
    return np.sqrt((stochastic**2) / energy + constant**2 + (noise / energy) ** 2)


class Detector:
    """Applies a detector card to generator particles with a seeded random generator.

    A ``parametric`` card (:class:`DetectorCard`, the default card) is applied here; a
    ``delphes`` card (:class:`DelphesCard`) by :class:`~foundation.simulation.delphes_detector.
    DelphesDetector`, to which this class hands every event.
    """

    def __init__(self, card: AnyCard, rng: np.random.Generator) -> None:
        self.card = card
        self.rng = rng
        self._delegate = None
        if isinstance(card, DelphesCard):
            from foundation.simulation.delphes_detector import DelphesDetector

            self._delegate = DelphesDetector(card, rng)
            self.acceptance = self._delegate.acceptance
        else:
            # |eta| beyond which no particle is seen: callers may drop such particles early.
            self.acceptance = max(card.tracker.eta_max, card.ecal.eta_max, card.hcal.eta_max)

    def reconstruct(self, particles: GenParticles) -> Candidates:
        """Turn one event's stable visible particles into candidates (tracks, then cells)."""
        if self._delegate is not None:
            return self._delegate.reconstruct(particles)
        tracker = self.card.tracker
        pt = np.hypot(particles.px, particles.py)
        eta = _pseudorapidity(particles.px, particles.py, particles.pz)
        charged = particles.charge != 0
        in_tracker = charged & (np.abs(eta) < tracker.eta_max) & (pt >= tracker.pt_min)
        efficiency = np.where(
            pt >= tracker.efficiency_pt_threshold,
            tracker.efficiency_high_pt,
            tracker.efficiency_low_pt,
        )
        tracked = in_tracker & (self.rng.random(len(pt)) < efficiency)
        tracks = self._tracks(particles.select(tracked))
        calo_particles = particles.select(~tracked & (np.abs(particles.pdg_id) != 13))
        electromagnetic = np.isin(np.abs(calo_particles.pdg_id), (11, 22))
        photons = self._cells(calo_particles.select(electromagnetic), self.card.ecal, PHOTON)
        hadrons = self._cells(
            calo_particles.select(~electromagnetic), self.card.hcal, NEUTRAL_HADRON
        )
        return Candidates.concatenate([tracks, photons, hadrons])

    def _tracks(self, particles: GenParticles) -> Candidates:
        tracker = self.card.tracker
        identification = self.card.identification
        count = len(particles.px)
        pt = np.hypot(particles.px, particles.py)
        sigma_pt = np.hypot(tracker.pt_resolution_constant, tracker.pt_resolution_slope * pt)
        scale = np.clip(1.0 + sigma_pt * self.rng.standard_normal(count), 0.05, None)
        px, py, pz = particles.px * scale, particles.py * scale, particles.pz * scale

        absolute_id = np.abs(particles.pdg_id)
        kind = np.full(count, CHARGED_HADRON, dtype=np.int8)
        draw = self.rng.random(count)
        kind[(absolute_id == 11) & (draw < identification.electron_efficiency)] = ELECTRON
        kind[(absolute_id == 13) & (draw < identification.muon_efficiency)] = MUON
        mass = np.select([kind == ELECTRON, kind == MUON], [ELECTRON_MASS, MUON_MASS], PION_MASS)
        energy = np.sqrt(px * px + py * py + pz * pz + mass * mass)

        # Straight-line impact parameters w.r.t. the nominal interaction point (0, 0, 0).
        true_pt = np.maximum(pt, 1e-12)
        d0_true = (particles.vx * particles.py - particles.vy * particles.px) / true_pt
        dz_true = particles.vz - (
            (particles.vx * particles.px + particles.vy * particles.py) * particles.pz / true_pt**2
        )
        d0_error = np.hypot(tracker.d0_resolution_constant, tracker.d0_resolution_pt / true_pt)
        dz_error = np.hypot(tracker.dz_resolution_constant, tracker.dz_resolution_pt / true_pt)
        d0 = d0_true + d0_error * self.rng.standard_normal(count)
        dz = dz_true + dz_error * self.rng.standard_normal(count)
        return Candidates(
            px=px,
            py=py,
            pz=pz,
            energy=energy,
            charge=np.sign(particles.charge).astype(np.float32),
            kind=kind,
            d0=d0,
            d0_error=d0_error,
            dz=dz,
            dz_error=dz_error,
            origin=particles.origin,
            source=particles.source,
            vertex_x=particles.vx,
            vertex_y=particles.vy,
            vertex_z=particles.vz,
        )

    def _cells(self, particles: GenParticles, calo: CalorimeterCard, kind: int) -> Candidates:
        eta = _pseudorapidity(particles.px, particles.py, particles.pz)
        inside = np.abs(eta) < calo.eta_max
        if not inside.all():
            particles, eta = particles.select(inside), eta[inside]
        phi_cells = max(1, round(2 * math.pi / calo.cell_phi))
        phi_size = 2 * math.pi / phi_cells
        phi = np.arctan2(particles.py, particles.px)
        ieta = np.floor(eta / calo.cell_eta).astype(np.int64)
        iphi = np.floor((phi + math.pi) / phi_size).astype(np.int64) % phi_cells
        keys, cell = np.unique(ieta * phi_cells + iphi, return_inverse=True)
        cell_energy = np.bincount(cell, weights=particles.energy, minlength=len(keys))
        # The most energetic particle of each cell gives the cell's truth.
        order = np.lexsort((-particles.energy, cell))
        leader = order[np.searchsorted(cell[order], np.arange(len(keys)))]

        sigma = _resolution(cell_energy, calo.stochastic, calo.constant, calo.noise)
        measured = cell_energy * (1.0 + sigma * self.rng.standard_normal(len(keys)))
        above = measured > calo.threshold
        keys, measured, leader = keys[above], measured[above], leader[above]
        cell_eta = (np.floor_divide(keys, phi_cells) + 0.5) * calo.cell_eta
        cell_phi = (np.mod(keys, phi_cells) + 0.5) * phi_size - math.pi
        return Candidates.neutral(
            measured, cell_eta, cell_phi, kind, particles.origin[leader], particles.source[leader]
        )
