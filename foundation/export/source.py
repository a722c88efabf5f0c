"""What to export: a Model in memory, a checkpoint folder, a training run, or a pretrained name."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from foundation.hub.config import CONFIG_FILE
from foundation.model import Model

RUN_CHECKPOINT = "best"
"""Sub-folder of a training run that holds its checkpoint (``RUN/best``)."""


@dataclass(frozen=True)
class ExportSource:
    """A model to export and where it came from.

    Attributes:
        model: the model.
        reference: the checkpoint reference it was loaded from (None for a model built in
            memory).
        sha256: sha256 of the checkpoint's ``model.safetensors`` (None when unknown).
    """

    model: Model
    reference: str | None = None
    sha256: str | None = None


def checkpoint_folder(path: str | PathLike[str]) -> Path:
    """The checkpoint folder of ``path``: itself, or its ``best/`` sub-folder (a training run).

    Raises:
        FileNotFoundError: neither ``path`` nor ``path/best`` holds a ``config.json``.
    """
    folder = Path(path)
    for candidate in (folder, folder / RUN_CHECKPOINT):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"{folder}: not a checkpoint folder (no {CONFIG_FILE}) and not a training run (no "
        f"{RUN_CHECKPOINT}/{CONFIG_FILE}); give a folder written by save_pretrained or a run "
        "folder that holds one"
    )


def resolve_source(model_or_checkpoint: Model | str | PathLike[str]) -> ExportSource:
    """Load what ``model_or_checkpoint`` names, with every head (see :func:`load_pretrained`).

    Args:
        model_or_checkpoint: a :class:`Model`; a checkpoint folder or a run folder with
            ``best/``; or a registered pretrained name / Hub id.

    Raises:
        FileNotFoundError: a path that is neither a checkpoint nor a run.
        CheckpointError: the checkpoint is corrupt or does not match its architecture.
    """
    from foundation import load_pretrained

    if isinstance(model_or_checkpoint, Model):
        source = model_or_checkpoint.source or {}
        return ExportSource(
            model_or_checkpoint,
            source.get("name_or_path") or source.get("folder"),
            source.get("sha256"),
        )
    reference = model_or_checkpoint
    if isinstance(reference, PathLike) or Path(reference).exists():
        reference = checkpoint_folder(reference)
    model = load_pretrained(reference, heads="all")
    source = model.source or {}
    return ExportSource(model, str(reference), source.get("sha256"))
