"""ParT pair features from two particles' 4-vectors: ln Δ, ln kT, ln z, ln m²."""

from __future__ import annotations

import math

import torch

_EPS = 1e-8


def _pt_rapidity_phi(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transverse momentum, rapidity and azimuth of ``[..., 4]`` (px, py, pz, E) vectors."""
    px, py, pz, energy = vectors.unbind(dim=-1)
    pt = torch.sqrt(px * px + py * py)
    # Rapidity, guarded against E <= |pz| (massless rounding) and padding (all zeros).
    plus = (energy + pz).clamp(min=_EPS)
    minus = (energy - pz).clamp(min=_EPS)
    rapidity = 0.5 * torch.log(plus / minus)
    phi = torch.atan2(py, px)
    return pt, rapidity, phi


def features_of_pairs(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The 4 ParT pair features of two broadcastable sets of 4-vectors, pair by pair.

    Args:
        first: (px, py, pz, E) in GeV of the first particle of each pair.
        second: the same for the second particle.

    Returns:
        (ln Δ, ln kT, ln z, ln m²), each logarithm's argument clamped at 1e-8.

    Shapes:
        - first: ``[..., 4]``; second: ``[..., 4]`` (broadcastable with ``first``)
        - output: ``[..., 4]`` (the broadcast shape)
    """
    pt_a, rapidity_a, phi_a = _pt_rapidity_phi(first)
    pt_b, rapidity_b, phi_b = _pt_rapidity_phi(second)
    delta_y = rapidity_a - rapidity_b
    delta_phi = torch.remainder(phi_a - phi_b + math.pi, 2 * math.pi) - math.pi
    delta = torch.sqrt(delta_y * delta_y + delta_phi * delta_phi)
    pt_min = torch.minimum(pt_a, pt_b)
    kt = pt_min * delta
    z = pt_min / (pt_a + pt_b).clamp(min=_EPS)
    summed = first + second
    m2 = summed[..., 3] ** 2 - (summed[..., :3] ** 2).sum(dim=-1)
    return torch.stack(
        [
            torch.log(delta.clamp(min=_EPS)),
            torch.log(kt.clamp(min=_EPS)),
            torch.log(z.clamp(min=_EPS)),
            torch.log(m2.clamp(min=_EPS)),
        ],
        dim=-1,
    )


def pair_features(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Compute the 4 ParT pair features for every pair of particles in each jet.

    Args:
        vectors: (px, py, pz, E) in GeV.
        mask: True for real particles.

    Returns:
        ``[B, N, N, 4]`` float tensor of (ln Δ, ln kT, ln z, ln m²); entries where either
        particle is padding are 0. The diagonal (a particle with itself) is finite.

    Shapes:
        - vectors: ``[B, N, 4]``
        - mask: ``[B, N]``
        - output: ``[B, N, N, 4]``
    """
    features = features_of_pairs(vectors.unsqueeze(2), vectors.unsqueeze(1))
    pair_mask = (mask.unsqueeze(2) & mask.unsqueeze(1)).unsqueeze(-1)
    return torch.where(pair_mask, features, torch.zeros_like(features))
