"""Random jets with physical 4-vectors, and the conversion of a JetBatch to ONNX Runtime feeds.

The jets are only meant to exercise a graph (parity checks, benchmarks): features are standard
normal on real particles and zero on padding; 4-vectors have positive energies above the
momentum (a small mass) and are collimated around a random jet axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from foundation.data.batch import JetBatch


def random_counts(
    batch_size: int, num_particles: int, generator: torch.Generator, mean: float | None = None
) -> list[int]:
    """Real-particle counts per jet, within ``[0, num_particles]``.

    With ``mean=None`` the counts are uniform, except that the first jet is full, the second
    empty and the third has one particle (when the batch has that many jets), so that every
    batch covers the edge cases. With a ``mean`` they are normal around it (width mean / 4).
    """
    if mean is None:
        counts = torch.randint(0, num_particles + 1, (batch_size,), generator=generator).tolist()
        for row, count in enumerate((num_particles, 0, min(1, num_particles))[:batch_size]):
            counts[row] = count
        return counts
    noise = torch.randn(batch_size, generator=generator) * (mean / 4)
    return (torch.round(mean + noise).clamp(0, num_particles)).long().tolist()


def random_jets(
    batch_size: int,
    num_particles: int,
    num_features: int,
    num_jet_features: int = 0,
    *,
    counts: Sequence[int] | None = None,
    mean_particles: float | None = None,
    scatter: bool = False,
    seed: int = 0,
) -> JetBatch:
    """A deterministic random batch of padded jets.

    Args:
        batch_size: jets ``B``.
        num_particles: padded slots ``N`` (0 allowed).
        num_features: particle features ``F``.
        num_jet_features: jet-level inputs ``J``.
        counts: real particles per jet (default: see :func:`random_counts`).
        mean_particles: typical real-particle count when ``counts`` is not given.
        scatter: put real particles in random slots instead of the first ones.
        seed: random seed.

    Shapes:
        - particles: ``[B, N, F]``; vectors: ``[B, N, 4]`` (px, py, pz, E), E > |p|;
          mask: ``[B, N]`` bool; jet: ``[B, J]``

    Raises:
        ValueError: ``counts`` has the wrong length or a value outside ``[0, N]``.
    """
    generator = torch.Generator().manual_seed(seed)
    if counts is None:
        counts = random_counts(batch_size, num_particles, generator, mean_particles)
    counts = [int(count) for count in counts]
    if len(counts) != batch_size or any(not 0 <= c <= num_particles for c in counts):
        raise ValueError(
            f"random_jets: expected {batch_size} counts in [0, {num_particles}], found {counts}"
        )
    mask = torch.zeros(batch_size, num_particles, dtype=torch.bool)
    for row, count in enumerate(counts):
        slots = (
            torch.randperm(num_particles, generator=generator)[:count]
            if scatter
            else torch.arange(count)
        )
        mask[row, slots] = True

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator)

    shape = (batch_size, num_particles)
    axis_eta = uniform(-2.0, 2.0, batch_size, 1)
    axis_phi = uniform(-math.pi, math.pi, batch_size, 1)
    pt = 1.0 + torch.empty(shape).exponential_(1 / 20.0, generator=generator)
    eta = axis_eta + 0.2 * torch.randn(shape, generator=generator)
    phi = axis_phi + 0.2 * torch.randn(shape, generator=generator)
    mass = uniform(0.0, 0.5, *shape)
    px, py, pz = pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)
    energy = torch.sqrt(px**2 + py**2 + pz**2 + mass**2)
    keep = mask.unsqueeze(-1)
    vectors = torch.where(keep, torch.stack([px, py, pz, energy], dim=-1), 0.0)
    particles = torch.randn(*shape, num_features, generator=generator)
    return JetBatch(
        particles=torch.where(keep, particles, 0.0),
        mask=mask,
        vectors=vectors,
        jet=torch.randn(batch_size, num_jet_features, generator=generator),
    )


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A contiguous CPU numpy copy (float32 stays float32, bool stays bool)."""
    return np.ascontiguousarray(tensor.detach().cpu().numpy())
