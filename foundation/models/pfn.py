"""Particle Flow Network (Komiske, Metodiev, Thaler, JHEP 01 (2019) 121): a deep set.

Each particle passes the same MLP Φ; the Φ outputs are summed (or averaged) over real particles
and the jet embedding is ``F(sum)``. Per-particle embeddings are the Φ outputs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from foundation.models.builder import build_backbone
from foundation.models.checks import check_batch
from foundation.models.layers import Pooling, pad_particles, trim_padding, zero_padding
from foundation.models.registry import register_backbone


def relu_mlp(widths: Sequence[int]) -> nn.Sequential:
    """``Linear -> ReLU`` for each consecutive pair of ``widths`` (the PFN's dense layers).

    Shapes:
        - input: ``[*, widths[0]]``
        - output: ``[*, widths[-1]]``
    """
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class ParticleFlowNetwork(Backbone):
    """Particle Flow Network backbone.

    ``F`` ends in a layer of the latent width, so that the jet and particle embeddings share
    ``D = phi_dims[-1]``. Jet-level inputs, when given, are concatenated to the pooled latent
    before ``F``.

    Args:
        in_features: particle features ``F``.
        in_jet_features: jet-level inputs ``J`` (0: none).
        phi_dims: widths of Φ; the latent width ``D`` is ``phi_dims[-1]``.
        f_dims: hidden widths of ``F`` (its output width is ``D``).
        pooling: ``"sum"`` (the paper) or ``"mean"`` over real particles.

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.mask: ``[B, N]``; batch.jet: ``[B, J]``
        - output.particles: ``[B, N, D]``; output.jet: ``[B, D]``
    """

    def __init__(
        self,
        in_features: int,
        in_jet_features: int = 0,
        phi_dims: Sequence[int] = (100, 100, 256),
        f_dims: Sequence[int] = (100, 100),
        pooling: str = "sum",
    ) -> None:
        super().__init__()
        if not phi_dims:
            raise ValueError("PFN needs at least one Φ layer, found phi_dims=[]")
        if pooling not in ("sum", "mean"):
            raise ValueError(f"PFN pooling must be 'sum' or 'mean', found {pooling!r}")
        latent = phi_dims[-1]
        self.num_features = latent
        self.in_jet_features = in_jet_features
        self.phi = relu_mlp([in_features, *phi_dims])
        self.pool = Pooling(latent, pooling)
        self.f = relu_mlp([latent + in_jet_features, *f_dims, latent])

    def forward(self, batch: JetBatch) -> Features:
        check_batch(
            type(self).__name__, batch, self.config["in_features"], self.config["in_jet_features"]
        )
        input_mask, full_count = batch.mask, batch.num_particles
        batch = trim_padding(batch)
        mask = batch.mask
        x = zero_padding(self.phi(batch.particles), mask)
        pooled = self.pool(x, mask)
        if self.in_jet_features:
            pooled = torch.cat([pooled, batch.jet.to(pooled.dtype)], dim=-1)
        jet = self.f(pooled)
        return Features(particles=pad_particles(x, full_count), jet=jet, mask=input_mask)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Φ, then F."""
        return [list(self.phi.parameters()), list(self.f.parameters())]


@register_backbone("pfn-tiny")
def pfn_tiny(**kwargs: Any) -> ParticleFlowNetwork:
    """PFN-tiny: Φ (32, 32), F (32,)."""
    defaults = {"phi_dims": (32, 32), "f_dims": (32,)}
    return build_backbone(ParticleFlowNetwork, defaults, kwargs)


@register_backbone("pfn")
def pfn(**kwargs: Any) -> ParticleFlowNetwork:
    """PFN as in the paper: Φ (100, 100, 256), F (100, 100), sum pooling."""
    defaults = {"phi_dims": (100, 100, 256), "f_dims": (100, 100)}
    return build_backbone(ParticleFlowNetwork, defaults, kwargs)
