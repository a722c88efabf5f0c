"""Save a :class:`~foundation.model.Model` to a checkpoint folder and load it back, strictly.

A checkpoint folder holds ``config.json`` (everything needed to rebuild the model),
``model.safetensors`` (weights; never pickle), ``README.md`` (model card) and ``SHA256SUMS``
(sha256 of ``config.json`` and the weights: editing the card never breaks loading).
A fine-tuned *delta* checkpoint stores only its heads and adapter parameters and names its base
checkpoint with the sha256 of the base's ``model.safetensors``.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from foundation import __version__
from foundation.hub.atomic import atomic_folder
from foundation.hub.card import render_card
from foundation.hub.config import (
    CARD_FILE,
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    model_config,
    newer_library,
    read_config,
    write_config,
)
from foundation.hub.errors import CheckpointError
from foundation.hub.hashing import sha256_file, verify_folder, write_sums
from foundation.hub.resolve import ResolvedCheckpoint, resolve_checkpoint
from foundation.hub.schema import FeatureSchema
from foundation.model import Model
from foundation.models.adapters import apply_adapter

HeadSelection = str | Sequence[str] | None
"""``"all"`` (every declared head), a list of head names, or None (backbone only)."""

_BACKBONE_PREFIX = "backbone."
_LISTED = 12


# --------------------------------------------------------------------------------------- save
def save_pretrained(
    model: Model,
    folder: str | PathLike[str],
    *,
    feature_schema: FeatureSchema | Sequence[str] | Mapping[str, Any] | None = None,
    normalization: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    card: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    base: str | PathLike[str] | Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Path:
    """Write ``model`` to a checkpoint folder, atomically.

    Args:
        model: the model (its ``backbone_name`` must be set).
        folder: destination; an existing non-empty folder needs ``overwrite=True``.
        feature_schema: input feature names (a :class:`FeatureSchema`, a list of particle
            feature names or the dict form); default ``model.feature_schema``.
        normalization: input normalisation (JSON-serialisable), stored in the schema.
        provenance: data provenance (datasets, files, seeds, simulation cards...).
        card: model-card sections (``data``, ``recipe``, ``metrics``, ``intended_use``,
            ``limitations``, ``license``, ``citation``, ``title``, ``summary``); missing
            sections say "Not provided" - nothing is invented.
        overwrite: replace an existing checkpoint.
        base: for a fine-tuned *delta*: the base checkpoint (name, folder or Hub id, or
            ``{"name_or_path": ..., "revision": ...}``). Only parameters whose names are not in
            the base backbone (heads, adapters) are saved; the backbone's own parameters must be
            unchanged from the base. A Hub base is recorded at its commit hash.
        name: optional checkpoint name recorded in config.json (e.g. ``part-s.sim10``).

    Returns:
        The folder.

    Raises:
        ValueError: no feature schema, a schema that does not match the backbone's input width,
            unserialisable arguments, or backbone weights that differ from ``base``.
        OutputExistsError: the folder exists and ``overwrite`` is False.
    """
    schema_source = feature_schema if feature_schema is not None else model.feature_schema
    if schema_source is None:
        raise ValueError(
            "save_pretrained needs feature_schema (the names of the input features, in order) "
            "so that users can check their inputs against the checkpoint"
        )
    schema = FeatureSchema.coerce(schema_source, normalization)
    width = (getattr(model.backbone, "config", None) or {}).get("in_features")
    if isinstance(width, int) and width != len(schema.particle_features):
        raise ValueError(
            f"feature_schema lists {len(schema.particle_features)} particle features but the "
            f"backbone takes in_features={width}"
        )
    tensors = {
        key: value.detach().to("cpu").contiguous().clone()
        for key, value in model.state_dict().items()
    }
    base_record = None
    if base is not None:
        base_record, base_keys = _delta_base(model, tensors, base)
        tensors = {key: value for key, value in tensors.items() if key not in base_keys}
    config = model_config(model, schema, provenance, base_record, name)
    readme = render_card(config, card)
    with atomic_folder(folder, overwrite=overwrite) as temporary:
        write_config(temporary, config)
        write_weights(
            tensors,
            temporary / WEIGHTS_FILE,
            {"format": "pt", "foundation_format_version": str(FORMAT_VERSION)},
        )
        (temporary / CARD_FILE).write_text(readme, encoding="utf-8")
        write_sums(temporary)
    return Path(folder)


def write_weights(
    tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]
) -> Path:
    """Write a safetensors file whose bytes depend on the tensors and metadata only.

    safetensors keeps the metadata in a hash map whose key order changes from one process to
    the next, so the same weights could get another sha256 at every save, and fine-tune deltas
    record their base's sha256. The header is written again with sorted metadata keys (the
    tensor entries and the data are kept as they are; the header stays padded to 8 bytes).
    """
    blob = save(dict(tensors), metadata=dict(metadata))
    length = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + length])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + length :])
    return path


def _delta_base(
    model: Model, tensors: dict[str, torch.Tensor], base: str | PathLike[str] | Mapping[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    """The ``base`` record of a delta and the base backbone keys to leave out."""
    if isinstance(base, Mapping):
        reference, revision = str(base["name_or_path"]), base.get("revision")
    else:
        reference, revision = str(base), None
    resolved = resolve_checkpoint(reference, revision)
    base_config = _verified_config(resolved)
    _check_same_backbone(model_config_backbone(model), base_config, resolved.folder)
    base_tensors = _read_weights(resolved.folder / WEIGHTS_FILE)
    base_keys = {key for key in base_tensors if key.startswith(_BACKBONE_PREFIX)}
    changed = [
        key
        for key in sorted(base_keys & set(tensors))
        if base_tensors[key].shape != tensors[key].shape
        or not torch.equal(base_tensors[key], tensors[key].to(base_tensors[key].dtype))
    ]
    if changed:
        raise ValueError(
            f"a delta checkpoint stores only heads and adapters, but {len(changed)} backbone "
            f"tensor(s) differ from the base {reference!r}: {_listing(changed)}; save a full "
            "checkpoint (base=None) or fine-tune with a frozen backbone / adapters"
        )
    if resolved.kind == "hub" and re.fullmatch(r"[0-9a-f]{40}", resolved.folder.name):
        revision = resolved.folder.name  # pin the commit, so that the base cannot move
    record = {
        "name_or_path": reference,
        "revision": revision,
        "sha256": sha256_file(resolved.folder / WEIGHTS_FILE),
    }
    return record, base_keys


def model_config_backbone(model: Model) -> dict[str, Any]:
    """The ``backbone`` entry that ``config.json`` records for ``model``."""
    return {
        "name": model.backbone_name,
        "kwargs": dict(getattr(model.backbone, "config", {}) or {}),
    }


# --------------------------------------------------------------------------------------- load
def load_pretrained(
    name_or_path: str | PathLike[str],
    revision: str | None = None,
    heads: HeadSelection = "all",
    *,
    search_paths: Sequence[str | PathLike[str]] | None = None,
) -> Model:
    """Load a checkpoint: rebuild the model from ``config.json``, verify, load strictly.

    Args:
        name_or_path: a checkpoint folder, a registered pretrained name (``part-s.sim10``,
            see :func:`~foundation.hub.list_pretrained`), or a Hugging Face Hub repo id
            (``org/name`` or ``hf-hub:org/name``; downloaded through the local cache, offline
            with ``HF_HUB_OFFLINE=1``).
        revision: Hub branch, tag or commit hash.
        heads: ``"all"`` declared heads, a list of head names, or None for the backbone only.
            Heads left out on purpose are the only weights allowed to go unused.
        search_paths: folders of named checkpoints (default: ``$FOUNDATION_CHECKPOINTS``, then
            the shipped ``checkpoints/``).

    Returns:
        The model in eval mode, with ``feature_schema`` and ``source`` set.

    Raises:
        CheckpointError: missing or corrupt files, a hash mismatch, a newer format version, an
            unknown architecture, head or adapter, or weights that do not match the
            architecture (missing / unexpected keys are listed).
        KeyError: an unknown reference or a requested head the checkpoint does not declare.
        HubDownloadError: a Hub download failed.
    """
    resolved = resolve_checkpoint(name_or_path, revision, search_paths=search_paths)
    config = _verified_config(resolved)
    selected = _select_heads(config, heads, resolved.folder)
    model = build_model(config, selected, resolved.folder / CONFIG_FILE)
    weights_path = resolved.folder / WEIGHTS_FILE
    state: dict[str, torch.Tensor] = {}
    base_info = None
    if config.get("base"):
        base_state, base_info = _base_weights(config, resolved, search_paths)
        state.update(base_state)
    state.update(_read_weights(weights_path))
    dropped = [name for name in config["heads"] if name not in selected]
    state = {
        key: value
        for key, value in state.items()
        if not any(key.startswith(f"heads.{name}.") for name in dropped)
    }
    _load_strict(model, state, weights_path)
    model.feature_schema = FeatureSchema.from_dict(config["feature_schema"])
    model.source = {
        "name_or_path": resolved.reference,
        "kind": resolved.kind,
        "revision": resolved.revision,
        "repo_id": resolved.repo_id,
        "folder": str(resolved.folder),
        "sha256": sha256_file(weights_path),
        "base": base_info,
        "config": config,
    }
    return model.eval()


def from_pretrained(
    name_or_path: str | PathLike[str],
    revision: str | None = None,
    heads: HeadSelection = "all",
    *,
    search_paths: Sequence[str | PathLike[str]] | None = None,
) -> Model:
    """Alias of :func:`load_pretrained` (the ``Backbone.from_pretrained`` journey)."""
    return load_pretrained(name_or_path, revision, heads, search_paths=search_paths)


def build_model(
    config: Mapping[str, Any], heads: Sequence[str], source: str | PathLike[str] = CONFIG_FILE
) -> Model:
    """Rebuild the architecture described by ``config`` (fresh weights) with the named heads.

    Raises:
        CheckpointError: unknown or unbuildable backbone, adapter or head.
    """
    from foundation.models.registry import list_backbones
    from heads.registry import create_head, list_heads

    backbone = config["backbone"]
    if backbone["name"] not in list_backbones():
        raise CheckpointError(
            source,
            f"field 'backbone.name': unknown architecture {backbone['name']!r}; this library "
            f"registers: {', '.join(list_backbones())}",
            "upgrade foundation, or import the module that registers this backbone",
        )
    try:
        model = Model.create(backbone["name"], backbone["kwargs"])
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(
            source, f"cannot build backbone {backbone['name']!r} from 'backbone.kwargs': {error}"
        ) from error
    for adapter in config.get("adapters") or []:
        try:
            apply_adapter(model, adapter["type"], **adapter["kwargs"])
        except (TypeError, ValueError, KeyError) as error:
            raise CheckpointError(
                source, f"field 'adapters': cannot apply adapter {adapter['type']!r}: {error}"
            ) from error
    for name in heads:
        spec = config["heads"][name]
        if spec["type"] not in list_heads():
            raise CheckpointError(
                source,
                f"field 'heads.{name}.type': unknown head {spec['type']!r}; this library "
                f"registers: {', '.join(list_heads())}",
                "upgrade foundation, or load without this head (heads=[...] or heads=None)",
            )
        try:
            head = create_head(spec["type"], **spec["kwargs"])
            model.add_head(name, head, weight=float(spec.get("loss_weight", 1.0)))
        except (TypeError, ValueError, KeyError) as error:
            raise CheckpointError(
                source, f"cannot build head {name!r} from 'heads.{name}.kwargs': {error}"
            ) from error
    return model


# ------------------------------------------------------------------------------------ helpers
def _verified_config(resolved: ResolvedCheckpoint) -> dict[str, Any]:
    """Read config.json, refuse one from a newer library, verify every file's hash."""
    config = read_config(resolved.folder)
    if newer_library(config):
        raise CheckpointError(
            resolved.folder / CONFIG_FILE,
            f"field 'library_version': expected at most {__version__} (this library), found "
            f"{config['library_version']}; upgrade with `pip install -U foundation-jets`",
        )
    verify_folder(resolved.folder, required=(CONFIG_FILE, WEIGHTS_FILE))
    return config


