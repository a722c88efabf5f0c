"""Locks that keep two processes out of one output: run folders, simulation shards, temporaries.

All locks are OS-level (``fcntl``) locks on open files: the operating system releases them when
the holder exits, however it exits (``kill -9`` included), so a stale lock never blocks a rerun.

- :func:`exclusive_lock`: one holder of a named output (a run folder, an export file); a second
  process is refused at once with :class:`OutputLockedError`.
- :func:`range_locks`: one holder per item of a set (the shards of a simulation folder), so that
  batch jobs writing different shards of one folder run together while two runs of the same
  shards are refused.
- :func:`unique_temporary` / :func:`remove_stale_temporaries`: temporary files named per writer
  and locked while written; a later writer deletes those whose writer died.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path


class OutputLockedError(FileExistsError):
    """Another running process is writing the same output (a run folder, shards, a file)."""

    def __init__(self, path: str | PathLike[str], what: str, holder: str = "") -> None:
        self.path = str(path)
        by = f" ({holder})" if holder else ""
        super().__init__(
            f"{self.path}: {what} is being written by another running process{by}; wait for it "
            "to finish (or stop it), or choose another output"
        )


def _try_lock(handle: int, length: int = 0, start: int = 0) -> bool:
    try:
        if length:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start, os.SEEK_SET)
        else:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True


def lock_path(target: str | PathLike[str]) -> Path:
    """The lock file of ``target``: a hidden sibling ``.NAME.lock`` (it survives a folder being
    replaced, which a lock file inside the folder would not)."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def exclusive_lock(target: str | PathLike[str], what: str = "this output") -> Iterator[Path]:
    """Hold the lock of ``target`` for the block, or fail at once if another process holds it.

    The lock file (:func:`lock_path`) records the holder's process id and is removed on exit.

    Raises:
        OutputLockedError: another process holds the lock.
    """
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(handle):
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip()
            os.close(handle)
            raise OutputLockedError(target, what, f"pid {holder}" if holder.isdigit() else "")
        try:  # the file may have been unlinked by its previous holder between open and lock
            same = os.fstat(handle).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(handle)
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(handle)


@contextlib.contextmanager
def range_locks(
    lock_file: str | PathLike[str], items: Iterable[int], what: str = "this output"
) -> Iterator[None]:
    """Hold one byte-range lock per item (all or none) in ``lock_file`` for the block.

    Args:
        lock_file: the shared lock file (created; left in place, it holds no data).
        items: non-negative integers naming the items (e.g. shard numbers).
        what: the output, for the message.

    Raises:
        OutputLockedError: another process holds the lock of one of the items.
    """
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for item in sorted(set(items)):
            if not _try_lock(handle, 1, item):
                raise OutputLockedError(path.parent, what)
        yield
    finally:
        os.close(handle)  # releases every record lock of this process on the file


def temporary_prefix(target: str | PathLike[str]) -> str:
    """The name prefix of ``target``'s temporaries: ``.NAME.tmp-``."""
    return f".{Path(target).name}.tmp-"


@contextlib.contextmanager
def unique_temporary(target: str | PathLike[str]) -> Iterator[Path]:
    """A new temporary file next to ``target``, named for this writer and locked while in use.

    Stale temporaries of ``target`` left by writers that died are removed first. The file is
    deleted on exit unless it was renamed away.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    handle, name = tempfile.mkstemp(prefix=temporary_prefix(target), dir=target.parent)
    fcntl.flock(handle, fcntl.LOCK_EX)
    os.fchmod(handle, 0o644)  # the final file's mode (mkstemp makes it private)
    temporary = Path(name)
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)
        os.close(handle)


def remove_stale_temporaries(target: str | PathLike[str]) -> list[Path]:
    """Delete ``target``'s temporaries (``.NAME.tmp-*``) whose writer is gone.

    A live writer holds a lock on its temporary (:func:`unique_temporary`), so only files that
    nobody locks are removed.

    Returns:
        The removed files.
    """
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for candidate in target.parent.glob(temporary_prefix(target) + "*"):
        try:
            handle = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _try_lock(handle):
                candidate.unlink(missing_ok=True)
                removed.append(candidate)
        finally:
            os.close(handle)
    return removed
