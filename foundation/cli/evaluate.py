"""``foundation evaluate``: score a run's (or a checkpoint's) heads on jet files."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

EVALUATION_FOLDER = "evaluation"
"""Default output folder inside a run folder."""


def bins_argument(text: str) -> int | list[float]:
    """Parse ``--pt-bins``: a bin count (``5``) or comma-separated increasing edges."""
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a bin count (5) or comma-separated edges (500,600,700), found {text!r}"
        ) from None
    if len(values) == 1 and values[0].is_integer() and values[0] >= 1:
        return int(values[0])
    if len(values) < 2 or any(b <= a for a, b in itertools.pairwise(values)):
        raise argparse.ArgumentTypeError(f"expected at least 2 increasing edges, found {text!r}")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a run or checkpoint on jet files (metrics.json + PNG plots)",
        description=(
            "Load RUN/best (or a checkpoint folder or name), cache the data with the "
            "checkpoint's input features and normalization, run every head and write "
            "metrics.json and PNG plots. Data whose features differ from the checkpoint's "
            "feature schema is refused."
        ),
    )
    parser.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run folder, checkpoint or name")
    parser.add_argument(
        "--data", nargs="+", default=None, metavar="FILES", help="jet files or glob patterns"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default: RUN/{EVALUATION_FOLDER} for a run folder)",
    )
    parser.add_argument("--batch-size", type=int, default=512, help="jets per batch (512)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache folder to reuse, or to create from --data and keep (default: temporary)",
    )
    parser.add_argument(
        "--max-particles",
        type=int,
        default=None,
        help="particle slots per jet of a new cache (default: the checkpoint's, 128 when it "
        "does not record it)",
    )
    parser.add_argument("--heads", nargs="+", default=None, help="heads to evaluate (default all)")
    parser.add_argument(
        "--bootstrap", type=int, default=100, help="bootstrap resamples of jet metrics (100)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap and masking seed (0)")
    parser.add_argument(
        "--pt-bins",
        type=bins_argument,
        default=5,
        metavar="N|EDGES",
        help="regression bins of true pT: a count of equal-population bins or edges (5)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="pair score threshold of vertex finding"
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument("--revision", default=None, help="Hub revision of a named checkpoint")
    parser.add_argument(
        "--allow-missing-fields",
        action="store_true",
        help="evaluate data lacking fields some input features need (they become 0)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``evaluate`` sub-command."""
    from foundation.hub.resolve import check_local_reference

    check_local_reference(args.run)  # a typo fails before torch is imported
    import torch

    from foundation import load_pretrained
    from foundation.data.loading import make_loader
    from foundation.evaluation.evaluate import METRICS_FILE, evaluate_model
    from foundation.evaluation.inputs import evaluation_dataset, run_checkpoint

    if args.batch_size < 1:
        raise ValueError(f"--batch-size: expected >= 1, found {args.batch_size}")
    if args.max_particles is not None and args.max_particles < 1:
        raise ValueError(f"--max-particles: expected >= 1, found {args.max_particles}")
    if args.data is None and args.cache is None:
        raise ValueError("give the jets to evaluate with --data FILES (or an existing --cache)")
    reference, run_folder = run_checkpoint(args.run)
    out = args.out
    if out is None:
        if run_folder is None:
            raise ValueError(
                f"--out is required: {args.run} is not a run folder (no {args.run}/best/)"
            )
        out = run_folder / EVALUATION_FOLDER
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_pretrained(reference, revision=args.revision).to(device)
    with evaluation_dataset(
        model,
        args.data,
        cache=args.cache,
        max_particles=args.max_particles,
        allow_missing_fields=args.allow_missing_fields,
    ) as dataset:
        loader = make_loader(dataset, batch_size=args.batch_size)
        source = model.source or {}
        info = {
            "checkpoint": {
                "reference": str(args.run),
                "folder": source.get("folder"),
                "sha256": source.get("sha256"),
            },
            "data": {
                "files": [entry.get("path") for entry in dataset.info.sources],
                "n_jets": dataset.info.n_jets,
                "label_names": list(dataset.info.label_names),
                "truncated_jets": dataset.info.truncated_jets,
            },
        }
        result = evaluate_model(
            model,
            loader,
            out,
            heads=args.heads,
            n_bootstrap=args.bootstrap,
            seed=args.seed,
            bins=args.pt_bins,
            threshold=args.threshold,
            info=info,
            overwrite=args.overwrite,
        )
    for name, head in result["heads"].items():
        if "skipped" in head:
            print(f"{name} ({head['kind']}): skipped: {head['skipped']}")
        else:
            print(f"{name} ({head['kind']}): {headline(head['metrics'])}")
    count = sum(len(head["plots"]) for head in result["heads"].values())
    print(f"wrote {out / METRICS_FILE} and {count} plots in {out}/")
    return 0


def headline(metrics: dict) -> str:
    """A one-line summary of a head's metrics from ``metrics.json`` (the top-level scalars,
    regression responses and vertex finding; ``null`` = undefined or infinite)."""
    shown = []
    for key, value in metrics.items():
        if (value is None or isinstance(value, float)) and not key.endswith("_std"):
            shown.append(f"{key}={_number(value)}")
        elif isinstance(value, dict) and "model" in value:
            model = value["model"]
            shown.append(
                f"{key}: median response={_number(model.get('median_response'))}, "
                f"sigma68={_number(model.get('sigma68'))}"
            )
        elif isinstance(value, dict) and key == "vertex_finding":
            shown.append(
                f"vertex efficiency={_number(value.get('efficiency'))}, "
                f"purity={_number(value.get('purity'))}"
            )
    return ", ".join(shown) or "no metrics"


def _number(value: object) -> str:
    """A metric for the terminal: 4 significant digits, `null` for an undefined or infinite one."""
    if value is None:
        return "null"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
