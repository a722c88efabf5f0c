"""Training: recipes, the Lightning engine, fine-tuning modes, LoRA, run folders and studies.

- :mod:`~foundation.training.recipe`: YAML recipes as typed dataclasses (``load_recipe``);
- :mod:`~foundation.training.run`: ``train(recipe)`` — one run end to end (``RunResult``);
- :mod:`~foundation.training.engine`: the Lightning ``Trainer`` (why Lightning: see there);
- :mod:`~foundation.training.datamodule`: cache, splits, classes, subsample, normalization;
- :mod:`~foundation.training.module`: the LightningModule (steps, logging, optimizers);
- :mod:`~foundation.training.optim`: parameter groups, layer-wise decay, schedules;
- :mod:`~foundation.training.modes`: the table of fine-tuning modes (what each one does);
- :mod:`~foundation.training.finetune`: frozen / linear / full / lwld / unfreeze / lora;
- :mod:`~foundation.training.study`: ``data_efficiency(recipe, sizes, seeds, modes)``.

Names below are imported on first use: ``import foundation.training`` does not import Lightning.
LoRA lives with the models (:mod:`foundation.models.lora`), where checkpoints rebuild it.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """The public ``name``, imported from its submodule on first use (then kept here)."""
    match name:
        case "Recipe" | "load_recipe" | "recipe_from_dict" | "recipe_help" | "save_recipe":
            from foundation.training import recipe as source
        case "RecipeError":
            from foundation.training import typed as source
        case "train" | "RunResult":
            from foundation.training import run as source
        case "JetDataModule":
            from foundation.training import datamodule as source
        case "TrainingModule":
            from foundation.training import module as source
        case "build_model":
            from foundation.training import builder as source
        case "parameter_groups":
            from foundation.training import optim as source
        case "apply_mode":
            from foundation.training import finetune as source
        case "data_efficiency":
            from foundation.training import study as source
        case "read_metrics":
            from foundation.training import run_folder as source
        case _:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(source, name)
    return value


__all__ = [
    "JetDataModule",
    "Recipe",
    "RecipeError",
    "RunResult",
    "TrainingModule",
    "apply_mode",
    "build_model",
    "data_efficiency",
    "load_recipe",
    "parameter_groups",
    "read_metrics",
    "recipe_from_dict",
    "recipe_help",
    "save_recipe",
    "train",
]
