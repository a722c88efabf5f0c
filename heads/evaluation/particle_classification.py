"""Evaluation of particle classification: per-class efficiency, purity and AUC; score plots.

Collected arrays: ``probabilities`` ``[P, K]`` and ``labels`` ``[P]`` over the real particles
(-1 unlabelled), with their ``jet`` ``[P]`` (numbered over the whole loader).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from foundation.evaluation import plots
from foundation.evaluation.particles import particle_metrics
from heads.predictions import (
    Collector,
    HeadPredictions,
    PredictionStep,
    Scored,
    ScoreSettings,
    to_numpy,
)


class ParticleClassificationCollector(Collector):
    """Class probabilities and labels of each real particle, with its jet."""

    def collect_batch(self, outputs: Mapping[str, torch.Tensor], step: PredictionStep) -> None:
        batch, jet_offset = step.batch, step.jet_offset
        mask = batch.mask
        target = self.head.target(batch)
        labels = torch.where(mask, target.long(), -1)[mask]
        rows = torch.arange(len(batch), device=mask.device).unsqueeze(1).expand_as(mask)[mask]
        self.add(
            probabilities=to_numpy(outputs["probabilities"][mask]),
            labels=labels.cpu().numpy(),
            jet=rows.cpu().numpy() + jet_offset,
        )


def score(prediction: HeadPredictions, folder: Path | None, settings: ScoreSettings) -> Scored:
    """Per-class efficiency, purity and AUC, macro AUC; one score panel per class."""
    arrays = prediction.arrays
    names = prediction.label_names
    if "probabilities" not in arrays:
        return {"n": 0}, []
    metrics = particle_metrics(arrays["probabilities"], arrays["labels"], names)
    if folder is None:
        return metrics, []
    labels = arrays["labels"]
    panels = {
        f"P({name})": {
            name: arrays["probabilities"][labels == k, k],
            "others": arrays["probabilities"][(labels >= 0) & (labels != k), k],
        }
        for k, name in enumerate(names)
    }
    path = plots.plot_scores(panels, folder / f"{prediction.name}_scores.png", xlabel="probability")
    return metrics, [path]
