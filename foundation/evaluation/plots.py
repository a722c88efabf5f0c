"""PNG plots of the evaluation: ROC curves, score distributions, response vs pT, response.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, no display, no
global backend switch) and written atomically (temporary file, then rename).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from foundation.evaluation.metrics import roc_points
from foundation.io import atomic_path

_DPI = 100
PANEL_SIZE: tuple[float, float] = (5.0, 4.0)
"""Width and height (inches, at 100 dpi) of one panel: every single-panel figure of the library
has this size, and multi-panel figures are multiples of it."""


def new_figure(width: float = PANEL_SIZE[0], height: float = PANEL_SIZE[1]) -> Figure:
    """A headless figure (Agg canvas, constrained layout, so that labels are never cut off)."""
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _legend(axes: Axes) -> None:
    """Add a legend when something is labelled (avoids matplotlib's empty-legend warning)."""
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as PNG to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Background rejection 1/εB (log axis) against signal efficiency εS, one curve per entry.

    Where no background jet passes the cut (εB = 0, 1/εB infinite: the lowest εS of a good
    tagger on a small test set), the curve goes on as a dashed line at the lower limit
    1/εB > N_B (the number of background jets) with upward markers, and a note says so,
    instead of vanishing.

    Args:
        curves: curve name -> (signal scores, labels with 1 = signal) ``([M], [M])``.
        path: PNG to write.
        title: figure title.

    Returns:
        ``path``.
    """
    figure = new_figure()
    axes = figure.add_subplot()
    limits = []
    for index, (name, (scores, labels)) in enumerate(curves.items()):
        color = f"C{index}"
        signal_eff, background_eff = roc_points(scores, labels)
        keep = background_eff > 0
        if keep.any():
            axes.plot(signal_eff[keep], 1.0 / background_eff[keep], label=name, color=color)
        if (~keep).any():
            background = int((np.asarray(labels) == 0).sum())
            _draw_rejection_limit(axes, signal_eff[~keep], background, color, name, keep.any())
            limits.append(background)
    chance = np.linspace(0.01, 1.0, 100)
    axes.plot(chance, 1.0 / chance, color="grey", linestyle=":", label="random")
    axes.set_yscale("log")
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("signal efficiency $\\varepsilon_S$")
    axes.set_ylabel("background rejection $1/\\varepsilon_B$")
    axes.grid(True, which="both", alpha=0.3)
    if limits:  # a legend entry as the note
        bounds = ", ".join(str(n) for n in sorted(set(limits)))
        axes.plot(
            [],
            [],
            color="black",
            linestyle="--",
            marker="^",
            label=f"no background jet passes:\n$1/\\varepsilon_B > N_B$ = {bounds}",
        )
    _legend(axes)
    if title:
        axes.set_title(title)
    return save_figure(figure, path)


def _draw_rejection_limit(
    axes: Axes, signal_eff: np.ndarray, background: int, color: str, name: str, labelled: bool
) -> None:
    """The εS range without background as a lower limit at ``1/εB = N_B`` (dashed, ▲)."""
    level = np.full(signal_eff.shape, float(max(background, 1)))
    label = None if labelled else f"{name} (lower limit)"
    axes.plot(signal_eff, level, color=color, linestyle="--", label=label)
    ends = signal_eff[[0, -1]] if signal_eff.size > 1 else signal_eff
    axes.plot(ends, level[: ends.size], linestyle="", marker="^", color=color)


def plot_scores(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    path: str | Path,
    *,
    xlabel: str = "score",
    bins: int = 50,
) -> Path:
    """Normalised score histograms: one panel per entry, one histogram per class in it.

    Args:
        panels: panel title -> (class name -> scores ``[M]``).
        path: PNG to write.
        xlabel: x-axis label.
        bins: histogram bins over [0, 1].

    Returns:
        ``path``.
    """
    count = max(1, len(panels))
    columns = min(count, 3)
    rows = (count + columns - 1) // columns
    figure = new_figure(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for index, (title, groups) in enumerate(panels.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        for name, values in groups.items():
            values = np.asarray(values, dtype=np.float64)
            if values.size:
                axes.hist(
                    np.clip(values, 0, 1), bins=edges, density=True, histtype="step", label=name
                )
        axes.set_yscale("log")
        axes.set_xlabel(xlabel)
        axes.set_ylabel("density")
        axes.set_title(title, fontsize="medium")
        _legend(axes)
    return save_figure(figure, path)


def plot_response_vs_binned(
    rows: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | Path,
    *,
    xlabel: str = "true jet $p_T$ [GeV]",
    quantity: str = "response",
) -> Path:
    """Median response (markers at each bin's median) and σ68 (error bars) in bins, and the
    relative resolution σ68 / median below, one series per entry.

    Args:
        rows: series name -> the bins of :func:`~foundation.evaluation.regression.binned_response`.
        path: PNG to write.
        xlabel: label of the binning variable.
        quantity: name of the response on the y axis.

    Returns:
        ``path``.
    """
    figure = new_figure(PANEL_SIZE[0], 1.6 * PANEL_SIZE[1])
    top = figure.add_subplot(2, 1, 1)
    bottom = figure.add_subplot(2, 1, 2, sharex=top)
    for offset, (name, series) in enumerate(rows.items()):
        low = np.array([row["low"] for row in series])
        high = np.array([row["high"] for row in series])
        center = np.array([row.get("center", np.nan) for row in series], dtype=np.float64)
        center = np.where(np.isfinite(center), center, 0.5 * (low + high))
        center = center + (offset - 0.5 * (len(rows) - 1)) * 0.02 * (high - low)  # no overlap
        median = np.array([row["median_response"] for row in series])
        width = np.array([row["sigma68"] for row in series])
        top.errorbar(center, median, yerr=width, xerr=None, marker="o", linestyle="", label=name)
        relative = np.divide(width, median, out=np.full(width.shape, np.nan), where=median != 0)
        bottom.plot(center, relative, marker="o", label=name)
    top.axhline(1.0, color="grey", linestyle=":")
    top.set_ylabel(f"median {quantity} (bars: $\\sigma_{{68}}$)")
    _legend(top)
    bottom.set_ylabel("$\\sigma_{68}$ / median")
    bottom.set_xlabel(xlabel)
    for axes in (top, bottom):
        axes.grid(True, alpha=0.3)
    return save_figure(figure, path)


def plot_response_histogram(
    responses: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    xlabel: str = "response (predicted / true)",
    bins: int = 60,
) -> Path:
    """Normalised histograms of the response, one per entry, over their central 99 %.

    Args:
        responses: series name -> responses ``[M]``.
        path: PNG to write.
        xlabel: x-axis label.
        bins: number of bins.

    Returns:
        ``path``.
    """
    figure = new_figure()
    axes = figure.add_subplot()
    finite = [np.asarray(v, dtype=np.float64) for v in responses.values()]
    finite = [v[np.isfinite(v)] for v in finite]
    pooled = np.concatenate(finite) if finite else np.zeros(0)
    if pooled.size:
        low, high = np.quantile(pooled, [0.005, 0.995])
        if not high > low:
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, bins + 1)
        for name, values in zip(responses, finite, strict=True):
            if values.size:
                axes.hist(values, bins=edges, density=True, histtype="step", label=name)
    axes.axvline(1.0, color="grey", linestyle=":")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("density")
    _legend(axes)
    return save_figure(figure, path)
