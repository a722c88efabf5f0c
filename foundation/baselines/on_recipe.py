"""The gradient-boosted-tree baseline on a recipe's own jets, split and label subsample.

This is the ``gbt`` mode of the data-efficiency study: the trees see exactly the labelled
training jets a fine-tuning run of the same recipe sees (``data.train_size`` and
``data.subsample_seed`` applied to the same event-level split) and are scored on the same test
jets, with the same metric names, so their row sits in the study's table and plots.

Binary jet classification: the trees' signal probability. Jet regression (D3): one regressor
per target of the recipe's head (e.g. ``log_pt_ratio``, computed from the truth and the
detector-level jet as the training computes it), scored by the model's evaluation (median
response, σ68, IQR/2 of the corrected jet). Particle and pair classification (D4, D5): trees on
single particles and on particle pairs (:mod:`foundation.baselines.constituents`), scored by
the evaluation of those heads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from foundation.baselines.constituents import constituent_predictions, stands_in_for
from foundation.baselines.gbt import BaselineConfig, fit_baseline, predict_baseline
from foundation.baselines.substructure import substructure_matrix
from foundation.data.cache import open_arrays
from foundation.data.readers import read_jets
from foundation.data.records import JetRecords
from foundation.errors import DataError
from foundation.evaluation.evaluate import evaluate_predictions, flatten_metrics
from foundation.evaluation.metrics import DEFAULT_EFFICIENCIES, binary_metrics, rejection_key
from foundation.evaluation.predict import LABEL_TARGET, HeadPredictions
from foundation.training.datamodule import JetDataModule
from foundation.training.recipe import Recipe
from heads.base import Head
from heads.evaluation.jet_regression import RATIO_TARGETS, ratio_target
from heads.jet_regression import JetRegressionHead
from heads.registry import HEADS, create_head, get_head_class

HeadTest = Callable[[type[Head]], bool]


def _jet_classifier(head: type[Head]) -> bool:
    return head.level == "jet" and head.task == "classification"


def _jet_regressor(head: type[Head]) -> bool:
    return head.level == "jet" and head.task == "regression"


def _recipe_heads(recipe: Recipe, test: HeadTest) -> dict[str, Head]:
    """The recipe's heads whose class passes ``test``, built (on a 1-wide embedding) to read
    their targets and class names."""
    return {
        name: create_head(config.type, in_features=1, **config.kwargs)
        for name, config in recipe.model.heads.items()
        if test(get_head_class(config.type))
    }


def _registered(test: HeadTest) -> str:
    """``a x head or a y head``: the registered heads that pass ``test``."""
    names = [name for name in HEADS.names() if test(HEADS.get(name))]
    return " or ".join(f"a {name} head" for name in names) or "a head of that kind"


def binary_jet_heads(recipe: Recipe) -> list[str]:
    """Names of the recipe's jet-level classification heads that read the jet label."""
    heads = _recipe_heads(recipe, _jet_classifier)
    return [name for name, head in heads.items() if head.target_key == LABEL_TARGET]


TRUTH_TARGETS = ("jet_truth_pt", "jet_truth_mass")
"""Particle-level jet quantities the trees can regress directly (besides :data:`RATIO_TARGETS`)."""


def regression_jet_heads(recipe: Recipe) -> dict[str, tuple[str, ...]]:
    """The recipe's jet-level regression heads whose targets the trees can fit: name ->
    targets."""
    heads = {}
    for name, head in _recipe_heads(recipe, _jet_regressor).items():
        targets = tuple(head.data_targets())
        if targets and all(
            target in RATIO_TARGETS or target in TRUTH_TARGETS for target in targets
        ):
            heads[name] = targets
    return heads


def _cache_records(data: JetDataModule, known: dict[Path, JetRecords] | None) -> JetRecords:
    """The jets of a prepared data module, read again from its cache's source files, in the
    cache's order (checked against the cache's event ids). ``known`` holds records already
    read, by cache folder (the points of one study share them)."""
    info = data.summary.cache if data.summary is not None else data.prepare().cache
    if known is not None and info.folder in known:
        return known[info.folder]
    paths = [Path(entry["path"]) for entry in info.sources]
    records = read_jets(paths, data.config.format)
    cached = np.asarray(open_arrays(info)["event_id"])
    if records.n_jets != len(cached) or not np.array_equal(records.event_id, cached):
        raise DataError(
            info.folder,
            "sources",
            f"the {len(cached)} jets of the cache, in order, in its source files",
            f"{records.n_jets} jets in other order",
            hint="the source files changed since the cache was written: delete the cache",
        )
    if known is not None:
        known[info.folder] = records
    return records


