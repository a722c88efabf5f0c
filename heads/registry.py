"""Registry of task heads (``@register_head``, ``create_head``, ``list_heads``)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

from heads.base import Head

_HeadT = TypeVar("_HeadT", bound=type[Head])

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADS: dict[str, type[Head]] = {}

BUILTIN_HEAD_MODULES: tuple[str, ...] = (
    "heads.jet_classification",
    "heads.jet_regression",
    "heads.particle_classification",
    "heads.pair_classification",
    "heads.masked_particle",
)
"""Modules that register the built-in heads; imported on first use of the registry."""


def register_head(name: str) -> Callable[[_HeadT], _HeadT]:
    """Register a :class:`~heads.base.Head` subclass under ``name``.

    The decorator sets ``cls.head_type = name`` so that a head built from the class knows the
    name that rebuilds it from a checkpoint's ``config.json``.

    Args:
        name: lower-case name such as ``"jet_classification"``.

    Raises:
        ValueError: the name is malformed or already registered.
        TypeError: the decorated object is not a Head subclass.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"head name {name!r} is malformed: expected lower-case letters, digits and '_', "
            "starting with a letter (e.g. 'jet_classification')"
        )

    def decorator(cls: _HeadT) -> _HeadT:
        if not (isinstance(cls, type) and issubclass(cls, Head)):
            raise TypeError(f"@register_head({name!r}) expects a Head subclass, found {cls!r}")
        if name in _HEADS:
            raise ValueError(f"head {name!r} is already registered by {_HEADS[name]!r}")
        if cls.level not in ("jet", "particle", "pair"):
            raise ValueError(
                f"head {name!r}: level must be 'jet', 'particle' or 'pair', found {cls.level!r}"
            )
        cls.head_type = name
        _HEADS[name] = cls
        return cls

    return decorator


def _load_builtin_heads() -> None:
    """Import the modules that register the built-in heads (idempotent)."""
    for module in BUILTIN_HEAD_MODULES:
        importlib.import_module(module)


def list_heads() -> list[str]:
    """Names of every registered head, sorted."""
    _load_builtin_heads()
    return sorted(_HEADS)


def get_head_class(name: str) -> type[Head]:
    """The class registered under ``name``.

    Raises:
        KeyError: the name is not registered (the message lists the registered names).
    """
    _load_builtin_heads()
    if name not in _HEADS:
        raise KeyError(f"unknown head {name!r}; registered heads: {', '.join(sorted(_HEADS))}")
    return _HEADS[name]


def create_head(name: str, **kwargs: Any) -> Head:
    """Build a registered head with fresh weights.

    Args:
        name: a name from :func:`list_heads`.
        **kwargs: constructor arguments (``in_features`` is required by every head).

    Raises:
        KeyError: the name is not registered.
    """
    return get_head_class(name)(**kwargs)
