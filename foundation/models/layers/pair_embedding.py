"""ParT's interaction embedding: pair features -> pointwise MLP -> attention biases."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from foundation.data.pairs import pair_features
from foundation.models.layers.masking import is_exporting
from foundation.models.layers.norm import MaskedBatchNorm
from foundation.models.layers.weaver_pairs import weaver_pair_features

PAIR_FEATURES = 4
"""ln Δ, ln kT, ln z, ln m² (see :func:`foundation.data.pairs.pair_features`)."""

PAIR_FEATURE_DEFINITIONS = {"foundation": pair_features, "weaver": weaver_pair_features}
"""The pair-feature definitions a :class:`PairEmbedding` can read: the project's
(:func:`~foundation.data.pairs.pair_features`) or weaver-core's, for converted ParT checkpoints
(:func:`~foundation.models.layers.weaver_pairs.weaver_pair_features`)."""


class PairEmbedding(nn.Module):
    """Embed the 4 pair features of every particle pair into ``num_outputs`` attention biases.

    A pointwise MLP (a 1×1 convolution over the ``N × N`` grid, written as ``Linear`` on the
    channel axis): masked batch-norm of the inputs, then ``Linear -> MaskedBatchNorm -> GELU``
    for each hidden width, then a final ``Linear`` to ``num_outputs`` (one bias per attention
    head for ParT, a single shared bias for JetFormer), optionally followed by a masked
    batch-norm and a GELU (weaver-core's ParT: ``use_pre_activation_pair=True`` is
    ``output_norm``, ``False`` is ``output_norm`` and ``output_activation``). Batch statistics use
    real pairs only.

    The features are symmetric, so in eager mode only the real pairs of the upper triangle
    (``Σ n(n+1)/2`` per batch, a fraction of ``B N²`` for padded jets) are embedded, then mirrored;
    padded pairs get 0. While exporting, the full grid is embedded (no data-dependent shapes in
    the graph) and padded pairs get unspecified finite values. Mask them in the attention.

    Args:
        hidden_dims: widths of the hidden pointwise layers, e.g. ``(64, 64, 64)``.
        num_outputs: biases per pair (``H``).
        features: the pair-feature definition, a key of :data:`PAIR_FEATURE_DEFINITIONS`.
        output_norm: a masked batch-norm (``head_norm``) after the final ``Linear``.
        output_activation: a GELU after the final ``Linear`` (and its norm).

    Shapes:
        - vectors: ``[B, N, 4]`` (px, py, pz, E)
        - mask: ``[B, N]`` bool
        - output: ``[B, H, N, N]``
    """

    def __init__(
        self,
        hidden_dims: Sequence[int],
        num_outputs: int,
        *,
        features: str = "foundation",
        output_norm: bool = False,
        output_activation: bool = False,
    ) -> None:
        super().__init__()
        if features not in PAIR_FEATURE_DEFINITIONS:
            raise ValueError(
                f"pair features {features!r} are unknown: expected one of "
                f"{sorted(PAIR_FEATURE_DEFINITIONS)}"
            )
        self.features = features
        self.output_activation = output_activation
        self.input_norm = MaskedBatchNorm(PAIR_FEATURES)
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        width = PAIR_FEATURES
        for hidden in hidden_dims:
            self.linears.append(nn.Linear(width, hidden))
            self.norms.append(MaskedBatchNorm(hidden))
            width = hidden
        self.head = nn.Linear(width, num_outputs)
        self.head_norm = MaskedBatchNorm(num_outputs) if output_norm else None
        self.activation = nn.GELU()

    def embed(self, pairs: torch.Tensor, pair_mask: torch.Tensor | None) -> torch.Tensor:
        """Apply the pointwise MLP.

        Shapes:
            - pairs: ``[*, 4]``
            - pair_mask: ``[*]`` bool, or ``None`` when every pair is real
            - output: ``[*, H]``
        """
        x = self.input_norm(pairs, pair_mask)
        for linear, norm in zip(self.linears, self.norms, strict=True):
            x = self.activation(norm(linear(x), pair_mask))
        x = self.head(x)
        if self.head_norm is not None:
            x = self.head_norm(x, pair_mask)
        return self.activation(x) if self.output_activation else x

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pairs = PAIR_FEATURE_DEFINITIONS[self.features](vectors.float(), mask)
        pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
        if is_exporting():
            return self.embed(pairs, pair_mask).permute(0, 3, 1, 2)
        jet, row, col = torch.triu(pair_mask).nonzero(as_tuple=True)
        upper = self.embed(pairs[jet, row, col], None)
        batch, count = mask.shape
        out = upper.new_zeros(batch, upper.shape[-1], count, count)
        grid = out.permute(0, 2, 3, 1)  # a [B, N, N, H] view of the output
        grid[jet, row, col] = upper
        grid[jet, col, row] = upper
        return out
