"""Checkpoint folders and the model hub.

Save and load: :func:`save_pretrained`, :func:`load_pretrained` (alias :func:`from_pretrained`),
:func:`create_backbone` (with ``pretrained=``). Named checkpoints: :func:`list_pretrained`.
Hugging Face Hub: references ``org/name`` / ``hf-hub:org/name`` are downloaded through
``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``), and :func:`push_to_hub` uploads a folder.

The names below are imported on first use (PEP 562), so that ``foundation.hub.resolve`` and
the other light submodules (the command line's) never pay for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundation.lazy import lazy_exports

if TYPE_CHECKING:
    from collections.abc import Sequence

    from foundation.data.batch import JetBatch
    from foundation.model import Model

_SUBMODULE_OF: dict[str, str] = {
    "create_backbone": "backbones",
    "build_model": "checkpoint",
    "from_pretrained": "checkpoint",
    "load_pretrained": "checkpoint",
    "save_pretrained": "checkpoint",
    "FORMAT_VERSION": "config",
    "read_config": "config",
    "CheckpointError": "errors",
    "HubDownloadError": "errors",
    "sha256_file": "hashing",
    "verify_folder": "hashing",
    "CHECKPOINTS_ENV": "pretrained",
    "find_pretrained": "pretrained",
    "list_pretrained": "pretrained",
    "push_to_hub": "push",
    "ResolvedCheckpoint": "resolve",
    "resolve_checkpoint": "resolve",
    "FeatureSchema": "schema",
}
"""Public name -> the submodule of ``foundation.hub`` defining it."""


__getattr__ = lazy_exports(__name__, _SUBMODULE_OF)


def check_feature_schema(model: Model, batch_or_names: JetBatch | Sequence[str]) -> list[str]:
    """Differences between a batch's (or a list of) feature names and a loaded model's schema.

    Same as ``model.check_feature_schema(batch_or_names)``; empty when they match.
    """
    return model.check_feature_schema(batch_or_names)


__all__ = sorted([*_SUBMODULE_OF, "check_feature_schema"])
