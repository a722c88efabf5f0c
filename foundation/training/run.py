"""Run a recipe end to end: run folder, data, model, fit (or resume), checkpoints, metrics, plots.

:func:`train` is what ``foundation pretrain`` and ``foundation finetune`` call::

    result = train(load_recipe("recipes/top_tagging.yaml", ["trainer.max_epochs=3"]))
    print(result.metrics["test"])
"""

from __future__ import annotations

import logging
import os
import signal
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from foundation.extras import requires_extra
from foundation.hub.checkpoint import save_pretrained
from foundation.hub.delta import DeltaBase
from foundation.hub.errors import CheckpointError
from foundation.hub.reading import read_checkpoint
from foundation.io import write_json
from foundation.model import Model
from foundation.training.builder import base_record, build_model, head_targets, load_base
from foundation.training.callbacks import CheckpointAtMaxSteps, ExportBest, LossHistory
from foundation.training.datamodule import DataSummary, JetDataModule
from foundation.training.engine import build_trainer, check_checkpoint, last_checkpoint
from foundation.training.finetune import GradualUnfreezing, apply_mode, saves_delta
from foundation.training.modes import SCRATCH, get_mode
from foundation.training.module import TrainingModule
from foundation.training.plots import plot_loss_curves
from foundation.training.recipe import Recipe, save_recipe
from foundation.training.run_folder import (
    RunPaths,
    lock_run_folder,
    open_run_folder,
)
from foundation.training.sources import global_rank
from foundation.training.typed import RecipeError, load_yaml, short_repr

with requires_extra("train"):
    import lightning as L

