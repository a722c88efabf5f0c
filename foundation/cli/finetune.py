"""``foundation finetune``: fine-tune a pretrained backbone on a small labelled sample."""

from __future__ import annotations

import argparse

from foundation.cli._recipe_args import add_recipe_arguments, load_recipe_arguments, run_training
from foundation.training.modes import MODES, mode_names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``finetune`` sub-command."""
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a pretrained backbone from a recipe (recipes/top_tagging.yaml...)",
        description=(
            "Fine-tune the heads of a recipe on its pretrained backbone: "
            + "; ".join(f"{mode.name} ({mode.summary})" for mode in MODES.values())
            + ". "
            + ", ".join(mode_names(saves_delta=True))
            + " fine-tunes are saved as delta checkpoints (heads + adapters) naming their base."
        ),
    )
    add_recipe_arguments(parser)
    parser.add_argument(
        "--train-size",
        type=int,
        default=None,
        metavar="N",
        help="labelled training jets (stratified, seeded subsample; data.train_size)",
    )
    parser.add_argument("--mode", choices=list(MODES), default=None, help="finetune.mode")
    parser.add_argument(
        "--pretrained", default=None, help="pretrained checkpoint (model.pretrained)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``finetune`` sub-command."""
    extra = []
    if args.train_size is not None:
        extra.append(f"data.train_size={args.train_size}")
    if args.mode is not None:
        extra.append(f"finetune.mode={args.mode}")
    if args.pretrained is not None:
        extra += [f"model.pretrained={args.pretrained}", "model.backbone=null"]
    recipe = load_recipe_arguments(args, extra)
    if recipe is None:
        return 0
    return run_training(args, recipe)  # Ctrl-C / SIGTERM: main() prints one line