def gbt_on_recipe(
    recipe: Recipe,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    records_cache: dict[Path, JetRecords] | None = None,
) -> dict[str, float]:
    """Train the baseline on the recipe's labelled training jets; score its test jets.

    Args:
        recipe: a recipe with a binary jet-classification head on the label, a jet-regression
            head on known targets, or a particle- or pair-classification head (its ``data``
            decides the jets, classes, split and label subsample; ``trainer.seed`` seeds the
            boosting).
        efficiencies: signal efficiencies of the background rejections.
        records_cache: jets already read from the source files, by cache folder; filled with
            the ones read here (a study passes one dict to all its points).

    Returns:
        The study's metric names, ``<head>/<metric>``: ``auc`` and ``rejection_at_<εS>`` for
        every binary jet-classification head (the same numbers for each: one baseline), and
        the evaluation's metrics of each regression, particle and pair head.

    Raises:
        ValueError: the recipe has none of those heads, or a jet-classification head on other
            than 2 classes.
        DataError: the cache no longer matches its source files, or the data lacks a target.
    """
    heads = binary_jet_heads(recipe)
    regression = regression_jet_heads(recipe)
    constituents = {
        name: head
        for name, head in recipe.model.heads.items()
        if stands_in_for(get_head_class(head.type))
    }
    if not heads and not regression and not constituents:
        raise ValueError(
            f"recipe {recipe.name}: the gbt baseline needs {_registered(_jet_classifier)} on "
            f"the jet label, {_registered(_jet_regressor)} on "
            f"{', '.join([*RATIO_TARGETS, *TRUTH_TARGETS])} or {_registered(stands_in_for)}; "
            f"heads: {', '.join(recipe.model.heads)}"
        )
    data = JetDataModule(recipe.data, seed=recipe.trainer.seed, show_progress=False)
    summary = data.prepare()
    if heads and len(summary.label_names) != 2:
        raise ValueError(
            f"recipe {recipe.name}: the gbt baseline scores binary classification, found "
            f"classes {list(summary.label_names)} (set data.classes to two of them)"
        )
    result: dict[str, float] = {}
    predictions: dict[str, HeadPredictions] = {}
    if constituents:
        predictions.update(_constituent_predictions(data, constituents, recipe.trainer.seed))
    if heads or regression:
        records = _cache_records(data, records_cache)

        def split(name: str) -> JetRecords:
            chosen = records.select(data.indices[name])
            return dataclasses.replace(
                chosen,
                labels=data.class_indices(chosen.labels),
                label_names=tuple(summary.label_names),
            )

        train, test = split("train"), split("test")
        if heads:
            config = BaselineConfig(task="classification", seed=recipe.trainer.seed)
            estimator = fit_baseline(train, config)
            scores = predict_baseline(estimator, test, config)[:, 1]
            scored = binary_metrics(scores, test.labels, efficiencies=efficiencies, n_bootstrap=0)
            names = ["auc", *(rejection_key(efficiency) for efficiency in efficiencies)]
            result.update({f"{head}/{name}": scored[name] for head in heads for name in names})
        for head, targets in regression.items():
            predictions[head] = regression_predictions(
                head, targets, train, test, recipe.trainer.seed
            )
    report = evaluate_predictions(predictions, None, n_bootstrap=0) if predictions else {}
    for head, entry in report.items():
        flatten_metrics(entry["metrics"], head, result)
    return result