RESUMABLE_CHANGES = frozenset(
    {
        ("trainer", "max_epochs"),
        ("trainer", "max_steps"),
        ("trainer", "progress_bar"),
        ("output", "folder"),
        ("output", "plots"),
    }
)
"""Recipe keys a resumed run may change (train longer, moved folder, display)."""


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced.

    Attributes:
        folder: the run folder.
        metrics: ``{"train"|"val"|"test": {metric: value}}`` of the best model.
        best: the ``best/`` checkpoint folder.
        last: the ``last/`` checkpoint folder.
        delta: whether the checkpoints are deltas on the pretrained base.
    """

    folder: Path
    metrics: dict[str, dict[str, float]]
    best: Path
    last: Path
    delta: bool


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # frozen backbones
    warnings.filterwarnings("ignore", message=".*overridden `transfer_batch_to_device`.*")


def _check_resume(paths: RunPaths, recipe: Recipe) -> None:
    """A resumed run must use the recipe it started with (except for longer training)."""
    if not paths.recipe.is_file():
        raise FileNotFoundError(
            f"{paths.recipe}: missing; the run cannot be resumed without the recipe it started "
            "with (pass --overwrite to start it again)"
        )
    saved = load_yaml(paths.recipe.read_text(encoding="utf-8"), str(paths.recipe))
    if not isinstance(saved, dict):
        raise RecipeError(f"{paths.recipe}: expected a recipe mapping, found {short_repr(saved)}")
    current = recipe.to_dict()
    changed = [
        f"{section}.{key}"
        for section in current
        for key in (current[section] if isinstance(current[section], dict) else [None])
        if (section, key) not in RESUMABLE_CHANGES
        and _get(saved, section, key) != _get(current, section, key)
    ]
    if changed:
        raise RecipeError(
            f"{paths.recipe}: --resume needs the recipe the run started with; changed: "
            f"{', '.join(changed)} (only trainer.max_epochs, trainer.max_steps and display "
            "settings may change)"
        )


def _get(data: dict[str, Any], section: str, key: str | None) -> Any:
    value = data.get(section)
    return value if key is None else (value or {}).get(key)


def _card(recipe: Recipe, summary: DataSummary, metrics: dict | None = None) -> dict[str, Any]:
    sources = summary.provenance.get("sources") or []
    data = (
        f"{sum(summary.sizes.values())} jets from {len(sources)} file(s) "
        f"(split train/val/test = {summary.sizes}); classes {list(summary.label_names)}"
    )
    card: dict[str, Any] = {
        "summary": recipe.description or f"Trained with recipe {recipe.name!r}.",
        "data": data,
        "recipe": f"```yaml\n{yaml.safe_dump(recipe.to_dict(), sort_keys=False)}```",
    }
    if metrics:
        card["metrics"] = {
            f"{split}/{name}": value
            for split, values in metrics.items()
            for name, value in values.items()
        }
    if recipe.model.pretrained:
        card["base_model"] = recipe.model.pretrained
    return card


class _Saver:
    """Writes the model of the run as a hub checkpoint folder (full, or a delta on ``base``).

    ``base`` is the run's base, read once when it was loaded: no save resolves, hashes or reads
    it again.
    """

    def __init__(
        self, model: Model, recipe: Recipe, summary: DataSummary, base: DeltaBase | None
    ) -> None:
        self.model, self.recipe, self.summary, self.base = model, recipe, summary, base

    def __call__(self, folder: Path, metrics: dict | None = None) -> None:
        save_pretrained(
            self.model,
            folder,
            normalization=self.summary.normalization,
            provenance={**self.summary.provenance, "recipe": self.recipe.name},
            card=_card(self.recipe, self.summary, metrics),
            overwrite=True,
            base=self.base,
            name=f"{self.recipe.name}",
        )


def _evaluate(
    trainer: L.Trainer, module: TrainingModule, data: JetDataModule, recipe: Recipe
) -> dict[str, dict[str, float]]:
    """Metrics of the module on a slice of the training split and on val and test."""
    limit = recipe.trainer.eval_train_batches * (
        recipe.data.eval_batch_size or recipe.data.batch_size
    )
    metrics: dict[str, dict[str, float]] = {}
    for split in ("train", "val", "test"):
        if not len(data.indices[split]):
            continue
        loader = data.loader(split, limit=limit if split == "train" else None)
        module.final_prefix = f"final/{split}"
        try:
            trainer.validate(module, dataloaders=loader, verbose=False)
        finally:
            module.final_prefix = None
        prefix = f"final/{split}/"
        metrics[split] = {
            key[len(prefix) :]: float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith(prefix)
        }
    return metrics


def total_steps(recipe: Recipe, batches_per_epoch: int) -> int:
    """Optimizer steps of the run: ``max_steps``, or epochs x batches, whichever ends first."""
    by_epochs = (
        recipe.trainer.max_epochs * batches_per_epoch if recipe.trainer.max_epochs > 0 else 0
    )
    candidates = [n for n in (recipe.trainer.max_steps, by_epochs) if n > 0]
    return max(1, min(candidates)) if candidates else 1


def _load_weights(model: Model, folder: Path, base: DeltaBase | None) -> None:
    """Copy the weights this run saved in ``folder`` (safetensors, no pickle) into ``model``.

    A delta leaves out the base's backbone tensors: the model's own are kept (each was checked
    equal to the base's when the delta was saved), so the base is not resolved or read again.

    Raises:
        CheckpointError: the folder does not verify, or lacks tensors of the model other than
            the base's backbone.
    """
    saved = read_checkpoint(folder, include_base=False)
    state = model.state_dict()
    left_out = set(state) - set(saved.tensors)
    allowed = set(base.fingerprints) if base is not None and saved.config.get("base") else set()
    if left_out - allowed:
        raise CheckpointError(
            saved.weights_path,
            f"lacks {len(left_out - allowed)} tensor(s) of the run's model: "
            f"{', '.join(sorted(left_out - allowed)[:12])}",
        )
    model.load_state_dict({**{key: state[key] for key in left_out}, **saved.tensors}, strict=True)


def _first_process() -> bool:
    """Whether this is the process that writes the run folder: global rank 0 under torchrun /
    SLURM, and not a process Lightning launched for another device (``LOCAL_RANK`` > 0)."""
    launched = [os.environ.get(name, "0") for name in ("LOCAL_RANK", "NODE_RANK")]
    return global_rank() == 0 and all(value in ("", "0") for value in launched)


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped with Ctrl-C (SIGINT); the message says how to resume."""


def _fit(
    trainer: L.Trainer,
    module: TrainingModule,
    data: JetDataModule,
    ckpt: Path | None,
    paths: RunPaths,
) -> None:
    """``trainer.fit``, with Ctrl-C turned into :class:`TrainingInterrupted` (Lightning turns it
    into ``SystemExit(1)`` and ignores further SIGINTs; the default handler is restored)."""
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt, weights_only=True)
    except SystemExit:
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        saved = "from its last checkpoint" if paths.last_ckpt.is_file() else "from the start"
        raise TrainingInterrupted(
            f"training interrupted at step {trainer.global_step}; {paths.root} resumes {saved} "
            "with the same command and --resume"
        ) from None


