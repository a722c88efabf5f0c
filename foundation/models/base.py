"""The backbone contract: a JetBatch goes in, :class:`Features` come out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from foundation.data.batch import JetBatch


@dataclass
class Features:
    """What every backbone returns and every head consumes.

    Shapes:
        - particles: ``[B, N, D]`` per-particle embeddings (padding rows are zero).
        - jet: ``[B, D]`` jet embedding, independent of particle order.
        - mask: ``[B, N]`` bool, True for a real particle (the input mask, unchanged).
    """

    particles: torch.Tensor
    jet: torch.Tensor
    mask: torch.Tensor


class Backbone(nn.Module):
    """Base class of every registered backbone.

    Subclasses set ``num_features`` (the embedding width ``D``) and store the keyword arguments
    they were built with in ``config`` (JSON-serialisable), so that a checkpoint rebuilds the
    backbone from ``config.json`` alone with ``create_backbone(name, **config)``.
    """

    num_features: int
    config: dict[str, Any]

    def forward(self, batch: JetBatch) -> Features:  # pragma: no cover - interface
        raise NotImplementedError

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters grouped from input to output, for layer-wise learning-rate decay.

        The default puts all parameters in one group; deep backbones override it.
        """
        return [list(self.parameters())]
