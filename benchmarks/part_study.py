"""ParT from weaver-core beside a data-efficiency study: every (label count, seed) in one process.

For each N of ``--sizes`` and K < ``--seeds``, each model of ``--names`` is trained from scratch
with the harness's loop (:func:`bench_vs_part.run_accuracy`: AdamW, warm-up then cosine, fixed
epochs, no early stopping or model selection) on exactly the labelled jets of point (N, K) of
``foundation study data-efficiency`` on the same recipe and cache, and scored on the study's
test jets. The metrics carry the study's names (``top/auc``, ``top/rejection_at_0.3``, ...) and
are summarised with the study's own code, so the table and ``table`` in the JSON read like a
study's ``study.md`` and ``study.json``::

    python benchmarks/part_study.py --recipe recipes/top_tagging.yaml \\
        --cache data/cache/d1_top_8k-05c82e7000d3 --sizes 1000,5000,10000 --seeds 3 \\
        --epochs 15 --device cuda --dtype bfloat16 --out part_d1.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from harness import write_json

from foundation.evaluation.study_summary import StudyPoint, summarize
from foundation.training.recipe import load_recipe
from foundation.training.study_report import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_part import REFERENCE, Settings, run_accuracy
from d1_accuracy import SIGNAL_EFFICIENCIES, d1_data
from weaver_part import weaver_available

POINT_LINE = re.compile(r"^N = (?P<size>\d+), seed (?P<seed>\d+):")
RUN_LINE = re.compile(
    r"^  (?P<name>[\w.-]+): AUC (?P<auc>[\d.]+), 1/εB\(0\.3\) (?P<rejection>[\d.]+|inf) "
)


def study_metrics(scores: dict[str, Any], head: str) -> dict[str, float]:
    """The harness's scores under the study's metric names (``{head}/auc``, ...)."""
    metrics = {f"{head}/auc": float(scores["auc"])}
    for efficiency in SIGNAL_EFFICIENCIES:
        metrics[f"{head}/rejection_at_{efficiency:g}"] = float(scores[f"rejection_{efficiency:g}"])
    return metrics


def jet_head(recipe_path: str | Path) -> str:
    """The name of the recipe's one jet-classification head (the study's metric prefix)."""
    recipe = load_recipe(recipe_path)
    heads = [name for name, head in recipe.model.heads.items() if head.type == "jet_classification"]
    if len(heads) != 1:
        raise SystemExit(
            f"{recipe_path}: model.heads: expected one jet_classification head, found {heads}"
        )
    return heads[0]


def run_points(
    args: argparse.Namespace, settings: Settings, save: Callable[[list[dict[str, Any]]], None]
) -> list[dict[str, Any]]:
    """Train and score every model at every (N, seed); returns one record per run.

    ``save(records)`` is called after every (N, seed), so a run cut short keeps what finished.
    """
    head = jet_head(args.recipe)
    records = []
    for size in args.sizes:
        for seed in range(args.seeds):
            data = d1_data(
                cache=args.cache,
                train_size=size,
                batch_size=args.batch_size,
                seed=seed,
                recipe=args.recipe,
                subsample_seed=seed,
            )
            print(
                f"N = {len(data.indices['train'])}, seed {seed}: "
                f"{len(data.indices['test'])} test jets",
                flush=True,
            )
            results = run_accuracy(
                args.names,
                data,
                epochs=args.epochs,
                lr=args.lr,
                settings=settings,
                seed=seed,
                part_overrides=args.part_overrides,
                eval_splits=("test",),
            )
            for name, scores in results.items():
                records.append(
                    {
                        "mode": name,
                        "size": size,
                        "seed": seed,
                        "metrics": study_metrics(scores, head),
                        "scores": scores,
                    }
                )
            save(records)
            if settings.device.startswith("cuda"):
                torch.cuda.empty_cache()
    return records


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, help="the study's recipe (its data section)")
    parser.add_argument("--cache", help="the study's cache folder of these jets")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",") if part],
        help="labelled training jets N, comma-separated",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..K-1 per N")
    parser.add_argument(
        "--names", nargs="+", default=[REFERENCE], help="models (default: %(default)s)"
    )
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument(
        "--part-overrides", type=json.loads, default={}, help="JSON of weaver ParT arguments"
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--from-logs",
        nargs="+",
        type=Path,
        help="summarise the runs printed in these logs of this script instead of training",
    )
    args = parser.parse_args(argv)
    if not args.from_logs and (not args.cache or not args.sizes):
        parser.error("--cache and --sizes are required (unless --from-logs)")
    return args


def read_log(path: Path, head: str) -> list[dict[str, Any]]:
    """The runs printed in a log of this script (``N = ..., seed K`` then one line per model):
    AUC and 1/εB at εS = 0.3, for a run whose JSON was not written (e.g. stopped at a time
    limit)."""
    records: list[dict[str, Any]] = []
    size = seed = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if match := POINT_LINE.match(line):
            size, seed = int(match["size"]), int(match["seed"])
        elif match := RUN_LINE.match(line):
            if size is None:
                raise SystemExit(f"{path}:{number}: a result before any 'N = ..., seed K' line")
            metrics = {
                f"{head}/auc": float(match["auc"]),
                f"{head}/rejection_at_0.3": float(match["rejection"]),
            }
            records.append({"mode": match["name"], "size": size, "seed": seed, "metrics": metrics})
    if not records:
        raise SystemExit(f"{path}: no result lines of benchmarks/part_study.py found")
    return records


def payload_of(
    args: argparse.Namespace, records: list[dict[str, Any]], started: float
) -> dict[str, Any]:
    """The JSON written: the request, the study-style summary table and every run."""
    points = [StudyPoint(r["mode"], r["size"], r["seed"], args.out, r["metrics"]) for r in records]
    return {
        "request": json.loads(json.dumps(vars(args), default=str)),
        "protocol": "bench_vs_part.run_accuracy: fixed epochs, no model selection, test split",
        "device": None
        if args.from_logs
        else torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else "cpu",
        "torch": torch.__version__,
        "table": summarize(points),
        "runs": records,
        "seconds": time.perf_counter() - started,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{args.out}: exists; choose another --out (nothing is overwritten)")
    started = time.perf_counter()
    if args.from_logs:
        head = jet_head(args.recipe)
        records = [record for log in args.from_logs for record in read_log(log, head)]
        payload = payload_of(args, records, started)
    else:
        if REFERENCE in args.names and not weaver_available():
            raise SystemExit("weaver-core is not installed: pip install weaver-core")
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit("--device cuda: no GPU is visible to PyTorch")
        torch.set_num_threads(args.threads)
        settings = Settings(device=args.device, dtype=args.dtype, threads=args.threads)

        def save(records: list[dict[str, Any]]) -> None:
            write_json(args.out, payload_of(args, records, started))

        records = run_points(args, settings, save)
        payload = payload_of(args, records, started)
    print(markdown_table(payload["table"]))
    write_json(args.out, payload)
    print(f"wrote {args.out} ({payload['seconds']:.0f} s)")
    return payload


if __name__ == "__main__":
    main()
