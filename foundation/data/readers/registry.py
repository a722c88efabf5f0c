"""Registry of file readers by format name; format detection from extension and first bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from foundation.data.records import JetRecords
from foundation.errors import DataError
from foundation.registry import Registry

ReadFunction = Callable[[Path], JetRecords]
_ReadT = TypeVar("_ReadT", bound=ReadFunction)


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


READERS: Registry[ReaderSpec] = Registry("file format", example="jetclass")
"""Registered readers by format name (registered when :mod:`foundation.data.readers` is
imported)."""


def register_reader(
    name: str, *, extensions: tuple[str, ...], magic: bytes, description: str
) -> Callable[[_ReadT], _ReadT]:
    """Register a function ``read(path) -> JetRecords`` as the reader of format ``name``.

    Raises:
        ValueError: the name is malformed or already registered.
    """
    READERS.check_name(name)

    def decorator(read: _ReadT) -> _ReadT:
        spec = ReaderSpec(name, read, tuple(e.lower() for e in extensions), magic, description)
        READERS.add(name, spec, origin=read)
        return read

    return decorator


def reader_specs() -> dict[str, ReaderSpec]:
    """The registered readers by name (a copy)."""
    return dict(READERS.items())


def get_reader(name: str) -> ReaderSpec:
    """The reader registered as ``name``.

    Raises:
        KeyError: no such reader; the message lists the known ones.
    """
    return READERS.get(name)


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
    specs = [spec for _, spec in READERS.items()]
    by_magic = [spec.name for spec in specs if head.startswith(spec.magic)]
    suffix = path.suffix.lower()
    by_extension = [spec for spec in specs if suffix in spec.extensions]
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
    known = ", ".join(f"{s.name} ({'/'.join(s.extensions)})" for s in specs)
    raise DataError(path, "file", f"one of the formats {known}", f"first bytes {head[:8]!r}")
