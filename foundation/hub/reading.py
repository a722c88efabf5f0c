"""Read a checkpoint folder as plain data: its config and its tensors, verified once.

:func:`read_checkpoint` resolves a reference, reads ``config.json``, checks every file against
``SHA256SUMS`` (each file hashed once) and reads ``model.safetensors``; for a fine-tuned delta it
adds the backbone tensors of the base the delta names, after checking the base's hash. What it
returns is plain (a dict and tensors): building a model from it happens above the hub, in
``foundation.load_pretrained``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from foundation import __version__
from foundation.hub.config import CONFIG_FILE, WEIGHTS_FILE, newer_library, read_config
from foundation.hub.errors import CheckpointError
from foundation.hub.hashing import verify_folder
from foundation.hub.resolve import ResolvedCheckpoint, resolve_checkpoint

BACKBONE_PREFIX = "backbone."
"""``state_dict`` keys of the backbone start with this (``heads.<name>.`` for the heads)."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder, read and verified.

    Attributes:
        record: where it came from; ``record.sha256`` is the verified hash of its weights.
        config: its ``config.json``, validated.
        tensors: its weights by ``state_dict`` key; for a delta read with its base, the base's
            backbone tensors too.
        base: a delta's base, resolved and verified (``sha256`` set), when it was read; else
            None.
    """

    record: ResolvedCheckpoint
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    base: ResolvedCheckpoint | None = None

    @property
    def weights_path(self) -> Path:
        """The folder's ``model.safetensors``."""
        return self.record.folder / WEIGHTS_FILE


def read_checkpoint(
    reference: str | PathLike[str] | ResolvedCheckpoint,
    revision: str | None = None,
    *,
    search_paths: Sequence[str | PathLike[str]] | None = None,
    include_base: bool = True,
) -> Checkpoint:
    """Resolve, verify and read a checkpoint folder.

    Args:
        reference: a folder, a registered pretrained name, a Hub repo id (see
            :func:`~foundation.hub.resolve.resolve_checkpoint`), or a reference already
            resolved.
        revision: Hub branch, tag or commit hash.
        search_paths: folders of named checkpoints (default: ``$FOUNDATION_CHECKPOINTS``, then
            the shipped ``checkpoints/``).
        include_base: for a delta, also resolve and verify its base and add the base's
            backbone tensors; False reads the folder's own tensors only.

    Returns:
        The :class:`Checkpoint`.

    Raises:
        CheckpointError: missing or corrupt files, a hash mismatch, a newer format or library
            version, a base that changed since the delta was saved or holds another backbone.
        KeyError: an unknown reference.
        HubDownloadError: a Hub download failed.
    """
    record = (
        reference
        if isinstance(reference, ResolvedCheckpoint)
        else resolve_checkpoint(reference, revision, search_paths=search_paths)
    )
    record, config = verify_checkpoint(record)
    tensors: dict[str, torch.Tensor] = {}
    base = None
    if config.get("base") and include_base:
        base, base_tensors = _base_backbone(config, record, search_paths)
        tensors.update(base_tensors)
    tensors.update(read_weights(record.folder / WEIGHTS_FILE))
    return Checkpoint(record, config, tensors, base)


def verify_checkpoint(record: ResolvedCheckpoint) -> tuple[ResolvedCheckpoint, dict[str, Any]]:
    """Read ``config.json``, refuse one from a newer library, verify every file's hash.

    Returns:
        The record with ``sha256`` (of ``model.safetensors``) set, and the config.

    Raises:
        CheckpointError: see :func:`read_checkpoint`.
    """
    config = read_config(record.folder)
    if newer_library(config):
        raise CheckpointError(
            record.folder / CONFIG_FILE,
            f"field 'library_version': expected at most {__version__} (this library), found "
            f"{config['library_version']}; upgrade with `pip install -U foundation-jets`",
        )
    sums = verify_folder(record.folder, required=(CONFIG_FILE, WEIGHTS_FILE))
    return replace(record, sha256=sums[WEIGHTS_FILE]), config


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (no pickle) with a clear error for a corrupt one.

    Raises:
        CheckpointError: the file is missing or not a readable safetensors file.
    """
    if not path.is_file():
        raise CheckpointError(path, "weights file is missing")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            path,
            f"is not a readable safetensors file ({error})",
            "the file is truncated or corrupt; download or save the checkpoint again",
        ) from None


def check_same_backbone(
    backbone: Mapping[str, Any], base_backbone: Mapping[str, Any], base_folder: Path
) -> None:
    """A delta's backbone entry (``name``, ``kwargs``) must be its base's.

    Raises:
        CheckpointError: the architectures or their arguments differ (both are named).
    """
    same_kwargs = dict(backbone["kwargs"]) == dict(base_backbone["kwargs"])
    if backbone["name"] != base_backbone["name"] or not same_kwargs:
        raise CheckpointError(
            base_folder / CONFIG_FILE,
            f"the base backbone is {base_backbone['name']!r} {dict(base_backbone['kwargs'])}, "
            f"but the fine-tuned model's is {backbone['name']!r} {dict(backbone['kwargs'])}",
        )


def _base_backbone(
    config: Mapping[str, Any],
    record: ResolvedCheckpoint,
    search_paths: Sequence[str | PathLike[str]] | None,
) -> tuple[ResolvedCheckpoint, dict[str, torch.Tensor]]:
    """A delta's base (verified) and its backbone tensors, after checking hash and architecture.

    A relative ``base.name_or_path`` that is no folder from here but one beside the delta is
    read from there (a delta shipped next to its base).
    """
    entry = config["base"]
    reference = entry["name_or_path"]
    beside = record.folder / reference
    if not Path(reference).is_absolute() and not Path(reference).is_dir() and beside.is_dir():
        reference = str(beside)
    source = record.folder / CONFIG_FILE
    resolved = resolve_checkpoint(reference, entry.get("revision"), search_paths=search_paths)
    base, base_config = verify_checkpoint(resolved)
    if base_config.get("base"):
        raise CheckpointError(
            source, f"base {entry['name_or_path']!r} is itself a delta; chains are not supported"
        )
    if base.sha256 != entry["sha256"]:
        raise CheckpointError(
            source,
            f"base checkpoint {entry['name_or_path']!r} (revision {entry.get('revision')}) has "
            f"model.safetensors sha256 {base.sha256}, but this fine-tune was made on "
            f"{entry['sha256']}",
            "the base changed since the fine-tune was saved; pin the base revision or restore "
            "the original base checkpoint",
        )
    check_same_backbone(config["backbone"], base_config["backbone"], base.folder)
    weights = read_weights(base.folder / WEIGHTS_FILE)
    return base, {key: value for key, value in weights.items() if key.startswith(BACKBONE_PREFIX)}
