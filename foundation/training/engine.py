"""The training engine: a PyTorch Lightning ``Trainer`` configured from a recipe.

Why Lightning (and not a loop of our own):

- **One code path for every machine.** The same run works on a CPU, one GPU, several GPUs of
  one node (DDP) and several nodes: under ``torchrun`` or SLURM (``srun``), Lightning's cluster
  environments read the launcher's variables (``RANK``/``WORLD_SIZE``, ``SLURM_PROCID``...),
  so ``foundation pretrain`` needs no distributed code. Data sharding per rank is ours
  (:class:`~foundation.training.datasets.ResumableBatchSampler`).
- **Mixed precision** (``bf16-mixed`` on GPU by default, ``32-true`` on CPU), **gradient
  clipping** by norm, per-step **LR schedules** (warm-up + cosine,
  :mod:`foundation.training.optim`), **checkpointing**, **TensorBoard** logging and **progress
  bars** are Trainer arguments instead of code to maintain.
- **Exact resume**: ``trainer.fit(ckpt_path=last.ckpt)`` restores weights, optimizer, scheduler,
  loop counters and callback state; our loader is stateful (Lightning's ``state_dict`` protocol),
  so an interrupted run continues mid-epoch with the same batches and reaches the same weights.

Safety of Lightning checkpoints: ``last.ckpt`` is a ``torch.save`` file (pickle). It is written
only for resuming and read only by ``--resume`` of the run that wrote it, with
``weights_only=True`` (PyTorch's restricted unpickler: tensors and plain containers only; our
callbacks, loader and schedule keep plain-number states for that). Models are never loaded from
it: ``best/`` and ``last/`` are hub checkpoint folders (``config.json`` + safetensors, no
pickle), loaded with :func:`foundation.load_pretrained`.

Determinism: ``seed_everything(trainer.seed)`` before the model is built, seeded shuffling per
epoch, generators re-seeded from (seed, step, rank) before each step, and
``deterministic=True`` (``warn`` where an operation has no deterministic kernel).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException

from foundation.extras import requires_extra
from foundation.hub.errors import CheckpointError
from foundation.training.recipe import TrainerConfig
from foundation.training.run_folder import RunPaths
from foundation.training.typed import RecipeError

with requires_extra("train"):
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import TensorBoardLogger


def resolve_precision(config: TrainerConfig) -> str:
    """``trainer.precision``, with ``auto`` = ``bf16-mixed`` on a CUDA GPU, else ``32-true``."""
    if config.precision != "auto":
        return config.precision
    on_gpu = config.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"


def checkpoint_callback(paths: RunPaths, config: TrainerConfig) -> ModelCheckpoint:
    """Writes ``checkpoints/last.ckpt`` every ``checkpoint_every`` steps and each epoch."""
    return ModelCheckpoint(
        dirpath=paths.checkpoints,
        filename="last",
        save_top_k=0,
        save_last=True,
        every_n_train_steps=config.checkpoint_every,
        enable_version_counter=False,
    )


def build_trainer(
    config: TrainerConfig,
    paths: RunPaths,
    callbacks: Sequence[L.Callback] = (),
    logger: bool = True,
) -> L.Trainer:
    """A Trainer for ``config`` writing into the run folder ``paths``.

    Args:
        config: the recipe's ``trainer`` section.
        paths: the run folder.
        callbacks: extra callbacks (best export, history, unfreezing...).
        logger: log to ``<run>/tensorboard``.

    Raises:
        RecipeError: Lightning refuses the accelerator, devices, strategy or precision.
    """
    loggers = (
        [TensorBoardLogger(save_dir=str(paths.root), name="tensorboard", version="")]
        if logger
        else False
    )
    extra: list[L.Callback] = [checkpoint_callback(paths, config)]
    if logger:
        extra.append(LearningRateMonitor(logging_interval="step"))
    if config.progress_bar:
        extra.append(TQDMProgressBar(refresh_rate=max(1, min(config.log_every, 20))))
    try:
        return _trainer(config, paths, [*callbacks, *extra], loggers)
    except (MisconfigurationException, ValueError, TypeError) as error:  # Lightning's checks
        text = " ".join(str(error).split())[:400]
        raise RecipeError(
            f"trainer: accelerator={config.accelerator!r}, devices={config.devices!r}, "
            f"strategy={config.strategy!r}, precision={config.precision!r}: {text}"
        ) from None


def _trainer(
    config: TrainerConfig,
    paths: RunPaths,
    callbacks: list[L.Callback],
    loggers: list[TensorBoardLogger] | bool,
) -> L.Trainer:
    return L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        precision=resolve_precision(config),  # type: ignore[arg-type]
        max_epochs=config.max_epochs if config.max_epochs > 0 else -1,
        max_steps=config.max_steps,
        gradient_clip_val=config.gradient_clip,
        gradient_clip_algorithm="norm",
        log_every_n_steps=config.log_every,
        check_val_every_n_epoch=config.val_every,
        callbacks=callbacks,
        logger=loggers,
        enable_progress_bar=config.progress_bar,
        enable_model_summary=False,
        deterministic="warn" if config.deterministic else False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        default_root_dir=str(paths.root),
    )


def check_checkpoint(path: Path, module: L.LightningModule) -> None:
    """Check that ``last.ckpt`` can be resumed by ``module`` before Lightning reads it.

    Reads the file with ``weights_only=True`` (no pickle code runs) and compares its weights
    (names and shapes) with the module's.

    Raises:
        CheckpointError: the file is truncated, corrupt, crafted (objects other than tensors
            and plain containers), not a Lightning checkpoint, or of another model.
    """
    hint = "Pass --overwrite to start the run again (the file cannot be resumed)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a boundary: torch raises many types on bad files
        found = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        raise CheckpointError(
            path, f"cannot be read as a checkpoint (truncated or corrupt: {found})", hint
        ) from None
    required = ("state_dict", "global_step", "loops", "optimizer_states")
    if not isinstance(state, dict) or any(key not in state for key in required):
        keys = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            path,
            f"is not a Lightning checkpoint of a run (expected keys {required}, found {keys})",
            hint,
        )
    saved = state["state_dict"]
    expected = module.state_dict()
    if not isinstance(saved, dict):
        raise CheckpointError(path, "field 'state_dict' is not a mapping of tensors", hint)
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    wrong = [
        f"{key} {_shape(saved[key])} (model: {list(expected[key].shape)})"
        for key in expected
        if key in saved and _shape(saved[key]) != list(expected[key].shape)
    ]
    if missing or unexpected or wrong:
        problems = [
            f"missing {missing[:5]}" if missing else "",
            f"unexpected {unexpected[:5]}" if unexpected else "",
            f"wrong shapes {wrong[:5]}" if wrong else "",
        ]
        raise CheckpointError(
            path,
            "does not fit this run's model: " + "; ".join(p for p in problems if p),
            hint,
        )


def _shape(value: object) -> list[int] | str:
    return list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def last_checkpoint(paths: RunPaths) -> Path | None:
    """The run's ``last.ckpt`` when it exists."""
    return paths.last_ckpt if paths.last_ckpt.is_file() else None
