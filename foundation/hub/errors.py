"""Errors of checkpoint folders and Hub downloads: each names the file or repo and the problem."""

from __future__ import annotations

from os import PathLike


class CheckpointError(ValueError):
    """A checkpoint folder, file or Hub repo cannot be used as it is.

    The message names the source (a file, folder or repo id), what is wrong, and a fix when
    there is one.
    """

    def __init__(self, source: str | PathLike[str], problem: str, hint: str | None = None) -> None:
        self.source = str(source)
        self.problem = problem
        message = f"{self.source}: {problem}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class HubDownloadError(CheckpointError):
    """A Hugging Face Hub repo or file could not be fetched (or is not in the offline cache)."""
