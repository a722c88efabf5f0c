"""Evaluation of jet classification: accuracy, AUC, 1/εB at εS; ROC and score plots.

Collected arrays: ``scores`` ``[M]`` (binary: probability of ``label_names[1]``) or ``[M, K]``,
and ``labels`` ``[M]`` (class indices into the head's labels, -1 unlabelled). Multi-class
metrics compare each signal class with the background class (``label_names[0]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from foundation.evaluation import plots
from foundation.evaluation.metrics import classification_metrics, signal_vs_background_score
from heads.predictions import (
    Collector,
    HeadPredictions,
    PredictionStep,
    Scored,
    ScoreSettings,
    class_labels,
    to_numpy,
)


class JetClassificationCollector(Collector):
    """Scores and class labels of each jet (labels mapped to the head's classes by name)."""

    def collect_batch(self, outputs: Mapping[str, torch.Tensor], step: PredictionStep) -> None:
        if "probability" in outputs:
            scores = outputs["probability"]
        elif "probabilities" in outputs:
            scores = outputs["probabilities"]
        elif "logit" in outputs:
            scores = torch.sigmoid(outputs["logit"])
        else:
            scores = torch.softmax(outputs["logits"], dim=-1)
        labels = class_labels(self.head.target(step.batch), self.lookup)
        self.add(scores=to_numpy(scores), labels=labels)


def score(prediction: HeadPredictions, folder: Path | None, settings: ScoreSettings) -> Scored:
    """Accuracy, AUC and background rejections (bootstrapped); ROC and score PNGs."""
    scores, labels = prediction.arrays.get("scores"), prediction.arrays.get("labels")
    names = prediction.label_names
    if scores is None or labels is None:
        return {"n": 0}, []
    metrics = classification_metrics(
        scores,
        labels,
        names,
        efficiencies=settings.efficiencies,
        n_bootstrap=settings.n_bootstrap,
        seed=settings.seed,
    )
    if folder is None:
        return metrics, []
    keep = labels >= 0
    scores, labels = scores[keep], labels[keep]
    if scores.ndim == 1:
        curves = {f"{names[1]} vs {names[0]}": (scores, labels == 1)}
        panels = {prediction.name: {names[0]: scores[labels == 0], names[1]: scores[labels == 1]}}
    else:
        curves, panels = {}, {}
        for signal in range(1, len(names)):
            rows = (labels == signal) | (labels == 0)
            discriminant = signal_vs_background_score(scores[rows], signal, 0)
            curves[f"{names[signal]} vs {names[0]}"] = (discriminant, labels[rows] == signal)
            panels[f"{names[signal]} vs {names[0]}"] = {
                names[0]: discriminant[labels[rows] == 0],
                names[signal]: discriminant[labels[rows] == signal],
            }
    figures = [
        plots.plot_roc(curves, folder / f"{prediction.name}_roc.png", title=prediction.name),
        plots.plot_scores(panels, folder / f"{prediction.name}_scores.png"),
    ]
    return metrics, figures
