"""PNG plots of training runs and studies: loss curves, and study metrics against the number of
labelled jets (headless matplotlib, object API, atomic writes).

Axis labels come from :func:`foundation.evaluation.labels.metric_label` and series names from
:func:`~foundation.evaluation.labels.mode_label` (the names of the README's tables). Rejections
1/εB go on a log axis; a seed where no test background jet passes (1/εB = ∞) is drawn as a
lower-limit marker (▲) with a note, not dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from foundation.evaluation.labels import MODE_LABELS, is_rejection, metric_label, mode_label

_LOSS_LABELS = {"train_step": "train (steps)", "train": "train (epoch mean)", "val": "validation"}
StudyTable = Mapping[str, Mapping[int, Mapping[str, Mapping[str, float]]]]
"""``{series: {N: {metric: {"mean", "std", "n", "infinite"}}}}`` (the study's summary)."""

LIMIT_NOTE = (
    "\u25b2 1/\u03b5B = \u221e in some seeds (no test background jet\n"
    "passes the cut): a lower limit"
)


def format_lr(lr: float) -> str:
    """A learning rate as the README's tables write it: ``2e-4``, ``1e-3``, ``0.5``."""
    if lr == 0 or 0.01 <= abs(lr) < 1000:
        return f"{lr:g}"
    mantissa, exponent = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def loss_title(name: str = "", mode: str | None = None, lr: float | None = None) -> str:
    """``"top_tagging: pretrained, fine-tuned, lr 2e-4"`` (the parts that are known)."""
    details = [mode_label(mode)] if mode else []
    if lr is not None:
        details.append(f"lr {format_lr(lr)}")
    if name and details:
        return f"{name}: {', '.join(details)}"
    return name or ", ".join(details)


def plot_loss_curves(
    history: Mapping[str, Sequence[Sequence[float]]],
    path: Path,
    title: str = "",
    *,
    mode: str | None = None,
    lr: float | None = None,
) -> Path:
    """Plot the loss history (``{"train_step"|"train"|"val": [[step, loss], ...]}``) to ``path``.

    Args:
        history: loss points per series.
        path: PNG to write.
        title: the run's name.
        mode: fine-tuning mode (``full``, ``frozen``, ``scratch``...), shown in the title.
        lr: learning rate, shown in the title.
    """
    from foundation.evaluation.plots import new_figure, save_figure

    figure = new_figure()
    axis = figure.add_subplot()
    for key, label in _LOSS_LABELS.items():
        points = history.get(key) or []
        if not points:
            continue
        steps, values = zip(*points, strict=True)
        style = {"alpha": 0.4, "linewidth": 1} if key == "train_step" else {"marker": "o"}
        axis.plot(steps, values, label=label, **style)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss")
    heading = loss_title(title, mode, lr)
    if heading:
        axis.set_title(heading, fontsize="medium")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize="small")
    axis.grid(alpha=0.3)
    return save_figure(figure, path)


_SERIES_ORDER = (
    *(MODE_LABELS[mode] for mode in ("frozen", "full", "scratch", "gbt")),
    "ParT (weaver), from scratch*",
    "jetformer-tiny, from scratch*",
    *(MODE_LABELS[mode] for mode in ("linear", "lwld", "unfreeze", "lora")),
)


def series_color(label: str) -> str:
    """A fixed colour per series name, so that a mode has the same colour in every panel and
    every figure (matplotlib's cycle ``C0``... in the order of :data:`MODE_LABELS`)."""
    label = mode_label(label)
    if label in _SERIES_ORDER:
        return f"C{_SERIES_ORDER.index(label) % 10}"
    return f"C{sum(label.encode()) % 10}"


