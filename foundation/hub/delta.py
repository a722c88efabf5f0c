"""The base of a fine-tuned delta, resolved and hashed once, and what a delta stores against it.

A delta checkpoint stores only the tensors its base does not hold (heads, adapters) and names
the base with the sha256 of the base's ``model.safetensors``. :class:`DeltaBase` is that base,
read once: a training run makes it from the checkpoint it loaded and hands it to every save, so
a save neither resolves the base again nor hashes or reads its files; it checks that the backbone
left out is still the base's by comparing each tensor's fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import torch

from foundation.hub.reading import (
    BACKBONE_PREFIX,
    Checkpoint,
    check_same_backbone,
    read_checkpoint,
)
from foundation.hub.resolve import ResolvedCheckpoint

_LISTED = 12
_COMMIT = re.compile(r"[0-9a-f]{40}")


def fingerprint(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> str:
    """sha256 of a tensor's dtype, shape and bytes (cast to ``dtype`` first when given)."""
    value = tensor.detach().to(device="cpu", dtype=dtype or tensor.dtype).contiguous()
    digest = hashlib.sha256(f"{value.dtype} {tuple(value.shape)}".encode())
    digest.update(memoryview(value.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


@dataclass(frozen=True)
class DeltaBase:
    """A delta's base checkpoint, resolved and verified once.

    Attributes:
        record: the base (folder, reference, revision, kind; ``sha256`` of its weights).
        backbone: the base's ``config.json`` ``backbone`` entry (``name``, ``kwargs``).
        fingerprints: ``{key: (dtype, fingerprint)}`` of every base backbone tensor.
    """

    record: ResolvedCheckpoint
    backbone: Mapping[str, Any]
    fingerprints: Mapping[str, tuple[torch.dtype, str]]

    def entry(self) -> dict[str, Any]:
        """The ``base`` entry of a delta's ``config.json``: ``name_or_path``, ``revision``,
        ``sha256``.

        A local folder is recorded as an absolute path; a base downloaded from the Hub at its
        commit hash, so that the base cannot move under the delta.
        """
        record = self.record
        reference = str(record.folder.resolve()) if record.kind == "local" else record.reference
        revision = record.revision
        if record.kind == "hub" and _COMMIT.fullmatch(record.folder.name):
            revision = record.folder.name
        return {"name_or_path": reference, "revision": revision, "sha256": record.sha256}

    def delta_tensors(
        self, backbone: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The tensors a delta on this base stores: all but the base's backbone tensors.

        Args:
            backbone: the fine-tuned model's ``backbone`` entry (``name``, ``kwargs``).
            tensors: the fine-tuned model's ``state_dict``.

        Raises:
            CheckpointError: the model's backbone is another architecture than the base's.
            ValueError: backbone tensors that differ from the base's (they are listed).
        """
        check_same_backbone(backbone, self.backbone, self.record.folder)
        changed = [
            key
            for key in sorted(set(self.fingerprints) & set(tensors))
            if fingerprint(tensors[key], self.fingerprints[key][0]) != self.fingerprints[key][1]
        ]
        if changed:
            raise ValueError(
                f"a delta checkpoint stores only heads and adapters, but {len(changed)} backbone "
                f"tensor(s) differ from the base {self.record.reference!r}: {_listing(changed)}; "
                "save a full checkpoint (base=None) or fine-tune with a frozen backbone / adapters"
            )
        return {key: value for key, value in tensors.items() if key not in self.fingerprints}


def delta_base(
    record: ResolvedCheckpoint, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> DeltaBase:
    """The :class:`DeltaBase` of a checkpoint already read (no file is read or hashed).

    Args:
        record: the checkpoint's record, with its verified ``sha256``.
        config: its ``config.json``.
        tensors: its backbone tensors as loaded (keys ``backbone.<...>``; others are ignored).

    Raises:
        ValueError: a record without ``sha256`` (not verified), or a base that is itself a
            delta.
    """
    if record.sha256 is None:
        raise ValueError(
            f"{record.folder}: the base of a delta must be read and verified first "
            "(read_checkpoint) so that its sha256 is known"
        )
    if config.get("base"):
        raise ValueError(
            f"{record.folder} is itself a fine-tuned delta; a delta's base must be a full "
            "checkpoint (chains are not supported)"
        )
    fingerprints = {
        key: (value.dtype, fingerprint(value))
        for key, value in tensors.items()
        if key.startswith(BACKBONE_PREFIX)
    }
    return DeltaBase(record, dict(config["backbone"]), fingerprints)


def read_delta_base(
    base: str | PathLike[str] | Mapping[str, Any],
    search_paths: Sequence[str | PathLike[str]] | None = None,
) -> DeltaBase:
    """Resolve, verify and read a base given by reference (a name, folder or Hub id, or
    ``{"name_or_path": ..., "revision": ...}``).

    Raises:
        CheckpointError / KeyError / HubDownloadError: see
            :func:`~foundation.hub.reading.read_checkpoint`.
        ValueError: see :func:`delta_base`.
    """
    if isinstance(base, Mapping):
        reference, revision = str(base["name_or_path"]), base.get("revision")
    else:
        reference, revision = base, None
    checkpoint: Checkpoint = read_checkpoint(reference, revision, search_paths=search_paths)
    return delta_base(checkpoint.record, checkpoint.config, checkpoint.tensors)


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f", ... ({len(items) - _LISTED} more)" if len(items) > _LISTED else "")
