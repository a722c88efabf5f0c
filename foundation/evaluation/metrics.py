"""Jet classification metrics of the field: accuracy, ROC AUC, background rejection 1/εB at εS.

Binary scores are the probability of the signal class (label 1). Multi-class scores are class
probabilities; a signal class is compared with the background class (QCD) through the
ParT score ``s_sig / (s_sig + s_bkg)`` on the jets of those two classes only.

Everything is numpy in, floats out; scikit-learn computes the ROC curves and AUCs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from foundation.evaluation.bootstrap import bootstrap

DEFAULT_EFFICIENCIES: tuple[float, ...] = (0.3, 0.5)
"""Signal efficiencies εS at which the background rejection 1/εB is reported."""


def rejection_key(signal_efficiency: float) -> str:
    """Name of the rejection metric at ``signal_efficiency`` (``"rejection_at_0.3"``)."""
    return f"rejection_at_{signal_efficiency:g}"


def _binary_inputs(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must have one value per jet: found {scores.shape} and "
            f"{labels.shape}"
        )
    return scores, labels.astype(bool)


def _has_both_classes(labels: np.ndarray) -> bool:
    positives = int(labels.sum())
    return 0 < positives < labels.size


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of correct predictions.

    Args:
        scores: binary probabilities of class 1 ``[M]`` (threshold 0.5) or class scores
            ``[M, K]`` (argmax).
        labels: true class indices ``[M]``.

    Returns:
        The accuracy; NaN for no jets.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        return float("nan")
    predicted = scores.argmax(axis=1) if scores.ndim == 2 else (scores.reshape(-1) > 0.5)
    return float(np.mean(predicted.astype(np.int64) == labels.astype(np.int64)))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve.

    Binary (``scores [M]``, labels in {0, 1}): ``sklearn.metrics.roc_auc_score``. Multi-class
    (``scores [M, K]``, labels class indices): the macro average of the one-vs-rest AUCs of the
    classes present — equal to ``roc_auc_score(labels, scores, multi_class="ovr")`` when every
    class is present, and still defined when some are not.

    Returns:
        The AUC; NaN when it is undefined (a single class).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2:
        labels = np.asarray(labels).reshape(-1)
        per_class = [roc_auc(scores[:, k], labels == k) for k in range(scores.shape[1])]
        finite = [value for value in per_class if np.isfinite(value)]
        return float(np.mean(finite)) if finite else float("nan")
    scores, positive = _binary_inputs(scores, labels)
    if not _has_both_classes(positive):
        return float("nan")
    return float(roc_auc_score(positive, scores))


def roc_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve as (signal efficiency εS, background efficiency εB), εS increasing.

    For each εS only the lowest εB is kept (the best working point), so that the curve can be
    interpolated in εS.

    Shapes:
        - scores, labels: ``[M]``; outputs: ``[P]`` each (empty for a single class).
    """
    scores, positive = _binary_inputs(scores, labels)
    if not _has_both_classes(positive):
        return np.zeros(0), np.zeros(0)
    background_eff, signal_eff, _ = roc_curve(positive, scores)
    signal_eff, first = np.unique(signal_eff, return_index=True)  # εB is non-decreasing
    return signal_eff, background_eff[first]


def background_rejection(scores: np.ndarray, labels: np.ndarray, signal_efficiency: float) -> float:
    """Background rejection 1/εB at the signal efficiency εS, interpolated on the ROC curve.

    εB is interpolated linearly in εS between the points of ``sklearn.metrics.roc_curve``.

    Args:
        scores: signal scores ``[M]`` (higher = more signal-like).
        labels: 1 for signal, 0 for background ``[M]``.
        signal_efficiency: εS in (0, 1].

    Returns:
        1/εB; ``inf`` when no background passes at that efficiency, NaN for a single class.

    Raises:
        ValueError: ``signal_efficiency`` is outside (0, 1].
    """
    if not 0.0 < signal_efficiency <= 1.0:
        raise ValueError(f"signal_efficiency must be in (0, 1], found {signal_efficiency}")
    signal_eff, background_eff = roc_points(scores, labels)
    if signal_eff.size == 0:
        return float("nan")
    eff_b = float(np.interp(signal_efficiency, signal_eff, background_eff))
    return float("inf") if eff_b <= 0.0 else 1.0 / eff_b


