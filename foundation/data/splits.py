"""Deterministic train/val/test splits by event, and stratified label subsampling.

A jet's split depends only on its ``event_id`` and a seed, through a stable 64-bit hash
(SplitMix64, not Python's salted ``hash()``): the same event lands in the same split on every
machine and run, whatever the file order, and two jets of one event never straddle splits.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer over uint64 arrays (wrapping arithmetic)."""
    x = np.asarray(values, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def event_hash(event_id: np.ndarray, seed: int = 0) -> np.ndarray:
    """A stable pseudo-random number in [0, 1) for each event id and seed.

    Shapes:
        - event_id: ``[n]`` integers; output: ``[n]`` float64.
    """
    ids = np.asarray(event_id).astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        mixed = _splitmix64(ids ^ key)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _check_fractions(fractions: Mapping[str, float]) -> None:
    values = list(fractions.values())
    if not values or any(not v >= 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(
            f"split fractions: expected non-negative numbers summing to 1, found {dict(fractions)}"
        )


def split_codes(
    event_id: np.ndarray, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0
) -> np.ndarray:
    """Index of each jet's split in ``list(fractions)`` (0 = first split, e.g. train).

    Raises:
        ValueError: fractions that are negative or do not sum to 1.

    Shapes:
        - event_id: ``[n]``; output: ``[n]`` int8.
    """
    _check_fractions(fractions)
    edges = np.cumsum(list(fractions.values()))[:-1]
    return np.searchsorted(edges, event_hash(event_id, seed), side="right").astype(np.int8)


def split_indices(
    event_id: np.ndarray, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0
) -> dict[str, np.ndarray]:
    """Sorted jet indices of each split, e.g. ``{"train": ..., "val": ..., "test": ...}``.

    Raises:
        ValueError: fractions that are negative or do not sum to 1.

    Shapes:
        - event_id: ``[n]``; each output: ``[n_split]`` int64.
    """
    codes = split_codes(event_id, fractions, seed)
    return {name: np.flatnonzero(codes == k) for k, name in enumerate(fractions)}


def subsample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Pick ``n`` jets at random, keeping the class proportions of ``labels`` (stratified).

    Each class gets its share of ``n`` rounded by largest remainder; the choice is seeded and
    deterministic. Typical use: the labelled subset for a fine-tuning run of a given size.

    Raises:
        ValueError: ``n`` is negative or larger than the number of jets.

    Shapes:
        - labels: ``[M]``; output: ``[n]`` sorted int64 indices into ``labels``.
    """
    labels = np.asarray(labels)
    if not 0 <= n <= len(labels):
        raise ValueError(f"subsample: expected 0 <= n <= {len(labels)} (the jets given), found {n}")
    classes, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    exact = n * sizes / max(len(labels), 1)
    share = np.floor(exact).astype(np.int64)
    remainder = n - int(share.sum())
    if remainder:
        share[np.argsort(-(exact - share), kind="stable")[:remainder]] += 1
    rng = np.random.default_rng(seed)
    picked = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        picked.append(rng.choice(members, size=int(share[k]), replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.zeros(0, np.int64)
