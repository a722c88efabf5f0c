"""Checkpoint folders and the model hub: plain configs and tensors, never a model class.

Write: :func:`save_pretrained` (a model, read through the :class:`~foundation.hub.config.
SavableModel` protocol), :func:`write_checkpoint` (a config and tensors). Read:
:func:`resolve_checkpoint` (a reference to a local folder), :func:`read_checkpoint` (config and
tensors, every hash verified once). Named checkpoints: :func:`list_pretrained`. Hugging Face
Hub: references ``org/name`` / ``hf-hub:org/name`` are downloaded through ``huggingface_hub``
(its cache, ``HF_HUB_OFFLINE``), and :func:`push_to_hub` uploads a folder.

A model from a checkpoint: ``foundation.load_pretrained`` (above the hub, which never imports
the model or the training code).

The names below are imported on first use (PEP 562), so that ``foundation.hub.resolve`` and
the other light submodules (the command line's) never pay for torch.
"""

from __future__ import annotations

from typing import Any

_REMOVED: dict[str, str] = {
    "load_pretrained": "foundation.load_pretrained(name_or_path, revision=..., heads=...)",
    "from_pretrained": "foundation.load_pretrained(name_or_path, revision=..., heads=...)",
    "create_backbone": (
        "foundation.load_pretrained(name, heads=None).backbone for pretrained weights, "
        "foundation.models.registry.create_backbone(name, ...) for fresh ones"
    ),
    "build_model": "foundation.load_pretrained (a model from a checkpoint)",
    "check_feature_schema": "model.check_feature_schema(batch_or_names)",
}
"""Names the hub no longer has (it builds no models) -> what to use instead."""


def __getattr__(name: str) -> Any:
    """The public ``name``, imported from its submodule on first use (then kept here)."""
    if name in _REMOVED:
        raise AttributeError(
            f"foundation.hub.{name} was removed (the hub reads and writes checkpoint folders, "
            f"it builds no models); use {_REMOVED[name]}"
        )
    match name:
        case "save_pretrained" | "write_checkpoint":
            from foundation.hub import checkpoint as source
        case "FORMAT_VERSION" | "read_config":
            from foundation.hub import config as source
        case "DeltaBase":
            from foundation.hub import delta as source
        case "CheckpointError" | "HubDownloadError":
            from foundation.hub import errors as source
        case "sha256_file" | "verify_folder":
            from foundation.hub import hashing as source
        case "CHECKPOINTS_ENV" | "find_pretrained" | "list_pretrained":
            from foundation.hub import pretrained as source
        case "push_to_hub":
            from foundation.hub import push as source
        case "Checkpoint" | "read_checkpoint":
            from foundation.hub import reading as source
        case "ResolvedCheckpoint" | "resolve_checkpoint":
            from foundation.hub import resolve as source
        case "FeatureSchema":
            from foundation.hub import schema as source
        case _:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(source, name)
    return value


__all__ = [
    "CHECKPOINTS_ENV",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "DeltaBase",
    "FeatureSchema",
    "HubDownloadError",
    "ResolvedCheckpoint",
    "find_pretrained",
    "list_pretrained",
    "push_to_hub",
    "read_checkpoint",
    "read_config",
    "resolve_checkpoint",
    "save_pretrained",
    "sha256_file",
    "verify_folder",
    "write_checkpoint",
]
