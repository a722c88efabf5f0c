"""Seeded bootstrap uncertainties of any metric computed from aligned arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap(
    metric_fn: Callable[..., float | np.ndarray],
    *arrays: np.ndarray,
    n: int = 100,
    seed: int = 0,
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Mean and standard deviation of ``metric_fn`` over ``n`` resamples (with replacement).

    Every array is resampled with the same row indices, so rows stay aligned (scores with their
    labels). The resamples depend only on ``seed`` and the number of rows: the same call gives
    the same result. Resamples where the metric is not finite (e.g. one class only, or an
    infinite background rejection) are left out of the mean and the standard deviation.

    Args:
        metric_fn: ``metric_fn(*resampled_arrays)`` -> a float, or a 1-D array of metrics.
        *arrays: arrays with the same first dimension.
        n: number of resamples (0 gives NaN).
        seed: seed of the resampling.

    Returns:
        ``(mean, std)`` over the finite resampled values: floats for a scalar metric, arrays for
        a vector metric. The mean is NaN where no value is finite, the (ddof=1) standard
        deviation where fewer than two are.

    Raises:
        ValueError: no array is given, the arrays differ in length, or ``n < 0``.

    Shapes:
        - arrays: ``[M, ...]`` each; a vector metric: ``[K]`` -> mean, std: ``[K]``.
    """
    if not arrays:
        raise ValueError("bootstrap: expected at least one array to resample")
    sizes = {len(array) for array in arrays}
    if len(sizes) != 1:
        raise ValueError(
            f"bootstrap: arrays must share their length, found lengths {sorted(sizes)}"
        )
    if n < 0:
        raise ValueError(f"bootstrap: n must be >= 0, found {n}")
    size = sizes.pop()
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        rows = rng.integers(0, size, size) if size else np.zeros(0, dtype=np.int64)
        values.append(np.asarray(metric_fn(*(array[rows] for array in arrays)), dtype=np.float64))
    if not values:
        return float("nan"), float("nan")
    scalar = values[0].ndim == 0
    stacked = np.stack(values).reshape(n, -1)
    finite = np.isfinite(stacked)
    count = finite.sum(axis=0)
    kept = np.where(finite, stacked, 0.0)
    mean = np.divide(kept.sum(axis=0), count, out=np.full(count.shape, np.nan), where=count > 0)
    squares = np.where(finite, (kept - np.nan_to_num(mean)) ** 2, 0.0).sum(axis=0)
    variance = np.divide(squares, count - 1, out=np.full(count.shape, np.nan), where=count > 1)
    std = np.sqrt(variance)
    if scalar:
        return float(mean[0]), float(std[0])
    return mean, std
