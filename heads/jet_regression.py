"""Jet regression: point estimates (MSE / Huber) or a Gaussian (mean, log-variance) per target."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from foundation.data.batch import JetBatch
from foundation.models.base import Features
from heads.base import Head
from heads.layers import masked_mean, mlp
from heads.predictions import Collector, HeadPredictions, Scored, ScoreSettings
from heads.registry import register_head

_LOG_VARIANCE_RANGE = (-20.0, 20.0)
_LOSSES = ("mse", "huber")


@register_head("jet_regression")
class JetRegressionHead(Head):
    """Regress one or more jet-level quantities, each read from its own ``batch.targets`` key.

    What is regressed is the caller's choice through the target names: a raw quantity
    (``jet_truth_mass``) or a ratio prepared by the data pipeline (``log_pt_ratio`` =
    log(truth / reco)). ``target_offset`` and ``target_scale`` standardise the targets inside the
    head (the network predicts ``(y - offset) / scale``); the outputs are in the targets' units.
    Non-finite target values are ignored by the loss and metrics.

    With ``gaussian=True`` the head also predicts a log-variance and is trained with the Gaussian
    negative log-likelihood; otherwise with MSE or Huber loss.

    Shapes:
        - features.jet: ``[B, D]``
        - targets: ``batch.targets[name]`` ``[B]`` for each of the ``T`` names
        - outputs: ``mean [B, T]`` and, if gaussian, ``log_variance [B, T]``

    Args:
        in_features: embedding width ``D`` of the backbone.
        targets: names of the ``T`` targets (``label_names`` of the head).
        gaussian: predict a log-variance and use the Gaussian NLL.
        loss: ``"mse"`` or ``"huber"`` (point estimates only).
        huber_delta: transition point of the Huber loss (in standardised units).
        target_offset: per-target offset subtracted before the loss (default 0).
        target_scale: per-target scale dividing before the loss (default 1).
        hidden: widths of the hidden layers of the MLP.
        dropout: dropout after each hidden layer.
    """

    level = "jet"
    task = "regression"

    def __init__(
        self,
        in_features: int,
        targets: Sequence[str] = ("jet_truth_pt", "jet_truth_mass"),
        gaussian: bool = False,
        loss: str = "mse",
        huber_delta: float = 1.0,
        target_offset: Sequence[float] | None = None,
        target_scale: Sequence[float] | None = None,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        names = (targets,) if isinstance(targets, str) else tuple(str(name) for name in targets)
        if not names or len(set(names)) != len(names):
            raise ValueError(
                f"jet_regression: targets must hold at least one distinct name, found {names!r}"
            )
        if loss not in _LOSSES:
            raise ValueError(f"jet_regression: loss must be one of {_LOSSES}, found {loss!r}")
        offset = [0.0] * len(names) if target_offset is None else [float(v) for v in target_offset]
        scale = [1.0] * len(names) if target_scale is None else [float(v) for v in target_scale]
        if len(offset) != len(names) or len(scale) != len(names) or min(scale) <= 0:
            raise ValueError(
                f"jet_regression: target_offset and target_scale need {len(names)} values "
                f"(scales > 0), found {offset!r} and {scale!r}"
            )
        self.label_names = names
        self.target_key = names[0]
        self.gaussian = bool(gaussian)
        self.loss_name = loss
        self.huber_delta = float(huber_delta)
        self.register_buffer("offset", torch.tensor(offset), persistent=False)
        self.register_buffer("scale", torch.tensor(scale), persistent=False)
        self.net = mlp(in_features, hidden, len(names) * (2 if self.gaussian else 1), dropout)
        self.config = {
            "in_features": int(in_features),
            "targets": list(names),
            "gaussian": self.gaussian,
            "loss": loss,
            "huber_delta": self.huber_delta,
            "target_offset": offset,
            "target_scale": scale,
            "hidden": [int(size) for size in hidden],
            "dropout": float(dropout),
        }

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("mean", "log_variance") if self.gaussian else ("mean",)

    def data_targets(self) -> tuple[str, ...]:
        """Every target the head regresses."""
        return self.label_names

    def collector(self, name: str, data_label_names: Sequence[str]) -> Collector:
        """Collects predicted and true targets with the jets' detector- and particle-level pT
        and mass."""
        from heads.evaluation.jet_regression import JetRegressionCollector

        return JetRegressionCollector(name, self)

    @classmethod
    def score(
        cls, predictions: HeadPredictions, folder: Path | None, settings: ScoreSettings
    ) -> Scored:
        """See :func:`heads.evaluation.jet_regression.score`."""
        from heads.evaluation.jet_regression import score

        return score(predictions, folder, settings)

    def forward(self, features: Features, batch: JetBatch) -> dict[str, torch.Tensor]:
        raw = self.net(features.jet)
        count = len(self.label_names)
        mean = raw[:, :count] * self.scale + self.offset
        if not self.gaussian:
            return {"mean": mean}
        log_variance = raw[:, count:].clamp(*_LOG_VARIANCE_RANGE) + 2 * torch.log(self.scale)
        return {"mean": mean, "log_variance": log_variance}

    def stacked_targets(self, batch: JetBatch) -> torch.Tensor:
        """The targets stacked to ``[B, T]`` (float).

        Raises:
            KeyError: a target is missing.
            ValueError: a target is not shaped ``[B]``.
        """
        columns = []
        for name in self.label_names:
            value = self.target(batch, name)
            if value.dim() == 2 and value.shape[1] == 1:
                value = value[:, 0]
            if tuple(value.shape) != (len(batch),):
                raise ValueError(
                    f"jet_regression: target {name!r}: expected shape [{len(batch)}], "
                    f"found {tuple(value.shape)}"
                )
            columns.append(value.float())
        return torch.stack(columns, dim=1)

    def loss(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> torch.Tensor:
        target = self.stacked_targets(batch)
        valid = torch.isfinite(target)
        standard = (torch.nan_to_num(target) - self.offset) / self.scale
        predicted = (outputs["mean"] - self.offset) / self.scale
        if self.gaussian:
            log_variance = outputs["log_variance"] - 2 * torch.log(self.scale)
            per_value = 0.5 * (
                log_variance + (predicted - standard) ** 2 * torch.exp(-log_variance)
            )
        elif self.loss_name == "huber":
            per_value = F.huber_loss(predicted, standard, reduction="none", delta=self.huber_delta)
        else:
            per_value = (predicted - standard) ** 2
        return masked_mean(per_value, valid)

    @torch.no_grad()
    def metrics(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> dict[str, torch.Tensor]:
        target = self.stacked_targets(batch)
        valid = torch.isfinite(target)
        error = outputs["mean"] - torch.nan_to_num(target)
        result: dict[str, torch.Tensor] = {}
        for index, name in enumerate(self.label_names):
            column_error = error[:, index]
            column_valid = valid[:, index]
            result[f"{name}/mae"] = masked_mean(column_error.abs(), column_valid)
            result[f"{name}/rmse"] = masked_mean(column_error**2, column_valid).sqrt()
        return result
