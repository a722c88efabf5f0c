"""``foundation study data-efficiency``: the payoff of pretraining against labelled jets."""

from __future__ import annotations

import argparse
from pathlib import Path

from foundation.cli._recipe_args import add_recipe_arguments, load_recipe_arguments
from foundation.training.modes import HEADLINE


def _int_list(text: str) -> list[int]:
    try:
        values = [int(float(item)) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers like 1000,10000, found {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _lr_grid(text: str) -> tuple[str, list[float]]:
    mode, _, rates = text.partition("=")
    try:
        values = [float(item) for item in rates.split(",") if item.strip()]
    except ValueError:
        values = []
    if not mode.strip() or not values:
        raise argparse.ArgumentTypeError(
            f"expected MODE=LR,LR,... like scratch=1e-3,3e-3,1e-2, found {text!r}"
        )
    return mode.strip(), values


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study`` sub-command (with ``data-efficiency``)."""
    parser = subparsers.add_parser("study", help="studies over many training runs")
    studies = parser.add_subparsers(dest="study", metavar="STUDY")
    efficiency = studies.add_parser(
        "data-efficiency",
        help="train the same head with N labelled jets: pretrained (frozen, full) vs scratch",
        description=(
            "For each mode, N and seed, fine-tune the recipe's head with N labelled jets "
            "(stratified, seeded) into OUT/<mode>/n<N>/seed<k>/, then write OUT/study.md and "
            "study.json (mean ± std of each test metric per N and mode) and one plot per metric "
            "against N on a log axis. Finished runs are reused when the study is run again."
        ),
    )
    add_recipe_arguments(efficiency, run_folder=False)
    efficiency.add_argument(
        "--sizes",
        type=_int_list,
        required=False,
        default=None,
        help="labelled jets, comma-separated (e.g. 1000,10000)",
    )
    efficiency.add_argument("--seeds", type=int, default=3, help="seeds per point (default 3)")
    efficiency.add_argument(
        "--modes",
        type=_names,
        default=list(HEADLINE),
        help=f"modes, comma-separated (default {','.join(HEADLINE)})",
    )
    efficiency.add_argument(
        "--lr-grid",
        type=_lr_grid,
        action="append",
        default=[],
        metavar="MODE=LR,LR,...",
        help="learning rates to choose from for MODE (repeatable): seed 0 of each N is trained "
        "at each, the best on the validation split (trainer.monitor) is kept for every seed",
    )
    efficiency.add_argument("--out", type=Path, default=None, help="study folder")
    efficiency.add_argument("--overwrite", action="store_true", help="redo finished runs")
    efficiency.set_defaults(func=run_data_efficiency)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_data_efficiency(args: argparse.Namespace) -> int:
    """Run ``foundation study data-efficiency``."""
    from foundation.training.study import data_efficiency

    recipe = load_recipe_arguments(args)
    if recipe is None:
        return 0
    if args.sizes is None:
        raise ValueError("--sizes: give the labelled jet counts, e.g. --sizes 1000,10000")
    result = data_efficiency(
        recipe,
        args.sizes,
        args.seeds,
        args.modes,
        args.out,
        args.overwrite,
        lr_grid=dict(args.lr_grid),
    )
    print(result.markdown.read_text(encoding="utf-8"))
    print(
        f"study: {result.markdown}, {result.json}, {len(result.plots)} plot(s) in "
        f"{result.markdown.parent}/"
    )
    return 0
