"""Arguments shared by the training commands (``pretrain``, ``finetune``, ``study``)."""

from __future__ import annotations

import argparse
import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foundation.training.recipe import Recipe


def add_recipe_arguments(parser: argparse.ArgumentParser, run_folder: bool = True) -> None:
    """Add RECIPE, ``--set``, ``--recipe-help`` and, for one run, ``--out`` and friends."""
    parser.add_argument("recipe", nargs="?", type=Path, help="recipe YAML file (see recipes/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set trainer.max_epochs=3 (repeatable)",
    )
    parser.add_argument(
        "--recipe-help", action="store_true", help="list every recipe key with its help and exit"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if run_folder:
        parser.add_argument("--out", type=Path, default=None, help="run folder (output.folder)")
        parser.add_argument(
            "--overwrite", action="store_true", help="replace an existing run folder"
        )
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue the run folder from checkpoints/last.ckpt (start it if absent)",
        )


def load_recipe_arguments(args: argparse.Namespace, extra: Sequence[str] = ()) -> Recipe | None:
    """The recipe of the command line (None after printing ``--recipe-help``).

    Raises:
        ValueError: no recipe given.
        RecipeError / FileNotFoundError: see :func:`foundation.training.recipe.load_recipe`.
    """
    from foundation.training.recipe import load_recipe, recipe_help

    if args.recipe_help:
        print(recipe_help())
        return None
    if args.recipe is None:
        raise ValueError("RECIPE: give a recipe file, e.g. recipes/top_tagging.yaml")
    if not args.recipe.is_file():
        raise FileNotFoundError(missing_recipe_message(args.recipe))
    overrides = [*extra, *args.overrides]
    if getattr(args, "out", None) is not None:
        overrides.append(f"output.folder={args.out}")
    if args.no_progress:
        overrides.append("trainer.progress_bar=false")
    return load_recipe(args.recipe, overrides)


def missing_recipe_message(path: Path) -> str:
    """ "no such recipe file", with the closest recipe names of its folder and of ``recipes/``."""
    candidates: dict[str, Path] = {}
    for folder in (path.parent, Path("recipes")):
        if folder.is_dir():
            for file in sorted(folder.glob("*.y*ml")):
                candidates.setdefault(file.name, file)
    close = difflib.get_close_matches(path.name, list(candidates), n=2, cutoff=0.75)
    message = f"RECIPE {path}: no such recipe file"
    if close:
        message += f"; did you mean {', '.join(str(candidates[name]) for name in close)}?"
    elif candidates:
        message += f" (recipes: {', '.join(str(file) for file in candidates.values())})"
    return message


def print_metrics(metrics: Mapping[str, Mapping[str, float]]) -> None:
    """One line per split: ``test: loss 0.31, top/accuracy 0.87, ...``."""
    for split, values in metrics.items():
        shown = ", ".join(f"{name} {value:.4g}" for name, value in values.items())
        print(f"{split}: {shown}")


def run_training(args: argparse.Namespace, recipe: Recipe) -> int:
    """Train ``recipe`` and report where the run went."""
    from foundation.training.run import train

    result = train(recipe, overwrite=args.overwrite, resume=args.resume)
    print_metrics(result.metrics)
    kind = "delta checkpoints (heads + adapters)" if result.delta else "checkpoints"
    print(f"run folder: {result.folder}/ (best/ and last/ are {kind}; metrics.json)")
    print(json.dumps({"best": str(result.best), "test": result.metrics.get("test", {})}))
    return 0
