"""Evaluation with the metrics of the field: classification, regression, particles, pairs.

- :mod:`~foundation.evaluation.metrics`: accuracy, ROC AUC, background rejection 1/εB at εS;
- :mod:`~foundation.evaluation.regression`: median response, σ68 and IQR/2, in bins of pT;
- :mod:`~foundation.evaluation.particles`: per-class efficiency / purity, pair AUC, vertex
  finding;
- :mod:`~foundation.evaluation.bootstrap`: seeded bootstrap uncertainties;
- :mod:`~foundation.evaluation.plots`: ROC, score, response PNGs;
- :mod:`~foundation.evaluation.predict`: run a model over a loader, collect numpy arrays;
- :mod:`~foundation.evaluation.evaluate`: dispatch on each head, write ``metrics.json`` + PNGs;
- :mod:`~foundation.evaluation.inputs`: a checkpoint's normalization and data cached to its
  feature schema (for ``foundation evaluate``).
"""

from foundation.extras import requires_extra

with requires_extra("train"):
    from foundation.evaluation.bootstrap import bootstrap
    from foundation.evaluation.evaluate import (
        METRICS_FILE,
        evaluate_model,
        evaluate_predictions,
        write_json,
    )
    from foundation.evaluation.metrics import (
        accuracy,
        background_rejection,
        binary_metrics,
        classification_metrics,
        roc_auc,
        roc_points,
        signal_vs_background_score,
    )
    from foundation.evaluation.particles import (
        connected_components,
        efficiency_purity,
        find_vertices,
        pair_metrics,
        particle_metrics,
        vertex_finding_metrics,
    )
    from foundation.evaluation.predict import HeadPredictions, head_kind, predict
    from foundation.evaluation.regression import (
        binned_response,
        iqr_half,
        regression_metrics,
        response,
        response_summary,
        sigma68,
    )


__all__ = [
    "METRICS_FILE",
    "HeadPredictions",
    "accuracy",
    "background_rejection",
    "binary_metrics",
    "binned_response",
    "bootstrap",
    "classification_metrics",
    "connected_components",
    "efficiency_purity",
    "evaluate_model",
    "evaluate_predictions",
    "find_vertices",
    "head_kind",
    "iqr_half",
    "pair_metrics",
    "particle_metrics",
    "predict",
    "regression_metrics",
    "response",
    "response_summary",
    "roc_auc",
    "roc_points",
    "sigma68",
    "signal_vs_background_score",
    "vertex_finding_metrics",
    "write_json",
]
