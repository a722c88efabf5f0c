"""One figure with a data-efficiency panel per benchmark task (the README's suite plot)::

    python benchmarks/plot_suite.py --out docs/data_efficiency_suite.png \\
        --panel "D1 top vs QCD" runs/d1_study_sim300k/study.json top/auc \\
        --part "D1 top vs QCD" benchmarks/results/part_d1_gpu.json \\
        --panel "D3 jet pT" runs/d3_study/study.json calibration/log_pt_ratio/model/sigma68 \\
        --reference "D3 jet pT" calibration/log_pt_ratio/reference/sigma68 ...

Each panel draws one metric of a study's table (mean ± std over seeds against the number of
labelled jets, one line per mode, axis labels from ``foundation.evaluation.labels``); an AUC
panel gets the head's background rejection 1/εB at εS = 0.3 beside it (log axis, infinite
rejections as lower-limit markers) when the study has it (``--no-rejection``: not);
``--part`` adds the ParT runs of ``part_study.py`` to a panel and ``--reference`` a horizontal
line at a metric's mean over the panel's runs (e.g. the detector-level jet's resolution, the
same for every mode). One legend for the whole figure, in a spare cell or below the panels.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

from plot_study_with_part import merged_table

from foundation.evaluation.plots import PANEL_SIZE, new_figure, save_figure
from foundation.training.plots import companion_rejection, draw_metric


def reference_level(table: dict[str, dict[int, dict]], metric: str) -> float | None:
    """Mean of ``metric`` over every (mode, N) row of ``table`` that has it (None: none has)."""
    values = [
        row[metric]["mean"]
        for rows in table.values()
        for row in rows.values()
        if metric in row and row[metric]["n"]
    ]
    return sum(values) / len(values) if values else None


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--panel",
        nargs=3,
        action="append",
        required=True,
        metavar=("TITLE", "STUDY_JSON", "METRIC"),
        help="a panel: its title, a study.json and the metric to draw",
    )
    parser.add_argument(
        "--part",
        nargs=2,
        action="append",
        default=[],
        metavar=("TITLE", "PART_JSON"),
        help="ParT runs (part_study.py JSON) to add to the panel of that title",
    )
    parser.add_argument(
        "--reference",
        nargs=2,
        action="append",
        default=[],
        metavar=("TITLE", "METRIC"),
        help="a dashed line at the mean of METRIC (e.g. the detector-level resolution)",
    )
    parser.add_argument(
        "--no-rejection", action="store_true", help="no 1/εB panel beside the AUC panels"
    )
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    titles = [title for title, _, _ in args.panel]
    for option, entries in (("--part", args.part), ("--reference", args.reference)):
        unknown = [title for title, _ in entries if title not in titles]
        if unknown:
            parser.error(f"{option}: no --panel titled {unknown[0]!r} (panels: {titles})")
    parts = dict(args.part)
    references = dict(args.reference)

    panels = []  # (title, table, metric, reference metric or None)
    for title, study_path, metric in args.panel:
        study = json.loads(Path(study_path).read_text())
        part = json.loads(Path(parts[title]).read_text()) if title in parts else {"table": {}}
        table = merged_table(study, part)
        panels.append((title, table, metric, references.get(title)))
        rejection = None if args.no_rejection else companion_rejection(table, metric)
        if rejection is not None:
            panels.append((title, table, rejection, None))
    columns = min(len(panels), 4 if len(panels) > 6 else 3)
    rows = math.ceil(len(panels) / columns)
    spare = rows * columns > len(panels)
    figure = new_figure(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + (0 if spare else 0.8))
    handles: dict[str, object] = {}
    for index, (title, table, metric, reference) in enumerate(panels):
        axis = figure.add_subplot(rows, columns, index + 1)
        draw_metric(axis, table, metric, legend=False)
        if reference is not None:
            level = reference_level(table, reference)
            if level is not None:
                axis.axhline(level, color="gray", linestyle="--", label="detector-level jet")
        axis.set_title(title)
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if spare:
        cell = figure.add_subplot(rows, columns, rows * columns)
        cell.axis("off")
        cell.legend(handles.values(), handles.keys(), loc="center", fontsize="medium")
    else:
        figure.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=4)
    save_figure(figure, args.out)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
