"""``config.json`` of a checkpoint folder: written from a model's description, read and validated.

The hub never imports the model classes: :func:`model_config` reads what it needs through the
:class:`SavableModel` protocol (which the library's ``Model`` satisfies).
"""

from __future__ import annotations

import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from foundation import __version__
from foundation.hub.errors import CheckpointError
from foundation.hub.schema import FeatureSchema

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
FORMAT_NAME = "foundation-checkpoint"
FORMAT_VERSION = 1
"""Version of the folder layout and config schema; a loader refuses a newer one."""


class SavableHead(Protocol):
    """What ``config.json`` records of a head (see :class:`heads.base.Head`)."""

    head_type: str
    level: str
    target_key: str
    label_names: Sequence[str]
    config: Mapping[str, Any]

    @property
    def output_names(self) -> Sequence[str]: ...


class SavableModel(Protocol):
    """What the hub reads from a model to save it (the library's ``Model`` has all of it).

    Attributes:
        backbone_name: the backbone's registered name.
        backbone: the backbone module, with its constructor arguments in ``config`` and its
            output width in ``num_features``.
        heads: the heads by name (:class:`SavableHead`).
        loss_weights: each head's loss weight.
        adapters: the adapters applied to the backbone, as ``{"type", "kwargs"}`` records.
        feature_schema: the input feature schema, if known.
    """

    backbone_name: str | None
    backbone: Any
    heads: Any
    loss_weights: Mapping[str, float]
    adapters: Sequence[Mapping[str, Any]]
    feature_schema: FeatureSchema | None

    def state_dict(self) -> Mapping[str, Any]: ...


