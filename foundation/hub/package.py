"""Package a trained checkpoint as a named, shippable one: a model card and clean provenance."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from foundation.errors import DataError
from foundation.hub.card import CARD_SECTIONS
from foundation.hub.checkpoint import load_pretrained, save_pretrained
from foundation.hub.config import read_config
from foundation.hub.resolve import resolve_checkpoint

PROVENANCE_KEY = "provenance"
"""Key of a card file whose mapping replaces the checkpoint's provenance (e.g. to drop the
absolute paths of the machine it was trained on)."""


def read_card_file(path: str | PathLike[str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Read a card YAML: model-card sections plus an optional ``provenance`` mapping.

    Raises:
        DataError: not a mapping, or an unknown key (the message lists the known ones).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        found = str(error).splitlines()[0]
        raise DataError(path, "<file>", "a readable YAML mapping", found) from None
    if not isinstance(data, Mapping):
        raise DataError(path, "<top level>", "a mapping of card sections", type(data).__name__)
    known = {key for key, _ in CARD_SECTIONS} | {"title", "summary", PROVENANCE_KEY}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DataError(path, unknown[0], f"one of {', '.join(sorted(known))}", "an unknown key")
    card = {key: value for key, value in data.items() if key != PROVENANCE_KEY}
    provenance = data.get(PROVENANCE_KEY)
    if provenance is not None and not isinstance(provenance, Mapping):
        raise DataError(path, PROVENANCE_KEY, "a mapping", type(provenance).__name__)
    return card, dict(provenance) if provenance is not None else None


def package_checkpoint(
    source: str | PathLike[str],
    folder: str | PathLike[str],
    *,
    name: str,
    card: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Re-save ``source`` (a checkpoint or ``RUN/best``) as the named checkpoint ``folder``.

    The weights, heads and feature schema are unchanged (bit-exact); the model card is rendered
    from ``card`` and the provenance is replaced by ``provenance`` when given.
    """
    resolved = resolve_checkpoint(source, None).folder
    model = load_pretrained(resolved)
    if provenance is None:
        provenance = read_config(resolved).get("provenance") or {}
    return save_pretrained(
        model, folder, provenance=provenance, card=card, name=name, overwrite=overwrite
    )
