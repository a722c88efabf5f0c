"""ParT's interaction embedding: pair features -> pointwise MLP -> attention biases."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from foundation.data.pairs import pair_features
from foundation.models.layers.masking import is_exporting
from foundation.models.layers.norm import MaskedBatchNorm

PAIR_FEATURES = 4
"""ln Δ, ln kT, ln z, ln m² (see :func:`foundation.data.pairs.pair_features`)."""


class PairEmbedding(nn.Module):
    """Embed the 4 pair features of every particle pair into ``num_outputs`` attention biases.

    A pointwise MLP (a 1×1 convolution over the ``N × N`` grid, written as ``Linear`` on the
    channel axis): masked batch-norm of the inputs, then ``Linear -> MaskedBatchNorm -> GELU``
    for each hidden width, then a final ``Linear`` to ``num_outputs`` (one bias per attention
    head for ParT, a single shared bias for JetFormer). Batch statistics use real pairs only.

    The features are symmetric, so in eager mode only the upper triangle (``N(N+1)/2`` pairs) is
    embedded and mirrored; while exporting the full grid is embedded (no ``triu_indices`` frozen
    to one ``N``). Entries of padded pairs are unspecified: mask them in the attention.

    Args:
        hidden_dims: widths of the hidden pointwise layers, e.g. ``(64, 64, 64)``.
        num_outputs: biases per pair (``H``).

    Shapes:
        - vectors: ``[B, N, 4]`` (px, py, pz, E)
        - mask: ``[B, N]`` bool
        - output: ``[B, H, N, N]``
    """

    def __init__(self, hidden_dims: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.input_norm = MaskedBatchNorm(PAIR_FEATURES)
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        width = PAIR_FEATURES
        for hidden in hidden_dims:
            self.linears.append(nn.Linear(width, hidden))
            self.norms.append(MaskedBatchNorm(hidden))
            width = hidden
        self.head = nn.Linear(width, num_outputs)
        self.activation = nn.GELU()

    def embed(self, pairs: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
        """Apply the pointwise MLP.

        Shapes:
            - pairs: ``[*, 4]``
            - pair_mask: ``[*]`` bool
            - output: ``[*, H]``
        """
        x = self.input_norm(pairs, pair_mask)
        for linear, norm in zip(self.linears, self.norms, strict=True):
            x = self.activation(norm(linear(x), pair_mask))
        return self.head(x)

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pairs = pair_features(vectors.float(), mask)
        pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
        batch, count = mask.shape
        if is_exporting() or count < 2:
            out = self.embed(pairs, pair_mask)
        else:
            row, col = torch.triu_indices(count, count, device=mask.device)
            upper = self.embed(pairs[:, row, col], pair_mask[:, row, col])
            out = upper.new_zeros(batch, count * count, upper.shape[-1])
            out[:, row * count + col] = upper
            out[:, col * count + row] = upper
            out = out.view(batch, count, count, -1)
        return out.permute(0, 3, 1, 2)