def _select_heads(config: Mapping[str, Any], heads: HeadSelection, folder: Path) -> list[str]:
    declared = list(config["heads"])
    if heads is None:
        return []
    if isinstance(heads, str):
        if heads == "all":
            return declared
        heads = [heads]
    unknown = [name for name in heads if name not in declared]
    if unknown:
        raise KeyError(
            f"checkpoint {folder} has no head(s) {unknown}; "
            f"its heads: {', '.join(declared) or 'none'}"
        )
    return list(dict.fromkeys(heads))


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (no pickle) with a clear error for a corrupt one."""
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


def _base_weights(
    config: Mapping[str, Any],
    resolved: ResolvedCheckpoint,
    search_paths: Sequence[str | PathLike[str]] | None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The backbone weights of a delta's base, after checking the base's hash and architecture."""
    base = config["base"]
    reference = base["name_or_path"]
    relative = resolved.folder / reference
    if not Path(reference).is_absolute() and not Path(reference).is_dir() and relative.is_dir():
        reference = str(relative)
    source = resolved.folder / CONFIG_FILE
    base_resolved = resolve_checkpoint(reference, base.get("revision"), search_paths=search_paths)
    base_config = _verified_config(base_resolved)
    if base_config.get("base"):
        raise CheckpointError(
            source, f"base {base['name_or_path']!r} is itself a delta; chains are not supported"
        )
    found = sha256_file(base_resolved.folder / WEIGHTS_FILE)
    if found != base["sha256"]:
        raise CheckpointError(
            source,
            f"base checkpoint {base['name_or_path']!r} (revision {base.get('revision')}) has "
            f"model.safetensors sha256 {found}, but this fine-tune was made on {base['sha256']}",
            "the base changed since the fine-tune was saved; pin the base revision or restore "
            "the original base checkpoint",
        )
    _check_same_backbone(config["backbone"], base_config, base_resolved.folder)
    weights = _read_weights(base_resolved.folder / WEIGHTS_FILE)
    backbone = {k: v for k, v in weights.items() if k.startswith(_BACKBONE_PREFIX)}
    return backbone, {**dict(base), "folder": str(base_resolved.folder)}


def _check_same_backbone(
    backbone: Mapping[str, Any], base_config: Mapping[str, Any], base_folder: Path
) -> None:
    expected = base_config["backbone"]
    if backbone["name"] != expected["name"] or dict(backbone["kwargs"]) != dict(expected["kwargs"]):
        raise CheckpointError(
            base_folder / CONFIG_FILE,
            f"the base backbone is {expected['name']!r} {expected['kwargs']}, but the fine-tuned "
            f"model's is {backbone['name']!r} {dict(backbone['kwargs'])}",
        )


def _load_strict(model: Model, state: dict[str, torch.Tensor], path: Path) -> None:
    """``load_state_dict(strict=True)`` with every problem named before anything is copied."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    if mismatched:
        problems.append(
            f"{len(mismatched)} shape mismatch(es) (file vs model): {_listing(mismatched)}"
        )
    if problems:
        raise CheckpointError(
            path,
            "weights do not match the architecture in config.json: " + "; ".join(problems),
            "the file was not written for this config, or the config was edited",
        )
    model.load_state_dict(state, strict=True)


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f", ... ({len(items) - _LISTED} more)" if len(items) > _LISTED else "")
