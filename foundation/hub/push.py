"""Upload a checkpoint folder to the Hugging Face Hub (``foundation hub push FOLDER org/name``)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation import __version__
from foundation.hub.config import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, read_config
from foundation.hub.download import HUB_PREFIX, hub_options
from foundation.hub.hashing import SUMS_FILE, verify_folder

if TYPE_CHECKING:
    from huggingface_hub import HfApi


DOCUMENT_PREFIXES: tuple[str, ...] = (CARD_FILE, "LICENSE", "NOTICE")
"""Unhashed files of a checkpoint folder that are published with it: the card and the license
texts (``LICENSE``, ``LICENSE.txt``, ``NOTICE``...)."""


def published_files(folder: str | PathLike[str]) -> list[str]:
    """The files of a checkpoint folder that belong in its repo, after verifying them.

    The hashed files (``config.json``, the weights), ``SHA256SUMS``, and the card and license
    files of the folder's top level (:data:`DOCUMENT_PREFIXES`); nothing else (logs, exports).

    Raises:
        CheckpointError: the folder is not a valid checkpoint (a hash differs, a file is missing).
    """
    folder = Path(folder)
    listed = verify_folder(folder, required=(CONFIG_FILE, WEIGHTS_FILE))
    documents = [
        path.name
        for path in folder.iterdir()
        if path.is_file() and path.name.startswith(DOCUMENT_PREFIXES)
    ]
    return sorted({*listed, SUMS_FILE, *documents})


def push_to_hub(
    folder: str | PathLike[str],
    repo_id: str,
    *,
    revision: str | None = None,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    create_repo: bool = True,
    api: HfApi | None = None,
) -> Any:
    """Verify a checkpoint folder and upload it (see :func:`published_files`) to a Hub repo.

    Args:
        folder: a folder written by :func:`~foundation.hub.save_pretrained`.
        repo_id: ``org/name`` (``hf-hub:`` prefix allowed).
        revision: branch to commit to (created if missing); default: the default branch.
        commit_message: default ``"Upload <name> (foundation <version>)"``.
        private: visibility of a newly created repo.
        token: Hub token (default: ``$HF_TOKEN`` or the logged-in user's).
        create_repo: create the repo (``exist_ok``) before uploading.
        api: the ``huggingface_hub.HfApi`` to use (default: one for ``$HF_ENDPOINT``).

    Returns:
        What ``HfApi.upload_folder`` returns (the commit info).

    Raises:
        CheckpointError: the folder is not a valid checkpoint (nothing is uploaded).
        huggingface_hub.errors.HfHubHTTPError: the Hub refused a request (the card's metadata,
            the token, the repo name...).
    """
    folder = Path(folder)
    config = read_config(folder)
    files = published_files(folder)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=hub_options()["endpoint"], token=token)
    repo_id = repo_id.removeprefix(HUB_PREFIX)
    if create_repo:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    label = config.get("name") or config["backbone"]["name"]
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        revision=revision,
        commit_message=commit_message or f"Upload {label} (foundation {__version__})",
        allow_patterns=files,
    )
