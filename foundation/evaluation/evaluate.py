"""Score every head of a model and write ``metrics.json`` and PNG plots into a folder.

:func:`evaluate_model` runs a model over a loader (:func:`~foundation.evaluation.predict.predict`)
and lets each head score its own predictions: :meth:`heads.base.Head.score` of the head class
registered under the predictions' ``kind`` (the built-in heads' metrics and plots are described
in :mod:`heads.evaluation`: jet classification, jet regression, particle and pair
classification, masked particles).

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
from foundation.evaluation.metrics import DEFAULT_EFFICIENCIES
from foundation.evaluation.predict import HeadPredictions, predict
from foundation.evaluation.regression import DEFAULT_BINS
from foundation.io import jsonable, write_json  # jsonable: the baselines import it from here
from foundation.model import Model
from heads.predictions import Scored, ScoreSettings
from heads.registry import get_head_class

METRICS_FILE = "metrics.json"
EVALUATION_FORMAT = "foundation-evaluation"
EVALUATION_VERSION = 1

__all__ = [
    "METRICS_FILE",
    "Scored",
    "evaluate_model",
    "evaluate_predictions",
    "flatten_metrics",
    "jsonable",
    "write_json",
]


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
        predictions: from :func:`~foundation.evaluation.predict.predict` (or predictions of
            the same form, e.g. a baseline's); each is scored by the head class registered
            under its ``kind``.
        out_dir: folder for the PNGs (``<head>_<plot>.png``); None for no plots.
        n_bootstrap: bootstrap resamples of the jet-level metrics (0: none).
        seed: bootstrap seed.
        bins: pT bins of regression heads (a count of equal-population bins, or edges).
        efficiencies: signal efficiencies of the background rejections.
        threshold: pair score above which two tracks are joined in vertex finding.

    Returns:
        ``{head: {"kind", "level", "label_names", "metrics", "plots"}}``; a head skipped for
        lack of targets has ``"skipped"`` (the reason) and empty metrics.

    Raises:
        KeyError: a prediction's ``kind`` is not a registered head.
    """
    folder = None if out_dir is None else Path(out_dir)
    settings = ScoreSettings(n_bootstrap, seed, bins, efficiencies, threshold)
    report = {}
    for name, prediction in predictions.items():
        entry = {"kind": prediction.kind, "level": prediction.level}
        if prediction.skipped is not None:
            report[name] = {**entry, "skipped": prediction.skipped, "metrics": {}, "plots": []}
            continue
        metrics, figures = get_head_class(prediction.kind).score(prediction, folder, settings)
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


def flatten_metrics(value: Any, name: str, out: dict[str, float]) -> None:
    """Add every scalar of a nested metrics dict to ``out`` as ``<name>/<key>/...``; counts
    (``n``, ``n_*``), strings and binned series are left out."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key != "n" and not str(key).startswith("n_"):
                flatten_metrics(item, f"{name}/{key}", out)
    elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        out[name] = float(value)
