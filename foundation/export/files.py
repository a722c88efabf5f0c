"""Atomic file writes: write a temporary sibling, rename it into place only on success."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from foundation.errors import OutputExistsError
from foundation.locking import unique_temporary


@contextlib.contextmanager
def atomic_file(
    path: str | PathLike[str], *, overwrite: bool = False, what: str = "a file"
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    On any exception the temporary file is deleted and ``path`` is left as it was (absent, or
    the old file). The parent folder is created if needed. The temporary is locked while this
    writer lives; temporaries of writers that died (``kill -9``) are removed first.

    Args:
        path: the final file.
        overwrite: replace an existing file (otherwise an existing file is an error).
        what: what the file is, for the error message.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        IsADirectoryError: ``path`` is a folder.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name such as model.onnx")
    if target.exists() and not overwrite:
        raise OutputExistsError(target, what)
    with unique_temporary(target) as temporary:
        yield temporary
        if target.exists() and not overwrite:
            raise OutputExistsError(target, what)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
