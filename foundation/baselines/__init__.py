"""Baselines to compare the backbones with: gradient-boosted trees on jet substructure."""

from foundation.extras import requires_extra

with requires_extra("train"):
    from foundation.baselines.gbt import (
        BaselineConfig,
        baseline_predictions,
        fit_baseline,
        predict_baseline,
        run_baseline,
    )
    from foundation.baselines.substructure import (
        SUBSTRUCTURE_FEATURES,
        substructure_features,
        substructure_matrix,
    )


__all__ = [
    "SUBSTRUCTURE_FEATURES",
    "BaselineConfig",
    "baseline_predictions",
    "fit_baseline",
    "predict_baseline",
    "run_baseline",
    "substructure_features",
    "substructure_matrix",
]
