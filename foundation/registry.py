"""One registry mechanism for backbones, heads, file readers and adapters.

A :class:`Registry` maps names to objects. A malformed or duplicate name is an error (never a
silent overwrite); an unknown name is a ``KeyError`` that lists the registered names and
suggests the closest one; the built-in entries are registered on first use (by a function
with plain import statements, given by the registry's module), not when the registry is
imported: the modules defining them import the registry, and a light caller (the command line's
help) never pays for them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
"""Lower-case letters, digits and '_', starting with a letter (``jet_classification``)."""
DASHED = re.compile(r"^[a-z][a-z0-9_]*(-[a-z0-9_]+)*$")
"""Snake-case parts joined by '-' (``part-tiny``)."""

_RULES = {
    SNAKE_CASE.pattern: "lower-case letters, digits and '_', starting with a letter",
    DASHED.pattern: "lower-case letters, digits, '_' and '-' separated parts, starting with a "
    "letter",
}


class Registry(Generic[T]):
    """Named objects of one kind (``"backbone"``, ``"head"``...).

    Args:
        kind: what an entry is, for messages (``"head"``).
        plural: the plural of ``kind`` (default ``kind + "s"``).
        pattern: the form of a valid name (:data:`SNAKE_CASE` or :data:`DASHED`).
        example: a valid name shown when a name is malformed.
        builtins: a function registering the built-in entries (it imports the modules that
            define them); called once, on the first :meth:`get`, :meth:`find`, :meth:`names`,
            :meth:`items`, ``in`` or ``len``.
    """

    def __init__(
        self,
        kind: str,
        *,
        plural: str | None = None,
        pattern: re.Pattern[str] = SNAKE_CASE,
        example: str = "",
        builtins: Callable[[], object] | None = None,
    ) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.pattern = pattern
        self.example = example
        self._builtins = builtins
        self._entries: dict[str, T] = {}
        self._origins: dict[str, object] = {}

    # ------------------------------------------------------------------------ registering
    def check_name(self, name: object) -> str:
        """``name`` if it is a well-formed name, else a ``ValueError`` that says the rule."""
        if not isinstance(name, str) or not self.pattern.match(name):
            rule = _RULES.get(self.pattern.pattern, f"a name matching {self.pattern.pattern}")
            example = f" (e.g. {self.example!r})" if self.example else ""
            raise ValueError(f"{self.kind} name {name!r} is malformed: expected {rule}{example}")
        return name

    def add(self, name: str, entry: T, origin: object = None) -> None:
        """Register ``entry`` under ``name``.

        Args:
            name: a well-formed, unused name.
            entry: the object to register.
            origin: what registered it, named when the name is registered again (default
                ``entry``).

        Raises:
            ValueError: the name is malformed or already registered.
        """
        self.check_name(name)
        if name in self._entries:
            raise ValueError(
                f"{self.kind} {name!r} is already registered by {self._origins[name]!r}"
            )
        self._entries[name] = entry
        self._origins[name] = entry if origin is None else origin

    def remove(self, name: str) -> T:
        """Unregister ``name`` and return its entry (e.g. a plugin registered by a test).

        Raises:
            KeyError: no such entry; the message lists the registered names and the closest.
        """
        if name not in self._entries:
            raise KeyError(self.unknown_message(name))
        self._origins.pop(name, None)
        return self._entries.pop(name)

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator registering the decorated object under ``name`` (checked at once).

        Raises:
            ValueError: the name is malformed (now) or already registered (when decorating).
        """
        self.check_name(name)

        def decorator(entry: T) -> T:
            self.add(name, entry)
            return entry

        return decorator

    # ------------------------------------------------------------------------ looking up
    def load_builtins(self) -> None:
        """Register the built-in entries: call ``builtins`` once (again if it raised)."""
        load, self._builtins = self._builtins, None
        if load is None:
            return
        try:
            load()
        except BaseException:
            self._builtins = load
            raise

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            KeyError: no such entry; the message lists the registered names and the closest.
        """
        self.load_builtins()
        if name not in self._entries:
            raise KeyError(self.unknown_message(name))
        return self._entries[name]

    def find(self, name: str) -> T | None:
        """The entry registered as ``name``, or None."""
        self.load_builtins()
        return self._entries.get(name)

    def unknown_message(self, name: object) -> str:
        """``unknown head 'x'; registered heads: a, b; did you mean 'a'?``."""
        known = sorted(self._entries)
        message = f"unknown {self.kind} {name!r}; registered {self.plural}: "
        message += ", ".join(known) if known else "none"
        close = difflib.get_close_matches(str(name), known, n=1) if known else []
        if close:
            message += f"; did you mean {close[0]!r}?"
        return message

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.load_builtins()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in the order they were registered."""
        self.load_builtins()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self.load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load_builtins()
        return len(self._entries)
