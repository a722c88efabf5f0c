"""``create_backbone(name, pretrained=...)``: the registry's builder, plus pretrained weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from typing import Any

from foundation.hub.checkpoint import load_pretrained
from foundation.hub.config import CONFIG_FILE
from foundation.hub.pretrained import pretrained_folders
from foundation.models import registry
from foundation.models.base import Backbone


def create_backbone(
    name: str,
    pretrained: bool | str | PathLike[str] = False,
    *,
    revision: str | None = None,
    search_paths: Sequence[str | PathLike[str]] | None = None,
    **kwargs: Any,
) -> Backbone:
    """Build a registered backbone, optionally with pretrained weights.

    Args:
        name: an architecture (``"part-s"``) or a pretrained name (``"part-s.sim10"``: the
            architecture is the part before the first dot).
        pretrained: False for fresh weights; True for the pretrained name given as ``name`` (or
            the only registered checkpoint of that architecture); or any checkpoint reference
            (folder, pretrained name, Hub repo id).
        revision: Hub revision of the checkpoint.
        search_paths: folders of named checkpoints.
        **kwargs: architecture arguments; with pretrained weights they must equal the
            checkpoint's (architecture arguments of trained weights cannot change).

    Returns:
        The backbone; a pretrained one has ``feature_schema`` and ``source`` attributes.

    Raises:
        KeyError: unknown architecture, or no (or several) checkpoints of this architecture.
        ValueError: the checkpoint holds another architecture, or ``kwargs`` conflict with it.
    """
    architecture = name.split(".", 1)[0]
    if pretrained is False:
        return registry.create_backbone(architecture, **kwargs)
    if pretrained is True:
        reference: str | PathLike[str] = (
            name if "." in name else _only_checkpoint(architecture, search_paths)
        )
    else:
        reference = pretrained
    model = load_pretrained(reference, revision, heads=None, search_paths=search_paths)
    if model.backbone_name != architecture:
        raise ValueError(
            f"checkpoint {reference!s} holds backbone {model.backbone_name!r}, not {architecture!r}"
        )
    stored = model.backbone.config
    conflicts = {key: value for key, value in kwargs.items() if stored.get(key) != value}
    if conflicts:
        raise ValueError(
            f"backbone arguments {conflicts} differ from the pretrained checkpoint's "
            f"{ {key: stored.get(key) for key in conflicts} }; pretrained weights fix the "
            "architecture"
        )
    backbone = model.backbone
    backbone.feature_schema = model.feature_schema
    backbone.source = model.source
    return backbone


def _only_checkpoint(architecture: str, search_paths: Sequence[str | PathLike[str]] | None) -> str:
    """The one registered checkpoint of ``architecture``."""
    matches = []
    for checkpoint, folder in pretrained_folders(search_paths).items():
        try:
            config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (config.get("backbone") or {}).get("name") == architecture:
            matches.append(checkpoint)
    if len(matches) != 1:
        found = ", ".join(matches) or "none"
        raise KeyError(
            f"pretrained=True for {architecture!r} needs exactly one registered checkpoint of "
            f"this architecture, found: {found}; pass the name, e.g. "
            f"pretrained='{architecture}.TAG'"
        )
    return matches[0]
