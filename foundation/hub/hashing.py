"""``SHA256SUMS``: the sha256 of every file of a checkpoint folder (``sha256sum`` format)."""

from __future__ import annotations

import hashlib
import re
from os import PathLike
from pathlib import Path

from foundation.hub.errors import CheckpointError

SUMS_FILE = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_CHUNK = 1 << 20


def sha256_file(path: str | PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (symbolic links are followed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_sums(folder: str | PathLike[str]) -> dict[str, str]:
    """Hash every regular file of ``folder`` (recursively, except ``SHA256SUMS``) into it.

    Returns:
        ``{relative_path: sha256}`` as written.
    """
    folder = Path(folder)
    sums = {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != SUMS_FILE
    }
    text = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    (folder / SUMS_FILE).write_text(text, encoding="utf-8")
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
    """Check every file listed in ``SHA256SUMS`` against its hash.

    Files present but not listed (e.g. a Hub repo's ``.gitattributes``) are ignored; every name
    in ``required`` must be listed.

    Returns:
        The verified ``{relative_path: sha256}``.

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
