"""Gradient-boosted trees on single particles and on particle pairs (the D4 and D5 baselines).

The particle-level counterpart of the substructure trees: a classifier sees one particle's
input features (the 17 ParT features: kinematics relative to the jet, identity flags, impact
parameters and their significances) and predicts its class (e.g. its origin); a pair classifier
sees two particles (their summed features, the absolute differences, and the 4 ParT pair
features ln Δ, ln kT, ln z, ln m², all symmetric in the two) and predicts whether they share a
vertex. Rows come from the same data module, split and label subsample as a fine-tuning run,
and the predictions are collected in the form of the model's heads, so the evaluation of
:func:`foundation.evaluation.evaluate_predictions` scores both alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from foundation.baselines.gbt import BaselineConfig
from foundation.data.batch import JetBatch
from foundation.data.pairs import features_of_pairs
from foundation.errors import DataError
from foundation.evaluation.predict import HeadPredictions
from heads.base import Head
from heads.pair_classification import VERTEX_TARGET, PairClassificationHead
from heads.particle_classification import ParticleClassificationHead

CONSTITUENT_LEVELS = ("particle", "pair")
"""Levels of the classification heads the constituent trees stand in for (one tree per
particle, or per pair of particles)."""


def stands_in_for(head: type[Head] | Head) -> bool:
    """Whether the constituent trees can stand in for ``head``: a particle- or pair-level
    classification head."""
    return head.task == "classification" and head.level in CONSTITUENT_LEVELS


def particle_rows(batch: JetBatch, target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, labels and jet (within the batch) of each real particle of ``batch``.

    Shapes:
        - outputs: inputs ``[M, F]`` float32, labels ``[M]`` int64 (-1 unlabelled), jet ``[M]``
    """
    mask = batch.mask
    labels = torch.where(mask, batch.targets[target].long(), -1)[mask]
    jets = torch.arange(len(batch)).unsqueeze(1).expand_as(mask)[mask]
    return batch.particles[mask].float().numpy(), labels.numpy(), jets.numpy()


