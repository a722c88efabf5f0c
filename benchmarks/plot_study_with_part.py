"""One data-efficiency plot with a study's modes and the ParT runs of ``part_study.py`` beside
them (the README's plots)::

    python benchmarks/plot_study_with_part.py --study runs/d1_study/study.json \\
        --part benchmarks/results/part_d1_gpu.json --metric top/auc --out docs/d1.png
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from foundation.training.study import plot_metric

LABELS = {
    "frozen": "pretrained, frozen",
    "full": "pretrained, fine-tuned",
    "scratch": "from scratch",
    "gbt": "gradient-boosted trees",
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
    parser.add_argument("--metric", required=True, help="e.g. top/auc")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    study, part = (json.loads(path.read_text()) for path in (args.study, args.part))
    path = plot_metric(merged_table(study, part), args.metric, args.out)
    print(f"wrote {path} (* the harness's loop: fixed epochs, lr 1e-3, no model selection)")
    return path


if __name__ == "__main__":
    main()
