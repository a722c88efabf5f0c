"""Regression metrics of the field: median response and resolution (σ68, IQR/2), in bins of pT.

The response of a jet is ``predicted / true`` (e.g. predicted jet pT over ``jet_truth_pt``).
Its median is the scale; the resolution is half the width of the central 68 % (16-84 %
quantiles, σ68, equal to σ for a Gaussian) or half the interquartile range (IQR/2, 0.674 σ for a
Gaussian). A detector-level value (e.g. the reconstructed jet pT) gives the reference row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from foundation.evaluation.bootstrap import bootstrap

DEFAULT_BINS = 5
"""Default number of bins: equal-population (quantile) bins of the binning variable."""


def response(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``predicted / true`` of the jets with a finite prediction and a finite, positive truth.

    Shapes:
        - predicted, true: ``[M]``; output: ``[M']`` (the kept jets only).
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    if predicted.shape != true.shape:
        raise ValueError(
            f"predicted and true must have one value per jet: found {predicted.shape} and "
            f"{true.shape}"
        )
    keep = _valid(predicted, true)
    return predicted[keep] / true[keep]


def _valid(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.isfinite(predicted) & np.isfinite(true) & (true > 0)


def sigma68(values: np.ndarray) -> float:
    """Half the 16-84 % quantile width (σ for a Gaussian); NaN for no values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    low, high = np.quantile(values, [0.16, 0.84])
    return float((high - low) / 2)


def iqr_half(values: np.ndarray) -> float:
    """Half the interquartile range (0.674 σ for a Gaussian); NaN for no values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    low, high = np.quantile(values, [0.25, 0.75])
    return float((high - low) / 2)


def _summary_vector(ratio: np.ndarray) -> np.ndarray:
    if ratio.size == 0:
        return np.full(3, np.nan)
    low, q25, median, q75, high = np.quantile(ratio, [0.16, 0.25, 0.5, 0.75, 0.84])
    return np.array([median, (high - low) / 2, (q75 - q25) / 2])


_SUMMARY = ("median_response", "sigma68", "iqr_half")


def response_summary(
    predicted: np.ndarray, true: np.ndarray, *, n_bootstrap: int = 0, seed: int = 0
) -> dict[str, float]:
    """Median response, σ68 and IQR/2 of ``predicted / true`` (and their relative versions).

    Args:
        predicted: predicted values ``[M]``.
        true: true values ``[M]``; jets with a non-finite value or ``true <= 0`` are left out.
        n_bootstrap: bootstrap resamples for ``*_std`` uncertainties (0: none).
        seed: bootstrap seed.

    Returns:
        ``{"n", "median_response", "sigma68", "iqr_half", "relative_sigma68",
        "relative_iqr_half"}`` (relative = divided by the median response), plus ``*_std``.
    """
    ratio = response(predicted, true)
    values = _summary_vector(ratio)
    result: dict[str, float] = {"n": int(ratio.size)}
    result.update({name: float(v) for name, v in zip(_SUMMARY, values, strict=True)})
    median = values[0]
    result["relative_sigma68"] = float(values[1] / median) if median else float("nan")
    result["relative_iqr_half"] = float(values[2] / median) if median else float("nan")
    if n_bootstrap > 0 and ratio.size:
        _, std = bootstrap(_summary_vector, ratio, n=n_bootstrap, seed=seed)
        result.update({f"{name}_std": float(v) for name, v in zip(_SUMMARY, std, strict=True)})
    return result


def bin_edges(values: np.ndarray, bins: int | Sequence[float] = DEFAULT_BINS) -> np.ndarray:
    """Bin edges: ``bins`` equal-population bins of ``values``, or the given edges.

    Raises:
        ValueError: fewer than 2 edges, edges not increasing, or a non-positive bin count.
    """
    if isinstance(bins, int | np.integer):
        if bins < 1:
            raise ValueError(f"bins: expected a positive number of bins, found {bins}")
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return np.array([0.0, 1.0])
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, int(bins) + 1)))
        return edges if edges.size >= 2 else np.array([edges[0], edges[0] + 1.0])
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins: expected at least 2 increasing edges, found {edges.tolist()}")
    return edges


def binned_response(
    predicted: np.ndarray,
    true: np.ndarray,
    binning: np.ndarray,
    bins: int | Sequence[float] = DEFAULT_BINS,
) -> list[dict[str, float]]:
    """:func:`response_summary` in bins of ``binning`` (e.g. the true jet pT).

    The last bin includes its upper edge; values outside the edges are left out.

    Returns:
        One dict per bin: ``low``, ``high``, ``center`` (median of ``binning`` in the bin) and the
        summary's entries.

    Shapes:
        - predicted, true, binning: ``[M]``.
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    binning = np.asarray(binning, dtype=np.float64).reshape(-1)
    if not predicted.shape == true.shape == binning.shape:
        raise ValueError(
            "predicted, true and binning must have one value per jet: found "
            f"{predicted.shape}, {true.shape} and {binning.shape}"
        )
    edges = bin_edges(binning, bins)
    index = np.searchsorted(edges, binning, side="right") - 1
    index[binning == edges[-1]] = len(edges) - 2
    rows = []
    for k in range(len(edges) - 1):
        inside = index == k
        center = float(np.median(binning[inside])) if inside.any() else float("nan")
        rows.append(
            {
                "low": float(edges[k]),
                "high": float(edges[k + 1]),
                "center": center,
                **response_summary(predicted[inside], true[inside]),
            }
        )
    return rows


def regression_metrics(
    predicted: np.ndarray,
    true: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    binning: np.ndarray | None = None,
    bins: int | Sequence[float] = DEFAULT_BINS,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Response and resolution of a prediction, overall and binned, with a reference row.

    Args:
        predicted: predicted values ``[M]``.
        true: true values ``[M]``.
        reference: a detector-level estimate of the same quantity ``[M]`` (e.g. the
            reconstructed jet pT), summarised the same way as ``"reference"``.
        binning: the variable of the bins ``[M]`` (default: ``true``).
        bins: number of equal-population bins, or bin edges.
        n_bootstrap: bootstrap resamples of the overall summaries.
        seed: bootstrap seed.

    Returns:
        ``{"model": summary, "model_binned": [...], "reference": summary,
        "reference_binned": [...], "mae", "rmse"}`` (reference entries only with
        ``reference``; ``mae``/``rmse`` of the model over finite pairs).
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    binning = true if binning is None else np.asarray(binning, dtype=np.float64).reshape(-1)
    edges = bin_edges(binning[_valid(predicted, true)], bins)
    finite = np.isfinite(predicted) & np.isfinite(true)
    error = predicted[finite] - true[finite]
    result: dict[str, Any] = {
        "mae": float(np.mean(np.abs(error))) if error.size else float("nan"),
        "rmse": float(np.sqrt(np.mean(error**2))) if error.size else float("nan"),
        "model": response_summary(predicted, true, n_bootstrap=n_bootstrap, seed=seed),
        "model_binned": binned_response(predicted, true, binning, edges),
    }
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float64).reshape(-1)
        result["reference"] = response_summary(reference, true, n_bootstrap=n_bootstrap, seed=seed)
        result["reference_binned"] = binned_response(reference, true, binning, edges)
    return result
