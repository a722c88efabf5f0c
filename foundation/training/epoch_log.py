"""One line per training epoch: what a run without a progress bar prints so it never looks hung."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L


class EpochLog(L.Callback):
    """Print ``LABEL: epoch E/M  train loss X  val loss Y  (T s)`` at the end of every epoch.

    Args:
        echo: where lines go (``print`` by default).
        base: runs are labelled by their folder relative to this one (e.g.
            ``frozen/n1000/lr0.001/seed0`` under a study folder); the folder name without it.
    """

    def __init__(self, echo: Callable[[str], None] = print, base: str | Path | None = None) -> None:
        self.echo = echo
        self.base = Path(base).resolve() if base is not None else None
        self.label = ""
        self.started = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        folder = Path(trainer.default_root_dir).resolve()
        if self.base is not None and folder.is_relative_to(self.base):
            self.label = str(folder.relative_to(self.base))
        else:
            self.label = folder.name
        self.started = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        parts = [f"  {self.label}: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        train_loss = _epoch_mean(pl_module, "train/loss")
        if train_loss is not None:
            parts.append(f"train loss {train_loss:.4f}")
        val_loss = trainer.callback_metrics.get("val/loss")
        if val_loss is not None:
            parts.append(f"val loss {float(val_loss):.4f}")
        parts.append(f"({time.monotonic() - self.started:.0f} s)")
        self.echo("  ".join(parts))


def _epoch_mean(module: Any, key: str) -> float | None:
    mean = getattr(module, "epoch_mean", None)
    return mean(key) if callable(mean) else None
