"""Named pretrained checkpoints: the folders ``<search path>/<arch.tag>/config.json``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from foundation.hub.config import CONFIG_FILE

CHECKPOINTS_ENV = "FOUNDATION_CHECKPOINTS"
"""Environment variable with extra checkpoint folders (``os.pathsep``-separated), searched
before the shipped ones."""

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def shipped_checkpoint_folders() -> list[Path]:
    """Folders holding the shipped checkpoints, each once.

    In a source checkout (the parent of the ``foundation`` package holds ``pyproject.toml``):
    its ``checkpoints/``. Installed: the folders of the package ``foundation_checkpoints``, the
    ``checkpoints/`` folder that a wheel installs as a data-only package (see setup.py; an
    editable install maps it to the same ``checkpoints/``). Importing it runs no code.
    """
    found: list[Path] = []
    source_root = _PACKAGE_ROOT.parent
    if (source_root / "pyproject.toml").is_file():
        found.append(source_root / "checkpoints")
    try:
        import foundation_checkpoints
    except ImportError:
        pass
    else:
        found.extend(Path(location) for location in foundation_checkpoints.__path__)
    unique: dict[Path, Path] = {}
    for folder in found:
        unique.setdefault(folder.resolve(), folder)
    return list(unique.values())


def checkpoint_search_paths(paths: Sequence[str | PathLike[str]] | None = None) -> list[Path]:
    """Folders searched for named checkpoints, in priority order.

    ``paths`` when given; else the folders in ``$FOUNDATION_CHECKPOINTS``, then the shipped
    ones (:func:`shipped_checkpoint_folders`).
    """
    if paths is not None:
        return [Path(path) for path in paths]
    found = [Path(p) for p in os.environ.get(CHECKPOINTS_ENV, "").split(os.pathsep) if p]
    return found + shipped_checkpoint_folders()


def pretrained_folders(paths: Sequence[str | PathLike[str]] | None = None) -> dict[str, Path]:
    """``{name: folder}`` of every named checkpoint; an earlier search path wins a name."""
    folders: dict[str, Path] = {}
    for root in checkpoint_search_paths(paths):
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and (entry / CONFIG_FILE).is_file():
                folders.setdefault(entry.name, entry)
    return folders


def list_pretrained(paths: Sequence[str | PathLike[str]] | None = None) -> list[str]:
    """Names of the registered pretrained checkpoints (e.g. ``part-s.sim10``), sorted."""
    return sorted(pretrained_folders(paths))


def find_pretrained(name: str, paths: Sequence[str | PathLike[str]] | None = None) -> Path | None:
    """The folder of the named checkpoint, or None."""
    return pretrained_folders(paths).get(name)
