"""Checkpoint folders and the model hub.

Save and load: :func:`save_pretrained`, :func:`load_pretrained` (alias :func:`from_pretrained`),
:func:`create_backbone` (with ``pretrained=``). Named checkpoints: :func:`list_pretrained`.
Hugging Face Hub: references ``org/name`` / ``hf-hub:org/name`` are downloaded through
``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``), and :func:`push_to_hub` uploads a folder.
"""

from collections.abc import Sequence

from foundation.data.batch import JetBatch
from foundation.hub.adapters import apply_adapter, list_adapters, register_adapter
from foundation.hub.backbones import create_backbone
from foundation.hub.checkpoint import build_model, from_pretrained, load_pretrained, save_pretrained
from foundation.hub.config import FORMAT_VERSION, read_config
from foundation.hub.errors import CheckpointError, HubDownloadError
from foundation.hub.hashing import sha256_file, verify_folder
from foundation.hub.pretrained import CHECKPOINTS_ENV, find_pretrained, list_pretrained
from foundation.hub.push import push_to_hub
from foundation.hub.resolve import ResolvedCheckpoint, resolve_checkpoint
from foundation.hub.schema import FeatureSchema
from foundation.model import Model


def check_feature_schema(model: Model, batch_or_names: JetBatch | Sequence[str]) -> list[str]:
    """Differences between a batch's (or a list of) feature names and a loaded model's schema.

    Same as ``model.check_feature_schema(batch_or_names)``; empty when they match.
    """
    return model.check_feature_schema(batch_or_names)


__all__ = [
    "CHECKPOINTS_ENV",
    "FORMAT_VERSION",
    "CheckpointError",
    "FeatureSchema",
    "HubDownloadError",
    "ResolvedCheckpoint",
    "apply_adapter",
    "build_model",
    "check_feature_schema",
    "create_backbone",
    "find_pretrained",
    "from_pretrained",
    "list_adapters",
    "list_pretrained",
    "load_pretrained",
    "push_to_hub",
    "read_config",
    "register_adapter",
    "resolve_checkpoint",
    "save_pretrained",
    "sha256_file",
    "verify_folder",
]
