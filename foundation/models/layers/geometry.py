"""Particle directions relative to the jet axis, from the 4-vectors of a :class:`JetBatch`."""

from __future__ import annotations

import math

import torch

_EPS = 1e-8


def _eta_phi(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pseudorapidity and azimuth of ``[..., 4]`` (px, py, pz, E) vectors (finite for zeros)."""
    px, py, pz, _ = vectors.unbind(dim=-1)
    pt = torch.sqrt(px * px + py * py).clamp(min=_EPS)
    ratio = pz / pt
    # asinh, written out (ONNX opset 17 has no exporter for aten::asinh); odd-symmetric form
    # avoids the cancellation of log(x + sqrt(x² + 1)) for large negative x.
    magnitude = ratio.abs()
    eta = torch.sign(ratio) * torch.log(magnitude + torch.sqrt(magnitude * magnitude + 1))
    return eta, torch.atan2(py, px)


def jet_relative_eta_phi(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(Δη, Δφ) of every particle with respect to the jet axis (the sum of real 4-vectors).

    Δφ is wrapped into [-π, π). Padding rows are zero, and so is every row of a jet without
    real particles. The result does not depend on particle order (up to float rounding of the
    jet sum).

    Args:
        vectors: (px, py, pz, E) of each particle.
        mask: True for real particles.

    Returns:
        ``[B, N, 2]`` float tensor of (Δη, Δφ).

    Shapes:
        - vectors: ``[B, N, 4]``
        - mask: ``[B, N]``
        - output: ``[B, N, 2]``
    """
    vectors = vectors.float()
    keep = mask.unsqueeze(-1)
    jet = torch.where(keep, vectors, torch.zeros((), device=vectors.device)).sum(dim=1)
    eta, phi = _eta_phi(vectors)
    jet_eta, jet_phi = _eta_phi(jet)
    delta_eta = eta - jet_eta.unsqueeze(1)
    delta_phi = torch.remainder(phi - jet_phi.unsqueeze(1) + math.pi, 2 * math.pi) - math.pi
    coords = torch.stack([delta_eta, delta_phi], dim=-1)
    return torch.where(keep, coords, torch.zeros((), device=coords.device))
