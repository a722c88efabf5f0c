"""``SHA256SUMS``: the sha256 of a checkpoint's weights and config (``sha256sum`` format).

Only the files that decide what the model computes are hashed: ``config.json`` and the
``*.safetensors`` weights (:func:`is_hashed`). The model card (``README.md``) is not, so that
editing it, on the Hub or locally, never breaks loading. Folders written before this rule list
``README.md`` too; such entries are read but not checked (:func:`verify_folder`).
"""

from __future__ import annotations

import hashlib
import re
from os import PathLike
from pathlib import Path

from foundation.hub.errors import CheckpointError
from foundation.io import write_text

SUMS_FILE = "SHA256SUMS"
HASHED_NAMES: tuple[str, ...] = ("config.json",)
"""File names that are hashed wherever they are, besides every ``*.safetensors`` file."""
HASHED_SUFFIXES: tuple[str, ...] = (".safetensors",)
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_CHUNK = 1 << 20


def sha256_file(path: str | PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (symbolic links are followed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_hashed(name: str) -> bool:
    """Whether a file (relative path) of a checkpoint folder belongs in ``SHA256SUMS``."""
    base = Path(name).name
    return base in HASHED_NAMES or base.endswith(HASHED_SUFFIXES)


def write_sums(folder: str | PathLike[str]) -> dict[str, str]:
    """Hash the config and weight files of ``folder`` (recursively, see :func:`is_hashed`).

    Returns:
        ``{relative_path: sha256}`` as written.
    """
    folder = Path(folder)
    sums = {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and is_hashed(path.relative_to(folder).as_posix())
    }
    text = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    write_text(folder / SUMS_FILE, text)  # atomic: a reader sees the old file or the new one
    return sums


def read_sums(folder: str | PathLike[str]) -> dict[str, str]:
    """Parse ``folder/SHA256SUMS``.

    Raises:
        CheckpointError: the file is missing or a line is malformed.
    """
    path = Path(folder) / SUMS_FILE
    if not path.is_file():
        raise CheckpointError(
            path,
            "file is missing, so the checkpoint's files cannot be verified",
            "write checkpoints with foundation.hub.save_pretrained, which adds it",
        )
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line.strip())
        if not match or ".." in Path(match.group(2)).parts or match.group(2).startswith("/"):
            raise CheckpointError(
                path,
                f"line {number}: expected '<64 hex digits>  <relative file name>', found {line!r}",
            )
        sums[match.group(2)] = match.group(1)
    return sums


def verify_folder(folder: str | PathLike[str], required: tuple[str, ...] = ()) -> dict[str, str]:
    """Check the config and weight files listed in ``SHA256SUMS`` against their hashes.

    Files present but not listed (e.g. a Hub repo's ``.gitattributes``) are ignored; every name
    in ``required`` must be listed. Listed files outside :func:`is_hashed` (the ``README.md``
    that older folders list) are not checked: the card may change without breaking loading.

    Returns:
        The verified ``{relative_path: sha256}`` (config and weights only).

    Raises:
        CheckpointError: a required file is not listed, a listed file is missing, or a hash
            differs (the message names the file and both hashes).
    """
    folder = Path(folder)
    sums = read_sums(folder)
    for name in required:
        if name not in sums:
            raise CheckpointError(
                folder / SUMS_FILE, f"does not list {name!r}, so it cannot be verified"
            )
    sums = {name: digest for name, digest in sums.items() if is_hashed(name)}
    for name, expected in sums.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(path, f"file listed in {SUMS_FILE} is missing")
        found = sha256_file(path)
        if found != expected:
            raise CheckpointError(
                path,
                f"sha256 mismatch: {SUMS_FILE} says {expected}, the file has {found}",
                "the file is corrupt, truncated or was modified after saving; download or "
                "save the checkpoint again",
            )
    return sums
