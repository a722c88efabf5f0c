"""One reader API for every jet file format: :func:`read_jets` returns :class:`JetRecords`.

Formats (see :func:`list_readers`):

- ``jetclass``: JetClass-format ROOT files, public JetClass and this project's simulated files
  (which add truth branches and ``event_id``);
- ``top_landscape``: Top Tagging Landscape HDF5 (pandas frame ``table``);
- ``quark_gluon``: EnergyFlow quark/gluon npz.

The format is detected from each file's extension and first bytes unless ``fmt`` names it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from foundation.data.readers import jetclass_root, quark_gluon_npz, top_landscape_hdf5
from foundation.data.readers.registry import (
    ReaderSpec,
    detect_format,
    get_reader,
    reader_specs,
    register_reader,
)
from foundation.data.records import JetRecords
from foundation.errors import DataError

PathLike = str | Path

_BUILTIN_MODULES = (jetclass_root, quark_gluon_npz, top_landscape_hdf5)


def list_readers() -> list[str]:
    """Names of the registered file formats, sorted."""
    return sorted(reader_specs())


def expand_paths(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    """Files named by ``paths``: paths, or glob patterns (``data/*.root``) expanded in sorted order.

    Raises:
        DataError: no path is given, a pattern matches no file, or a file is named twice
            (directly or through patterns), which would read its jets twice.
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise DataError("read_jets", "paths", "at least one file", "an empty list")
    files: list[Path] = []
    for item in items:
        text = str(item)
        if not Path(text).exists() and glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError(text, "paths", "a pattern matching at least one file", "no match")
            files.extend(Path(match) for match in matches)
        else:
            files.append(Path(text))
    seen: dict[Path, Path] = {}
    for file in files:
        key = Path(os.path.realpath(file))
        if key in seen:
            raise DataError(
                file,
                "paths",
                "each file once",
                "it named twice" + (f" (also as {seen[key]})" if seen[key] != file else ""),
                hint="Its jets would be read twice: remove the repeated path or pattern",
            )
        seen[key] = file
    return files


def read_file(path: PathLike, fmt: str | None = None) -> JetRecords:
    """Read one file into :class:`JetRecords`.

    Args:
        path: the file.
        fmt: a name from :func:`list_readers`; detected from the file when None.

    Raises:
        DataError: the file is missing, empty, of unknown format, or bad (see each reader).
        KeyError: ``fmt`` names no registered reader.
    """
    path = Path(path)
    name = fmt or detect_format(path)
    spec = get_reader(name)
    if not path.is_file():
        raise DataError(path, "file", "an existing file", "no such file")
    return spec.read(path)


def iter_jets(paths: PathLike | Sequence[PathLike], fmt: str | None = None) -> Iterator[JetRecords]:
    """Yield the :class:`JetRecords` of each file in turn (for data larger than memory)."""
    for path in expand_paths(paths):
        yield read_file(path, fmt)


def read_jets(paths: PathLike | Sequence[PathLike], fmt: str | None = None) -> JetRecords:
    """Read one or more jet files (any registered format) into one :class:`JetRecords`.

    Args:
        paths: a file, a glob pattern, or a sequence of them.
        fmt: a name from :func:`list_readers`; detected from each file when None.

    Returns:
        The jets of all files, in order. Fields present in only some of the files are dropped;
        all files must share their label names.

    Raises:
        DataError: a file is missing, empty, truncated or corrupt, lacks a required field, has a
            field of the wrong shape, holds NaN/inf, or files disagree on their labels. The
            message names the file, the field, the expectation and what was found.
    """
    return JetRecords.concat(list(iter_jets(paths, fmt)))


__all__ = [
    "JetRecords",
    "ReaderSpec",
    "detect_format",
    "expand_paths",
    "get_reader",
    "iter_jets",
    "list_readers",
    "read_file",
    "read_jets",
    "register_reader",
]
