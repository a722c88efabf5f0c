"""Pileup mitigation on an event's particle-flow candidates: charged-hadron subtraction (CHS)
and PUPPI, as the JetClass-II Delphes card chains them.

Order (delphes_card_CMS_JetClassII.tcl): TrackPileUpSubtractor flags the tracks of pileup
vertices farther than the z resolution from the primary vertex; RunPUPPI weights the other
tracks (1), the flagged ones (0) and the neutral candidates (PUPPI weight) - electrons and muons
bypass it and are only subject to the flag; candidates of weight 0 are dropped and the others'
four-momenta are scaled by their weight. The FatJets of JetClass-II are clustered from this
collection (``RunPUPPI/PuppiParticles``, the ``JetPUPPIAK8`` branch its makeNtuples.C reads).
"""

from __future__ import annotations

import numpy as np

from foundation.simulation.delphes_card import DelphesPileupCard
from foundation.simulation.detector import ARRAYS, ELECTRON, MUON, Candidates
from foundation.simulation.puppi import NEUTRAL, PILEUP_CHARGED, PRIMARY_CHARGED, puppi_weights


def _with(candidates: Candidates, **arrays: np.ndarray) -> Candidates:
    """A copy of ``candidates`` with some arrays replaced (every array keeps its length)."""
    fields = {name: arrays.get(name, getattr(candidates, name)) for name in ARRAYS}
    return Candidates(**fields, conventions=candidates.conventions)


def select(candidates: Candidates, keep: np.ndarray) -> Candidates:
    """The candidates where ``keep`` is True.

    Shapes:
        - keep: ``[C]`` bool.
    """
    return _with(candidates, **{name: getattr(candidates, name)[keep] for name in ARRAYS})


def to_primary_frame(candidates: Candidates, primary_z: float) -> Candidates:
    """Tracks' ``dz`` and production z relative to the primary vertex at ``primary_z`` (mm).

    The JetClass-II ntupliser writes ``part_dzval = DZ - z(primary vertex)`` for tracks
    (makeNtuples.C l.226); the production point moves with it so that truth labels measure
    displacement from the primary vertex. Neutral candidates keep ``dz`` 0 and no vertex.

    Shapes:
        every array of ``candidates``: ``[C]``.
    """
    if primary_z == 0.0:
        return candidates
    charged = candidates.charge != 0
    return _with(
        candidates,
        dz=np.where(charged & (candidates.dz != 0), candidates.dz - primary_z, candidates.dz),
        vertex_z=np.where(charged, candidates.vertex_z - primary_z, candidates.vertex_z),
    )


def pileup_tracks(candidates: Candidates, z_resolution: float) -> np.ndarray:
    """Tracks that charged-hadron subtraction removes (Delphes TrackPileUpSubtractor).

    A track is removed when it comes from a pileup interaction and its production point is
    more than ``z_resolution`` (mm) from the primary vertex along the beam (production z
    relative to the primary vertex, see :func:`to_primary_frame`).

    Shapes:
        - output: ``[C]`` bool.
    """
    return (
        (candidates.charge != 0)
        & (candidates.source > 0)
        & (np.abs(candidates.vertex_z) > z_resolution)
    )


def mitigate(candidates: Candidates, card: DelphesPileupCard, interactions: int) -> Candidates:
    """Apply the card's charged-hadron subtraction and PUPPI to one event's candidates.

    Args:
        candidates: the event's candidates, in the primary vertex's frame.
        card: the pileup settings (without ``charged_subtraction`` nothing is removed).
        interactions: the number of pileup interactions overlaid on the event.

    Returns:
        The kept candidates, PUPPI-weighted neutrals with their four-momenta scaled.

    Shapes:
        every array of ``candidates``: ``[C]``; of the output: ``[C']``, ``C' <= C``.
    """
    if card.charged_subtraction is None:
        return candidates
    flagged = pileup_tracks(candidates, card.charged_subtraction.z_resolution)
    if card.puppi is None:
        return select(candidates, ~flagged)
    charged = candidates.charge != 0
    lepton = charged & np.isin(candidates.kind, (ELECTRON, MUON))
    inputs = ~lepton
    category = np.where(charged, np.where(flagged, PILEUP_CHARGED, PRIMARY_CHARGED), NEUTRAL)
    pt = np.hypot(candidates.px, candidates.py)
    eta = np.arcsinh(candidates.pz / np.maximum(pt, 1e-12))
    phi = np.arctan2(candidates.py, candidates.px)
    weight = np.where(flagged, 0.0, 1.0)
    weight[inputs] = puppi_weights(
        pt[inputs], eta[inputs], phi[inputs], category[inputs], card.puppi, interactions
    )
    weighted = _with(
        candidates,
        px=candidates.px * weight,
        py=candidates.py * weight,
        pz=candidates.pz * weight,
        energy=candidates.energy * weight,
    )
    return select(weighted, weight > 0)
