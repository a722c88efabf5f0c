"""Turn a checkpoint reference (folder, pretrained name, Hub repo id) into a local folder."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from foundation.hub.config import CONFIG_FILE, WEIGHTS_FILE
from foundation.hub.download import HUB_PREFIX, download_snapshot, is_repo_id
from foundation.hub.errors import CheckpointError
from foundation.hub.pretrained import find_pretrained, list_pretrained

LOCAL_PREFIX = "local-dir:"


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """Where a checkpoint reference points to.

    Attributes:
        folder: local folder holding ``config.json`` (and, once resolved, the weights).
        kind: ``"local"``, ``"pretrained"`` or ``"hub"``.
        reference: the reference as given (without prefix).
        revision: the Hub revision asked for (None for local folders).
        repo_id: the Hub repo the files came from, if any.
        sha256: the verified sha256 of ``model.safetensors``, once the folder has been read
            (:func:`~foundation.hub.reading.read_checkpoint`); None before.
    """

    folder: Path
    kind: str
    reference: str
    revision: str | None = None
    repo_id: str | None = None
    sha256: str | None = None


def resolve_checkpoint(
    name_or_path: str | PathLike[str],
    revision: str | None = None,
    *,
    search_paths: Sequence[str | PathLike[str]] | None = None,
    fetch: bool = True,
) -> ResolvedCheckpoint:
    """Find (and, for the Hub, download) a checkpoint.

    Resolution order of a string: ``hf-hub:org/name`` (Hub); ``local-dir:PATH`` or an existing
    folder (local); a registered pretrained name (see :func:`~foundation.hub.list_pretrained`);
    ``org/name`` (Hub). A registered folder without weights whose ``config.json`` has
    ``"hub": {"repo_id": ..., "revision": ...}`` is fetched from that repo.

    Args:
        name_or_path: the reference.
        revision: Hub branch, tag or commit (overrides a registered entry's revision).
        search_paths: folders of named checkpoints (default: see ``checkpoint_search_paths``).
        fetch: download from the Hub when needed (False returns the registered folder as is).

    Raises:
        KeyError: the reference matches nothing (the message lists the registered names).
        ValueError: a revision was given for a local folder.
        HubDownloadError: a Hub download failed.
    """
    if isinstance(name_or_path, PathLike):
        return _local(Path(name_or_path), revision)
    text = str(name_or_path)
    if text.startswith(HUB_PREFIX):
        return _hub(text.removeprefix(HUB_PREFIX), revision, text)
    if text.startswith(LOCAL_PREFIX):
        return _local(Path(text.removeprefix(LOCAL_PREFIX)), revision)
    if Path(text).is_dir():
        return _local(Path(text), revision)
    registered = find_pretrained(text, search_paths)
    if registered is not None:
        return _registered(text, registered, revision, fetch)
    check_local_reference(text)
    if is_repo_id(text):
        return _hub(text, revision, text)
    known = list_pretrained(search_paths)
    close = difflib.get_close_matches(text, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise KeyError(
        f"unknown checkpoint {text!r}: {hint}not a folder, not a registered pretrained name "
        f"(registered: {', '.join(known) or 'none'}) and not a Hub repo id "
        "('org/name' or 'hf-hub:org/name')"
    )


def check_local_reference(reference: str | PathLike[str]) -> None:
    """Refuse at once a reference that names a local path that does not exist.

    Cheap (no torch, no Hub call): commands call it before loading anything, so a typo in a run
    folder is reported in a fraction of a second. Registered names and Hub ids pass.

    Raises:
        CheckpointError: a path-like reference (see :func:`looks_like_path`) that is no folder.
    """
    text = str(reference)
    if text.startswith(HUB_PREFIX) or Path(text.removeprefix(LOCAL_PREFIX)).exists():
        return
    if text.startswith(LOCAL_PREFIX) or isinstance(reference, PathLike) or looks_like_path(text):
        path = Path(text.removeprefix(LOCAL_PREFIX))
        raise CheckpointError(text, _missing_folder_message(path))


def looks_like_path(text: str) -> bool:
    """Whether a reference that is no existing folder names a local path rather than a Hub repo.

    True when it starts with ``.``, ``/``, ``~`` or ``runs/`` (where training runs go by
    default), has more than one ``/`` (a repo id has one), or its first component is an existing
    local folder (``data/x`` while ``data/`` exists). Such a name is never sent to the Hub: a typo
    gives a missing-folder error at once (``hf-hub:org/name`` always means the Hub).
    """
    if text.startswith((".", "/", "~", "runs/")) or text.count("/") > 1:
        return True
    head, separator, _ = text.partition("/")
    return bool(separator) and Path(head).is_dir()


def _missing_folder_message(folder: Path) -> str:
    """A "no such folder" message, with the closest names of its parent folder if any."""
    parent = folder.expanduser().parent
    message = "no such checkpoint folder"
    if parent.is_dir():
        siblings = sorted(entry.name for entry in parent.iterdir() if entry.is_dir())
        close = difflib.get_close_matches(folder.name, siblings, n=3)
        if close:
            message += f"; did you mean {', '.join(str(parent / name) for name in close)}?"
    return message + " (for a Hub repo, write hf-hub:org/name)"


def _local(folder: Path, revision: str | None) -> ResolvedCheckpoint:
    if revision is not None:
        raise ValueError(
            f"{folder}: a revision ({revision!r}) only applies to Hub repos, not to a local folder"
        )
    if not folder.is_dir():
        raise CheckpointError(folder, _missing_folder_message(folder))
    return ResolvedCheckpoint(folder=folder, kind="local", reference=str(folder))


def _hub(repo_id: str, revision: str | None, reference: str) -> ResolvedCheckpoint:
    folder = download_snapshot(repo_id, revision)
    return ResolvedCheckpoint(
        folder=folder, kind="hub", reference=reference, revision=revision, repo_id=repo_id
    )


def _registered(name: str, folder: Path, revision: str | None, fetch: bool) -> ResolvedCheckpoint:
    pointer = _hub_pointer(folder)
    has_weights = (folder / WEIGHTS_FILE).is_file()
    if pointer is None or (has_weights and revision is None) or not fetch:
        if revision is not None and pointer is None:
            raise ValueError(
                f"pretrained {name!r} ({folder}) is a local folder without a Hub source; "
                f"a revision ({revision!r}) does not apply"
            )
        return ResolvedCheckpoint(folder=folder, kind="pretrained", reference=name)
    repo_id = pointer["repo_id"]
    revision = revision or pointer.get("revision")
    downloaded = download_snapshot(repo_id, revision)
    return ResolvedCheckpoint(
        folder=downloaded, kind="hub", reference=name, revision=revision, repo_id=repo_id
    )


def _hub_pointer(folder: Path) -> dict[str, str] | None:
    """The ``hub`` entry of a registered folder's config.json, if any."""
    path = folder / CONFIG_FILE
    try:
        pointer = json.loads(path.read_text(encoding="utf-8")).get("hub")
    except (OSError, ValueError, AttributeError):
        return None
    if pointer is None:
        return None
    if not isinstance(pointer, dict) or not isinstance(pointer.get("repo_id"), str):
        raise CheckpointError(
            path,
            f"field 'hub': expected {{'repo_id': 'org/name', 'revision': ...}}, found {pointer!r}",
        )
    return pointer