def _plain_log_ticks(axis: Any, which: str, values: Sequence[float] = ()) -> None:
    """Plain numbers on a log axis (1,000 rather than 10³); ``values``: the only major ticks."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    target = axis.xaxis if which == "x" else axis.yaxis
    if values:
        target.set_major_locator(FixedLocator(sorted(set(values))))
        target.set_minor_locator(NullLocator())
    else:
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(
        FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")
    )
    target.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def draw_metric(axis: Any, table: StudyTable, metric: str, *, legend: bool = True) -> list[Any]:
    """Draw ``metric`` (mean ± std over seeds) against N on a log axis, one series per entry of
    ``table``, on a matplotlib ``axis``.

    Rejections (``.../rejection_at_*``) use a log y axis. An entry with seeds at 1/εB = ∞ is a
    lower limit: with finite seeds too, their mean gets an upward marker ▲; with none, a ▲ sits
    above every finite point of the panel. A note under the axes explains the marker.

    Returns:
        ``(series, N)`` of every point drawn as a lower limit.
    """
    entries = [
        (series, size, rows[size][metric])
        for series, rows in table.items()
        for size in sorted(rows)
        if metric in rows[size]
    ]
    tops = [e["mean"] + e["std"] for _, _, e in entries if e.get("n")]
    ceiling = 1.6 * max(tops) if tops else 1.0
    limits = []
    stacked: dict[int, int] = {}  # markers at the ceiling so far, per N
    for series in table:
        color = series_color(series)
        points = [(size, entry) for name, size, entry in entries if name == series]
        finite = [(size, entry) for size, entry in points if entry.get("n")]
        if finite:
            axis.errorbar(
                [size for size, _ in finite],
                [entry["mean"] for _, entry in finite],
                yerr=[entry["std"] for _, entry in finite],
                marker="o",
                capsize=3,
                color=color,
                label=mode_label(series),
            )
        labelled = bool(finite)
        for size, entry in points:
            if not entry.get("infinite"):
                continue
            level, x = entry["mean"], size
            if not entry.get("n"):  # side by side at the ceiling, not on top of each other
                level, x = ceiling, size * 1.05 ** stacked.get(size, 0)
                stacked[size] = stacked.get(size, 0) + 1
            label = None if labelled else f"{mode_label(series)} (\u221e)"
            labelled = True
            axis.plot(
                [x],
                [level],
                marker="^",
                markersize=10,
                markeredgecolor="black",
                color=color,
                label=label,
                zorder=5,
            )
            limits.append((series, size))
    axis.set_xscale("log")
    sizes = [size for _, size, _ in entries]
    if sizes:  # a margin, so that one N is not a whole axis
        axis.set_xlim(min(sizes) / 1.4, max(sizes) * 1.4)
    _plain_log_ticks(axis, "x", sizes)
    if is_rejection(metric):
        axis.set_yscale("log")
        _plain_log_ticks(axis, "y")
    axis.set_xlabel("labelled training jets N")
    axis.set_ylabel(metric_label(metric))
    axis.grid(alpha=0.3, which="both")
    if limits:
        axis.annotate(
            LIMIT_NOTE,
            xy=(0.0, 0.0),
            xycoords="axes fraction",
            xytext=(0, -34),
            textcoords="offset points",
            fontsize="x-small",
            va="top",
        )
    if legend and axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize="small")
    return limits


def plot_metrics(table: StudyTable, metrics: Sequence[str], path: Path, *, title: str = "") -> Path:
    """Panels side by side, one per metric (e.g. ROC AUC and 1/εB at εS = 0.3), one series per
    entry of ``table``, the legend in the first panel.

    Args:
        table: the study summary (series -> N -> metric -> entry).
        metrics: metric keys, one panel each.
        path: PNG to write.
        title: figure title.
    """
    from foundation.evaluation.plots import PANEL_SIZE, new_figure, save_figure

    if not metrics:
        raise ValueError("plot_metrics: expected at least one metric, found none")
    figure = new_figure(PANEL_SIZE[0] * len(metrics), PANEL_SIZE[1])
    for index, metric in enumerate(metrics):
        axis = figure.add_subplot(1, len(metrics), index + 1)
        draw_metric(axis, table, metric, legend=index == 0)
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def plot_metric(table: StudyTable, metric: str, path: Path) -> Path:
    """``metric`` (mean ± std) against N on a log axis, one series per entry of ``table``."""
    return plot_metrics(table, [metric], path)


def companion_rejection(table: StudyTable, metric: str, efficiency: float = 0.3) -> str | None:
    """The ``<head>/rejection_at_<εS>`` key to put beside ``<head>/auc`` when ``table`` has it."""
    if not metric.endswith("/auc"):
        return None
    candidate = f"{metric[: -len('auc')]}rejection_at_{efficiency:g}"
    present = any(candidate in row for rows in table.values() for row in rows.values())
    return candidate if present else None
