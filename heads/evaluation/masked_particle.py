"""Evaluation of masked-particle modelling: reconstruction MSE, overall and per feature.

Collected arrays: ``squared_error`` ``[P', F]`` over the masked particles (the batch is masked
with :func:`heads.masked_particle.mask_particles`, seeded, by the evaluation).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from heads.masked_particle import MASK_SUFFIX
from heads.predictions import (
    Collector,
    HeadPredictions,
    PredictionStep,
    Scored,
    ScoreSettings,
    to_numpy,
)


class MaskedParticleCollector(Collector):
    """Squared reconstruction error of each masked particle, per feature."""

    def collect_batch(self, outputs: Mapping[str, torch.Tensor], step: PredictionStep) -> None:
        batch = step.batch
        key = self.head.target_key
        original = self.head.target(batch)
        selected = self.head.target(batch, key + MASK_SUFFIX).bool() & batch.mask
        error = (outputs["reconstruction"] - original)[selected] ** 2
        if not self.label_names:
            names = batch.feature_names or tuple(f"feature_{k}" for k in range(error.shape[-1]))
            self.label_names = tuple(names)
        self.add(squared_error=to_numpy(error))


def score(prediction: HeadPredictions, folder: Path | None, settings: ScoreSettings) -> Scored:
    """Mean squared error over the masked particles, overall and per feature (no plots)."""
    error = prediction.arrays.get("squared_error")
    if error is None or not len(error):
        return {"n": 0, "mse": float("nan")}, []
    names = prediction.label_names or tuple(f"feature_{k}" for k in range(error.shape[1]))
    per_feature = error.mean(axis=0)
    return {
        "n": len(error),
        "mse": float(error.mean()),
        "per_feature": {name: float(v) for name, v in zip(names, per_feature, strict=True)},
    }, []
