"""Upload a checkpoint folder to the Hugging Face Hub."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from foundation import __version__
from foundation.hub.config import CONFIG_FILE, WEIGHTS_FILE, read_config
from foundation.hub.download import HUB_PREFIX, hub_options
from foundation.hub.hashing import SUMS_FILE, verify_folder


def push_to_hub(
    folder: str | PathLike[str],
    repo_id: str,
    *,
    revision: str | None = None,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    create_repo: bool = True,
    api: Any = None,
) -> Any:
    """Verify a checkpoint folder and upload its files (those in ``SHA256SUMS``) to a Hub repo.

    Args:
        folder: a folder written by :func:`~foundation.hub.save_pretrained`.
        repo_id: ``org/name`` (``hf-hub:`` prefix allowed).
        revision: branch to commit to (created if missing); default: the default branch.
        commit_message: default ``"Upload <name> (foundation <version>)"``.
        private: visibility of a newly created repo.
        token: Hub token (default: the logged-in user's).
        create_repo: create the repo (``exist_ok``) before uploading.
        api: an ``huggingface_hub.HfApi`` (or a stand-in with the same methods).

    Returns:
        What ``HfApi.upload_folder`` returns (the commit info).

    Raises:
        CheckpointError: the folder is not a valid checkpoint (nothing is uploaded).
    """
    folder = Path(folder)
    config = read_config(folder)
    listed = verify_folder(folder, required=(CONFIG_FILE, WEIGHTS_FILE))
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
        allow_patterns=sorted([*listed, SUMS_FILE]),
    )