def pair_rows(
    batch: JetBatch, target: str
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Inputs and labels of each labelled pair i < j of ``batch`` (target >= 0).

    Returns:
        inputs ``[P, 2F + 4]`` (``x_i + x_j``, ``|x_i - x_j|``, the 4 pair features), labels
        ``[P]`` in {0, 1}, and the pairs' (jet, i, j) indices ``[P]`` each.
    """
    target_pairs = batch.targets[target].long()
    count = batch.num_particles
    upper = torch.ones(count, count, dtype=torch.bool).triu(1)
    valid = (target_pairs >= 0) & upper & batch.mask.unsqueeze(2) & batch.mask.unsqueeze(1)
    jet, first, second = valid.nonzero(as_tuple=True)
    particles = batch.particles.float()
    a, b = particles[jet, first], particles[jet, second]
    vectors = batch.vectors.float()
    geometry = features_of_pairs(vectors[jet, first], vectors[jet, second])
    inputs = torch.cat([a + b, (a - b).abs(), geometry], dim=1)
    indices = (jet.numpy(), first.numpy(), second.numpy())
    return inputs.numpy(), target_pairs[jet, first, second].numpy(), indices


def _fit(
    inputs: list[np.ndarray], labels: list[np.ndarray], config: BaselineConfig, what: str
) -> HistGradientBoostingClassifier:
    x, y = np.concatenate(inputs), np.concatenate(labels)
    keep = y >= 0
    if keep.sum() < 2 or len(np.unique(y[keep])) < 2:
        raise DataError(
            "training split",
            what,
            "at least 2 labelled rows of at least 2 classes",
            f"{int(keep.sum())} rows, classes {sorted(np.unique(y[keep]).tolist())}",
        )
    return HistGradientBoostingClassifier(**config.boosting_parameters()).fit(x[keep], y[keep])


def _probabilities(
    estimator: HistGradientBoostingClassifier, inputs: np.ndarray, classes: int
) -> np.ndarray:
    """``[M, classes]`` probabilities (0 for a class absent from the training rows)."""
    out = np.zeros((len(inputs), classes))
    if len(inputs):
        out[:, estimator.classes_.astype(np.int64)] = estimator.predict_proba(inputs)
    return out


def particle_predictions(
    head: str,
    target: str,
    label_names: tuple[str, ...],
    train: Iterable[JetBatch],
    test: Iterable[JetBatch],
    seed: int,
) -> HeadPredictions:
    """Fit the particle classifier on the ``train`` batches; collect ``test`` predictions.

    Returns:
        A ``particle_classification`` prediction named ``head``: ``probabilities [M, K]``,
        ``labels [M]`` and ``jet [M]`` over the real particles of the test jets.

    Raises:
        DataError: fewer than 2 labelled training particles of 2 classes.
    """
    inputs, labels = [], []
    for batch in train:
        x, y, _ = particle_rows(batch, target)
        inputs.append(x)
        labels.append(y)
    estimator = _fit(inputs, labels, BaselineConfig(seed=seed), target)
    collected: dict[str, list[np.ndarray]] = {"probabilities": [], "labels": [], "jet": []}
    n_jets = 0
    for batch in test:
        x, y, jets = particle_rows(batch, target)
        collected["probabilities"].append(_probabilities(estimator, x, len(label_names)))
        collected["labels"].append(y)
        collected["jet"].append(jets + n_jets)
        n_jets += len(batch)
    arrays = {key: np.concatenate(values) for key, values in collected.items()}
    kind, level = ParticleClassificationHead.kind, ParticleClassificationHead.level
    return HeadPredictions(head, kind, level, label_names, arrays, n_jets)


def pair_predictions(
    head: str,
    target: str,
    label_names: tuple[str, ...],
    train: Iterable[JetBatch],
    test: Iterable[JetBatch],
    seed: int,
) -> HeadPredictions:
    """Fit the pair classifier on the ``train`` batches; collect ``test`` predictions.

    Returns:
        A ``pair_classification`` prediction named ``head``, with the arrays of a model's pair
        head: ``scores``, ``labels``, ``first``, ``second`` ``[P]`` (indices of real particles
        over the test jets), ``node_jet`` and, where the batches carry ``part_vertex``,
        ``node_vertex`` ``[T]``.

    Raises:
        DataError: fewer than 2 labelled training pairs of 2 classes.
    """
    inputs, labels = [], []
    for batch in train:
        x, y, _ = pair_rows(batch, target)
        inputs.append(x)
        labels.append(y)
    estimator = _fit(inputs, labels, BaselineConfig(seed=seed), target)
    collected: dict[str, list[np.ndarray]] = {}
    n_jets = n_nodes = 0
    for batch in test:
        x, y, (jet, first, second) = pair_rows(batch, target)
        mask = batch.mask
        node = (torch.cumsum(mask.reshape(-1).long(), 0).reshape(mask.shape) - 1).numpy()
        rows: dict[str, Any] = {
            "scores": _probabilities(estimator, x, 2)[:, 1],
            "labels": y,
            "first": node[jet, first] + n_nodes,
            "second": node[jet, second] + n_nodes,
            "node_jet": torch.arange(len(batch)).unsqueeze(1).expand_as(mask)[mask].numpy()
            + n_jets,
        }
        if VERTEX_TARGET in batch.targets:
            rows["node_vertex"] = batch.targets[VERTEX_TARGET][mask].long().numpy()
        for key, value in rows.items():
            collected.setdefault(key, []).append(np.asarray(value))
        n_jets += len(batch)
        n_nodes += int(mask.sum())
    arrays = {key: np.concatenate(values) for key, values in collected.items()}
    kind, level = PairClassificationHead.kind, PairClassificationHead.level
    return HeadPredictions(head, kind, level, label_names, arrays, n_jets)


def constituent_predictions(
    name: str, head: Head, train: Iterable[JetBatch], test: Iterable[JetBatch], seed: int
) -> HeadPredictions:
    """The trees standing in for ``head`` (a particle- or pair-level classification head, see
    :func:`stands_in_for`), named ``name``: its target and class names are the head's own.

    Raises:
        ValueError: the trees cannot stand in for ``head``.
    """
    if not stands_in_for(head):
        raise ValueError(
            f"head {name!r} ({head.head_type}): the constituent trees stand in for particle- "
            f"or pair-level classification heads, found a {head.level}-level {head.task or 'other'}"
            " head"
        )
    fit = particle_predictions if head.level == "particle" else pair_predictions
    return fit(name, head.target_key, tuple(head.label_names), train, test, seed)
