"""Pair classification: a symmetric score for every pair of particles (e.g. same vertex)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from foundation.data.batch import JetBatch
from foundation.data.loading import same_vertex_targets
from foundation.data.pairs import features_of_pairs
from foundation.models.base import Features
from heads.base import Head
from heads.layers import binary_auc, masked_mean, mlp
from heads.predictions import Collector, HeadPredictions, Scored, ScoreSettings
from heads.registry import register_head

NUM_PAIR_FEATURES = 4

VERTEX_TARGET = "part_vertex"
"""Batch target with each particle's true vertex index (``[B, N]``, -1 unknown)."""

__all__ = ["PairClassificationHead", "same_vertex_targets"]


@register_head("pair_classification")
class PairClassificationHead(Head):
    """Score every ordered pair of real particles with a function symmetric in the two.

    The score of ``(i, j)`` is an MLP of ``h_i + h_j``, ``h_i * h_j`` (both symmetric) and the
    4 ParT pair features of the two 4-vectors (ln Δ, ln kT, ln z, ln m², symmetric too), so
    ``logits[b, i, j] == logits[b, j, i]``. Training and evaluation compute only the pairs
    i <= j of real particles and mirror them (the cost follows the real particles, not the
    padded N x N); the ONNX export traces one dense graph over all slots, with the same logits.

    Targets (``batch.targets[target]``): ``[B, N, N]`` in {0, 1}, -1 ignored (see
    :func:`same_vertex_targets`); pairs with a padding particle and the diagonal are ignored.

    Shapes:
        - features.particles: ``[B, N, D]``; batch.vectors: ``[B, N, 4]``
        - outputs: ``logits [B, N, N]``, ``probabilities [B, N, N]`` (0 where either particle
          is padding)

    Args:
        in_features: embedding width ``D`` of the backbone.
        target: key of the pair target in ``batch.targets``.
        hidden: width of the pair embedding and of the MLP's hidden layers.
        dropout: dropout after each hidden layer.
        use_pair_features: include the 4 pair features of the 4-vectors.
        label_names: names of the negative and positive class.
    """

    level = "pair"
    task = "classification"

    def __init__(
        self,
        in_features: int,
        target: str = "pair_same_vertex",
        hidden: Sequence[int] = (64,),
        dropout: float = 0.0,
        use_pair_features: bool = True,
        label_names: Sequence[str] = ("different_vertex", "same_vertex"),
    ) -> None:
        super().__init__()
        hidden = [int(size) for size in hidden]
        if not hidden:
            raise ValueError("pair_classification: hidden needs at least one width")
        label_names = tuple(str(name) for name in label_names)
        if len(label_names) != 2:
            raise ValueError(
                f"pair_classification: label_names needs 2 names, found {label_names!r}"
            )
        self.label_names = label_names
        self.target_key = target
        self.use_pair_features = bool(use_pair_features)
        width = hidden[0]
        self.sum_proj = nn.Linear(in_features, width)
        self.product_proj = nn.Linear(in_features, width, bias=False)
        self.pair_proj = (
            nn.Linear(NUM_PAIR_FEATURES, width, bias=False) if self.use_pair_features else None
        )
        self.net = nn.Sequential(nn.GELU(), mlp(width, hidden[1:], 1, dropout))
        self.config = {
            "in_features": int(in_features),
            "target": target,
            "hidden": hidden,
            "dropout": float(dropout),
            "use_pair_features": self.use_pair_features,
            "label_names": list(label_names),
        }

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("logits", "probabilities")

    def forward(self, features: Features, batch: JetBatch) -> dict[str, torch.Tensor]:
        particles = features.particles
        pair_mask = features.mask.unsqueeze(2) & features.mask.unsqueeze(1)
        # sum_proj(h_i + h_j) == W h_i + W h_j + b: one projection per particle, not per pair.
        projected = F.linear(particles, self.sum_proj.weight)
        bias = self.sum_proj.bias
        if torch.onnx.is_in_onnx_export():
            # One static graph over all N x N slots for the exported model.
            scores = self._scores(
                projected.unsqueeze(2) + projected.unsqueeze(1) + bias,
                particles.unsqueeze(2) * particles.unsqueeze(1),
                batch.vectors.unsqueeze(2),
                batch.vectors.unsqueeze(1),
            )
        else:
            # Only the pairs i <= j of real particles (a fraction of the padded slots), mirrored:
            # the score is symmetric, so (j, i) is (i, j).
            upper = torch.ones(pair_mask.shape[1:], dtype=torch.bool, device=pair_mask.device)
            jet, first, second = (pair_mask & upper.triu()).nonzero(as_tuple=True)
            values = self._scores(
                projected[jet, first] + projected[jet, second] + bias,
                particles[jet, first] * particles[jet, second],
                batch.vectors[jet, first],
                batch.vectors[jet, second],
            )
            scores = values.new_zeros(pair_mask.shape).index_put((jet, first, second), values)
            scores = scores + scores.transpose(1, 2).tril(-1)
        logits = torch.where(pair_mask, scores, 0.0)
        probabilities = torch.where(pair_mask, torch.sigmoid(logits), 0.0)
        return {"logits": logits, "probabilities": probabilities}

    def evaluation_targets(self) -> tuple[str, ...]:
        """The particles' true vertices, for vertex finding."""
        return (VERTEX_TARGET,)

    def with_derived_targets(self, batch: JetBatch) -> JetBatch:
        """Add the same-vertex target from ``part_vertex`` when the batch lacks it."""
        if self.target_key in batch.targets or VERTEX_TARGET not in batch.targets:
            return batch
        pairs = same_vertex_targets(batch.targets[VERTEX_TARGET].long(), batch.mask)
        return dataclasses.replace(batch, targets={**batch.targets, self.target_key: pairs})

    def collector(self, name: str, data_label_names: Sequence[str]) -> Collector:
        """Collects the scores and labels of the labelled pairs, with the particles' jets and
        true vertices."""
        from heads.evaluation.pair_classification import PairClassificationCollector

        return PairClassificationCollector(name, self)

    @classmethod
    def score(
        cls, predictions: HeadPredictions, folder: Path | None, settings: ScoreSettings
    ) -> Scored:
        """See :func:`heads.evaluation.pair_classification.score`."""
        from heads.evaluation.pair_classification import score

        return score(predictions, folder, settings)

    def _scores(
        self,
        summed: torch.Tensor,
        product: torch.Tensor,
        first_vectors: torch.Tensor,
        second_vectors: torch.Tensor,
    ) -> torch.Tensor:
        """Logits of pairs from ``sum_proj(h_i + h_j)`` ``[..., W]``, ``h_i * h_j`` ``[..., D]``
        and the two 4-vectors ``[..., 4]``; returns ``[...]``."""
        embedding = summed + self.product_proj(product)
        if self.pair_proj is not None:
            embedding = embedding + self.pair_proj(features_of_pairs(first_vectors, second_vectors))
        return self.net(embedding).squeeze(-1)

    def pair_targets(self, batch: JetBatch) -> torch.Tensor:
        """The target ``[B, N, N]`` (int64) with -1 on padding pairs and the diagonal.

        Raises:
            KeyError: the target is missing.
            ValueError: its shape or values do not fit.
        """
        target = self.target(batch)
        count = batch.num_particles
        expected = (len(batch), count, count)
        if tuple(target.shape) != expected:
            raise ValueError(
                f"pair_classification: target {self.target_key!r}: expected shape {expected}, "
                f"found {tuple(target.shape)}"
            )
        valid = batch.mask.unsqueeze(2) & batch.mask.unsqueeze(1)
        valid &= ~torch.eye(count, dtype=torch.bool, device=target.device)
        target = torch.where(valid, target.long(), -1)
        if target.numel() and (target.min() < -1 or target.max() > 1):
            raise ValueError(
                f"pair_classification: target {self.target_key!r}: expected values in "
                f"{{-1, 0, 1}}, found values in [{int(target.min())}, {int(target.max())}]"
            )
        return target

    def loss(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> torch.Tensor:
        target = self.pair_targets(batch)
        per_pair = F.binary_cross_entropy_with_logits(
            outputs["logits"], target.clamp(min=0).float(), reduction="none"
        )
        return masked_mean(per_pair, target >= 0)

    @torch.no_grad()
    def metrics(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> dict[str, torch.Tensor]:
        target = self.pair_targets(batch)
        valid = target >= 0
        correct = ((outputs["logits"] > 0).long() == target) & valid
        return {
            "accuracy": correct.sum().float() / valid.sum().clamp(min=1),
            "auc": binary_auc(outputs["logits"][valid], target[valid] == 1),
        }
