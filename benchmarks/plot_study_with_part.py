"""One data-efficiency figure with a study's modes and the ParT runs of ``part_study.py`` beside
them (the README's plots)::

    python benchmarks/plot_study_with_part.py --study runs/d1_study/study.json \\
        --part benchmarks/results/part_d1_gpu.json --metric top/auc --out docs/d1.png

A panel per ``--metric``; an AUC gets the background rejection 1/εB at εS = 0.3 of the same
head beside it on a log axis when the tables have it (``--no-rejection``: the AUC alone).
Series are named as in the README's tables (``MODE_LABELS``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from foundation.evaluation.labels import MODE_LABELS
from foundation.training.plots import companion_rejection, plot_metrics

LABELS = {
    **MODE_LABELS,
    "weaver-part": "ParT (weaver), from scratch*",
    "jetformer-tiny": "jetformer-tiny, from scratch*",
}


def merged_table(study: dict, part: dict) -> dict[str, dict[int, dict]]:
    """The two summary tables as one ``{label: {N: {metric: entry}}}`` (N as integers)."""
    table = {}
    for source in (study["table"], part["table"]):
        for mode, rows in source.items():
            table[LABELS.get(mode, mode)] = {int(size): row for size, row in rows.items()}
    return table


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, required=True, help="a study's study.json")
    parser.add_argument("--part", type=Path, required=True, help="a part_study.py JSON")
    parser.add_argument("--metric", required=True, nargs="+", help="one panel each, e.g. top/auc")
    parser.add_argument(
        "--no-rejection",
        action="store_true",
        help="no 1/εB panel beside an AUC panel",
    )
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    study, part = (json.loads(path.read_text()) for path in (args.study, args.part))
    table = merged_table(study, part)
    metrics = []
    for metric in args.metric:
        metrics.append(metric)
        rejection = None if args.no_rejection else companion_rejection(table, metric)
        if rejection is not None and rejection not in args.metric:
            metrics.append(rejection)
    path = plot_metrics(table, metrics, args.out)
    print(f"wrote {path} (* the harness's loop: fixed epochs, lr 1e-3, no model selection)")
    return path


if __name__ == "__main__":
    main()
