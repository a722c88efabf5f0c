"""Jet classification: binary (one logit) or multi-class (softmax) from the jet embedding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from foundation.data.batch import JetBatch
from foundation.models.base import Features
from heads.base import DataDescription, Head
from heads.layers import binary_auc, masked_mean, mlp
from heads.predictions import (
    LABEL_TARGET,
    Collector,
    HeadPredictions,
    Scored,
    ScoreSettings,
    label_lookup,
)
from heads.registry import register_head


@register_head("jet_classification")
class JetClassificationHead(Head):
    """Classify each jet into ``label_names``.

    With two labels and ``binary=True`` (the default for two labels) the head predicts one logit
    for the second label (e.g. ``("label_QCD", "label_Tbqq")``: top vs QCD) and is trained with
    binary cross-entropy; otherwise it predicts one logit per label with a softmax cross-entropy.

    Targets (``batch.targets[target]``): class indices ``[B]`` (-1 = no label, ignored), or
    one-hot / probability rows ``[B, K]`` (converted with ``argmax``; an all-zero row is -1).

    Shapes:
        - features.jet: ``[B, D]``
        - binary outputs: ``logit [B]``, ``probability [B]`` (of ``label_names[1]``)
        - multi-class outputs: ``logits [B, K]``, ``probabilities [B, K]``

    Args:
        in_features: embedding width ``D`` of the backbone.
        label_names: class names, in class-index order.
        target: key of the class target in ``batch.targets``.
        binary: one logit for two classes (default: ``len(label_names) == 2``).
        hidden: widths of the hidden layers of the MLP.
        dropout: dropout after each hidden layer.
        label_smoothing: label smoothing of the cross-entropy (multi-class and binary).
        activation: activation of the hidden layers, ``"gelu"`` or ``"relu"``.
    """

    level = "jet"
    task = "classification"

    def __init__(
        self,
        in_features: int,
        label_names: Sequence[str] = ("label_QCD", "label_Tbqq"),
        target: str = "label",
        binary: bool | None = None,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        label_names = tuple(str(name) for name in label_names)
        if len(label_names) < 2 or len(set(label_names)) != len(label_names):
            raise ValueError(
                f"jet_classification: label_names must hold at least 2 distinct names, "
                f"found {label_names!r}"
            )
        if binary is None:
            binary = len(label_names) == 2
        if binary and len(label_names) != 2:
            raise ValueError(
                "jet_classification: binary=True needs exactly 2 label_names, "
                f"found {len(label_names)}"
            )
        self.label_names = label_names
        self.target_key = target
        self.binary = bool(binary)
        self.label_smoothing = float(label_smoothing)
        self.net = mlp(
            in_features, hidden, 1 if self.binary else len(label_names), dropout, activation
        )
        self.config = {
            "in_features": int(in_features),
            "label_names": list(label_names),
            "target": target,
            "binary": self.binary,
            "hidden": [int(size) for size in hidden],
            "dropout": float(dropout),
            "label_smoothing": self.label_smoothing,
            "activation": activation,
        }

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("logit", "probability") if self.binary else ("logits", "probabilities")

    @property
    def binary_output(self) -> str | None:
        return "probability" if self.binary else None

    @classmethod
    def defaults_from_data(cls, data: DataDescription) -> dict[str, Any]:
        """The data's class names (``data.classes`` or the files' labels)."""
        return {"label_names": list(data.label_names)}

    def collector(self, name: str, data_label_names: Sequence[str]) -> Collector:
        """Collects ``scores`` and ``labels``; the data's labels are mapped to the head's
        classes by name when the head reads the data's ``label`` target."""
        from heads.evaluation.jet_classification import JetClassificationCollector

        lookup = None
        if self.target_key == LABEL_TARGET:
            lookup = label_lookup(data_label_names, self.label_names, name)
        return JetClassificationCollector(name, self, lookup)

    @classmethod
    def score(
        cls, predictions: HeadPredictions, folder: Path | None, settings: ScoreSettings
    ) -> Scored:
        """See :func:`heads.evaluation.jet_classification.score`."""
        from heads.evaluation.jet_classification import score

        return score(predictions, folder, settings)

    def forward(self, features: Features, batch: JetBatch) -> dict[str, torch.Tensor]:
        logits = self.net(features.jet)
        if self.binary:
            logit = logits.squeeze(-1)
            return {"logit": logit, "probability": torch.sigmoid(logit)}
        return {"logits": logits, "probabilities": torch.softmax(logits, dim=-1)}

    def class_indices(self, batch: JetBatch) -> torch.Tensor:
        """The target as class indices ``[B]`` (int64, -1 = no label).

        Raises:
            KeyError: the target is missing.
            ValueError: its shape or values do not fit ``label_names``.
        """
        target = self.target(batch)
        count = len(self.label_names)
        if target.dim() == 2 and target.shape[1] == count:
            labelled = target.sum(dim=1) > 0
            target = torch.where(labelled, target.argmax(dim=1), -1)
        elif target.dim() != 1:
            raise ValueError(
                f"jet_classification: target {self.target_key!r}: expected shape [B] or "
                f"[B, {count}], found {tuple(target.shape)}"
            )
        if target.shape[0] != len(batch):
            raise ValueError(
                f"jet_classification: target {self.target_key!r}: expected {len(batch)} rows, "
                f"found {target.shape[0]}"
            )
        target = target.long()
        if target.numel() and (target.min() < -1 or target.max() >= count):
            raise ValueError(
                f"jet_classification: target {self.target_key!r}: expected class indices in "
                f"[0, {count}) or -1, found values in [{int(target.min())}, {int(target.max())}]"
            )
        return target

    def loss(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> torch.Tensor:
        target = self.class_indices(batch)
        valid = target >= 0
        if self.binary:
            smooth = self.label_smoothing
            soft = target.clamp(min=0).float() * (1 - smooth) + 0.5 * smooth
            per_jet = F.binary_cross_entropy_with_logits(outputs["logit"], soft, reduction="none")
        else:
            per_jet = F.cross_entropy(
                outputs["logits"],
                target.clamp(min=0),
                reduction="none",
                label_smoothing=self.label_smoothing,
            )
        return masked_mean(per_jet, valid)

    @torch.no_grad()
    def metrics(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> dict[str, torch.Tensor]:
        target = self.class_indices(batch)
        valid = target >= 0
        if self.binary:
            predicted = (outputs["logit"] > 0).long()
            auc = binary_auc(outputs["probability"][valid], target[valid] == 1)
        else:
            predicted = outputs["logits"].argmax(dim=-1)
            auc = None
        correct = (predicted == target) & valid
        result = {"accuracy": correct.sum().float() / valid.sum().clamp(min=1)}
        if auc is not None:
            result["auc"] = auc
        return result
