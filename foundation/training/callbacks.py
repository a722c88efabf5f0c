"""Callbacks of a run: export the best model as a hub checkpoint, record the loss history.

Both keep their state in ``last.ckpt`` as plain numbers (loadable with ``weights_only=True``),
so a resumed run keeps its best score and a complete loss history.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from foundation.extras import requires_extra

with requires_extra("train"):
    import lightning as L
    from lightning.pytorch.trainer.states import TrainerFn


def _value(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if value is None:
        return None
    value = float(value.item() if isinstance(value, torch.Tensor) else value)
    return value if math.isfinite(value) else None


class ExportBest(L.Callback):
    """After each validation of ``fit``, save the model as a checkpoint folder if it improved.

    Args:
        folder: where the best model goes (``<run>/best``), replaced atomically.
        save: writes the current model to a folder (e.g. via ``save_pretrained``).
        monitor: the logged metric that decides.
        mode: ``"min"`` or ``"max"``.
    """

    def __init__(
        self,
        folder: Path,
        save: Callable[[Path], None],
        monitor: str = "val/loss",
        mode: str = "min",
    ) -> None:
        self.folder = Path(folder)
        self.save = save
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self.best_step: int | None = None

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        value = _value(trainer.callback_metrics, self.monitor)
        if value is None:
            known = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise KeyError(
                f"trainer.monitor: metric {self.monitor!r} was not logged; logged: {known}"
            )
        if not self._better(value):
            return
        self.best, self.best_step = value, trainer.global_step
        if trainer.is_global_zero:
            self.save(self.folder)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")
        self.best_step = state_dict.get("best_step")


class LossHistory(L.Callback):
    """Record ``(step, value)`` of the training loss (every logging step and per epoch) and of
    the validation loss, for the loss-curve plot."""

    def __init__(self) -> None:
        self.history: dict[str, list[list[float]]] = {"train_step": [], "train": [], "val": []}

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            value = _value(trainer.callback_metrics, "train/loss_step")
            if value is not None:
                self.history["train_step"].append([trainer.global_step, value])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch_mean = getattr(pl_module, "epoch_mean", None)  # complete after a resume
        value = epoch_mean("train/loss") if epoch_mean else None
        if value is None:
            value = _value(trainer.callback_metrics, "train/loss_epoch")
        if value is not None:
            self.history["train"].append([trainer.global_step, value])

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        value = _value(trainer.callback_metrics, "val/loss")
        if value is not None:
            self.history["val"].append([trainer.global_step, value])

    def state_dict(self) -> dict[str, Any]:
        return {"history": {key: [list(p) for p in points] for key, points in self.history.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {
            key: [list(p) for p in points] for key, points in state_dict["history"].items()
        }


class CheckpointAtMaxSteps(L.Callback):
    """Write ``last.ckpt`` after the step that reaches ``trainer.max_steps``.

    Lightning ends the epoch when ``max_steps`` stops a run mid-epoch, so a checkpoint written
    after ``fit`` would make a resumed run (trained longer with a larger ``max_steps``) skip the
    rest of that epoch; this one, written inside the step, resumes exactly where it stopped.

    Args:
        path: the run's ``checkpoints/last.ckpt``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.save_checkpoint(self.path)


class StopAfterSteps(L.Callback):
    """Raise ``exception`` before training step ``step`` (for tests of crash and resume)."""

    def __init__(self, step: int, exception: type[BaseException] = RuntimeError) -> None:
        self.step = step
        self.exception = exception

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step >= self.step:
            raise self.exception(f"simulated interruption before step {self.step}")