def _constituent_predictions(
    data: JetDataModule, configs: dict[str, Any], seed: int
) -> dict[str, HeadPredictions]:
    """The particle and pair trees standing in for the heads of ``configs`` (recipe head
    configs), trained on the prepared ``data``'s training jets and run on its test jets."""
    built = {
        name: create_head(config.type, in_features=1, **config.kwargs)
        for name, config in configs.items()
    }
    targets = []
    for head in built.values():
        targets += head.data_targets()
        # e.g. the true vertices, for vertex finding
        targets += [name for name in head.evaluation_targets() if name in data.summary.targets]
    data.require_targets(targets)
    return {
        name: constituent_predictions(name, head, data.loader("train"), data.loader("test"), seed)
        for name, head in built.items()
    }


def jet_quantities(records: JetRecords) -> dict[str, np.ndarray]:
    """Detector-level ``reco_pt``, ``reco_mass`` and particle-level ``truth_pt``,
    ``truth_mass`` (where the records carry them) of each jet, in GeV.

    Shapes:
        - each value: ``[n_jets]``
    """
    reco = substructure_matrix(records, ("jet_pt", "mass"))
    quantities = {"reco_pt": reco[:, 0], "reco_mass": reco[:, 1]}
    for quantity in ("pt", "mass"):
        if f"jet_truth_{quantity}" in records.truth:
            truth = np.asarray(records.truth[f"jet_truth_{quantity}"], dtype=np.float64)
            quantities[f"truth_{quantity}"] = truth
    return quantities


def regression_target(
    records: JetRecords, target: str, quantities: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """The value of a regression target for each jet, as the training computes it: particle-level
    truth (``jet_truth_*``) or (the log of) truth over the detector-level jet quantity, NaN
    where undefined (no positive truth or reco).

    Args:
        records: the jets.
        target: a name of :data:`TRUTH_TARGETS` or :data:`RATIO_TARGETS`.
        quantities: :func:`jet_quantities` of ``records``, when already computed.

    Raises:
        DataError: the records lack the particle-level truth.

    Shapes:
        - output: ``[n_jets]`` float64
    """
    if target in RATIO_TARGETS:
        quantity = RATIO_TARGETS[target][0]
    else:
        quantity = target.removeprefix("jet_truth_")
    quantities = jet_quantities(records) if quantities is None else quantities
    if f"truth_{quantity}" not in quantities:
        raise DataError(
            ", ".join(records.sources) or "records",
            f"jet_truth_{quantity}",
            f"particle-level truth for the regression target {target}",
            f"no such field (truth fields: {sorted(records.truth) or 'none'})",
            hint="use simulated files, which carry jet_truth_* branches",
        )
    truth = quantities[f"truth_{quantity}"]
    if target not in RATIO_TARGETS:
        return truth
    return ratio_target(target, truth, quantities[f"reco_{quantity}"])


def regression_predictions(
    head: str, targets: Sequence[str], train: JetRecords, test: JetRecords, seed: int
) -> HeadPredictions:
    """Fit one regressor per target on the substructure of ``train``; predict ``test``.

    Returns:
        The test predictions in the form of a model's ``jet_regression`` head named ``head``
        (``predicted``/``true`` ``[M, T]``, reco and truth pT and mass ``[M]``), so the same
        evaluation scores them.

    Raises:
        DataError: the records lack particle-level truth, or a target has fewer than 2 finite
            training values.
    """
    config = BaselineConfig(task="regression", target="jet_truth_pt", seed=seed)
    train_inputs = substructure_matrix(train, config.features)
    test_inputs = substructure_matrix(test, config.features)
    train_quantities, test_quantities = jet_quantities(train), jet_quantities(test)
    predicted, true = [], []
    for target in targets:
        values = regression_target(train, target, train_quantities)
        keep = np.isfinite(values)
        if keep.sum() < 2:
            raise DataError(
                ", ".join(train.sources) or "records",
                target,
                "at least 2 training jets with a finite target",
                f"{int(keep.sum())} jets",
            )
        estimator = HistGradientBoostingRegressor(**config.boosting_parameters())
        estimator.fit(train_inputs[keep], values[keep])
        predicted.append(estimator.predict(test_inputs))
        true.append(regression_target(test, target, test_quantities))
    arrays = {
        "predicted": np.stack(predicted, axis=1),
        "true": np.stack(true, axis=1),
        **test_quantities,
    }
    kind, level = JetRegressionHead.kind, JetRegressionHead.level
    return HeadPredictions(head, kind, level, tuple(targets), arrays, test.n_jets)
