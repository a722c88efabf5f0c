"""Atomic folder writes: build in a temporary sibling folder, then rename into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from foundation.errors import OutputExistsError


@contextlib.contextmanager
def atomic_folder(
    folder: str | PathLike[str], *, overwrite: bool = False, what: str = "a checkpoint"
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``folder`` only if the block succeeds.

    An existing non-empty ``folder`` is an error unless ``overwrite``; it is then swapped out
    by renames and deleted only after the new folder is in place. On failure nothing at
    ``folder`` changes and the temporary folder is removed.

    Raises:
        OutputExistsError: ``folder`` holds files and ``overwrite`` is False.
        NotADirectoryError: ``folder`` is an existing file.
    """
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder")
    occupied = target.is_dir() and any(target.iterdir())
    if occupied and not overwrite:
        raise OutputExistsError(target, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield temporary
        os.chmod(temporary, 0o755)
        if target.is_dir():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, trash / target.name)
            try:
                os.rename(temporary, target)
            except OSError:
                os.rename(trash / target.name, target)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(temporary, target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
