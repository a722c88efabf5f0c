"""``foundation quickstart``: simulate, fine-tune the shipped backbone, compare, export."""

from __future__ import annotations

import argparse
from pathlib import Path

from foundation.quickstart import DEFAULT_BACKBONE, QuickstartConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``quickstart`` sub-command."""
    defaults = QuickstartConfig()
    parser = subparsers.add_parser(
        "quickstart",
        help="see the whole product in minutes: simulate, fine-tune, compare, export",
        description=(
            "Simulate a small top-vs-QCD sample, fine-tune the shipped pretrained backbone "
            "(frozen and full) and train the same head from scratch, print AUC and 1/eps_B at "
            "eps_S = 0.3 for the three, and export the best to ONNX with the parity check."
        ),
    )
    parser.add_argument("--out", type=Path, default=defaults.out, help="output folder")
    parser.add_argument(
        "--backbone", default=DEFAULT_BACKBONE, help="pretrained checkpoint name, folder or repo"
    )
    parser.add_argument("--jets", type=int, default=defaults.jets, help="jets per class")
    parser.add_argument(
        "--train-size", type=int, default=defaults.train_size, help="labelled training jets"
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs per run")
    parser.add_argument(
        "--workers", type=int, default=defaults.workers, help="simulation processes"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of everything")
    parser.add_argument(
        "--card",
        default=defaults.card,
        help=f"detector card of the simulated jets (default {defaults.card}: the card "
        f"{DEFAULT_BACKBONE} was pretrained on)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``quickstart`` sub-command."""
    from foundation.quickstart import run_quickstart

    for name in ("jets", "train_size", "epochs", "workers"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"--{name.replace('_', '-')}: expected >= 1, found {getattr(args, name)}"
            )
    if args.train_size > args.jets:
        raise ValueError(
            f"--train-size: expected at most the training split (~{args.jets} jets "
            f"for --jets {args.jets}), found {args.train_size}"
        )
    run_quickstart(
        QuickstartConfig(
            out=args.out,
            backbone=args.backbone,
            jets=args.jets,
            train_size=args.train_size,
            epochs=args.epochs,
            workers=args.workers,
            seed=args.seed,
            card=args.card,
        )
    )
    return 0
