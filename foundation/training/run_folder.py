"""The run folder: its layout, the refusal to overwrite it, and its JSON outputs.

Layout of ``<run>/``::

    recipe.yaml          the resolved recipe
    tensorboard/         TensorBoard event files (train/val loss and metrics)
    checkpoints/last.ckpt  Lightning state for --resume (pickled: only ever read by resume)
    best/  last/         checkpoint folders in the hub format (config.json + safetensors)
    metrics.json         final train / val / test metrics of the best model
    history.json         loss history; loss_curves.png its plot
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.errors import OutputExistsError
from foundation.locking import exclusive_lock

RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
PLOT_FILE = "loss_curves.png"
LAST_CKPT = "last.ckpt"


@dataclass(frozen=True)
class RunPaths:
    """The paths inside one run folder."""

    root: Path

    @property
    def recipe(self) -> Path:
        return self.root / RECIPE_FILE

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_ckpt(self) -> Path:
        return self.checkpoints / LAST_CKPT

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def last(self) -> Path:
        return self.root / "last"

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def history(self) -> Path:
        return self.root / HISTORY_FILE

    @property
    def plot(self) -> Path:
        return self.root / PLOT_FILE


def open_run_folder(
    folder: str | Path, *, overwrite: bool = False, resume: bool = False
) -> RunPaths:
    """Create (or, to resume, reopen) a run folder.

    Args:
        folder: the run folder.
        overwrite: delete an existing run there first.
        resume: reopen an existing run that has ``checkpoints/last.ckpt``; a missing or empty
            folder is created (nothing to resume yet), so that a batch job can always be
            submitted with ``--resume``.

    Raises:
        OutputExistsError: the folder holds files and neither ``overwrite`` nor ``resume``.
        FileNotFoundError: ``resume`` of a folder that holds files but no
            ``checkpoints/last.ckpt``.
        ValueError: both ``overwrite`` and ``resume``.
    """
    if overwrite and resume:
        raise ValueError("--overwrite and --resume exclude each other: choose one")
    paths = RunPaths(Path(folder))
    occupied = paths.root.is_dir() and any(paths.root.iterdir())
    if paths.root.exists() and not paths.root.is_dir():
        raise OutputExistsError(paths.root, "a file (not a run folder)")
    if resume and occupied:
        if paths.last_ckpt.is_file():
            return paths
        if not paths.recipe.is_file():
            raise FileNotFoundError(
                f"{paths.root}: holds files but nothing to resume (no "
                f"{paths.last_ckpt.relative_to(paths.root)}); pass --overwrite to start it again"
            )
        overwrite = True  # a run killed before its first checkpoint: start it again
    if occupied and not overwrite:
        raise OutputExistsError(paths.root, "a training run")
    if occupied:
        trash = Path(tempfile.mkdtemp(prefix=f".{paths.root.name}.old-", dir=paths.root.parent))
        os.rename(paths.root, trash / paths.root.name)
        shutil.rmtree(trash, ignore_errors=True)
    paths.root.mkdir(parents=True, exist_ok=True)
    return paths


def lock_run_folder(folder: str | Path) -> contextlib.AbstractContextManager[Path]:
    """Hold the run folder's lock (``.NAME.lock`` beside it) for a ``with`` block.

    A second process that trains into the same folder is refused at once; the lock goes with
    the process that holds it (a killed run leaves no lock behind).

    Raises:
        OutputLockedError: another running process holds the folder.
    """
    return exclusive_lock(folder, "this run folder")


def read_metrics(folder: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a finished run.

    Raises:
        FileNotFoundError: the run has no metrics (not finished, or not a run folder).
    """
    path = RunPaths(Path(folder)).metrics
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics; is {folder} a finished run folder?")
    return json.loads(path.read_text(encoding="utf-8"))