def signal_vs_background_score(
    probabilities: np.ndarray, signal: int, background: int = 0
) -> np.ndarray:
    """The ParT discriminant ``s_sig / (s_sig + s_bkg)`` from class scores (0.5 where both are 0).

    Shapes:
        - probabilities: ``[M, K]``; output: ``[M]``.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    sig, bkg = probabilities[:, signal], probabilities[:, background]
    total = sig + bkg
    return np.divide(sig, total, out=np.full(sig.shape, 0.5), where=total > 0)


def _binary_vector(
    scores: np.ndarray, labels: np.ndarray, efficiencies: Sequence[float]
) -> np.ndarray:
    """[accuracy, auc, rejection at each efficiency] of binary scores, from one ROC curve."""
    scores, positive = _binary_inputs(scores, labels)
    acc = float(np.mean((scores > 0.5) == positive)) if positive.size else float("nan")
    if not _has_both_classes(positive):
        return np.array([acc, np.nan, *([np.nan] * len(efficiencies))])
    auc = float(roc_auc_score(positive, scores))
    signal_eff, background_eff = roc_points(scores, positive)
    eff_b = np.interp(np.asarray(efficiencies, dtype=np.float64), signal_eff, background_eff)
    with np.errstate(divide="ignore"):
        rejection = np.where(eff_b > 0, 1.0 / np.maximum(eff_b, 1e-300), np.inf)
    return np.array([acc, auc, *rejection])


def binary_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy, AUC and 1/εB at each εS of binary scores, each with a bootstrap ``*_std``.

    Args:
        scores: signal probabilities ``[M]``.
        labels: 1 for signal, 0 for background ``[M]``.
        efficiencies: signal efficiencies of the rejections.
        n_bootstrap: bootstrap resamples for the uncertainties (0: none).
        seed: bootstrap seed.

    Returns:
        ``{"n", "n_signal", "accuracy", "auc", "rejection_at_0.3", ..., "<name>_std", ...}``.
    """
    scores, positive = _binary_inputs(scores, labels)
    names = ["accuracy", "auc", *(rejection_key(eff) for eff in efficiencies)]
    values = _binary_vector(scores, positive, efficiencies)
    result: dict[str, float] = {"n": int(positive.size), "n_signal": int(positive.sum())}
    result.update({name: float(value) for name, value in zip(names, values, strict=True)})
    if n_bootstrap > 0:
        _, std = bootstrap(
            lambda s, y: _binary_vector(s, y, efficiencies),
            scores,
            positive,
            n=n_bootstrap,
            seed=seed,
        )
        result.update({f"{name}_std": float(value) for name, value in zip(names, std, strict=True)})
    return result


def classification_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    *,
    background: int = 0,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Every jet classification metric of a head's scores (binary or multi-class).

    Jets with a negative label (unlabelled) are left out.

    Binary (``scores [M]``, the probability of ``label_names[1]``): see :func:`binary_metrics`.
    Multi-class (``scores [M, K]``): ``accuracy``, ``auc`` (macro one-vs-rest, see
    :func:`roc_auc`) with bootstrap ``*_std``, and ``signal_vs_background``: for every class
    but ``background``, the :func:`binary_metrics` of ``s_sig / (s_sig + s_bkg)`` on the jets
    of the two classes.

    Args:
        scores: ``[M]`` or ``[M, K]``.
        labels: class indices into ``label_names`` ``[M]`` (-1 = unlabelled).
        label_names: the class names.
        background: index of the background class of multi-class rejections.
        efficiencies: signal efficiencies of the rejections.
        n_bootstrap: bootstrap resamples (0: no uncertainties).
        seed: bootstrap seed.

    Raises:
        ValueError: scores and labels do not match, or labels outside ``label_names``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if len(scores) != len(labels):
        raise ValueError(
            f"scores and labels must have one row per jet: found {len(scores)} and {len(labels)}"
        )
    if labels.size and labels.max() >= len(label_names):
        raise ValueError(
            f"labels must index label_names {tuple(label_names)}, found up to {labels.max()}"
        )
    keep = labels >= 0
    scores, labels = scores[keep], labels[keep]
    if scores.ndim == 1:
        return {
            "signal": label_names[1],
            "background": label_names[0],
            **binary_metrics(
                scores, labels, efficiencies=efficiencies, n_bootstrap=n_bootstrap, seed=seed
            ),
        }
    if scores.shape[1] != len(label_names):
        raise ValueError(
            f"scores have {scores.shape[1]} columns but there are {len(label_names)} label names"
        )

    def overall(s: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.array([accuracy(s, y), roc_auc(s, y)])

    values = overall(scores, labels)
    result: dict[str, Any] = {
        "n": int(labels.size),
        "accuracy": float(values[0]),
        "auc": float(values[1]),
    }
    if n_bootstrap > 0:
        _, std = bootstrap(overall, scores, labels, n=n_bootstrap, seed=seed)
        result["accuracy_std"], result["auc_std"] = float(std[0]), float(std[1])
    result["background"] = label_names[background]
    pairs: dict[str, Any] = {}
    for signal in range(len(label_names)):
        if signal == background:
            continue
        rows = (labels == signal) | (labels == background)
        pairs[label_names[signal]] = binary_metrics(
            signal_vs_background_score(scores[rows], signal, background),
            labels[rows] == signal,
            efficiencies=efficiencies,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    result["signal_vs_background"] = pairs
    return result
