"""Registry of backbone architectures and variants (``@register_backbone``, ``create_backbone``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from foundation.models.base import Backbone
from foundation.registry import DASHED, Registry

BackboneBuilder = Callable[..., Backbone]
_BuilderT = TypeVar("_BuilderT", bound=BackboneBuilder)


def _register_builtin_backbones() -> None:
    """Import :mod:`foundation.models.zoo`, which registers the built-in backbones."""
    from foundation.models import zoo  # noqa: F401


BACKBONES: Registry[BackboneBuilder] = Registry(
    "backbone", pattern=DASHED, example="part-tiny", builtins=_register_builtin_backbones
)
"""Backbone builders (a class or a function returning a :class:`Backbone`) by name."""


def register_backbone(name: str) -> Callable[[_BuilderT], _BuilderT]:
    """Register a backbone builder (a class or a function returning a :class:`Backbone`).

    Args:
        name: lower-case name such as ``"part"`` or ``"part-tiny"``.

    Raises:
        ValueError: the name is malformed or already registered.
    """
    return BACKBONES.register(name)  # type: ignore[return-value]


def list_backbones() -> list[str]:
    """Names of every registered backbone, sorted."""
    return BACKBONES.names()


def create_backbone(name: str, **kwargs: Any) -> Backbone:
    """Build a registered backbone with fresh weights.

    Args:
        name: a name from :func:`list_backbones`.
        **kwargs: constructor arguments overriding the variant's defaults (``in_features`` is
            required by every backbone).

    Raises:
        KeyError: the name is not registered (the message lists the registered names and the
            closest one).
    """
    return BACKBONES.get(name)(**kwargs)
