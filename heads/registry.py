"""Registry of task heads (``@register_head``, ``create_head``, ``list_heads``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from foundation.registry import Registry
from heads.base import Head

_HeadT = TypeVar("_HeadT", bound=type[Head])


def _register_builtin_heads() -> None:
    """Import the modules that register the built-in heads (on first use of :data:`HEADS`)."""
    from heads import (  # noqa: F401
        jet_classification,
        jet_regression,
        masked_particle,
        pair_classification,
        particle_classification,
    )


HEADS: Registry[type[Head]] = Registry(
    "head", example="jet_classification", builtins=_register_builtin_heads
)
"""Head classes by name."""


def register_head(name: str) -> Callable[[_HeadT], _HeadT]:
    """Register a :class:`~heads.base.Head` subclass under ``name``.

    The decorator sets ``cls.head_type = name`` so that a head built from the class knows the
    name that rebuilds it from a checkpoint's ``config.json``, and ``cls.kind = name`` unless the
    class inherits its :meth:`~heads.base.Head.collector` and :meth:`~heads.base.Head.score`
    from a registered parent (then it is scored as that parent).

    Args:
        name: lower-case name such as ``"jet_classification"``.

    Raises:
        ValueError: the name is malformed or already registered.
        TypeError: the decorated object is not a Head subclass.
    """
    HEADS.check_name(name)

    def decorator(cls: _HeadT) -> _HeadT:
        if not (isinstance(cls, type) and issubclass(cls, Head)):
            raise TypeError(f"@register_head({name!r}) expects a Head subclass, found {cls!r}")
        if cls.level not in ("jet", "particle", "pair"):
            raise ValueError(
                f"head {name!r}: level must be 'jet', 'particle' or 'pair', found {cls.level!r}"
            )
        HEADS.add(name, cls)
        cls.head_type = name
        if not cls.kind or "collector" in vars(cls) or "score" in vars(cls):
            cls.kind = name  # else it scores as the registered parent whose task it inherits
        return cls

    return decorator


def unregister_head(name: str) -> type[Head]:
    """Remove a registered head (e.g. one a test registered) and return its class.

    Raises:
        KeyError: the name is not registered.
    """
    return HEADS.remove(name)


def list_heads() -> list[str]:
    """Names of every registered head, sorted."""
    return HEADS.names()


def get_head_class(name: str) -> type[Head]:
    """The class registered under ``name``.

    Raises:
        KeyError: the name is not registered (the message lists the registered names and the
            closest one).
    """
    return HEADS.get(name)


def create_head(name: str, **kwargs: Any) -> Head:
    """Build a registered head with fresh weights.

    Args:
        name: a name from :func:`list_heads`.
        **kwargs: constructor arguments (``in_features`` is required by every head).

    Raises:
        KeyError: the name is not registered.
    """
    return get_head_class(name)(**kwargs)
