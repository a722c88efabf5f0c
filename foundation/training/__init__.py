"""Training: recipes, the Lightning engine, fine-tuning modes, LoRA, run folders and studies.

- :mod:`~foundation.training.recipe`: YAML recipes as typed dataclasses (``load_recipe``);
- :mod:`~foundation.training.run`: ``train(recipe)`` — one run end to end (``RunResult``);
- :mod:`~foundation.training.engine`: the Lightning ``Trainer`` (why Lightning: see there);
- :mod:`~foundation.training.datamodule`: cache, splits, classes, subsample, normalization;
- :mod:`~foundation.training.module`: the LightningModule (steps, logging, optimizers);
- :mod:`~foundation.training.optim`: parameter groups, layer-wise decay, schedules;
- :mod:`~foundation.training.modes`: the table of fine-tuning modes (what each one does);
- :mod:`~foundation.training.finetune`: frozen / linear / full / lwld / unfreeze / lora;
- :mod:`~foundation.training.lora`: the LoRA adapter (registered as ``"lora"``);
- :mod:`~foundation.training.study`: ``data_efficiency(recipe, sizes, seeds, modes)``.

Names below are imported on first use, so that ``import foundation.training.lora`` (which the
checkpoint loader needs for LoRA deltas) does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Recipe": "foundation.training.recipe",
    "RecipeError": "foundation.training.typed",
    "load_recipe": "foundation.training.recipe",
    "recipe_from_dict": "foundation.training.recipe",
    "recipe_help": "foundation.training.recipe",
    "save_recipe": "foundation.training.recipe",
    "train": "foundation.training.run",
    "RunResult": "foundation.training.run",
    "JetDataModule": "foundation.training.datamodule",
    "TrainingModule": "foundation.training.module",
    "build_model": "foundation.training.builder",
    "parameter_groups": "foundation.training.optim",
    "apply_mode": "foundation.training.finetune",
    "LoRALinear": "foundation.training.lora",
    "data_efficiency": "foundation.training.study",
    "read_metrics": "foundation.training.run_folder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'foundation.training' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
