"""Pieces every weaver-core converter shares: reading a state dict, strict key checks, writing.

A converter (``foundation.convert.weaver_<arch>``) maps a weaver state dict onto the project's
own module names. It states the weaver keys and shapes it expects (:func:`check_state_dict`
refuses anything else, naming the missing, unexpected and mis-shaped keys), builds a
:class:`~foundation.model.Model`, and :func:`write_converted` writes the checkpoint folder with
the source's license beside the weights.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from foundation.convert.weaver_config import WeaverDataConfig
from foundation.hub.checkpoint import save_pretrained
from foundation.hub.hashing import sha256_file
from foundation.hub.schema import FeatureSchema
from foundation.model import Model

_LISTED = 12
LICENSE_FILE = "LICENSE"
"""Name of the source's license file copied into a converted checkpoint folder."""


class ConversionError(ValueError):
    """A weaver state dict or data config does not fit the network it is converted to."""

    def __init__(self, source: str | PathLike[str], problem: str, hint: str | None = None) -> None:
        self.source = str(source)
        message = f"{self.source}: {problem}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


@dataclass(frozen=True)
class WeaverSource:
    """Where converted weights come from, for the provenance and the model card.

    Attributes:
        path: the state-dict file.
        sha256: its sha256.
        repository: the public repository it was published in (e.g. ``jet-universe/...``).
        commit: the repository's commit.
        license_file: the license text to ship with every derived file (or None).
    """

    path: Path
    sha256: str
    repository: str | None = None
    commit: str | None = None
    license_file: Path | None = None

    def provenance(self) -> dict[str, Any]:
        """The JSON-ready ``provenance`` entry of the converted checkpoint."""
        return {
            "converted_from": "weaver-core state dict",
            "file": self.path.name,
            "sha256": self.sha256,
            "repository": self.repository,
            "commit": self.commit,
        }


def read_state_dict(path: str | PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a weaver state dict with ``torch.load(weights_only=True)`` (no pickle code runs).

    Raises:
        ConversionError: the file is missing or unreadable, or holds no mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(path, "state-dict file not found")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConversionError(
            path,
            f"cannot be read as a weights-only PyTorch file ({first})",
            "expected a plain state dict saved with torch.save(model.state_dict(), path)",
        ) from None
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise ConversionError(
            path,
            f"holds a {type(loaded).__name__}, not a state dict (a mapping of names to tensors)",
        )
    return dict(loaded)


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    source: str | PathLike[str],
    hint: str | None = None,
) -> None:
    """Refuse a state dict whose keys or shapes differ from ``expected``.

    Raises:
        ConversionError: naming the missing, unexpected and mis-shaped keys.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{key} {tuple(state[key].shape)} (expected {tuple(shape)})"
        for key, shape in expected.items()
        if key in state and tuple(state[key].shape) != tuple(shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} mis-shaped key(s): {_listing(mismatched)}")
    if problems:
        raise ConversionError(
            source, "the state dict does not fit the network: " + "; ".join(problems), hint
        )


def feature_schema(data_config: WeaverDataConfig) -> FeatureSchema:
    """The checkpoint's feature schema: the config's features and its normalization."""
    record = data_config.normalization_record()
    return FeatureSchema(
        data_config.feature_names, tuple(record["jet"]["names"]), normalization=record
    )


def write_converted(
    model: Model,
    folder: str | PathLike[str],
    *,
    data_config: WeaverDataConfig,
    source: WeaverSource,
    name: str | None = None,
    card: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a converted model as a checkpoint folder (with the source's license, if any).

    Args:
        model: the converted model.
        folder: destination.
        data_config: the weaver data config it was trained with (features, normalization).
        source: the weights' origin (recorded in ``provenance``).
        name: checkpoint name recorded in config.json.
        card: model-card sections (see :func:`foundation.hub.save_pretrained`).
        overwrite: replace an existing folder.

    Returns:
        The folder.
    """
    folder = Path(
        save_pretrained(
            model,
            folder,
            feature_schema=feature_schema(data_config),
            provenance=source.provenance(),
            card=card,
            name=name,
            overwrite=overwrite,
        )
    )
    if source.license_file is not None:
        shutil.copyfile(source.license_file, folder / LICENSE_FILE)
    return folder


def describe_source(
    path: str | PathLike[str],
    repository: str | None = None,
    commit: str | None = None,
    license_file: str | PathLike[str] | None = None,
) -> WeaverSource:
    """A :class:`WeaverSource` with the file's sha256 computed."""
    path = Path(path)
    return WeaverSource(
        path=path,
        sha256=sha256_file(path),
        repository=repository,
        commit=commit,
        license_file=None if license_file is None else Path(license_file),
    )


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f", ... ({len(items) - _LISTED} more)" if len(items) > _LISTED else "")
