"""Registry of backbone adapters (e.g. LoRA) that a checkpoint re-applies when it is rebuilt.

An adapter is a function ``apply(model, **kwargs) -> None`` that adds parameters to (or wraps
modules of) ``model.backbone``. :func:`apply_adapter` records ``{"type", "kwargs"}`` in
``model.adapters`` so that ``config.json`` can rebuild the same modules before loading weights.
Adapter parameters are the backbone parameters whose names are not in the base checkpoint; a
fine-tuned delta checkpoint stores them next to its heads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from foundation.model import Model

AdapterFunction = Callable[..., None]

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_ADAPTERS: dict[str, AdapterFunction] = {}


def register_adapter(name: str) -> Callable[[AdapterFunction], AdapterFunction]:
    """Register an adapter function under ``name``.

    Raises:
        ValueError: the name is malformed or already registered.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"adapter name {name!r} is malformed: expected lower-case letters, digits and '_'"
        )

    def decorator(function: AdapterFunction) -> AdapterFunction:
        if name in _ADAPTERS:
            raise ValueError(f"adapter {name!r} is already registered by {_ADAPTERS[name]!r}")
        _ADAPTERS[name] = function
        return function

    return decorator


BUILTIN_ADAPTER_MODULES: tuple[str, ...] = ("foundation.training.lora",)
"""Modules registering the built-in adapters, imported on first use (not at import time)."""


def _load_builtin_adapters() -> None:
    """Import the modules that register the built-in adapters (idempotent)."""
    import importlib

    for module in BUILTIN_ADAPTER_MODULES:
        importlib.import_module(module)


def list_adapters() -> list[str]:
    """Names of the registered adapters, sorted."""
    _load_builtin_adapters()
    return sorted(_ADAPTERS)


def apply_adapter(model: Model, name: str, **kwargs: Any) -> None:
    """Apply the adapter ``name`` to ``model`` and record it in ``model.adapters``.

    Raises:
        KeyError: the adapter is not registered.
        ValueError: ``kwargs`` are not JSON-serialisable (they go to ``config.json``).
    """
    _load_builtin_adapters()
    if name not in _ADAPTERS:
        raise KeyError(
            f"unknown adapter {name!r}; registered adapters: {', '.join(list_adapters()) or 'none'}"
        )
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"adapter {name!r}: arguments must be JSON-serialisable ({error})"
        ) from None
    _ADAPTERS[name](model, **kwargs)
    model.adapters.append({"type": name, "kwargs": dict(kwargs)})
