"""The gradient-boosted-tree baseline on a recipe's own jets, split and label subsample.

This is the ``gbt`` mode of the data-efficiency study: the trees see exactly the labelled
training jets a fine-tuning run of the same recipe sees (``data.train_size`` and
``data.subsample_seed`` applied to the same event-level split) and are scored on the same test
jets, with the same metric names, so their row sits in the study's table and plots.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from foundation.baselines.gbt import BaselineConfig, fit_baseline, predict_baseline
from foundation.data.cache import open_arrays
from foundation.data.readers import read_jets
from foundation.data.records import JetRecords
from foundation.errors import DataError
from foundation.evaluation.metrics import DEFAULT_EFFICIENCIES, binary_metrics, rejection_key
from foundation.training.datamodule import JetDataModule
from foundation.training.recipe import Recipe


def binary_jet_heads(recipe: Recipe) -> list[str]:
    """Names of the recipe's jet-classification heads that read the jet label."""
    return [
        name
        for name, head in recipe.model.heads.items()
        if head.type == "jet_classification" and head.kwargs.get("target", "label") == "label"
    ]


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
        recipe: a recipe with a binary jet-classification head (its ``data`` decides the jets,
            classes, split and label subsample; ``trainer.seed`` seeds the boosting).
        efficiencies: signal efficiencies of the background rejections.
        records_cache: jets already read from the source files, by cache folder; filled with
            the ones read here (a study passes one dict to all its points).

    Returns:
        ``{"<head>/auc": ..., "<head>/rejection_at_<εS>": ...}`` (the study's names) for every
        binary jet-classification head of the recipe (the same numbers for each: one baseline).

    Raises:
        ValueError: the recipe has no jet-classification head on the label, or not 2 classes.
        DataError: the cache no longer matches its source files.
    """
    heads = binary_jet_heads(recipe)
    if not heads:
        raise ValueError(
            f"recipe {recipe.name}: the gbt baseline needs a jet_classification head on the "
            f"jet label; heads: {', '.join(recipe.model.heads)}"
        )
    data = JetDataModule(recipe.data, seed=recipe.trainer.seed, show_progress=False)
    summary = data.prepare()
    if len(summary.label_names) != 2:
        raise ValueError(
            f"recipe {recipe.name}: the gbt baseline scores binary classification, found "
            f"classes {list(summary.label_names)} (set data.classes to two of them)"
        )
    records = _cache_records(data, records_cache)

    def split(name: str) -> JetRecords:
        chosen = records.select(data.indices[name])
        return dataclasses.replace(
            chosen,
            labels=data.class_indices(chosen.labels),
            label_names=tuple(summary.label_names),
        )

    config = BaselineConfig(task="classification", seed=recipe.trainer.seed)
    estimator = fit_baseline(split("train"), config)
    test = split("test")
    scores = predict_baseline(estimator, test, config)[:, 1]
    scored = binary_metrics(scores, test.labels, efficiencies=efficiencies, n_bootstrap=0)
    names = ["auc", *(rejection_key(efficiency) for efficiency in efficiencies)]
    metrics = {name: scored[name] for name in names}
    return {f"{head}/{name}": value for head in heads for name, value in metrics.items()}
