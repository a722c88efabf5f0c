"""Vectorized kinematics on flat (ragged) particle arrays: pT, η, φ and jets summed from them."""

from __future__ import annotations

import numpy as np

_TINY = 1e-12


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Wrap azimuthal differences into ``[-π, π)``.

    Shapes:
        - phi: any shape; output: the same shape.
    """
    return np.remainder(phi + np.pi, 2 * np.pi) - np.pi


def pt_eta_phi(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, pseudorapidity and azimuth of momenta.

    A momentum along the beam (pT = 0) gets a large finite η of the sign of ``pz`` rather than
    ±inf, so that no NaN or inf reaches the features.

    Shapes:
        - px, py, pz: ``[P]`` (any common shape); outputs: the same shape.
    """
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, _TINY))
    phi = np.arctan2(py, px)
    return pt, eta, phi


def jet_index(counts: np.ndarray) -> np.ndarray:
    """The jet index of every particle of a flat ragged array.

    Shapes:
        - counts: ``[n_jets]``; output: ``[sum(counts)]`` int64.
    """
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def jets_from_particles(
    counts: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    energy: np.ndarray,
) -> dict[str, np.ndarray]:
    """Sum each jet's particles into a jet 4-vector (E-scheme) and return its kinematics.

    A jet without particles gets zeros everywhere.

    Args:
        counts: particles per jet.
        px, py, pz, energy: flat particle 4-vectors in GeV, jet after jet.

    Returns:
        ``jet_pt``, ``jet_eta``, ``jet_phi``, ``jet_energy``, ``jet_mass`` (float32) and
        ``jet_nparticles`` (int64).

    Shapes:
        - counts: ``[n_jets]``; px, py, pz, energy: ``[sum(counts)]``; each output: ``[n_jets]``.
    """
    index = jet_index(counts)
    size = len(counts)
    sums = [
        np.bincount(index, weights=component, minlength=size) for component in (px, py, pz, energy)
    ]
    jet_px, jet_py, jet_pz, jet_e = sums
    pt, eta, phi = pt_eta_phi(jet_px, jet_py, jet_pz)
    mass2 = jet_e * jet_e - (jet_px * jet_px + jet_py * jet_py + jet_pz * jet_pz)
    return {
        "jet_pt": pt.astype(np.float32),
        "jet_eta": eta.astype(np.float32),
        "jet_phi": phi.astype(np.float32),
        "jet_energy": jet_e.astype(np.float32),
        "jet_mass": np.sqrt(np.maximum(mass2, 0.0)).astype(np.float32),
        "jet_nparticles": np.asarray(counts, dtype=np.int64).copy(),
    }


def jet_mass(pt: np.ndarray, eta: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Invariant mass of jets given as (pT, η, E); negative m² from rounding gives 0.

    Shapes:
        - pt, eta, energy: ``[n_jets]``; output: ``[n_jets]`` float32.
    """
    pt = np.asarray(pt, dtype=np.float64)
    momentum = pt * np.cosh(np.asarray(eta, dtype=np.float64))
    energy = np.asarray(energy, dtype=np.float64)
    return np.sqrt(np.maximum(energy * energy - momentum * momentum, 0.0)).astype(np.float32)
