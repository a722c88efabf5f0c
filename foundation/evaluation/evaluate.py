"""Score every head of a model and write ``metrics.json`` and PNG plots into a folder.

:func:`evaluate_model` runs a model over a loader (:func:`~foundation.evaluation.predict.predict`)
and dispatches each head on its kind:

- jet classification: accuracy, AUC, 1/εB at εS (multi-class: per signal class against the
  background class); ROC and score plots;
- jet regression: MAE and RMSE of each target; median response, σ68 and IQR/2, overall and in
  bins of true pT, next to the detector-level reference (for a ratio target such as
  ``log_pt_ratio``: of the corrected jet pT, reco × exp(prediction)); response plots;
- particle classification: per-class efficiency, purity and AUC, macro AUC; score plots;
- pair classification: pair AUC, vertex-finding efficiency and purity; score plot;
- masked particle: reconstruction MSE, overall and per feature.

:func:`evaluate_predictions` does the same on already collected predictions (for the training
engine's validation, without plots). In ``metrics.json`` a metric that is undefined (NaN, e.g.
an AUC with one class) or infinite (a rejection with no background left) is ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from foundation import __version__
from foundation.data.batch import JetBatch
from foundation.evaluation import plots
from foundation.evaluation.metrics import (
    DEFAULT_EFFICIENCIES,
    classification_metrics,
    signal_vs_background_score,
)
from foundation.evaluation.particles import pair_metrics, particle_metrics
from foundation.evaluation.predict import RATIO_TARGETS, HeadPredictions, predict
from foundation.evaluation.regression import DEFAULT_BINS, regression_metrics, response
from foundation.io import jsonable, write_json  # noqa: F401 - jsonable: the baselines' import
from foundation.model import Model

METRICS_FILE = "metrics.json"
EVALUATION_FORMAT = "foundation-evaluation"
EVALUATION_VERSION = 1

_REFERENCES = {"jet_truth_pt": "reco_pt", "jet_truth_mass": "reco_mass"}
"""Detector-level reference of each known regression target."""


def evaluate_predictions(
    predictions: Mapping[str, HeadPredictions],
    out_dir: str | Path | None = None,
    *,
    n_bootstrap: int = 100,
    seed: int = 0,
    bins: int | Sequence[float] = DEFAULT_BINS,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    threshold: float = 0.5,
) -> dict[str, dict[str, Any]]:
    """Metrics (and, with ``out_dir``, PNG plots) of collected predictions, head by head.

    Args:
        predictions: from :func:`~foundation.evaluation.predict.predict`.
        out_dir: folder for the PNGs (``<head>_<plot>.png``); None for no plots.
        n_bootstrap: bootstrap resamples of the jet-level metrics (0: none).
        seed: bootstrap seed.
        bins: pT bins of regression heads (a count of equal-population bins, or edges).
        efficiencies: signal efficiencies of the background rejections.
        threshold: pair score above which two tracks are joined in vertex finding.

    Returns:
        ``{head: {"kind", "level", "label_names", "metrics", "plots"}}``; a head skipped for
        lack of targets has ``"skipped"`` (the reason) and empty metrics.
    """
    folder = None if out_dir is None else Path(out_dir)
    report = {}
    for name, prediction in predictions.items():
        entry = {"kind": prediction.kind, "level": prediction.level}
        if prediction.skipped is not None:
            report[name] = {**entry, "skipped": prediction.skipped, "metrics": {}, "plots": []}
            continue
        score = _SCORERS[prediction.kind]
        metrics, figures = score(
            prediction,
            folder,
            n_bootstrap=n_bootstrap,
            seed=seed,
            bins=bins,
            efficiencies=efficiencies,
            threshold=threshold,
        )
        report[name] = {
            **entry,
            "label_names": list(prediction.label_names),
            "metrics": metrics,
            "plots": [path.name for path in figures],
        }
    return report


def evaluate_model(
    model: Model,
    loader: Iterable[JetBatch],
    out_dir: str | Path,
    *,
    heads: Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    n_bootstrap: int = 100,
    seed: int = 0,
    bins: int | Sequence[float] = DEFAULT_BINS,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    threshold: float = 0.5,
    info: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate every head of ``model`` on ``loader``; write ``metrics.json`` and PNGs.

    The folder is written atomically (a temporary sibling renamed into place); an existing
    non-empty ``out_dir`` is replaced only with ``overwrite``.

    Args:
        model: the model (run in eval mode, without gradients).
        loader: yields :class:`~foundation.data.batch.JetBatch` es.
        out_dir: output folder.
        heads: heads to evaluate (default: every head that can be scored).
        label_names: the data's class names (default: from the loader's cache).
        n_bootstrap: bootstrap resamples of the jet-level metrics.
        seed: seed of the bootstrap and of particle masking.
        bins: pT bins of regression heads.
        efficiencies: signal efficiencies of the background rejections.
        threshold: pair score threshold of vertex finding.
        info: extra entries for ``metrics.json`` (checkpoint, data files...).
        overwrite: replace an existing ``out_dir``.

    Returns:
        The content of ``metrics.json``: ``{"format", "version", "library_version", "n_jets",
        "settings", "heads": {head: {...}}, **info}``.

    Raises:
        OutputExistsError: ``out_dir`` holds files and ``overwrite`` is False.
    """
    from foundation.hub.atomic import atomic_folder

    target = Path(out_dir)
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        from foundation.errors import OutputExistsError

        raise OutputExistsError(target, "an evaluation")  # before spending time on the model
    predictions = predict(model, loader, heads=heads, label_names=label_names, seed=seed)
    settings = {
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "bins": int(bins) if isinstance(bins, int | np.integer) else [float(b) for b in bins],
        "efficiencies": [float(eff) for eff in efficiencies],
        "threshold": threshold,
    }
    with atomic_folder(target, overwrite=overwrite, what="an evaluation") as temporary:
        report = evaluate_predictions(
            predictions,
            temporary,
            n_bootstrap=n_bootstrap,
            seed=seed,
            bins=bins,
            efficiencies=efficiencies,
            threshold=threshold,
        )
        content = {
            "format": EVALUATION_FORMAT,
            "version": EVALUATION_VERSION,
            "library_version": __version__,
            "n_jets": max((p.n_jets for p in predictions.values()), default=0),
            "settings": settings,
            "heads": report,
            **dict(info or {}),
        }
        write_json(temporary / METRICS_FILE, content)
    return json.loads((target / METRICS_FILE).read_text())


