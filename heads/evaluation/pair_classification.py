"""Evaluation of pair classification: pair AUC, vertex-finding efficiency and purity.

Collected arrays: one row per pair ``i < j`` of particles with a valid pair target: ``scores``,
``labels``, ``first``, ``second`` ``[Q]`` (indices of real particles, numbered over the whole
loader), plus ``node_jet`` and, when the batches carry ``part_vertex``, ``node_vertex`` for each
real particle.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from foundation.evaluation import plots
from foundation.evaluation.particles import pair_metrics
from heads.pair_classification import VERTEX_TARGET
from heads.predictions import (
    Collector,
    HeadPredictions,
    PredictionStep,
    Scored,
    ScoreSettings,
    to_numpy,
)


class PairClassificationCollector(Collector):
    """Scores and labels of each labelled pair, with the particles' jets and true vertices."""

    def collect_batch(self, outputs: Mapping[str, torch.Tensor], step: PredictionStep) -> None:
        batch, jet_offset, node_offset = step.batch, step.jet_offset, step.node_offset
        mask = batch.mask
        count = batch.num_particles
        target = self.head.target(batch).long()
        upper = torch.triu(torch.ones(count, count, dtype=torch.bool, device=mask.device), 1)
        valid = (target >= 0) & upper & mask.unsqueeze(2) & mask.unsqueeze(1)
        node = torch.cumsum(mask.reshape(-1).long(), 0).reshape(mask.shape) - 1 + node_offset
        b, i, j = valid.nonzero(as_tuple=True)
        scores = (
            outputs["probabilities"]
            if "probabilities" in outputs
            else torch.sigmoid(outputs["logits"])
        )
        rows = torch.arange(len(batch), device=mask.device).unsqueeze(1).expand_as(mask)[mask]
        nodes: dict[str, np.ndarray] = {"node_jet": rows.cpu().numpy() + jet_offset}
        if VERTEX_TARGET in batch.targets:
            nodes["node_vertex"] = batch.targets[VERTEX_TARGET][mask].long().cpu().numpy()
        self.add(
            scores=to_numpy(scores[b, i, j]),
            labels=target[b, i, j].cpu().numpy(),
            first=node[b, i].cpu().numpy(),
            second=node[b, j].cpu().numpy(),
            **nodes,
        )


def score(prediction: HeadPredictions, folder: Path | None, settings: ScoreSettings) -> Scored:
    """Pair AUC and vertex finding at ``settings.threshold``; the score PNG."""
    arrays = prediction.arrays
    if "scores" not in arrays:
        return {"n_pairs": 0}, []
    num_tracks = len(arrays["node_jet"])
    metrics = pair_metrics(
        arrays["scores"],
        arrays["labels"],
        arrays["first"],
        arrays["second"],
        num_tracks=num_tracks,
        true_vertex=arrays.get("node_vertex"),
        track_jet=arrays["node_jet"],
        threshold=settings.threshold,
    )
    if folder is None:
        return metrics, []
    names = prediction.label_names
    labels = arrays["labels"]
    panels = {
        prediction.name: {
            names[0]: arrays["scores"][labels == 0],
            names[1]: arrays["scores"][labels == 1],
        }
    }
    path = plots.plot_scores(panels, folder / f"{prediction.name}_scores.png")
    return metrics, [path]
