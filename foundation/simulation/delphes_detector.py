"""The ``delphes`` detector model: Delphes' modules as the JetClass card chains them, in numpy.

Order (delphes_card.tcl ExecutionPath): ParticlePropagator -> tracking Efficiency per species ->
MomentumSmearing -> TrackSmearing -> ECal -> HCal (SimpleCalorimeter with particle flow). See
``cards/jetclass.yaml`` for what each step does and where each number comes from.
"""

from __future__ import annotations

import math

import numpy as np

from foundation.simulation.delphes_card import DelphesCard, TowerCalorimeterCard
from foundation.simulation.detector import (
    CHARGED_HADRON,
    ELECTRON,
    MUON,
    NEUTRAL_HADRON,
    OTHER_CHARGED,
    PHOTON,
    Candidates,
    GenParticles,
)
from foundation.simulation.propagation import propagate


def _lognormal(mean: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Delphes' LogNormal(mean, sigma): log-normal with that mean and width, 0 for mean <= 0.

    Shapes:
        - mean, sigma, output: ``[T]``.
    """
    positive = mean > 0
    safe = np.where(positive, mean, 1.0)
    b = np.sqrt(np.log1p((sigma / safe) ** 2))
    a = np.log(safe) - 0.5 * b * b
    return np.where(positive, np.exp(a + b * rng.standard_normal(len(mean))), 0.0)


class TowerFlow:
    """One calorimeter pass: towers from deposits, then the particle-flow split per tower.

    Attributes (after :meth:`run`), for the T towers hit:
        neutral_energy: ``[T]`` energy of the neutral candidate (0 when none is made);
        eta, phi: ``[T]`` where that candidate sits; leader: ``[T]`` index into the deposits of
        the most energetic one; track_scale: ``[K]`` factor for each track given to :meth:`run`
        (1, a rescale to the tower energy, or 0 for a track lost outside every tower).
    """

    def __init__(self, calo: TowerCalorimeterCard, rng: np.random.Generator) -> None:
        self.calo = calo
        self.rng = rng
        self.edges = np.asarray(calo.eta_edges)
        self.phi_bins = np.asarray(calo.phi_bins)
        self.max_phi = int(self.phi_bins.max())

    def tower_index(self, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Tower key ``eta_bin * max_phi + phi_bin`` of each point, -1 outside the towers.

        Bins are ``lo < x <= hi`` in eta and in phi (Delphes' lower_bound on the edges).

        Shapes:
            - eta, phi, output: ``[P]``.
        """
        upper = np.searchsorted(self.edges, eta, side="left")
        valid = (upper >= 1) & (upper < len(self.edges))
        eta_bin = np.clip(upper - 1, 0, len(self.phi_bins) - 1)
        count = self.phi_bins[eta_bin]
        width = 2 * math.pi / count
        phi_bin = np.clip(np.ceil((phi + math.pi) / width).astype(np.int64) - 1, 0, count - 1)
        return np.where(valid, eta_bin * self.max_phi + phi_bin, -1)

    def run(
        self,
        deposit_key: np.ndarray,
        deposit_energy: np.ndarray,
        track_key: np.ndarray,
        track_energy: np.ndarray,
    ) -> None:
        """Build towers and split each into tracks and a neutral excess (Delphes FinalizeTower).

        Args:
            deposit_key, deposit_energy: tower key and deposited energy (E x fraction, > 0) of
                every particle seen by this calorimeter.
            track_key, track_energy: the same for the tracks with a non-zero fraction here.

        Shapes:
            - deposit_*: ``[D]``; track_*: ``[K]``.
        """
        calo = self.calo
        keys, inverse = np.unique(np.concatenate([deposit_key, track_key]), return_inverse=True)
        inverse = inverse.ravel()
        deposit_tower, track_tower = inverse[: len(deposit_key)], inverse[len(deposit_key) :]
        count = len(keys)
        tower_energy = np.bincount(deposit_tower, weights=deposit_energy, minlength=count)
        tracked_energy = np.bincount(track_tower, weights=track_energy, minlength=count)

        eta_bin, phi_bin = np.divmod(keys, self.max_phi)
        low, high = self.edges[eta_bin], self.edges[eta_bin + 1]
        width = 2 * math.pi / self.phi_bins[eta_bin]
        centre = 0.5 * (low + high)
        sigma = calo.sigma(tower_energy, centre)
        measured = _lognormal(tower_energy, sigma, self.rng)
        sigma = calo.sigma(measured, centre)
        measured = np.where(
            (measured < calo.energy_min) | (measured < calo.energy_significance_min * sigma),
            0.0,
            measured,
        )
        if calo.smear_tower_center:
            self.eta = self.rng.uniform(low, high)
            self.phi = -math.pi + width * (phi_bin + self.rng.random(count))
        else:
            self.eta = centre
            self.phi = -math.pi + width * (phi_bin + 0.5)
        neutral = np.maximum(measured - tracked_energy, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            significant = (neutral > calo.energy_min) & (
                neutral / sigma > calo.energy_significance_min
            )
            # Track resolution is 0 after TrackSmearing, so the best estimate is the calorimeter's.
            rescale = np.where(significant | (tracked_energy <= 0), 1.0, measured / tracked_energy)
        self.neutral_energy = np.where(significant, neutral, 0.0)
        order = np.lexsort((-deposit_energy, deposit_tower))
        first = np.searchsorted(deposit_tower[order], np.arange(count))
        self.leader = order[np.minimum(first, max(len(order) - 1, 0))]
        self.has_deposit = np.bincount(deposit_tower, minlength=count) > 0
        self.track_scale = rescale[track_tower]


class DelphesDetector:
    """Applies a :class:`DelphesCard` to generator particles with a seeded random generator."""

    def __init__(self, card: DelphesCard, rng: np.random.Generator) -> None:
        self.card = card
        self.rng = rng
        self.ecal = TowerFlow(card.ecal, rng)
        self.hcal = TowerFlow(card.hcal, rng)
        # |eta| beyond which no particle is seen: callers may drop such particles early.
        self.acceptance = float(
            max(np.abs(card.ecal.eta_edges).max(), np.abs(card.hcal.eta_edges).max())
        )

    def reconstruct(self, particles: GenParticles) -> Candidates:
        """Turn one event's stable visible particles into particle-flow candidates."""
        card = self.card
        field = card.propagation
        propagated = propagate(
            particles.px,
            particles.py,
            particles.pz,
            particles.vx,
            particles.vy,
            particles.vz,
            particles.charge,
            field.radius,
            field.half_length,
            field.bz,
        )
        seen = propagated.inside
        if not seen.all():
            particles = particles.select(seen)
            for name in ("eta", "phi", "d0", "dz", "phi_d"):
                setattr(propagated, name, getattr(propagated, name)[seen])
        pt = np.hypot(particles.px, particles.py)
        absolute_id = np.abs(particles.pdg_id)

        # Tracking efficiency per species at (pT, |eta| of the position on the cylinder).
        charged = particles.charge != 0
        tracking = card.tracking
        efficiency = np.zeros(len(pt))
        for species, chosen in (
            (tracking.electron, charged & (absolute_id == 11)),
            (tracking.muon, charged & (absolute_id == 13)),
            (tracking.charged_hadron, charged & (absolute_id != 11) & (absolute_id != 13)),
        ):
            if chosen.any():
                efficiency[chosen] = species.efficiency.lookup(pt[chosen], propagated.eta[chosen])
        tracked = charged & (self.rng.random(len(pt)) < efficiency)
        rows = np.flatnonzero(tracked)

        momentum = np.sqrt(particles.px**2 + particles.py**2 + particles.pz**2)
        mass = np.sqrt(np.maximum(particles.energy**2 - momentum**2, 0.0))
        # MomentumSmearing: log-normal pT with the species' resolution at the cylinder's |eta|.
        # TrackSmearing looks its d0/dz resolutions up at this smeared pT, then rebuilds the
        # track from the propagator's true |p| (unless the card keeps the smearing).
        relative = np.zeros(len(rows))
        for species, chosen in (
            (tracking.electron, absolute_id[rows] == 11),
            (tracking.muon, absolute_id[rows] == 13),
            (tracking.charged_hadron, (absolute_id[rows] != 11) & (absolute_id[rows] != 13)),
        ):
            relative[chosen] = species.momentum_resolution.relative(
                pt[rows][chosen], propagated.eta[rows][chosen]
            )
        smeared_pt = _lognormal(pt[rows], np.minimum(relative, 1.0) * pt[rows], self.rng)
        track_pt = smeared_pt if tracking.keep_momentum_smearing else pt[rows]
        momentum_eta = np.arcsinh(particles.pz[rows] / np.maximum(pt[rows], 1e-12))
        impact = card.impact_parameters
        d0_error = impact.d0_error(smeared_pt, momentum_eta)
        dz_error = impact.dz_error(smeared_pt, momentum_eta)
        d0 = propagated.d0[rows] + d0_error * self.rng.standard_normal(len(rows))
        dz = propagated.dz[rows] + dz_error * self.rng.standard_normal(len(rows))

        # Calorimeters with particle flow: ECal, then HCal on the ECal's eflow tracks.
        track_momentum = track_pt * np.cosh(momentum_eta)
        scale = np.ones(len(rows))
        neutrals = []
        passes = ((self.ecal, card.ecal, PHOTON), (self.hcal, card.hcal, NEUTRAL_HADRON))
        for flow, calo, kind in passes:
            fractions = calo.fractions(particles.pdg_id)
            deposits = np.flatnonzero(fractions > 0)
            key = np.full(len(fractions), -1, dtype=np.int64)
            key[deposits] = flow.tower_index(propagated.eta[deposits], propagated.phi[deposits])
            deposits = deposits[key[deposits] >= 0]
            track_fraction = fractions[rows]
            in_calo = (scale > 0) & (track_fraction > 0)
            lost = in_calo & (key[rows] < 0)
            used = in_calo & ~lost
            flow.run(
                key[deposits],
                particles.energy[deposits] * fractions[deposits],
                key[rows][used],
                np.sqrt((track_momentum * scale) ** 2 + mass[rows] ** 2)[used]
                * track_fraction[used],
            )
            scale[lost] = 0.0
            scale[used] *= flow.track_scale
            neutrals.append(self._neutral_candidates(flow, particles, deposits, kind))

        kept = scale > 0
        final_pt = (track_pt * scale)[kept]
        track_rows = rows[kept]
        phi = propagated.phi_d[track_rows]
        eta = momentum_eta[kept]
        track_ids = absolute_id[track_rows]
        kind = np.full(len(track_rows), OTHER_CHARGED, dtype=np.int8)
        kind[np.isin(track_ids, card.identification.charged_hadron_pdg_ids)] = CHARGED_HADRON
        kind[track_ids == 11] = ELECTRON
        kind[track_ids == 13] = MUON
        px, py, pz = final_pt * np.cos(phi), final_pt * np.sin(phi), final_pt * np.sinh(eta)
        tracks = Candidates(
            px=px,
            py=py,
            pz=pz,
            energy=np.sqrt(px**2 + py**2 + pz**2 + mass[track_rows] ** 2),
            charge=np.sign(particles.charge[track_rows]).astype(np.float32),
            kind=kind,
            d0=d0[kept],
            d0_error=d0_error[kept],
            dz=dz[kept],
            dz_error=dz_error[kept],
            origin=particles.origin[track_rows],
            source=particles.source[track_rows],
            vertex_x=particles.vx[track_rows],
            vertex_y=particles.vy[track_rows],
            vertex_z=particles.vz[track_rows],
        )
        return Candidates.concatenate([tracks, *neutrals], card.output)

    @staticmethod
    def _neutral_candidates(
        flow: TowerFlow, particles: GenParticles, deposits: np.ndarray, kind: int
    ) -> Candidates:
        """The towers of ``flow`` with a significant neutral excess, as massless candidates."""
        made = flow.neutral_energy > 0
        energy = flow.neutral_energy[made]
        eta, phi = flow.eta[made], flow.phi[made]
        leader = deposits[flow.leader[made]]
        return Candidates.neutral(
            energy, eta, phi, kind, particles.origin[leader], particles.source[leader]
        )
