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

from foundation.lazy import lazy_exports

_SUBMODULE_OF: dict[str, str] = {
    "Recipe": "recipe",
    "RecipeError": "typed",
    "load_recipe": "recipe",
    "recipe_from_dict": "recipe",
    "recipe_help": "recipe",
    "save_recipe": "recipe",
    "train": "run",
    "RunResult": "run",
    "JetDataModule": "datamodule",
    "TrainingModule": "module",
    "build_model": "builder",
    "parameter_groups": "optim",
    "apply_mode": "finetune",
    "data_efficiency": "study",
    "read_metrics": "run_folder",
}
"""Public name -> the submodule of ``foundation.training`` defining it."""

__getattr__ = lazy_exports(__name__, _SUBMODULE_OF)

__all__ = sorted(_SUBMODULE_OF)
