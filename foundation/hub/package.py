"""Package a trained checkpoint as a named, shippable one: a model card and clean provenance."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from foundation import __version__
from foundation.errors import DataError, OutputExistsError
from foundation.hub.card import CARD_KEYS, render_card
from foundation.hub.checkpoint import write_checkpoint
from foundation.hub.config import CARD_FILE, CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, read_config
from foundation.hub.hashing import sha256_file, verify_folder, write_sums
from foundation.hub.reading import read_checkpoint
from foundation.hub.resolve import resolve_checkpoint
from foundation.hub.schema import FeatureSchema
from foundation.io import write_text

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
    known = set(CARD_KEYS) | {PROVENANCE_KEY}
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

    The weights, heads and feature schema are unchanged (bit-exact; a delta is packaged whole,
    with its base's backbone); the model card is rendered from ``card`` and the provenance is
    replaced by ``provenance`` when given. When ``source`` is ``folder`` itself, only the card
    and ``SHA256SUMS`` are written again (:func:`refresh_card`): ``config.json`` and the weights
    keep their bytes.

    Raises:
        ValueError: in place, a ``name`` or ``provenance`` that differs from ``config.json``.
        OutputExistsError: ``folder`` exists and ``overwrite`` is False.
    """
    record = resolve_checkpoint(source, None)
    resolved = record.folder
    target = Path(folder)
    if target.is_dir() and resolved.resolve() == target.resolve():
        if not overwrite:
            raise OutputExistsError(target, "a checkpoint")
        return refresh_card(target, card, name=name, provenance=provenance)
    checkpoint = read_checkpoint(record)
    if provenance is None:
        provenance = checkpoint.config.get("provenance") or {}
    stored = checkpoint.config
    config = {
        "format": stored["format"],
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "name": name,
        "backbone": stored["backbone"],
        "adapters": stored.get("adapters") or [],
        "heads": stored["heads"],
        "feature_schema": FeatureSchema.from_dict(stored["feature_schema"]).to_dict(),
        "provenance": dict(provenance),
        "base": None,
    }
    tensors = {key: value.contiguous() for key, value in checkpoint.tensors.items()}
    return write_checkpoint(folder, config, tensors, render_card(config, card), overwrite)


def refresh_card(
    folder: str | PathLike[str],
    card: Mapping[str, Any],
    *,
    name: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint's ``README.md`` card and ``SHA256SUMS`` again, in place.

    ``config.json`` and the weights are verified and left as they are (their sha256 do not
    change); each file is replaced atomically.

    Raises:
        CheckpointError: the folder does not verify.
        ValueError: ``name`` or ``provenance`` differ from those of ``config.json`` (they live
            in the config: re-package from the run to change them).
    """
    folder = Path(folder)
    config = read_config(folder)
    verify_folder(folder, required=(CONFIG_FILE, WEIGHTS_FILE))
    path = folder / CONFIG_FILE
    if name is not None and config.get("name") != name:
        raise ValueError(f"{path}: field 'name' is {config.get('name')!r}, not {name!r}")
    if provenance is not None and dict(provenance) != (config.get("provenance") or {}):
        raise ValueError(
            f"{path}: field 'provenance' differs from the card file's; re-package from the "
            "training run to change it"
        )
    weights = sha256_file(folder / WEIGHTS_FILE)
    _replace_text(folder / CARD_FILE, render_card(config, card))
    write_sums(folder)
    verify_folder(folder, required=(CONFIG_FILE, WEIGHTS_FILE))
    if sha256_file(folder / WEIGHTS_FILE) != weights:  # pragma: no cover - nothing writes them
        raise RuntimeError(f"{folder / WEIGHTS_FILE}: changed while refreshing the card")
    return folder


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    write_text(path, text)
