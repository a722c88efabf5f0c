"""Gradient-boosted trees on jet substructure (scikit-learn ``HistGradientBoosting*``).

The baseline of every jet-level benchmark: classification of the jet label, or regression of
particle-level truth (``jet_truth_pt`` as the ratio to the detector-level jet pT, which trees
fit far better than the pT itself; ``jet_truth_mass`` directly). It is scored with the same
functions as the models (:func:`foundation.evaluation.evaluate_predictions`).

Nothing is pickled: a baseline is stored as its :class:`BaselineConfig` (``baseline.json``,
enough to retrain it deterministically on the same files) and its test predictions
(``predictions.npz``, plain numeric arrays).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from foundation import __version__
from foundation.baselines.substructure import SUBSTRUCTURE_FEATURES, substructure_matrix
from foundation.data.records import JetRecords
from foundation.data.splits import subsample
from foundation.errors import DataError
from foundation.evaluation.evaluate import (
    EVALUATION_FORMAT,
    EVALUATION_VERSION,
    METRICS_FILE,
    evaluate_predictions,
    jsonable,
    write_json,
)
from foundation.evaluation.metrics import DEFAULT_EFFICIENCIES
from foundation.evaluation.predict import HeadPredictions
from foundation.evaluation.regression import DEFAULT_BINS
from heads.jet_classification import JetClassificationHead
from heads.jet_regression import JetRegressionHead

TASKS = ("classification", "regression")
TARGETS = {"classification": ("label",), "regression": ("jet_truth_pt", "jet_truth_mass")}
"""The targets each task accepts (the first is the default)."""

CONFIG_FILE = "baseline.json"
PREDICTIONS_FILE = "predictions.npz"
HEAD_NAME = "gbt"
"""Name of the baseline in ``metrics.json`` (where a model has its head names)."""

_RATIO_OF = {"jet_truth_pt": "jet_pt"}
"""Regression targets fitted as a ratio to a detector-level observable."""


@dataclass(frozen=True)
class BaselineConfig:
    """Everything that defines a baseline: retraining with it on the same jets gives the same
    trees (the boosting is seeded).

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        target: ``"label"``, ``"jet_truth_pt"`` or ``"jet_truth_mass"``.
        features: substructure observables used (see
            :data:`~foundation.baselines.substructure.SUBSTRUCTURE_FEATURES`).
        train_size: jets drawn from the training files (stratified by label, seeded); None = all.
        seed: seed of the subsample and of the boosting (early-stopping split).
        max_iter: boosting iterations.
        learning_rate: shrinkage.
        max_leaf_nodes: leaves per tree.
        early_stopping: stop on a held-out 10 % of the training jets.
    """

    task: str = "classification"
    target: str = "label"
    features: tuple[str, ...] = SUBSTRUCTURE_FEATURES
    train_size: int | None = None
    seed: int = 0
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    early_stopping: bool = True

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {TASKS}, found {self.task!r}")
        if self.target not in TARGETS[self.task]:
            raise ValueError(
                f"target: a {self.task} baseline takes one of {TARGETS[self.task]}, "
                f"found {self.target!r}"
            )
        unknown = [name for name in self.features if name not in SUBSTRUCTURE_FEATURES]
        if unknown or not self.features:
            raise ValueError(
                f"features: expected names from {SUBSTRUCTURE_FEATURES}, found {self.features}"
            )
        object.__setattr__(self, "features", tuple(self.features))
        if self.train_size is not None and self.train_size < 1:
            raise ValueError(f"train_size: expected >= 1 or None, found {self.train_size}")

    def boosting_parameters(self) -> dict[str, Any]:
        """Keyword arguments of scikit-learn's ``HistGradientBoosting*`` for this config."""
        return {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "early_stopping": self.early_stopping,
            "random_state": self.seed,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the inverse of :meth:`from_dict`)."""
        data = dataclasses.asdict(self)
        data["features"] = list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineConfig:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            KeyError: an unknown key.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise KeyError(f"baseline config: unknown keys {unknown}; known: {sorted(known)}")
        values = dict(data)
        if "features" in values:
            values["features"] = tuple(values["features"])
        return cls(**values)


Estimator = HistGradientBoostingClassifier | HistGradientBoostingRegressor


def _truth(records: JetRecords, target: str) -> np.ndarray:
    if target not in records.truth:
        raise DataError(
            ", ".join(records.sources) or "records",
            target,
            "particle-level truth for a regression baseline",
            f"no such field (truth fields: {sorted(records.truth) or 'none'})",
            hint="use simulated files, which carry jet_truth_* branches",
        )
    return np.asarray(records.truth[target], dtype=np.float64)


def _denominator(records: JetRecords, target: str) -> np.ndarray | None:
    observable = _RATIO_OF.get(target)
    if observable is None:
        return None
    index = SUBSTRUCTURE_FEATURES.index(observable)
    return substructure_matrix(records, SUBSTRUCTURE_FEATURES[index : index + 1])[:, 0]


def fit_baseline(records: JetRecords, config: BaselineConfig) -> Estimator:
    """Train the baseline on ``records`` (subsampled to ``config.train_size``).

    Raises:
        DataError: a regression target the records lack, or no usable training jet.
        ValueError: ``train_size`` larger than the records.
    """
    if config.train_size is not None:
        records = records.select(subsample(records.labels, config.train_size, config.seed))
    inputs = substructure_matrix(records, config.features)
    if config.task == "classification":
        targets = records.labels
        estimator: Estimator = HistGradientBoostingClassifier(**config.boosting_parameters())
    else:
        targets = _truth(records, config.target)
        denominator = _denominator(records, config.target)
        if denominator is not None:
            targets = np.divide(
                targets, denominator, out=np.full(targets.shape, np.nan), where=denominator > 0
            )
        keep = np.isfinite(targets)
        inputs, targets = inputs[keep], targets[keep]
        estimator = HistGradientBoostingRegressor(**config.boosting_parameters())
    if len(targets) < 2 or (config.task == "classification" and len(np.unique(targets)) < 2):
        raise DataError(
            ", ".join(records.sources) or "records",
            config.target,
            "at least 2 training jets (of at least 2 classes for classification)",
            f"{len(targets)} jets",
        )
    return estimator.fit(inputs, targets)


def predict_baseline(
    estimator: Estimator, records: JetRecords, config: BaselineConfig
) -> np.ndarray:
    """Predictions on ``records``: class probabilities ``[M, K]`` (K = the records' classes)
    for classification, the target (in its own units) ``[M]`` for regression."""
    inputs = substructure_matrix(records, config.features)
    if config.task == "classification":
        probabilities = np.zeros((records.n_jets, max(len(records.label_names), 1)))
        probabilities[:, estimator.classes_.astype(np.int64)] = estimator.predict_proba(inputs)
        return probabilities
    predicted = estimator.predict(inputs)
    denominator = _denominator(records, config.target)
    return predicted * denominator if denominator is not None else predicted


def baseline_predictions(
    records: JetRecords, predicted: np.ndarray, config: BaselineConfig
) -> HeadPredictions:
    """The test predictions as :class:`~foundation.evaluation.predict.HeadPredictions`, to be
    scored like a model's head."""
    if config.task == "classification":
        names = records.label_names
        scores = predicted[:, 1] if predicted.shape[1] == 2 else predicted
        return HeadPredictions(
            HEAD_NAME,
            JetClassificationHead.kind,
            JetClassificationHead.level,
            names,
            {"scores": scores, "labels": records.labels.astype(np.int64)},
            records.n_jets,
        )
    features = substructure_matrix(records, ("jet_pt", "mass"))
    arrays = {
        "predicted": predicted.reshape(-1, 1),
        "true": _truth(records, config.target).reshape(-1, 1),
        "reco_pt": features[:, 0],
        "reco_mass": features[:, 1],
    }
    if "jet_truth_pt" in records.truth:
        arrays["truth_pt"] = np.asarray(records.truth["jet_truth_pt"], dtype=np.float64)
    return HeadPredictions(
        HEAD_NAME,
        JetRegressionHead.kind,
        JetRegressionHead.level,
        (config.target,),
        arrays,
        records.n_jets,
    )


def run_baseline(
    train: JetRecords,
    test: JetRecords,
    config: BaselineConfig,
    out_dir: str | Path,
    *,
    n_bootstrap: int = 100,
    bins: int | Sequence[float] = DEFAULT_BINS,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    info: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train, predict on ``test``, score, and write the baseline's folder atomically.

    The folder holds ``metrics.json`` (the format of ``foundation evaluate``, with the baseline
    as head ``gbt``), PNG plots, ``baseline.json`` (the config and ``info``, enough to retrain)
    and ``predictions.npz`` (test ``scores``/``labels`` or ``predicted``/``true``).

    Raises:
        OutputExistsError: ``out_dir`` holds files and ``overwrite`` is False.
        DataError: train and test labels differ, or the data lacks the target.
    """
    from foundation.hub.atomic import atomic_folder

    if config.task == "classification" and train.label_names != test.label_names:
        raise DataError(
            ", ".join(test.sources) or "test records",
            "label_names",
            f"the training labels {train.label_names}",
            test.label_names,
        )
    target = Path(out_dir)
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        from foundation.errors import OutputExistsError

        raise OutputExistsError(target, "a baseline")
    estimator = fit_baseline(train, config)
    predicted = predict_baseline(estimator, test, config)
    prediction = baseline_predictions(test, predicted, config)
    with atomic_folder(target, overwrite=overwrite, what="a baseline") as temporary:
        report = evaluate_predictions(
            {HEAD_NAME: prediction},
            temporary,
            n_bootstrap=n_bootstrap,
            seed=config.seed,
            bins=bins,
            efficiencies=efficiencies,
        )
        content = {
            "format": EVALUATION_FORMAT,
            "version": EVALUATION_VERSION,
            "library_version": __version__,
            "n_jets": test.n_jets,
            "settings": {"n_bootstrap": n_bootstrap, "seed": config.seed},
            "heads": report,
            "baseline": {
                "n_train": min(config.train_size or train.n_jets, train.n_jets),
                "iterations": int(estimator.n_iter_),
                "features": list(config.features),
            },
            **dict(info or {}),
        }
        write_json(temporary / METRICS_FILE, content)
        write_json(
            temporary / CONFIG_FILE,
            {"library_version": __version__, "config": config.to_dict(), **dict(info or {})},
        )
        np.savez(temporary / PREDICTIONS_FILE, **prediction.arrays)
    return jsonable(content)
