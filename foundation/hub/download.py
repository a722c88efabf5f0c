"""Hugging Face Hub downloads through ``huggingface_hub``, with clear errors and offline mode.

``HF_ENDPOINT``, ``HF_HUB_CACHE`` (or ``HF_HOME``) and ``HF_HUB_OFFLINE`` are read when a download
is made, not when ``huggingface_hub`` was imported, so that they can be changed at run time.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from foundation import __version__
from foundation.hub.errors import HubDownloadError

HUB_PREFIX = "hf-hub:"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_TRUE = {"1", "on", "yes", "true"}


def is_repo_id(text: str) -> bool:
    """Whether ``text`` looks like ``org/name`` (optionally prefixed with ``hf-hub:``)."""
    return bool(_REPO_ID.match(text.removeprefix(HUB_PREFIX)))


def offline() -> bool:
    """Whether Hub access is disabled (``HF_HUB_OFFLINE=1`` now or when the Hub was imported)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE or bool(
        constants.HF_HUB_OFFLINE
    )


def hub_options() -> dict[str, Any]:
    """``endpoint``, ``cache_dir`` and ``local_files_only`` from the current environment."""
    cache = os.environ.get("HF_HUB_CACHE")
    if not cache and os.environ.get("HF_HOME"):
        cache = str(Path(os.environ["HF_HOME"]) / "hub")
    return {
        "endpoint": os.environ.get("HF_ENDPOINT") or None,
        "cache_dir": cache or None,
        "local_files_only": offline(),
    }


def download_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """Download (or find in the cache) a model repo at ``revision`` and return its folder.

    Args:
        repo_id: ``org/name``, optionally prefixed with ``hf-hub:``.
        revision: branch, tag or commit hash (default: the repo's default branch).

    Raises:
        HubDownloadError: the repo, revision or a file is not found, the Hub cannot be
            reached, or offline mode is on and the snapshot is not cached.
    """
    from huggingface_hub import snapshot_download

    repo_id = repo_id.removeprefix(HUB_PREFIX)
    options = hub_options()
    with _translated_errors(repo_id, revision, options):
        folder = snapshot_download(
            repo_id,
            revision=revision,
            library_name="foundation",
            library_version=__version__,
            **options,
        )
    return Path(folder)


def download_file(repo_id: str, filename: str, revision: str | None = None) -> Path:
    """Download (or find in the cache) one file of a model repo.

    Raises:
        HubDownloadError: see :func:`download_snapshot`.
    """
    from huggingface_hub import hf_hub_download

    repo_id = repo_id.removeprefix(HUB_PREFIX)
    options = hub_options()
    with _translated_errors(repo_id, revision, options, filename):
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            library_name="foundation",
            library_version=__version__,
            **options,
        )
    return Path(path)


@contextlib.contextmanager
def _translated_errors(
    repo_id: str, revision: str | None, options: dict[str, Any], filename: str = ""
) -> Iterator[None]:
    """Turn ``huggingface_hub`` errors into :class:`HubDownloadError` with the repo and a fix."""
    from huggingface_hub import errors

    try:
        yield
    except (errors.HfHubHTTPError, errors.EntryNotFoundError, OSError) as error:
        source = f"hf-hub:{repo_id}" + (f"@{revision}" if revision else "")
        problem, hint = _explain(error, revision or "main", options, filename)
        raise HubDownloadError(source, problem, hint) from error


def _explain(
    error: Exception, revision: str, options: dict[str, Any], filename: str
) -> tuple[str, str | None]:
    """The problem and the fix for one ``huggingface_hub`` error."""
    from huggingface_hub import errors

    endpoint = options["endpoint"] or "the default Hub endpoint"
    cache = options["cache_dir"] or "the default cache"
    what = f"file {filename!r}" if filename else "a file"
    if isinstance(error, errors.RevisionNotFoundError):
        return f"revision {revision!r} not found at {endpoint}", None
    if isinstance(error, errors.RemoteEntryNotFoundError):
        return (
            f"{what} is missing on the server ({_first_line(error)})",
            "the repo is incomplete; ask its maintainer to upload every checkpoint file",
        )
    if isinstance(error, errors.RepositoryNotFoundError):
        return (
            f"repo not found at {endpoint} (or it is private and no token was given)",
            "check the name; write 'hf-hub:org/name' for a Hub repo",
        )
    if isinstance(error, errors.LocalEntryNotFoundError) and options["local_files_only"]:
        return (
            f"not in the local Hugging Face cache ({cache}) at revision {revision!r}, "
            "and HF_HUB_OFFLINE=1 forbids downloading",
            "download it first with network access (foundation hub download NAME)",
        )
    if isinstance(error, errors.LocalEntryNotFoundError):
        return (
            f"cannot reach {endpoint} and not cached in {cache}",
            f"check the network; details: {_first_line(error)}",
        )
    return f"download failed: {_first_line(error)}", None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
