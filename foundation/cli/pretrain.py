"""``foundation pretrain``: train a backbone (jet identity, masked particles, or both)."""

from __future__ import annotations

import argparse

from foundation.cli._recipe_args import add_recipe_arguments, load_recipe_arguments, run_training
from foundation.training.modes import get_mode


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` sub-command."""
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain a backbone from a recipe (recipes/pretrain_*.yaml)",
        description=(
            "Train a backbone and its heads as a recipe says: supervised jet identity, masked "
            "particle modelling, or both as a weighted multi-task loss. Runs on CPU, one GPU, or "
            "many under torchrun / SLURM. The run folder holds recipe.yaml, tensorboard/, best/ "
            "and last/ checkpoints, metrics.json and plots; it is never overwritten without "
            "--overwrite, and --resume continues it from checkpoints/last.ckpt."
        ),
    )
    add_recipe_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``pretrain`` sub-command."""
    recipe = load_recipe_arguments(args)
    if recipe is None:
        return 0
    if not get_mode(recipe.finetune.mode).pretraining:
        raise ValueError(
            f"{args.recipe}: finetune.mode={recipe.finetune.mode!r} is a fine-tuning mode; use "
            "`foundation finetune` (pretraining trains the whole backbone: mode full)"
        )
    return run_training(args, recipe)  # Ctrl-C / SIGTERM: main() prints one line
