"""Particle- and pair-level metrics: per-class efficiency and purity, AUCs, vertex finding.

Particle classification (e.g. D4 particle origin) is scored per real, labelled particle;
padding and unlabelled particles (label -1) are left out. Pair classification (D5 same-vertex
pairs) is scored per pair of tracks, and turned into vertices by :func:`find_vertices`.

Vertex finding, as measured by :func:`vertex_finding_metrics`:

- *tracks* are particles with a measured vertex index (``>= 0``; neutral candidates have -1);
- *reconstructed vertices* are the connected components of the graph whose edges are the track
  pairs scoring above the threshold (0.5); a component needs at least 2 tracks;
- a true vertex with at least 2 tracks and a reconstructed vertex *match* when at least 50 % of
  the true vertex's tracks are in the reconstructed one and at least 50 % of the reconstructed
  vertex's tracks come from the true one;
- *efficiency*: the fraction of true displaced vertices (index >= 1, i.e. not the primary
  vertex 0) with at least 2 tracks that match a reconstructed vertex;
- *purity*: the fraction of reconstructed vertices that match a true vertex (primary or
  displaced) with at least 2 tracks;
- *primary efficiency*: the same as the efficiency, for the primary vertex of each jet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from foundation.evaluation.metrics import roc_auc

PRIMARY_VERTEX = 0
"""Index of the hard-scatter primary vertex in ``part_vertex``; displaced ones count from 1."""


def efficiency_purity(
    predicted: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class efficiency (recall) and purity (precision) of class predictions.

    Entries with a negative label are ignored.

    Returns:
        ``(efficiency [K], purity [K])``; NaN for a class that is never true (efficiency) or
        never predicted (purity).

    Shapes:
        - predicted, labels: ``[M]`` class indices.
    """
    predicted = np.asarray(predicted).reshape(-1).astype(np.int64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    keep = labels >= 0
    predicted, labels = predicted[keep], labels[keep]
    true_count = np.bincount(labels, minlength=num_classes)[:num_classes].astype(np.float64)
    predicted_count = np.bincount(predicted, minlength=num_classes)[:num_classes]
    correct = np.bincount(labels[predicted == labels], minlength=num_classes)[:num_classes]
    efficiency = np.divide(
        correct, true_count, out=np.full(num_classes, np.nan), where=true_count > 0
    )
    purity = np.divide(
        correct, predicted_count, out=np.full(num_classes, np.nan), where=predicted_count > 0
    )
    return efficiency, purity


def particle_metrics(
    probabilities: np.ndarray, labels: np.ndarray, label_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro one-vs-rest AUC and per-class efficiency / purity / AUC of particles.

    Args:
        probabilities: class scores of each particle ``[M, K]`` (padding already removed).
        labels: true class indices ``[M]``; -1 (unlabelled) is left out.
        label_names: the ``K`` class names.

    Returns:
        ``{"n", "accuracy", "auc", "per_class": {name: {"n_true", "n_predicted",
        "efficiency", "purity", "auc"}}}``.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if probabilities.ndim != 2 or probabilities.shape != (len(labels), len(label_names)):
        raise ValueError(
            f"probabilities must be [M, {len(label_names)}] with M = {len(labels)} labels, "
            f"found {probabilities.shape}"
        )
    keep = labels >= 0
    probabilities, labels = probabilities[keep], labels[keep]
    count = len(label_names)
    predicted = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, np.int64)
    efficiency, purity = efficiency_purity(predicted, labels, count)
    per_class = {}
    for k, name in enumerate(label_names):
        per_class[name] = {
            "n_true": int((labels == k).sum()),
            "n_predicted": int((predicted == k).sum()),
            "efficiency": float(efficiency[k]),
            "purity": float(purity[k]),
            "auc": roc_auc(probabilities[:, k], labels == k),
        }
    return {
        "n": len(labels),
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else float("nan"),
        "auc": roc_auc(probabilities, labels) if len(labels) else float("nan"),
        "per_class": per_class,
    }


# ------------------------------------------------------------------------------ components
def connected_components(
    num_nodes: int, first: np.ndarray, second: np.ndarray, *, use_scipy: bool = True
) -> np.ndarray:
    """Connected-component label of every node of an undirected graph given by its edges.

    Uses ``scipy.sparse.csgraph`` when available (and ``use_scipy``), else a vectorized
    union-find (hooking and pointer jumping). Labels are ``0..C-1`` in order of each component's
    smallest node.

    Shapes:
        - first, second: ``[E]`` node indices of the edges; output: ``[num_nodes]`` int64.
    """
    first = np.asarray(first, dtype=np.int64).reshape(-1)
    second = np.asarray(second, dtype=np.int64).reshape(-1)
    if use_scipy:
        try:
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components as scipy_components
        except ImportError:  # pragma: no cover - scipy comes with scikit-learn
            use_scipy = False
    if use_scipy:
        graph = coo_matrix(
            (np.ones(first.size, dtype=np.int8), (first, second)), shape=(num_nodes, num_nodes)
        )
        _, labels = scipy_components(graph, directed=False)
        roots = labels.astype(np.int64)
    else:
        roots = _union_find(num_nodes, first, second)
    _, first_seen = np.unique(roots, return_index=True)
    order = np.argsort(np.argsort(first_seen))  # component number by its smallest node
    return order[np.unique(roots, return_inverse=True)[1]].astype(np.int64)


def _union_find(num_nodes: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Root (smallest node) of every node's component: vectorized hooking + pointer jumping."""
    parent = np.arange(num_nodes, dtype=np.int64)
    while True:
        low = np.minimum(parent[first], parent[second])
        high = np.maximum(parent[first], parent[second])
        differ = low != high
        if not differ.any():
            return parent
        np.minimum.at(parent, high[differ], low[differ])  # hook the larger root under the smaller
        while True:  # pointer jumping until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def find_vertices(
    num_tracks: int,
    first: np.ndarray,
    second: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
) -> np.ndarray:
    """Group tracks into vertices: connected components of the pairs scoring above ``threshold``.

    Args:
        num_tracks: number of tracks (nodes).
        first, second: the two tracks of each scored pair (indices into the tracks; pairs of
            different jets are never given, so groups stay within a jet).
        scores: same-vertex probability of each pair.
        threshold: a pair with ``score > threshold`` joins its two tracks.

    Returns:
        The reconstructed vertex (group) index of every track.

    Shapes:
        - first, second, scores: ``[P]``; output: ``[num_tracks]`` int64.
    """
    scores = np.asarray(scores).reshape(-1)
    linked = scores > threshold
    return connected_components(num_tracks, np.asarray(first)[linked], np.asarray(second)[linked])


def vertex_finding_metrics(
    reco_vertex: np.ndarray,
    true_vertex: np.ndarray,
    jet: np.ndarray | None = None,
    *,
    min_tracks: int = 2,
    fraction: float = 0.5,
) -> dict[str, float]:
    """Vertex-finding efficiency and purity (definitions in the module docstring).

    Args:
        reco_vertex: reconstructed vertex of each track (e.g. from :func:`find_vertices`);
            groups are global (a group never spans two jets).
        true_vertex: true vertex index of each track within its jet (0 = primary,
            >= 1 displaced); tracks with a negative index are left out.
        jet: jet of each track (default: all tracks in one jet).
        min_tracks: tracks a true or reconstructed vertex needs to count.
        fraction: the share of tracks on each side that a match needs.

    Returns:
        ``efficiency``, ``purity``, ``primary_efficiency`` and the counts behind them:
        ``n_true_displaced``, ``n_found_displaced``, ``n_true_primary``, ``n_found_primary``,
        ``n_reco``, ``n_reco_matched``. A ratio with nothing to count is NaN.

    Shapes:
        - reco_vertex, true_vertex, jet: ``[T]``.
    """
    reco = np.asarray(reco_vertex, dtype=np.int64).reshape(-1)
    true = np.asarray(true_vertex, dtype=np.int64).reshape(-1)
    jets = np.zeros_like(true) if jet is None else np.asarray(jet, dtype=np.int64).reshape(-1)
    if not reco.shape == true.shape == jets.shape:
        raise ValueError(
            "reco_vertex, true_vertex and jet need one value per track: found "
            f"{reco.shape}, {true.shape} and {jets.shape}"
        )
    keep = true >= 0
    reco, true, jets = reco[keep], true[keep], jets[keep]
    # global ids of true vertices (jet, index) and of reconstructed groups
    stride = int(true.max()) + 1 if true.size else 1
    true_keys, true_id = np.unique(jets * stride + true, return_inverse=True)
    reco_keys, reco_id = np.unique(reco, return_inverse=True)
    true_id, reco_id = true_id.reshape(-1), reco_id.reshape(-1)
    n_true, n_reco = len(true_keys), len(reco_keys)
    true_size = np.bincount(true_id, minlength=n_true)
    reco_size = np.bincount(reco_id, minlength=n_reco)
    pair_keys, shared = np.unique(true_id * max(n_reco, 1) + reco_id, return_counts=True)
    t, r = pair_keys // max(n_reco, 1), pair_keys % max(n_reco, 1)
    matched = (
        (true_size[t] >= min_tracks)
        & (reco_size[r] >= min_tracks)
        & (shared >= fraction * true_size[t])
        & (shared >= fraction * reco_size[r])
    )
    found = np.zeros(n_true, dtype=bool)
    found[t[matched]] = True
    reco_matched = np.zeros(n_reco, dtype=bool)
    reco_matched[r[matched]] = True
    counted = true_size >= min_tracks
    is_primary = true_keys % stride == PRIMARY_VERTEX
    displaced, primary = counted & ~is_primary, counted & is_primary
    real_reco = reco_size >= min_tracks

    def ratio(numerator: int, denominator: int) -> float:
        return numerator / denominator if denominator else float("nan")

    counts = {
        "n_true_displaced": int(displaced.sum()),
        "n_found_displaced": int((found & displaced).sum()),
        "n_true_primary": int(primary.sum()),
        "n_found_primary": int((found & primary).sum()),
        "n_reco": int(real_reco.sum()),
        "n_reco_matched": int((reco_matched & real_reco).sum()),
    }
    return {
        "efficiency": ratio(counts["n_found_displaced"], counts["n_true_displaced"]),
        "purity": ratio(counts["n_reco_matched"], counts["n_reco"]),
        "primary_efficiency": ratio(counts["n_found_primary"], counts["n_true_primary"]),
        **counts,
    }


def pair_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    *,
    num_tracks: int,
    true_vertex: np.ndarray | None = None,
    track_jet: np.ndarray | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Pair AUC, pair efficiency / purity at ``threshold``, and vertex finding.

    Args:
        scores: same-vertex probability of each pair of tracks ``[P]``.
        labels: 1 same vertex, 0 not ``[P]`` (-1 pairs are left out).
        first, second: track indices of each pair ``[P]`` (into ``0..num_tracks-1``).
        num_tracks: number of tracks.
        true_vertex: true vertex index of each track ``[T]`` (0 = primary). Without it the true
            vertices are the connected components of the same-vertex pairs, none is known to be
            primary, and the efficiency counts every true vertex.
        track_jet: jet of each track ``[T]``.
        threshold: score above which a pair is called same-vertex.

    Returns:
        ``{"n_pairs", "auc", "accuracy", "pair_efficiency", "pair_purity", "vertex_finding"}``.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    first = np.asarray(first, dtype=np.int64).reshape(-1)
    second = np.asarray(second, dtype=np.int64).reshape(-1)
    keep = labels >= 0
    scores, labels, first, second = scores[keep], labels[keep], first[keep], second[keep]
    called = scores > threshold
    positive = labels == 1
    efficiency, purity = efficiency_purity(called.astype(np.int64), labels, 2)
    result: dict[str, Any] = {
        "n_pairs": int(labels.size),
        "n_same_vertex": int(positive.sum()),
        "auc": roc_auc(scores, positive),
        "accuracy": float(np.mean(called == positive)) if labels.size else float("nan"),
        "pair_efficiency": float(efficiency[1]),
        "pair_purity": float(purity[1]),
        "threshold": float(threshold),
    }
    if true_vertex is None:
        truth = connected_components(num_tracks, first[positive], second[positive]) + 1
        in_pairs = np.zeros(num_tracks, dtype=bool)
        in_pairs[first], in_pairs[second] = True, True
        truth = np.where(in_pairs, truth, -1)
    else:
        truth = np.asarray(true_vertex, dtype=np.int64).reshape(-1)
    reco = find_vertices(num_tracks, first, second, scores, threshold)
    result["vertex_finding"] = vertex_finding_metrics(reco, truth, track_jet)
    return result
