"""Registry of file readers by format name; format detection from extension and first bytes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from foundation.data.records import JetRecords
from foundation.errors import DataError

ReadFunction = Callable[[Path], JetRecords]
_ReadT = TypeVar("_ReadT", bound=ReadFunction)

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ReaderSpec:
    """A registered reader.

    Attributes:
        name: format name, e.g. ``"jetclass"``.
        read: function reading one file into :class:`JetRecords`.
        extensions: lower-case file extensions of the format, with the dot (``".root"``).
        magic: the bytes every file of the format starts with.
        description: one line shown by :func:`list_readers` users.
    """

    name: str
    read: ReadFunction
    extensions: tuple[str, ...]
    magic: bytes
    description: str


_READERS: dict[str, ReaderSpec] = {}


def register_reader(
    name: str, *, extensions: tuple[str, ...], magic: bytes, description: str
) -> Callable[[_ReadT], _ReadT]:
    """Register a function ``read(path) -> JetRecords`` as the reader of format ``name``.

    Raises:
        ValueError: the name is malformed or already registered.
    """
    if not _NAME_PATTERN.match(name):
        raise ValueError(
            f"reader name {name!r} is malformed: expected lower-case letters, digits and '_', "
            "starting with a letter (e.g. 'jetclass')"
        )

    def decorator(read: _ReadT) -> _ReadT:
        if name in _READERS:
            raise ValueError(f"reader {name!r} is already registered by {_READERS[name].read!r}")
        _READERS[name] = ReaderSpec(
            name, read, tuple(e.lower() for e in extensions), magic, description
        )
        return read

    return decorator


def reader_specs() -> dict[str, ReaderSpec]:
    """The registered readers by name (a copy)."""
    return dict(_READERS)


def get_reader(name: str) -> ReaderSpec:
    """The reader registered as ``name``.

    Raises:
        KeyError: no such reader; the message lists the known ones.
    """
    if name not in _READERS:
        raise KeyError(f"unknown file format {name!r}: expected one of {sorted(_READERS)}")
    return _READERS[name]


def detect_format(path: str | Path) -> str:
    """Name of the registered format of a file, from its extension and its first bytes.

    Raises:
        DataError: the file is missing or empty, its bytes do not match the format its
            extension names (truncated or mislabelled), or no format matches.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file", "an existing file", "no such file")
    with path.open("rb") as handle:
        head = handle.read(16)
    if not head:
        raise DataError(
            path, "file", "a non-empty file", "0 bytes", hint="re-download or regenerate it"
        )
    by_magic = [spec.name for spec in _READERS.values() if head.startswith(spec.magic)]
    suffix = path.suffix.lower()
    by_extension = [spec for spec in _READERS.values() if suffix in spec.extensions]
    if by_extension and by_extension[0].name not in by_magic:
        spec = by_extension[0]
        raise DataError(
            path,
            "file",
            f"a {spec.name} file ({spec.description}) starting with {spec.magic!r}",
            f"first bytes {head[: len(spec.magic)]!r}",
            hint="the file is corrupt or is not of the format its extension says",
        )
    if by_magic:
        return by_magic[0]
    known = ", ".join(f"{s.name} ({'/'.join(s.extensions)})" for s in _READERS.values())
    raise DataError(path, "file", f"one of the formats {known}", f"first bytes {head[:8]!r}")
