"""``foundation.load_pretrained``: the one way to get a :class:`~foundation.model.Model` from a
checkpoint.

The hub (:mod:`foundation.hub`) resolves a reference and reads the folder as plain data
(:func:`~foundation.hub.reading.read_checkpoint`: config, verified hashes, tensors); this module
builds the architecture that ``config.json`` describes and loads the tensors into it, strictly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from foundation.hub.config import CONFIG_FILE
from foundation.hub.errors import CheckpointError
from foundation.hub.reading import Checkpoint, read_checkpoint
from foundation.hub.schema import FeatureSchema
from foundation.model import Model
from foundation.models.adapters import apply_adapter
from foundation.models.registry import list_backbones
from heads.registry import create_head, list_heads

HeadSelection = str | Sequence[str] | None
"""``"all"`` (every declared head), a list of head names, or None (backbone only)."""

_LISTED = 12


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
        heads: ``"all"`` declared heads, a list of head names, or None for the backbone only
            (``load_pretrained(name, heads=None).backbone`` is the pretrained backbone alone).
            Heads left out on purpose are the only weights allowed to go unused.
        search_paths: folders of named checkpoints (default: ``$FOUNDATION_CHECKPOINTS``, then
            the shipped ``checkpoints/``).

    Returns:
        The model in eval mode, with ``feature_schema`` and ``source`` set. ``source`` holds
        ``name_or_path``, ``kind``, ``revision``, ``repo_id``, ``folder``, ``sha256`` (of the
        weights), ``base`` (a delta's base entry and folder), ``config`` and ``record`` (the
        resolved :class:`~foundation.hub.resolve.ResolvedCheckpoint`, hash included).

    Raises:
        CheckpointError: missing or corrupt files, a hash mismatch, a newer format version, an
            unknown architecture, head or adapter, or weights that do not match the
            architecture (missing / unexpected keys are listed).
        KeyError: an unknown reference or a requested head the checkpoint does not declare.
        HubDownloadError: a Hub download failed.

    Example:
        >>> import foundation
        >>> model = foundation.load_pretrained("jetformer-tiny.sim300k")  # doctest: +SKIP
    """
    checkpoint = read_checkpoint(name_or_path, revision, search_paths=search_paths)
    config = checkpoint.config
    selected = _select_heads(config, heads, checkpoint.record.folder)
    model = _build(config, selected, checkpoint.record.folder / CONFIG_FILE)
    dropped = [name for name in config["heads"] if name not in selected]
    state = {
        key: value
        for key, value in checkpoint.tensors.items()
        if not any(key.startswith(f"heads.{name}.") for name in dropped)
    }
    _load_strict(model, state, checkpoint.weights_path)
    model.feature_schema = FeatureSchema.from_dict(config["feature_schema"])
    model.source = _source(checkpoint)
    return model.eval()


def _source(checkpoint: Checkpoint) -> dict[str, Any]:
    """``model.source`` of a loaded model."""
    record, base = checkpoint.record, checkpoint.base
    return {
        "name_or_path": record.reference,
        "kind": record.kind,
        "revision": record.revision,
        "repo_id": record.repo_id,
        "folder": str(record.folder),
        "sha256": record.sha256,
        "base": None if base is None else {**checkpoint.config["base"], "folder": str(base.folder)},
        "config": checkpoint.config,
        "record": record,
    }


def _build(config: Mapping[str, Any], heads: Sequence[str], source: Path) -> Model:
    """Rebuild the architecture described by ``config`` (fresh weights) with the named heads.

    Raises:
        CheckpointError: unknown or unbuildable backbone, adapter or head.
    """
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
