"""Registry of backbone adapters (e.g. LoRA) that a checkpoint re-applies when it is rebuilt.

An adapter is a function ``apply(model, **kwargs) -> None`` that adds parameters to (or wraps
modules of) ``model.backbone``. :func:`apply_adapter` records ``{"type", "kwargs"}`` in
``model.adapters`` so that ``config.json`` can rebuild the same modules before loading weights.
Adapter parameters are the backbone parameters whose names are not in the base checkpoint; a
fine-tuned delta checkpoint stores them next to its heads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from foundation.registry import Registry

if TYPE_CHECKING:
    from foundation.model import Model

AdapterFunction = Callable[..., None]


def _register_builtin_adapters() -> None:
    """Import the modules that register the built-in adapters (on first use, not at import)."""
    from foundation.models import lora  # noqa: F401


ADAPTERS: Registry[AdapterFunction] = Registry(
    "adapter", example="lora", builtins=_register_builtin_adapters
)
"""Adapter functions ``apply(model, **kwargs)`` by name."""


def register_adapter(name: str) -> Callable[[AdapterFunction], AdapterFunction]:
    """Register an adapter function under ``name``.

    Raises:
        ValueError: the name is malformed or already registered.
    """
    return ADAPTERS.register(name)


def list_adapters() -> list[str]:
    """Names of the registered adapters, sorted."""
    return ADAPTERS.names()


def apply_adapter(model: Model, name: str, **kwargs: Any) -> None:
    """Apply the adapter ``name`` to ``model`` and record it in ``model.adapters``.

    Raises:
        KeyError: the adapter is not registered.
        ValueError: ``kwargs`` are not JSON-serialisable (they go to ``config.json``).
    """
    function = ADAPTERS.get(name)
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"adapter {name!r}: arguments must be JSON-serialisable ({error})"
        ) from None
    function(model, **kwargs)
    model.adapters.append({"type": name, "kwargs": dict(kwargs)})