def train(
    recipe: Recipe,
    *,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: Sequence[L.Callback] = (),
    show_progress: bool | None = None,
) -> RunResult:
    """Run ``recipe``: train, keep the best model, evaluate it, write the run folder.

    Args:
        recipe: a validated recipe.
        overwrite: replace an existing run folder.
        resume: continue the run in ``recipe.run_folder`` from its ``last.ckpt`` (start it
            when the folder does not exist yet).
        callbacks: extra Lightning callbacks.
        show_progress: progress bars (default ``trainer.progress_bar``).

    Returns:
        The :class:`RunResult`.

    Raises:
        OutputExistsError: the run folder exists and neither ``overwrite`` nor ``resume``.
        OutputLockedError: another running process trains into the same run folder.
        TrainingInterrupted: Ctrl-C during training (a ``KeyboardInterrupt`` saying how to
            resume).
        CheckpointError: ``resume`` of a ``last.ckpt`` that is truncated, corrupt or not of
            this run's model.
        RecipeError: a resumed run with a changed recipe, or inputs that do not match the
            pretrained checkpoint.
        DataError / KeyError / ValueError: bad data, heads or arguments (named in the message).
    """
    _quiet_lightning()
    if not _first_process():  # the other processes of a distributed run write no files
        return _train(recipe, RunPaths(recipe.run_folder), resume, callbacks, show_progress)
    with lock_run_folder(recipe.run_folder):
        paths = open_run_folder(recipe.run_folder, overwrite=overwrite, resume=resume)
        return _train(recipe, paths, resume, callbacks, show_progress)


def _train(
    recipe: Recipe,
    paths: RunPaths,
    resume: bool,
    callbacks: Sequence[L.Callback],
    show_progress: bool | None,
) -> RunResult:
    progress = recipe.trainer.progress_bar if show_progress is None else show_progress
    resuming = resume and paths.last_ckpt.is_file()
    if resuming:
        _check_resume(paths, recipe)
    delta = saves_delta(recipe)
    base = load_base(recipe)  # the base is resolved and hashed here, once per run
    record = base_record(base) if delta and base is not None else None
    use_base_norm = recipe.data.normalization == "pretrained" or (
        recipe.data.normalization == "auto" and base is not None
    )
    data = JetDataModule(recipe.data, seed=recipe.trainer.seed, show_progress=progress)
    summary = data.prepare(
        base.feature_schema.normalization
        if use_base_norm and base and base.feature_schema
        else None
    )
    L.seed_everything(recipe.trainer.seed, workers=True, verbose=False)
    model = build_model(recipe, summary, base)
    apply_mode(model, recipe.finetune)
    data.require_targets(head_targets(model))
    module = TrainingModule(model, recipe)
    saver = _Saver(model, recipe, summary, record)
    history = LossHistory()
    run_callbacks: list[L.Callback] = [
        ExportBest(paths.best, saver, recipe.trainer.monitor, recipe.trainer.monitor_mode),
        history,
        CheckpointAtMaxSteps(paths.last_ckpt),
        *callbacks,
    ]
    if get_mode(recipe.finetune.mode).gradual_unfreezing:
        run_callbacks.append(GradualUnfreezing(recipe.finetune.unfreeze_every))
    config = recipe.trainer if progress else replace(recipe.trainer, progress_bar=False)
    trainer = build_trainer(config, paths, run_callbacks)
    module.total_steps = total_steps(recipe, data.train_batches(trainer.world_size))
    if trainer.is_global_zero and not resuming:
        save_recipe(recipe, paths.recipe)
    ckpt = last_checkpoint(paths) if resuming else None
    if ckpt is not None:
        check_checkpoint(ckpt, module)
    _fit(trainer, module, data, ckpt, paths)
    if not 0 < trainer.max_steps <= trainer.global_step:  # else CheckpointAtMaxSteps wrote it
        trainer.save_checkpoint(paths.last_ckpt)
    if trainer.is_global_zero:
        saver(paths.last)
        if not (paths.best / "config.json").is_file():
            saver(paths.best)  # no validation ran: the last model is the best known
    trainer.strategy.barrier("best-saved")
    _load_weights(model, paths.best, record)
    metrics = _evaluate(trainer, module, data, recipe)
    if trainer.is_global_zero:
        write_json(paths.metrics, metrics)
        write_json(paths.history, history.history)
        saver(paths.best, metrics)
        if recipe.output.plots:
            plot_loss_curves(
                history.history,
                paths.plot,
                title=recipe.name,
                mode=recipe.finetune.mode if recipe.model.pretrained else SCRATCH.name,
                lr=recipe.optimizer.lr,
            )
    return RunResult(paths.root, metrics, paths.best, paths.last, delta)
