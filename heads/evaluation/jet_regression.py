"""Evaluation of jet regression: errors, response and resolution, next to the detector jet.

Collected arrays: ``predicted`` and ``true`` ``[M, T]`` (a ratio target of
:data:`RATIO_TARGETS` missing from the batch is computed from the truth and the detector-level
jet), the detector-level ``reco_pt`` and ``reco_mass`` ``[M]`` (from the raw jet inputs
``jet_pt_log`` / ``jet_mass_log1p`` when the loader carries them, else summed from the
constituents' 4-vectors), and ``truth_pt`` / ``truth_mass`` ``[M]`` when the batches carry
``jet_truth_pt`` / ``jet_truth_mass``.

Scored: MAE and RMSE of each target; median response, σ68 and IQR/2, overall and in bins of true
pT, next to the detector-level reference (for a ratio target such as ``log_pt_ratio``: of the
corrected jet pT, reco × exp(prediction)); response plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from foundation.data.batch import JetBatch
from foundation.evaluation import plots
from foundation.evaluation.regression import regression_metrics, response
from heads.predictions import (
    Collector,
    HeadPredictions,
    PredictionStep,
    Scored,
    ScoreSettings,
    to_numpy,
)

RATIO_TARGETS: dict[str, tuple[str, bool]] = {
    "pt_ratio": ("pt", False),
    "mass_ratio": ("mass", False),
    "log_pt_ratio": ("pt", True),
    "log_mass_ratio": ("mass", True),
}
"""Regression targets defined as (the log of) particle-level truth over the detector-level jet
quantity, as the training computes them: name -> (quantity, logarithm)."""

_REFERENCES = {"jet_truth_pt": "reco_pt", "jet_truth_mass": "reco_mass"}
"""Detector-level reference of each known regression target."""


def ratio_target(name: str, truth: np.ndarray, reco: np.ndarray) -> np.ndarray:
    """A :data:`RATIO_TARGETS` value from truth and reco (NaN where undefined)."""
    _, log = RATIO_TARGETS[name]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((reco > 0) & (truth > 0), truth / reco, np.nan)
        return np.log(ratio) if log else ratio


def reco_jets(batch: JetBatch, raw_jet: torch.Tensor | None) -> dict[str, np.ndarray]:
    """Detector-level jet pT and mass: from the raw jet inputs when known, else the 4-vectors.

    Shapes:
        - raw_jet: ``[B, J]``
        - outputs: ``pt`` and ``mass`` ``[B]`` float64
    """
    vectors = torch.where(batch.mask.unsqueeze(-1), batch.vectors, 0.0).double().sum(dim=1)
    px, py, pz, energy = vectors.unbind(dim=-1)
    pt = torch.hypot(px, py)
    mass = torch.sqrt(torch.clamp(energy**2 - px**2 - py**2 - pz**2, min=0.0))
    reco = {"pt": pt.cpu().numpy(), "mass": mass.cpu().numpy()}
    names = list(batch.jet_feature_names)
    if raw_jet is not None and raw_jet.shape[-1] == len(names):
        raw = raw_jet.double().cpu().numpy()
        if "jet_pt_log" in names:
            reco["pt"] = np.exp(raw[:, names.index("jet_pt_log")])
        if "jet_mass_log1p" in names:
            reco["mass"] = np.expm1(raw[:, names.index("jet_mass_log1p")])
    return reco


class JetRegressionCollector(Collector):
    """Predicted and true targets of each jet, with its detector- and particle-level pT and mass."""

    def collect_batch(self, outputs: Mapping[str, torch.Tensor], step: PredictionStep) -> None:
        batch = step.batch
        reco = reco_jets(batch, step.raw_jet)
        truth = {
            quantity: batch.targets[f"jet_truth_{quantity}"].double().cpu().numpy().reshape(-1)
            for quantity in ("pt", "mass")
            if f"jet_truth_{quantity}" in batch.targets
        }
        columns = []
        for name in self.label_names:
            if name not in batch.targets and name in RATIO_TARGETS:
                quantity = RATIO_TARGETS[name][0]
                if quantity not in truth:
                    self.head.target(batch, f"jet_truth_{quantity}")  # raises a clear KeyError
                columns.append(ratio_target(name, truth[quantity], reco[quantity]))
            else:
                value = self.head.target(batch, name)
                columns.append(value.reshape(len(batch)).double().cpu().numpy())
        self.add(
            predicted=to_numpy(outputs["mean"]).reshape(len(batch), -1),
            true=np.stack(columns, axis=1),
            reco_pt=reco["pt"],
            reco_mass=reco["mass"],
            **{f"truth_{quantity}": values for quantity, values in truth.items()},
        )


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


def score(prediction: HeadPredictions, folder: Path | None, settings: ScoreSettings) -> Scored:
    """Errors of each target and, for positive quantities, response metrics; response PNGs."""
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
            bins=settings.bins,
            n_bootstrap=settings.n_bootstrap,
            seed=settings.seed,
        )
        mae, rmse = result.pop("mae"), result.pop("rmse")
        if quantity != target:  # the errors of the target itself are above; these are in GeV
            summary["quantity_mae"], summary["quantity_rmse"] = mae, rmse
        summary.update(result)
        if folder is None:
            continue
        figures += _response_plots(
            prediction.name,
            target,
            summary,
            value,
            truth,
            reference,
            folder,
            binned_by_pt,
            quantity,
        )
    return metrics, figures


def _response_plots(
    head: str,
    target: str,
    summary: Mapping[str, Any],
    value: np.ndarray,
    truth: np.ndarray,
    reference: np.ndarray | None,
    folder: Path,
    binned_by_pt: bool,
    quantity: str,
) -> list[Path]:
    """Binned median response and the response histograms, model next to detector."""
    series = {"model": summary["model_binned"]}
    responses = {"model": response(value, truth)}
    if reference is not None:
        series["detector"] = summary["reference_binned"]
        responses["detector"] = response(reference, truth)
    stem = f"{head}_{target}"
    xlabel = "true jet $p_T$ [GeV]" if binned_by_pt else quantity
    return [
        plots.plot_response_vs_binned(series, folder / f"{stem}_response_vs_pt.png", xlabel=xlabel),
        plots.plot_response_histogram(
            responses,
            folder / f"{stem}_response.png",
            xlabel=f"response: predicted / true {quantity}",
        ),
    ]
