"""PUPPI weights (pileup per particle identification), as Delphes' RunPUPPI computes them.

For every particle, alpha = log(sum of pT_j^2 / dR_ij^2) over the charged particles j of the
primary vertex within the cone of its |eta| region (0 when the sum is empty). The charged
particles of pileup vertices give the median and RMS of alpha per region (the pileup-like
reference); a particle's weight is the chi2 (1 degree of freedom) probability of
``(alpha - median) |alpha - median| / RMS^2``. Charged particles keep weight 1 (primary vertex)
or 0 (pileup vertex), as charged-hadron subtraction says; weights below the card's minimum are
set to 0, and so are neutrals whose weighted pT is below the region's threshold.

Source: Delphes 3.5.0 ``modules/RunPUPPI.cc`` and ``external/PUPPI/PuppiContainer.cc``,
``PuppiAlgo.cc`` with the settings of the JetClass-II card (metric 5, charged inputs, CHS
applied, no dz term, combination 0); the quirks of that code (the median skips past the last
alpha equal to 0, an alpha of 0 is replaced by the median) are kept.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from foundation.simulation.delphes_card import PuppiCard, PuppiRegion

NEUTRAL, PRIMARY_CHARGED, PILEUP_CHARGED = 0, 1, 2
"""Category of a PUPPI input (Delphes ``RecoObj::id``): a neutral candidate, a track of the
primary vertex, a track that charged-hadron subtraction gives to a pileup vertex."""

SAME_PARTICLE_DR2 = 1e-4
"""Pairs closer than this in dR^2 are not summed in alpha (the particle itself)."""
_PAIRS_PER_CHUNK = 2_000_000

_erf = np.vectorize(math.erf, otypes=[np.float64])


def chi2_cdf_1dof(value: np.ndarray) -> np.ndarray:
    """P(chi2 with 1 degree of freedom <= value), 0 for value <= 0.

    Shapes:
        - value, output: ``[P]``.
    """
    positive = np.maximum(value, 0.0)
    return np.where(value > 0, _erf(np.sqrt(positive / 2.0)), 0.0)


def chi2_quantile_1dof(probability: float) -> float:
    """The value below which a chi2 with 1 degree of freedom falls with ``probability``."""
    return statistics.NormalDist().inv_cdf((1.0 + probability) / 2.0) ** 2


def region_index(pt: np.ndarray, eta: np.ndarray, regions: tuple[PuppiRegion, ...]) -> np.ndarray:
    """The first region with ``abs_eta_min <= |eta| <= abs_eta_max`` and ``pT >= pt_min``.

    Shapes:
        - pt, eta: ``[P]``; output ``[P]`` int64, -1 for a particle in no region.
    """
    index = np.full(len(pt), -1, dtype=np.int64)
    absolute = np.abs(eta)
    for position in range(len(regions) - 1, -1, -1):
        region = regions[position]
        inside = (
            (absolute >= region.abs_eta_min)
            & (absolute <= region.abs_eta_max)
            & (pt >= region.pt_min)
        )
        index[inside] = position
    return index


def alpha(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    cone: np.ndarray,
    reference: np.ndarray,
) -> np.ndarray:
    """log(sum over reference particles j within ``cone`` of pT_j^2 / dR^2), 0 for no sum.

    Args:
        pt, eta, phi: every particle.
        cone: the cone radius of each particle (its region's); NaN = not computed (0 out).
        reference: which particles are summed (the primary vertex's charged particles).

    Shapes:
        - pt, eta, phi, cone, reference: ``[P]``; output ``[P]`` float64.
    """
    result = np.zeros(len(pt))
    rows = np.flatnonzero(np.isfinite(cone))
    columns = np.flatnonzero(reference)
    if len(rows) == 0 or len(columns) == 0:
        return result
    ref_eta, ref_phi, ref_pt2 = eta[columns], phi[columns], pt[columns] ** 2
    step = max(1, _PAIRS_PER_CHUNK // len(columns))
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        delta_phi = np.abs(phi[chunk, None] - ref_phi[None, :])
        delta_phi = np.minimum(delta_phi, 2 * math.pi - delta_phi)
        dr2 = (eta[chunk, None] - ref_eta[None, :]) ** 2 + delta_phi**2
        inside = (dr2 <= cone[chunk, None] ** 2) & (dr2 >= SAME_PARTICLE_DR2)
        total = np.where(inside, ref_pt2[None, :] / np.where(inside, dr2, 1.0), 0.0).sum(axis=1)
        with np.errstate(divide="ignore"):
            result[chunk] = np.where(total > 0, np.log(np.where(total > 0, total, 1.0)), 0.0)
    return result


def median_and_rms(
    pileup_alpha: np.ndarray, primary_alpha: np.ndarray, region: PuppiRegion
) -> tuple[float, float] | None:
    """Median and RMS of the pileup tracks' alpha in one region (None without such tracks).

    Args:
        pileup_alpha: alpha of the region's pileup tracks with pT >= ``rms_pt_min``.
        primary_alpha: alpha of its primary-vertex tracks with pT >= ``rms_pt_min`` (for the
            low-pileup correction).

    Shapes:
        - pileup_alpha: ``[N]``; primary_alpha: ``[M]``.
    """
    count = len(pileup_alpha)
    if count == 0:
        return None
    values = np.sort(pileup_alpha)
    zeros = np.flatnonzero(values == 0)
    first = int(zeros[-1]) if len(zeros) else 0
    median = float(values[first + int((count - first) * 0.5)])
    used = values[values != 0]
    if region.low_pu_correction:
        used = used[used <= median]
    variance = float(np.mean((used - median) ** 2)) if len(used) else 0.0
    rms = math.sqrt(variance if variance != 0 else 1e-5) * region.rms_scale
    if region.low_pu_correction:
        below = int(np.count_nonzero(primary_alpha <= median))
        adjust = below / (below + 0.5 * count)
        if adjust > 0:
            shift = math.sqrt(chi2_quantile_1dof(adjust) * rms)
            median -= shift
            rms -= shift
    return median, rms


def vertex_count(card: PuppiCard, interactions: int, category: np.ndarray) -> int:
    """NPV of the neutral pT threshold: int(vertex_efficiency x (1 + interactions)) when any
    pileup track is present, else 1 (at least 1).

    Shapes:
        - category: ``[P]``.
    """
    if not np.any(category == PILEUP_CHARGED):
        return 1
    return max(1, int(card.vertex_efficiency * (1 + interactions)))


def puppi_weights(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    category: np.ndarray,
    card: PuppiCard,
    interactions: int,
) -> np.ndarray:
    """The PUPPI weight of every input (tracks other than leptons, and neutral candidates).

    Args:
        pt, eta, phi: the inputs' momenta.
        category: :data:`NEUTRAL`, :data:`PRIMARY_CHARGED` or :data:`PILEUP_CHARGED`.
        card: the PUPPI settings.
        interactions: the number of pileup interactions overlaid on this event.

    Returns:
        ``[P]`` weights in [0, 1]: 1 or 0 for tracks, the PUPPI weight for neutrals (1 for a
        particle in no region or in a region without pileup tracks, before the cuts).

    Shapes:
        - pt, eta, phi, category: ``[P]``; output ``[P]`` float64.
    """
    region = region_index(pt, eta, card.regions)
    cones = np.array([entry.cone for entry in card.regions])
    cone = np.where(region >= 0, cones[np.maximum(region, 0)], np.nan)
    values = alpha(pt, eta, phi, cone, category == PRIMARY_CHARGED)
    weight = np.ones(len(pt))
    npv = vertex_count(card, interactions, category)
    neutral = category == NEUTRAL
    for position, settings in enumerate(card.regions):
        member = region == position
        enough = member & (pt >= settings.rms_pt_min)
        stats = median_and_rms(
            values[enough & (category == PILEUP_CHARGED)],
            values[enough & (category == PRIMARY_CHARGED)],
            settings,
        )
        if stats is not None:
            median, rms = stats
            value = np.where(values[member] == 0, median, values[member])
            difference = value - median
            weight[member] = chi2_cdf_1dof(difference * np.abs(difference) / rms**2)
        weight[member & (weight < card.min_weight)] = 0.0
        threshold = settings.neutral_pt_min + npv * settings.neutral_pt_slope
        weight[member & neutral & (weight * pt < threshold)] = 0.0
    # Charged-hadron subtraction decides for tracks, in every region and outside them.
    weight[category == PRIMARY_CHARGED] = 1.0
    weight[category == PILEUP_CHARGED] = 0.0
    return weight
