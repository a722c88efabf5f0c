"""Lazy package attributes (PEP 562): a package's public names imported on first use."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, submodule_of: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package`` that imports ``name`` from its submodule.

    Args:
        package: the package's ``__name__``.
        submodule_of: public name -> the submodule (relative to ``package``) defining it.

    A name is imported once, then kept in the package's namespace. An unknown name is an
    ``AttributeError`` as usual.
    """

    def attribute(name: str) -> Any:
        submodule = submodule_of.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{submodule}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return attribute
