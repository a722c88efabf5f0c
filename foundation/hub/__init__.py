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

from foundation.lazy import lazy_exports

_SUBMODULE_OF: dict[str, str] = {
    "save_pretrained": "checkpoint",
    "write_checkpoint": "checkpoint",
    "FORMAT_VERSION": "config",
    "read_config": "config",
    "DeltaBase": "delta",
    "CheckpointError": "errors",
    "HubDownloadError": "errors",
    "sha256_file": "hashing",
    "verify_folder": "hashing",
    "CHECKPOINTS_ENV": "pretrained",
    "find_pretrained": "pretrained",
    "list_pretrained": "pretrained",
    "push_to_hub": "push",
    "Checkpoint": "reading",
    "read_checkpoint": "reading",
    "ResolvedCheckpoint": "resolve",
    "resolve_checkpoint": "resolve",
    "FeatureSchema": "schema",
}
"""Public name -> the submodule of ``foundation.hub`` defining it."""

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

_lazy = lazy_exports(__name__, _SUBMODULE_OF)


def __getattr__(name: str) -> Any:
    if name in _REMOVED:
        raise AttributeError(
            f"foundation.hub.{name} was removed (the hub reads and writes checkpoint folders, "
            f"it builds no models); use {_REMOVED[name]}"
        )
    return _lazy(name)


__all__ = sorted(_SUBMODULE_OF)
