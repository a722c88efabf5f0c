"""How a study scores one trained model on its test jets: every scalar metric of
``foundation evaluate`` as flat ``<head>/<metric>`` numbers, and the raw scores of its binary
jet classifiers (for ROC curves drawn over several runs).

The run folder (which model, which jets) is the training side's business
(:mod:`foundation.training.run_scores`); this module only sees a model and its batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from foundation.data.batch import JetBatch
from foundation.model import Model

if TYPE_CHECKING:
    from heads.base import Head

SIGNAL_EFFICIENCIES: tuple[float, ...] = (0.3, 0.5)
"""Signal efficiencies εS at which a study reports the background rejection 1/εB."""


def is_binary_jet_classifier(head: Head) -> bool:
    """Whether ``head`` gives one signal probability per jet (a two-class jet classifier that
    declares its ``binary_output`` and reads its labels with ``class_indices``)."""
    return (
        head.level == "jet"
        and head.binary_output is not None
        and callable(getattr(head, "class_indices", None))
    )


def evaluation_scalars(
    model: Model,
    batches: Iterable[JetBatch],
    label_names: Sequence[str] | None = None,
    efficiencies: Sequence[float] = SIGNAL_EFFICIENCIES,
) -> dict[str, float]:
    """Every scalar metric of ``foundation evaluate`` of every head, over ``batches``.

    Named ``<head>/<metric>``, nested names joined by ``/``; counts and binned series are left
    out. Jet classification: accuracy, AUC, 1/εB at each of ``efficiencies``; jet regression:
    MAE, RMSE, median response, σ68 and IQR/2 of the model and of the detector-level reference;
    particle classification: accuracy, AUC and per-class efficiency, purity and AUC; pair
    classification: pair AUC and vertex finding; masked particles: MSE. No bootstrap.

    Args:
        model: the model to score (any heads).
        batches: the test jets.
        label_names: the data's class names (for per-class metric names).
        efficiencies: signal efficiencies εS of the rejections.
    """
    from foundation.evaluation.evaluate import evaluate_predictions, flatten_metrics
    from foundation.evaluation.predict import predict

    predictions = predict(model, batches, label_names=label_names)
    report = evaluate_predictions(predictions, None, n_bootstrap=0, efficiencies=efficiencies)
    metrics: dict[str, float] = {}
    for head, entry in report.items():
        flatten_metrics(entry["metrics"], head, metrics)
    return metrics


@torch.no_grad()
def binary_classifier_scores(
    model: Model, batches: Iterable[JetBatch]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Signal probabilities and labels of each binary jet-classification head, over ``batches``.

    Jets without a label (class index < 0) are left out.

    Returns:
        ``{head: (scores, labels)}``; empty (``batches`` not read) without such a head.

    Shapes:
        - scores: ``[M]`` float64, M the labelled jets of ``batches``.
        - labels: ``[M]`` class indices (1: signal).
    """
    wanted = [name for name, head in model.heads.items() if is_binary_jet_classifier(head)]
    collected: dict[str, tuple[list, list]] = {name: ([], []) for name in wanted}
    for batch in batches if wanted else ():
        outputs = model(batch, heads=wanted)
        for name in wanted:
            labels = model.heads[name].class_indices(batch)
            keep = labels >= 0
            signal = outputs[name][model.heads[name].binary_output]
            collected[name][0].append(signal[keep].double().numpy())
            collected[name][1].append(labels[keep].numpy())
    return {name: (np.concatenate(s), np.concatenate(y)) for name, (s, y) in collected.items()}
