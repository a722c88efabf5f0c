"""What a study writes: ``study.json`` (the request, the summary, the learning-rate choices and
every run), ``study.md`` (the summary as a markdown table) and a PNG per metric against N.

The numbers are computed elsewhere (:mod:`foundation.evaluation.study_summary`); this module only
lays them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from foundation.evaluation.study_summary import StudyPoint, StudySummary
from foundation.io import write_json
from foundation.training.plots import companion_rejection, plot_metric, plot_metrics

STUDY_JSON = "study.json"
STUDY_MARKDOWN = "study.md"

LrSelections = Mapping[str, Mapping[str, Mapping[str, Any]]]
"""``{mode: {N: {"monitor", "scores": {lr: value}, "chosen": lr}}}`` of the learning-rate grids."""


class StudyFiles(NamedTuple):
    """The files of a study's report."""

    markdown: Path
    json: Path
    plots: list[Path]


def _cell(entry: Mapping[str, float] | None) -> str:
    """One table cell: ``mean ± std``, with the seeds whose value is infinite named."""
    if entry is None:
        return "-"
    infinite = int(entry.get("infinite", 0))
    if not entry["n"]:
        return f"∞ ({infinite} of {infinite})"
    text = f"{entry['mean']:.4g} ± {entry['std']:.2g}"
    if infinite:
        text += f" (∞ in {infinite} of {infinite + int(entry['n'])}, left out)"
    return text


def metric_names(table: StudySummary) -> list[str]:
    """Every metric of the summary, sorted."""
    return sorted({m for rows in table.values() for row in rows.values() for m in row})


def markdown_table(table: StudySummary) -> str:
    """The summary as a markdown table: one row per (mode, N), one column per metric."""
    metrics = metric_names(table)
    lines = [
        "| mode | N | " + " | ".join(metrics) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in metrics) + " |",
    ]
    for mode, rows in table.items():
        for size in sorted(rows):
            cells = [_cell(rows[size].get(metric)) for metric in metrics]
            lines.append(f"| {mode} | {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def lr_selection_text(selections: LrSelections) -> str:
    """The learning rates chosen per mode and N, with the validation score of each (markdown)."""
    if not selections:
        return ""
    lines = ["", "Learning rate chosen per mode and N on seed 0's validation split:", ""]
    for mode, rows in selections.items():
        for size, entry in rows.items():
            scores = ", ".join(f"{lr:g}: {value:.4g}" for lr, value in entry["scores"].items())
            lines.append(
                f"- {mode}, N = {size}: lr {entry['chosen']:g} ({entry['monitor']}: {scores})"
            )
    return "\n".join(lines) + "\n"


def study_markdown(name: str, seeds: int, table: StudySummary, selections: LrSelections) -> str:
    """The text of ``study.md``: a title, the summary table, the learning rates chosen."""
    title = f"# Data efficiency: {name}\n\nTest metrics, mean ± std over {seeds} seed(s).\n\n"
    return title + markdown_table(table) + lr_selection_text(selections)


def study_record(
    request: Mapping[str, Any],
    table: StudySummary,
    selections: LrSelections,
    points: Sequence[StudyPoint],
) -> dict[str, Any]:
    """The content of ``study.json`` (N and learning rates as strings where they are keys)."""
    return {
        "request": request,
        "table": {mode: {str(n): row for n, row in rows.items()} for mode, rows in table.items()},
        "lr_selection": {
            mode: {
                n: {**entry, "scores": {f"{lr:g}": v for lr, v in entry["scores"].items()}}
                for n, entry in rows.items()
            }
            for mode, rows in selections.items()
        },
        "runs": [
            {
                "mode": p.mode,
                "size": p.size,
                "seed": p.seed,
                "folder": str(p.folder),
                "metrics": p.metrics,
            }
            for p in points
        ],
    }


def plot_name(metric: str) -> str:
    """The plot file of a metric: ``top/auc`` -> ``study_top_auc.png``."""
    return "study_" + "".join(c if c.isalnum() or c in "._-" else "_" for c in metric) + ".png"


def write_plots(table: StudySummary, folder: Path) -> list[Path]:
    """One plot per metric against N, then ROC AUC with 1/εB at εS = 0.3 beside it."""
    names = metric_names(table)
    plots = [plot_metric(table, m, folder / plot_name(m)) for m in names]
    for metric in names:
        rejection = companion_rejection(table, metric)
        if rejection is not None:
            both = folder / plot_name(f"{metric}_and_rejection")
            plots.append(plot_metrics(table, [metric, rejection], both))
    return plots


def write_study_report(
    folder: Path,
    name: str,
    request: Mapping[str, Any],
    points: Sequence[StudyPoint],
    table: StudySummary,
    selections: LrSelections,
) -> StudyFiles:
    """Write ``study.json``, ``study.md`` and the plots into ``folder`` (which exists).

    Args:
        folder: the study folder.
        name: the recipe's name (the title of ``study.md``).
        request: what was asked (``recipe``, ``sizes``, ``seeds``, ``modes``, ``lr_grid``).
        points: every run and its metrics.
        table: their summary (:func:`~foundation.evaluation.study_summary.summarize`).
        selections: the learning rates chosen per mode and N.
    """
    json_path = write_json(folder / STUDY_JSON, study_record(request, table, selections, points))
    markdown = folder / STUDY_MARKDOWN
    text = study_markdown(name, request["seeds"], table, selections)
    markdown.write_text(text, encoding="utf-8")
    return StudyFiles(markdown, json_path, write_plots(table, folder))