def model_config(
    model: SavableModel,
    feature_schema: FeatureSchema,
    provenance: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The ``config.json`` content describing ``model``.

    Raises:
        ValueError: the model's backbone name is unknown, or an argument is not
            JSON-serialisable.
    """
    if not model.backbone_name:
        raise ValueError(
            "cannot save a model whose backbone name is unknown: build it with "
            "Model.create(name, ...) or Model(backbone, backbone_name=name)"
        )
    heads = {
        head_name: {
            "type": head.head_type,
            "kwargs": dict(head.config),
            "loss_weight": model.loss_weights[head_name],
            "level": head.level,
            "target": head.target_key,
            "label_names": list(head.label_names),
            "output_names": list(head.output_names),
        }
        for head_name, head in model.heads.items()
    }
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "name": name,
        "backbone": {
            "name": model.backbone_name,
            "kwargs": dict(getattr(model.backbone, "config", {}) or {}),
            "num_features": int(model.backbone.num_features),
        },
        "adapters": [dict(adapter) for adapter in model.adapters],
        "heads": heads,
        "feature_schema": feature_schema.to_dict(),
        "provenance": dict(provenance) if provenance is not None else None,
        "base": dict(base) if base is not None else None,
    }
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"checkpoint config is not JSON-serialisable ({error}); backbone and head arguments, "
            "provenance and normalization must be plain numbers, strings, lists and dicts"
        ) from None
    return config


def write_config(folder: Path, config: Mapping[str, Any]) -> None:
    """Write ``config.json`` (2-space indent; head order is kept)."""
    text = json.dumps(config, indent=2, allow_nan=False)
    (folder / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")


def read_config(folder: str | PathLike[str]) -> dict[str, Any]:
    """Read and validate ``folder/config.json``.

    Raises:
        CheckpointError: the file is missing, not JSON, from a newer format version, or misses
            a required field (the message names the field).
    """
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(path, "file is missing; this is not a checkpoint folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(path, f"is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise CheckpointError(path, f"expected a JSON object, found {type(config).__name__}")
    validate_config(config, path)
    return config


def validate_config(config: Mapping[str, Any], path: str | PathLike[str]) -> None:
    """Check the format, the versions and the required fields of a config.

    Raises:
        CheckpointError: see :func:`read_config`.
    """
    if config.get("format") != FORMAT_NAME:
        raise CheckpointError(
            path, f"field 'format': expected {FORMAT_NAME!r}, found {config.get('format')!r}"
        )
    version = config.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(
            path, f"field 'format_version': expected a positive integer, found {version!r}"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            path,
            f"checkpoint format version {version} is newer than this library supports "
            f"({FORMAT_VERSION}); it was written by foundation {config.get('library_version')}, "
            f"this is foundation {__version__}",
            "upgrade foundation (pip install -U foundation-jets)",
        )
    written_by = config.get("library_version")
    if not isinstance(written_by, str) or parse_version(written_by) is None:
        raise CheckpointError(
            path, f"field 'library_version': expected a version string, found {written_by!r}"
        )
    _require(config, "backbone", dict, path)
    _require(config["backbone"], "name", str, path, "backbone.name")
    _require(config["backbone"], "kwargs", dict, path, "backbone.kwargs")
    _require(config, "heads", dict, path)
    for name, head in config["heads"].items():
        if not isinstance(head, dict):
            raise CheckpointError(path, f"field 'heads.{name}': expected an object, found {head!r}")
        _require(head, "type", str, path, f"heads.{name}.type")
        _require(head, "kwargs", dict, path, f"heads.{name}.kwargs")
        weight = head.get("loss_weight", 1.0)
        if not isinstance(weight, (int, float)) or weight < 0:
            raise CheckpointError(
                path, f"field 'heads.{name}.loss_weight': expected a number >= 0, found {weight!r}"
            )
    _check_finite(config, path, "")
    _check_kwargs(
        _backbone_class(config["backbone"]["name"]),
        config["backbone"]["kwargs"],
        path,
        "backbone.kwargs",
    )
    for name, head in config["heads"].items():
        _check_kwargs(_head_class(head["type"]), head["kwargs"], path, f"heads.{name}.kwargs")
    _require(config, "feature_schema", dict, path)
    try:
        FeatureSchema.from_dict(config["feature_schema"])
    except ValueError as error:
        raise CheckpointError(path, f"field 'feature_schema': {error}") from None
    adapters = config.get("adapters") or []
    if not isinstance(adapters, list) or not all(
        isinstance(a, dict) and isinstance(a.get("type"), str) and isinstance(a.get("kwargs"), dict)
        for a in adapters
    ):
        raise CheckpointError(
            path,
            f"field 'adapters': expected a list of {{type, kwargs}} objects, found {adapters!r}",
        )
    base = config.get("base")
    if base is not None:
        _require(config, "base", dict, path)
        _require(base, "name_or_path", str, path, "base.name_or_path")
        _require(base, "sha256", str, path, "base.sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", base["sha256"]):
            raise CheckpointError(
                path, f"field 'base.sha256': expected 64 hex digits, found {base['sha256']!r}"
            )


def newer_library(config: Mapping[str, Any]) -> bool:
    """Whether the checkpoint was written by a newer foundation than this one."""
    written = parse_version(str(config.get("library_version", "")))
    current = parse_version(__version__)
    return written is not None and current is not None and written > current


def parse_version(text: str) -> tuple[int, ...] | None:
    """``"1.2.3rc1"`` -> ``(1, 2, 3)``; None if it does not start with a number."""
    match = re.match(r"^(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _require(
    data: Mapping[str, Any],
    key: str,
    kind: type,
    path: str | PathLike[str],
    label: str | None = None,
) -> None:
    value = data.get(key)
    if not isinstance(value, kind):
        raise CheckpointError(
            path, f"field {label or key!r}: expected {kind.__name__}, found {value!r}"
        )


# ------------------------------------------------------------------- constructor arguments
def _check_finite(value: Any, path: str | PathLike[str], field: str) -> None:
    """Refuse NaN and infinite numbers anywhere (Python's JSON reader accepts ``NaN``)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise CheckpointError(path, f"field {field!r}: expected a finite number, found {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, path, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _check_finite(item, path, f"{field}[{position}]")


def _backbone_class(name: str) -> Callable[..., Any] | None:
    """The class a registered backbone builder returns (None when unknown)."""
    from foundation.models.registry import BACKBONES

    builder = BACKBONES.find(name)
    if builder is None or inspect.isclass(builder):
        return builder
    try:
        returned = typing.get_type_hints(builder).get("return")
    except Exception:  # unresolvable annotations: no check
        return None
    return returned if inspect.isclass(returned) else None


def _head_class(name: str) -> Callable[..., Any] | None:
    from heads.registry import get_head_class

    try:
        return get_head_class(name)
    except KeyError:
        return None  # reported where the heads are built


def _check_kwargs(
    target: Callable[..., Any] | None,
    kwargs: Mapping[str, Any],
    path: str | PathLike[str],
    field: str,
) -> None:
    """Check constructor arguments against the constructor's annotations.

    Only plain annotations are checked (``int``, ``float``, ``bool``, ``str``, sequences of
    them, and ``X | None``); ``"dim": "32"`` is refused here with the field's name instead of
    failing inside the constructor.

    Raises:
        CheckpointError: an argument of the wrong type, naming the field.
    """
    if target is None:
        return
    try:
        init = target.__init__ if inspect.isclass(target) else target
        hints = typing.get_type_hints(init)
        parameters = inspect.signature(init).parameters
    except Exception:  # unresolvable annotations: the constructor reports what it finds
        return
    for key, value in kwargs.items():
        if key not in parameters or key not in hints:
            continue
        expected = _describe_mismatch(hints[key], value)
        if expected is not None:
            raise CheckpointError(
                path,
                f"field '{field}.{key}': expected {expected}, found {value!r} "
                f"({type(value).__name__})",
            )


_SCALARS: dict[type, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
}


def _describe_mismatch(kind: Any, value: Any) -> str | None:
    """What ``kind`` expects when ``value`` (JSON) does not fit it; None when it fits or when
    ``kind`` is not a plain annotation."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return None
        found = [_describe_mismatch(arg, value) for arg in args if arg is not type(None)]
        if any(item is None for item in found):
            return None
        return " or ".join(item for item in found if item)
    if kind in _SCALARS:
        fits = {
            bool: isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            str: isinstance(value, str),
        }[kind]
        return None if fits else _SCALARS[kind]
    if origin in (list, tuple, Sequence) or kind in (list, tuple):
        if not isinstance(value, list):
            return "a list"
        args = [arg for arg in typing.get_args(kind) if arg is not Ellipsis]
        if len(args) == 1:
            for item in value:
                inner = _describe_mismatch(args[0], item)
                if inner is not None:
                    return f"a list of {inner.removeprefix('an ').removeprefix('a ')}s"
        return None
    return None