# ---------------------------------------------------------------------------------- scorers
Scored = tuple[dict[str, Any], list[Path]]


def _jet_classification(
    prediction: HeadPredictions,
    folder: Path | None,
    *,
    n_bootstrap: int,
    seed: int,
    efficiencies: Sequence[float],
    **_: Any,
) -> Scored:
    scores, labels = prediction.arrays.get("scores"), prediction.arrays.get("labels")
    names = prediction.label_names
    if scores is None or labels is None:
        return {"n": 0}, []
    metrics = classification_metrics(
        scores,
        labels,
        names,
        efficiencies=efficiencies,
        n_bootstrap=n_bootstrap,
        seed=seed,
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


def flatten_metrics(value: Any, name: str, out: dict[str, float]) -> None:
    """Add every scalar of a nested metrics dict to ``out`` as ``<name>/<key>/...``; counts
    (``n``, ``n_*``), strings and binned series are left out."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key != "n" and not str(key).startswith("n_"):
                flatten_metrics(item, f"{name}/{key}", out)
    elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        out[name] = float(value)


def _error_summary(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    error = predicted - true
    error = error[np.isfinite(error)]
    return {
        "n": int(error.size),
        "mae": float(np.mean(np.abs(error))) if error.size else float("nan"),
        "rmse": float(np.sqrt(np.mean(error**2))) if error.size else float("nan"),
    }


def _physical(
    target: str, predicted: np.ndarray, true: np.ndarray, arrays: Mapping[str, np.ndarray]
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(quantity, predicted, true, detector reference) on which to measure the response of a
    target, or None when it has no response (a signed target without its truth)."""
    if target in RATIO_TARGETS:
        quantity, log = RATIO_TARGETS[target]
        truth, reco = arrays.get(f"truth_{quantity}"), arrays.get(f"reco_{quantity}")
        if truth is None or reco is None:
            return None
        return (
            f"jet_truth_{quantity}",
            reco * (np.exp(predicted) if log else predicted),
            truth,
            reco,
        )
    finite = true[np.isfinite(true)]
    if finite.size and not (finite > 0).all():
        return None
    return target, predicted, true, arrays.get(_REFERENCES.get(target, ""))


def _jet_regression(
    prediction: HeadPredictions,
    folder: Path | None,
    *,
    n_bootstrap: int,
    seed: int,
    bins: int | Sequence[float],
    **_: Any,
) -> Scored:
    arrays = prediction.arrays
    if "predicted" not in arrays:
        return {"n": 0}, []
    metrics: dict[str, Any] = {}
    figures: list[Path] = []
    binned_by_pt = "truth_pt" in arrays
    for column, target in enumerate(prediction.label_names):
        predicted, true = arrays["predicted"][:, column], arrays["true"][:, column]
        summary: dict[str, Any] = _error_summary(predicted, true)
        physical = _physical(target, predicted, true, arrays)
        metrics[target] = summary
        if physical is None:
            summary["note"] = "no response metrics: the target is not a positive quantity"
            continue
        quantity, value, truth, reference = physical
        summary["quantity"] = quantity
        summary["binned_by"] = "jet_truth_pt" if binned_by_pt else quantity
        result = regression_metrics(
            value,
            truth,
            reference=reference,
            binning=arrays["truth_pt"] if binned_by_pt else truth,
            bins=bins,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        mae, rmse = result.pop("mae"), result.pop("rmse")
        if quantity != target:  # the errors of the target itself are above; these are in GeV
            summary["quantity_mae"], summary["quantity_rmse"] = mae, rmse
        summary.update(result)
        if folder is None:
            continue
        series = {"model": summary["model_binned"]}
        responses = {"model": response(value, truth)}
        if reference is not None:
            series["detector"] = summary["reference_binned"]
            responses["detector"] = response(reference, truth)
        stem = f"{prediction.name}_{target}"
        xlabel = "true jet $p_T$ [GeV]" if binned_by_pt else quantity
        figures.append(
            plots.plot_response_vs_binned(
                series, folder / f"{stem}_response_vs_pt.png", xlabel=xlabel
            )
        )
        figures.append(
            plots.plot_response_histogram(
                responses,
                folder / f"{stem}_response.png",
                xlabel=f"response: predicted / true {quantity}",
            )
        )
    return metrics, figures


def _particle_classification(prediction: HeadPredictions, folder: Path | None, **_: Any) -> Scored:
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


def _pair_classification(
    prediction: HeadPredictions, folder: Path | None, *, threshold: float, **_: Any
) -> Scored:
    arrays = prediction.arrays
    if "scores" not in arrays:
        return {"n_pairs": 0}, []
    num_tracks = len(arrays["node_jet"])
    metrics = pair_metrics(
        arrays["scores"],
        arrays["labels"],
        arrays["first"],
        arrays["second"],
        num_tracks=num_tracks,
        true_vertex=arrays.get("node_vertex"),
        track_jet=arrays["node_jet"],
        threshold=threshold,
    )
    if folder is None:
        return metrics, []
    names = prediction.label_names
    labels = arrays["labels"]
    panels = {
        prediction.name: {
            names[0]: arrays["scores"][labels == 0],
            names[1]: arrays["scores"][labels == 1],
        }
    }
    path = plots.plot_scores(panels, folder / f"{prediction.name}_scores.png")
    return metrics, [path]


def _masked_particle(prediction: HeadPredictions, folder: Path | None, **_: Any) -> Scored:
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


_SCORERS = {
    "jet_classification": _jet_classification,
    "jet_regression": _jet_regression,
    "particle_classification": _particle_classification,
    "pair_classification": _pair_classification,
    "masked_particle": _masked_particle,
}
