"""Human labels for plots: metric keys (``top/auc``, ``calibration/log_mass_ratio/model/
relative_sigma68``) to axis labels with units, and study modes to the names the tables use.

One mapping for every figure of the library and the benchmarks (matplotlib mathtext; no
matplotlib import here).
"""

from __future__ import annotations

import re

from foundation.training.modes import MODES

MODE_LABELS: dict[str, str] = {
    **{name: mode.label for name, mode in MODES.items()},
    "gbt": "gradient-boosted trees",
}
"""Study and fine-tuning modes as the README's tables name them."""

QUANTITY_LABELS: dict[str, tuple[str, str]] = {
    "log_mass_ratio": ("jet mass", ""),
    "log_pt_ratio": ("jet $p_T$", ""),
    "jet_truth_mass": ("jet mass", "GeV"),
    "jet_truth_pt": ("jet $p_T$", "GeV"),
    "mass": ("jet mass", "GeV"),
    "pt": ("jet $p_T$", "GeV"),
}
"""Regression targets: (quantity, unit of the target itself; "" for a dimensionless one)."""

_METRICS: dict[str, str] = {
    "auc": "ROC AUC",
    "accuracy": "accuracy",
    "loss": "loss",
    "mse": "mean squared error",
    "mae": "mean absolute error",
    "rmse": "RMS error",
    "median_response": "median response (predicted / true)",
    "sigma68": "resolution $\\sigma_{68}$ of predicted / true",
    "relative_sigma68": "resolution $\\sigma_{68}$ / median",
    "iqr_half": "resolution IQR/2 of predicted / true",
    "relative_iqr_half": "resolution IQR/2 / median",
    "efficiency": "efficiency",
    "purity": "purity",
    "primary_efficiency": "primary-vertex efficiency",
    "pair_efficiency": "same-vertex pair efficiency",
    "pair_purity": "same-vertex pair purity",
    "threshold": "score threshold",
}
_REJECTION = re.compile(r"^rejection_at_([0-9.]+)$")
_ERRORS = {"mae", "rmse"}  # carry the target's unit
_SQUARED = {"mse"}


def mode_label(mode: str) -> str:
    """``"full"`` -> ``"pretrained, fine-tuned"``; unknown modes are returned unchanged."""
    return MODE_LABELS.get(mode, mode)


def is_rejection(key: str) -> bool:
    """True for a background-rejection metric (``.../rejection_at_0.3``): plot it on a log axis."""
    return bool(_REJECTION.match(key.rsplit("/", 1)[-1]))


def rejection_efficiency(key: str) -> float | None:
    """The signal efficiency of a rejection key (``top/rejection_at_0.3`` -> 0.3), else None."""
    match = _REJECTION.match(key.rsplit("/", 1)[-1])
    return float(match.group(1)) if match else None


def metric_label(key: str) -> str:
    """An axis label for a metric key of ``foundation evaluate`` / the study tables.

    The head name is left out (panel titles name the task); a regression target names its
    quantity, the detector-level reference says so, per-class metrics name the class, and
    errors of a target with a unit carry it. Unknown keys come back readable (``_`` -> space).

    Examples:
        ``top/auc`` -> ``ROC AUC``; ``top/rejection_at_0.3`` -> ``background rejection
        1/εB at εS = 0.3``; ``calibration/log_mass_ratio/model/relative_sigma68`` -> ``jet mass
        resolution σ68 / median``; ``reg/jet_truth_pt/mae`` -> ``jet pT mean absolute error
        [GeV]``.
    """
    parts = key.split("/")
    leaf = parts[-1]
    efficiency = rejection_efficiency(key)
    if efficiency is not None:
        return f"background rejection $1/\\varepsilon_B$ at $\\varepsilon_S$ = {efficiency:g}"
    text = _METRICS.get(leaf, leaf.replace("_", " "))
    quantity = next((QUANTITY_LABELS[p] for p in parts[:-1] if p in QUANTITY_LABELS), None)
    if quantity is not None:
        name, unit = quantity
        text = f"{name} {text}"
        if unit and leaf in _ERRORS:
            text += f" [{unit}]"
        elif unit and leaf in _SQUARED:
            text += f" [{unit}$^2$]"
    if "reference" in parts[:-1]:
        text += " (detector-level jet)"
    if "per_class" in parts[:-1]:
        index = parts.index("per_class")
        if index + 1 < len(parts) - 1:
            text += f", class {parts[index + 1]}"
    if "vertex_finding" in parts[:-1]:
        text = f"vertex-finding {text}"
    return text
