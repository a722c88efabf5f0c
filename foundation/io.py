"""Atomic file writes and JSON output: the one copy every module uses.

A reader of a file written here sees the old file or the new one, never a part: the content
goes to a temporary sibling with a unique name (``.NAME.tmp-XXXX``, locked while its writer
lives; those of writers that died are removed by the next writer of the same file), is flushed
to disk (``fsync``) and renamed over the target (``os.replace``). On any error the target is
left as it was and the temporary is deleted.

JSON policy: output is strict JSON (``json.loads`` of any language reads it). NaN and ±inf
become ``null``, numpy scalars and arrays become numbers and lists, tuples become lists and
mapping keys become strings (:func:`jsonable`). The benchmark harness alone passes
``allow_nan=True`` to keep infinities (Python's ``Infinity`` token: an infinite background
rejection is a lower limit that its plots draw as such).

Folders are written whole by :func:`foundation.hub.atomic.atomic_folder`; a file that must not
replace an existing one by :func:`foundation.export.files.atomic_file`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from foundation.locking import unique_temporary

FILE_MODE = 0o644
"""Permissions of every file written here (a temporary file is created private)."""


@contextlib.contextmanager
def atomic_path(path: str | PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` if the block succeeds.

    The parent folder is created if needed. Write the temporary file by name (``savefig``,
    ``write_text``...); on leaving the block it is synced to disk and renamed over ``path``.
    On an exception ``path`` is untouched and the temporary file is deleted.
    """
    target = Path(path)
    with unique_temporary(target) as temporary:
        yield temporary
        _fsync(temporary)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, target)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_bytes(path: str | PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text(path: str | PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def jsonable(value: Any, *, allow_nan: bool = False) -> Any:
    """``value`` as plain JSON types: numpy scalars and arrays to numbers and lists, tuples to
    lists, mapping keys to strings, and (unless ``allow_nan``) NaN and ±inf to None.

    Other objects are returned unchanged (``json.dumps`` then refuses them with a TypeError).
    """
    if isinstance(value, Mapping):
        return {str(key): jsonable(item, allow_nan=allow_nan) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item, allow_nan=allow_nan) for item in value]
    if isinstance(value, np.ndarray | np.generic):
        return jsonable(value.tolist(), allow_nan=allow_nan)
    if isinstance(value, float) and not allow_nan and not math.isfinite(value):
        return None
    return value


def write_json(
    path: str | PathLike[str], content: Any, *, allow_nan: bool = False, indent: int = 2
) -> Path:
    """Write ``content`` as indented JSON with a final newline, atomically (see the module's
    JSON policy); returns ``path``.

    Raises:
        TypeError: ``content`` holds an object JSON cannot represent (nothing is written).
    """
    converted = jsonable(content, allow_nan=allow_nan)
    text = json.dumps(converted, indent=indent, allow_nan=allow_nan) + "\n"
    return write_text(path, text)
