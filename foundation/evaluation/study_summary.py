"""A study's runs summarised over seeds: mean, standard deviation and count of each test metric
per (mode, N), with infinite rejections counted apart.

A background rejection 1/εB is +inf when no test background jet passes the cut; such a seed is
left out of the mean and counted in ``infinite``, so the table says how often it happened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

StudySummary = dict[str, dict[int, dict[str, dict[str, float]]]]
"""``{mode: {N: {metric: {"mean", "std", "n", "infinite"}}}}``."""


@dataclass(frozen=True)
class StudyPoint:
    """One run of the study and its test metrics."""

    mode: str
    size: int
    seed: int
    folder: Path
    metrics: dict[str, float]


def summarize(points: Sequence[StudyPoint]) -> StudySummary:
    """Mean, standard deviation (ddof 1; 0 for one value) and count of each metric per mode
    and N, over the seeds with a finite value; ``infinite`` counts the seeds whose value is
    +inf (a background rejection where no test background jet passes the cut).

    A metric with neither a finite nor a +inf value (only NaN or -inf) is left out; one with
    only +inf values has ``mean`` +inf and ``n`` 0. Modes and N keep the order of ``points``.
    """
    table: StudySummary = {}
    groups: dict[tuple[str, int], list[StudyPoint]] = {}
    for point in points:
        groups.setdefault((point.mode, point.size), []).append(point)
    for (mode, size), members in groups.items():
        names = sorted({name for point in members for name in point.metrics})
        row = {}
        for name in names:
            values = np.array(
                [p.metrics[name] for p in members if name in p.metrics], dtype=np.float64
            )
            infinite = int(np.isposinf(values).sum())
            values = values[np.isfinite(values)]
            if not values.size and not infinite:
                continue
            entry = {"mean": math.inf, "std": 0.0, "n": 0, "infinite": infinite}
            if values.size:
                std = float(values.std(ddof=1)) if values.size > 1 else 0.0
                entry.update(mean=float(values.mean()), std=std, n=int(values.size))
            row[name] = entry
        table.setdefault(mode, {})[size] = row
    return table
