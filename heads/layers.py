"""Small building blocks shared by the heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}
"""Hidden-layer activations of :func:`mlp` by name."""


def mlp(
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    dropout: float = 0.0,
    activation: str = "gelu",
) -> nn.Sequential:
    """A multi-layer perceptron ``Linear -> GELU -> Dropout -> ... -> Linear``.

    ``activation`` names the hidden-layer activation (:data:`ACTIVATIONS`; ``"relu"`` for
    networks converted from weaver-core, whose classifiers use ReLU).

    Shapes:
        - input: ``[..., in_features]``
        - output: ``[..., out_features]``
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"mlp: activation must be one of {list(ACTIVATIONS)}, found {activation!r}"
        )
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, int(size)), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(size)
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over entries where ``weights`` is nonzero; 0 (with a gradient) if none.

    Shapes:
        - values: any shape
        - weights: same shape as ``values`` (bool or float)
        - output: scalar
    """
    weights = weights.to(values.dtype)
    total = (torch.where(weights > 0, values, torch.zeros_like(values)) * weights).sum()
    return total / weights.sum().clamp(min=1.0)


def binary_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Area under the ROC curve from the Mann-Whitney statistic (ties count one half).

    Returns NaN when only one class is present.

    Shapes:
        - scores: ``[M]`` float
        - labels: ``[M]`` bool or {0, 1}
        - output: scalar
    """
    scores = scores.detach().double().flatten()  # exact rank sums for large M
    labels = labels.detach().flatten().bool()
    positives = int(labels.sum())
    negatives = labels.numel() - positives
    if positives == 0 or negatives == 0:
        return torch.tensor(float("nan"), device=scores.device)
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=scores.dtype, device=scores.device)
    # Average ranks of ties.
    unique, inverse = torch.unique(sorted_scores, return_inverse=True)
    if unique.numel() != sorted_scores.numel():
        sums = torch.zeros_like(unique).index_add_(0, inverse, ranks[order])
        counts = torch.zeros_like(unique).index_add_(0, inverse, torch.ones_like(sorted_scores))
        ranks[order] = (sums / counts)[inverse]
    rank_sum = ranks[labels].sum()
    return ((rank_sum - positives * (positives + 1) / 2) / (positives * negatives)).float()
