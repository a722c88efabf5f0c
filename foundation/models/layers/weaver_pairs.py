"""ParT pair features with weaver-core's definitions, order and guards (for converted models).

The physics is that of :func:`foundation.data.pairs.pair_features`; what differs is what a
network trained with weaver-core has learned to expect, so a converted checkpoint is fed these:

- order ``(ln kT, ln z, ln Δ, ln m²)``;
- rapidity ``y = ½ ln(1 + 2 pz / max(E - pz, 1e-20))``, with the argument of the logarithm floored
  at 1e-20 (weaver-core leaves it unguarded, so ``E + pz <= 0`` gives it NaN where this gives a
  large negative rapidity);
- ``pT = sqrt(px² + py²)`` unguarded; every other logarithm's argument clamped at 1e-8.

The per-particle quantities are computed channel-first, and every elementwise operation is done
in weaver-core's order, so that the cancellation in ``m² = E² - |p|²`` of nearly collinear pairs
rounds the same way as there.
"""

from __future__ import annotations

import math

import torch

_EPS = 1e-8
_RAPIDITY_FLOOR = 1e-20


def _per_particle(vectors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``px, py, pz, E, pT, y, φ``, each ``[B, N]``, from ``[B, N, 4]`` vectors."""
    px, py, pz, energy = vectors.transpose(1, 2).contiguous().unbind(1)
    pt = torch.sqrt(px.square() + py.square())
    ratio = (2 * pz) / (energy - pz).clamp(min=_RAPIDITY_FLOOR)
    rapidity = 0.5 * torch.log((1 + ratio).clamp(min=_RAPIDITY_FLOOR))
    phi = torch.atan2(py, px)
    return px, py, pz, energy, pt, rapidity, phi


def weaver_pair_features(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The 4 pair features of every pair of particles, as weaver-core's ParT computes them.

    Args:
        vectors: (px, py, pz, E) in GeV.
        mask: True for real particles.

    Returns:
        ``(ln kT, ln z, ln Δ, ln m²)`` of the pair ``(i, j)`` at ``[b, i, j]``; pairs with a
        padded particle are 0.

    Shapes:
        - vectors: ``[B, N, 4]``
        - mask: ``[B, N]`` bool
        - output: ``[B, N, N, 4]``
    """
    px, py, pz, energy, pt, rapidity, phi = _per_particle(vectors.float())

    def rows(value: torch.Tensor) -> torch.Tensor:
        return value.unsqueeze(2)  # particle i along the rows

    def cols(value: torch.Tensor) -> torch.Tensor:
        return value.unsqueeze(1)  # particle j along the columns

    delta_phi = torch.remainder(rows(phi) - cols(phi) + math.pi, 2 * math.pi) - math.pi
    delta = ((rows(rapidity) - cols(rapidity)).square() + delta_phi.square()).sqrt()
    pt_min = torch.minimum(rows(pt), cols(pt))
    ln_kt = torch.log((pt_min * delta).clamp(min=_EPS))
    ln_z = torch.log((pt_min / (rows(pt) + cols(pt)).clamp(min=_EPS)).clamp(min=_EPS))
    ln_delta = torch.log(delta.clamp(min=_EPS))
    summed = [rows(value) + cols(value) for value in (px, py, pz, energy)]
    momentum2 = summed[0].square() + summed[1].square() + summed[2].square()
    ln_m2 = torch.log((summed[3].square() - momentum2).clamp(min=_EPS))
    features = torch.stack([ln_kt, ln_z, ln_delta, ln_m2], dim=-1)
    pair_mask = (mask.unsqueeze(2) & mask.unsqueeze(1)).unsqueeze(-1)
    return torch.where(pair_mask, features, torch.zeros((), dtype=features.dtype))
