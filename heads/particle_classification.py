"""Particle classification: one class per candidate (e.g. its origin) from its embedding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from foundation.data.batch import JetBatch
from foundation.data.schema import ORIGIN_CLASSES
from foundation.models.base import Features
from heads.base import Head
from heads.layers import masked_mean, mlp
from heads.predictions import Collector, HeadPredictions, Scored, ScoreSettings
from heads.registry import register_head


@register_head("particle_classification")
class ParticleClassificationHead(Head):
    """Classify every real particle into ``label_names`` (default: the origin classes).

    Targets (``batch.targets[target]``): class indices ``[B, N]``; -1 (and every padding slot) is
    ignored by the loss and metrics.

    Shapes:
        - features.particles: ``[B, N, D]``, features.mask: ``[B, N]``
        - outputs: ``logits [B, N, K]``, ``probabilities [B, N, K]`` (0 on padding)

    Args:
        in_features: embedding width ``D`` of the backbone.
        label_names: class names in class-index order.
        target: key of the class target in ``batch.targets``.
        hidden: widths of the hidden layers of the MLP.
        dropout: dropout after each hidden layer.
        class_weights: optional per-class weights of the cross-entropy.
    """

    level = "particle"
    task = "classification"

    def __init__(
        self,
        in_features: int,
        label_names: Sequence[str] = ORIGIN_CLASSES,
        target: str = "part_origin",
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        label_names = tuple(str(name) for name in label_names)
        if len(label_names) < 2 or len(set(label_names)) != len(label_names):
            raise ValueError(
                f"particle_classification: label_names must hold at least 2 distinct names, "
                f"found {label_names!r}"
            )
        weights = None if class_weights is None else [float(w) for w in class_weights]
        if weights is not None and len(weights) != len(label_names):
            raise ValueError(
                f"particle_classification: class_weights needs {len(label_names)} values, "
                f"found {len(weights)}"
            )
        self.label_names = label_names
        self.target_key = target
        self.net = mlp(in_features, hidden, len(label_names), dropout)
        self.register_buffer(
            "class_weights", None if weights is None else torch.tensor(weights), persistent=False
        )
        self.config = {
            "in_features": int(in_features),
            "label_names": list(label_names),
            "target": target,
            "hidden": [int(size) for size in hidden],
            "dropout": float(dropout),
            "class_weights": weights,
        }

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("logits", "probabilities")

    def forward(self, features: Features, batch: JetBatch) -> dict[str, torch.Tensor]:
        keep = features.mask.unsqueeze(-1)
        logits = torch.where(keep, self.net(features.particles), 0.0)
        probabilities = torch.where(keep, torch.softmax(logits, dim=-1), 0.0)
        return {"logits": logits, "probabilities": probabilities}

    def collector(self, name: str, data_label_names: Sequence[str]) -> Collector:
        """Collects the class probabilities and labels of each real particle."""
        from heads.evaluation.particle_classification import ParticleClassificationCollector

        return ParticleClassificationCollector(name, self)

    @classmethod
    def score(
        cls, predictions: HeadPredictions, folder: Path | None, settings: ScoreSettings
    ) -> Scored:
        """See :func:`heads.evaluation.particle_classification.score`."""
        from heads.evaluation.particle_classification import score

        return score(predictions, folder, settings)

    def class_indices(self, batch: JetBatch) -> torch.Tensor:
        """The target as class indices ``[B, N]`` with -1 on padding and unlabelled particles.

        Raises:
            KeyError: the target is missing.
            ValueError: its shape or values do not fit.
        """
        target = self.target(batch)
        if tuple(target.shape) != tuple(batch.mask.shape):
            raise ValueError(
                f"particle_classification: target {self.target_key!r}: expected shape "
                f"{tuple(batch.mask.shape)}, found {tuple(target.shape)}"
            )
        target = torch.where(batch.mask, target.long(), -1)
        count = len(self.label_names)
        if target.numel() and (target.min() < -1 or target.max() >= count):
            raise ValueError(
                f"particle_classification: target {self.target_key!r}: expected class indices "
                f"in [0, {count}) or -1, found values in [{int(target.min())}, {int(target.max())}]"
            )
        return target

    def loss(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> torch.Tensor:
        target = self.class_indices(batch)
        logits = outputs["logits"]
        per_particle = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            target.reshape(-1).clamp(min=0),
            weight=self.class_weights,
            reduction="none",
        ).reshape(target.shape)
        return masked_mean(per_particle, target >= 0)

    @torch.no_grad()
    def metrics(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> dict[str, torch.Tensor]:
        target = self.class_indices(batch)
        valid = target >= 0
        correct = (outputs["logits"].argmax(dim=-1) == target) & valid
        return {"accuracy": correct.sum().float() / valid.sum().clamp(min=1)}
