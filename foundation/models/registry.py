"""Registry of backbone architectures and variants (``@register_backbone``, ``create_backbone``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from foundation.models.base import Backbone

BackboneBuilder = Callable[..., Backbone]
_BuilderT = TypeVar("_BuilderT", bound=BackboneBuilder)

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(-[a-z0-9_]+)*$")
_BACKBONES: dict[str, BackboneBuilder] = {}


def register_backbone(name: str) -> Callable[[_BuilderT], _BuilderT]:
    """Register a backbone builder (a class or a function returning a :class:`Backbone`).

    Args:
        name: lower-case name such as ``"part"`` or ``"part-tiny"``.

    Raises:
        ValueError: the name is malformed or already registered.
    """
    if not _NAME_PATTERN.match(name):
        raise ValueError(
            f"backbone name {name!r} is malformed: expected lower-case letters, digits, '_' and "
            "'-' separated parts, starting with a letter (e.g. 'part-tiny')"
        )

    def decorator(builder: _BuilderT) -> _BuilderT:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered by {_BACKBONES[name]!r}")
        _BACKBONES[name] = builder
        return builder

    return decorator


def _load_builtin_backbones() -> None:
    """Import the modules that register the built-in backbones (idempotent)."""
    import foundation.models.zoo  # noqa: F401


def list_backbones() -> list[str]:
    """Names of every registered backbone, sorted."""
    _load_builtin_backbones()
    return sorted(_BACKBONES)


def create_backbone(name: str, **kwargs: Any) -> Backbone:
    """Build a registered backbone with fresh weights.

    Args:
        name: a name from :func:`list_backbones`.
        **kwargs: constructor arguments overriding the variant's defaults (``in_features`` is
            required by every backbone).

    Raises:
        KeyError: the name is not registered (the message lists the registered names).
    """
    _load_builtin_backbones()
    if name not in _BACKBONES:
        raise KeyError(
            f"unknown backbone {name!r}; registered backbones: {', '.join(sorted(_BACKBONES))}"
        )
    return _BACKBONES[name](**kwargs)
