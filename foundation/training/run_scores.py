"""Test-split scores of a finished training run: its best model, on its recipe's test jets.

The run folder says which model (``best/``) and which jets (the saved recipe's data); the
numbers come from :mod:`foundation.evaluation.study_scores`. The scalar metrics are kept in
``<run>/test_scores.json`` beside the hash of ``best/``, so a study run again reads them instead of
running the model over its test jets once more.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from foundation.evaluation.study_scores import (
    SIGNAL_EFFICIENCIES,
    binary_classifier_scores,
    evaluation_scalars,
)
from foundation.io import write_json
from foundation.training.run_folder import RunPaths

SCORES_FILE = "test_scores.json"
"""A run's test-split scalar metrics and the hash of the ``best/`` checkpoint they belong to."""

if TYPE_CHECKING:
    from foundation.model import Model
    from foundation.training.datamodule import JetDataModule


def best_model_and_test_data(run: Path) -> tuple[Model, JetDataModule] | None:
    """The run's best model and its recipe's prepared data (None: no test jets).

    The data are normalized as the model's feature schema says, and must hold every target
    the model's heads read.
    """
    from foundation import load_pretrained
    from foundation.training.builder import head_targets
    from foundation.training.datamodule import JetDataModule
    from foundation.training.recipe import load_recipe

    paths = RunPaths(run)
    recipe = load_recipe(paths.recipe)
    model = load_pretrained(paths.best).eval()
    data = JetDataModule(recipe.data, seed=recipe.trainer.seed, show_progress=False)
    normalization = model.feature_schema.normalization if model.feature_schema else None
    data.prepare(normalization=normalization)
    data.require_targets(head_targets(model))
    return (model, data) if len(data.indices["test"]) else None


def binary_scores(run: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Test-split signal probabilities and labels of each binary jet-classification head.

    Returns:
        ``{head: (scores, labels)}`` over the labelled test jets of the run's best model
        (empty without test jets).

    Shapes:
        - scores: ``[M]`` float64, M the labelled test jets.
        - labels: ``[M]`` class indices (1: signal).
    """
    loaded = best_model_and_test_data(run)
    if loaded is None:
        return {}
    model, data = loaded
    return binary_classifier_scores(model, data.loader("test"))


def evaluation_metrics(run: Path) -> dict[str, float]:
    """Every scalar metric of ``foundation evaluate`` on the run's test split, for every head.

    Named ``<head>/<metric>`` (see :func:`~foundation.evaluation.study_scores.evaluation_scalars`),
    with the rejections 1/εB at εS = 0.3 and 0.5; empty without test jets. Read from
    ``<run>/test_scores.json`` when it belongs to the same ``best/`` (its hash), else computed
    and written there.
    """
    stored = Path(run) / SCORES_FILE
    checkpoint = best_checkpoint_hash(run)
    if stored.is_file():
        content = json.loads(stored.read_text())
        if content.get("best_sha256") == checkpoint:
            return {name: float(value) for name, value in content["metrics"].items()}
    loaded = best_model_and_test_data(run)
    if loaded is None:
        return {}
    model, data = loaded
    metrics = evaluation_scalars(
        model, data.loader("test"), data.summary.label_names, SIGNAL_EFFICIENCIES
    )
    write_json(stored, {"best_sha256": checkpoint, "metrics": metrics}, allow_nan=True)
    return metrics


def best_checkpoint_hash(run: Path) -> str:
    """sha256 over the files of the run's ``best/`` checkpoint (names and contents, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(RunPaths(run).best.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
