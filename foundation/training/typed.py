"""Plain data into typed dataclasses: strict keys (with a "did you mean"), checked types, help.

Used by the recipes (:mod:`foundation.training.recipe`) and usable for any nested dataclass
whose fields are annotated with ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``,
``X | None``, ``A | B``, ``list[X]``, ``tuple[X, ...]`` / ``tuple[X, Y]``, ``dict[str, X]``,
``Any`` or another such dataclass. Each field may carry ``metadata={"help": "..."}``.

Overrides ``section.key=value`` (the command line's ``--set``) are parsed with YAML's scalar
rules (``3`` is an int, ``1e-3`` a float, ``[1, 2]`` a list, ``null`` None) and checked against
the type of the field they name before they are merged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import reprlib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")

MAX_NODES = 100_000
"""At most this many values (scalars, lists, mappings, counted as if every YAML alias were
written out) in one recipe document or override: a few KB of YAML aliases (``[*a, *a, ...]``
nested) otherwise expand to billions of values and exhaust the memory."""

_SHORT = reprlib.Repr()
_SHORT.maxstring = 80
_SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6
_SHORT.maxlevel = 2
SHORT_LENGTH = 160
"""Values in messages are cut to this many characters."""


class RecipeError(ValueError):
    """A recipe (or an override) does not match its schema.

    The message names where (file and key path), what was expected and what was found, and
    suggests the closest valid key for a misspelt one.
    """


def help_text(cls: type, name: str) -> str:
    """The ``help`` metadata of field ``name`` of dataclass ``cls`` (empty when none)."""
    for item in dataclasses.fields(cls):
        if item.name == name:
            return str(item.metadata.get("help", ""))
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def describe(cls: type, prefix: str = "") -> list[str]:
    """One line per field (recursively): ``path (type, default): help``."""
    lines = []
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        path = f"{prefix}{item.name}"
        kind = hints[item.name]
        nested = _dataclass_in(kind)
        default = _default_of(item)
        shown = "" if nested is not None else f", default {default!r}"
        lines.append(f"{path} ({type_name(kind)}{shown}): {item.metadata.get('help', '')}")
        if nested is not None:
            lines += describe(nested, prefix=f"{path}.")
    return lines


def _default_of(item: dataclasses.Field) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return "required"


def _dataclass_in(kind: Any) -> type | None:
    """The dataclass of ``kind`` or of ``kind | None``, else None."""
    if dataclasses.is_dataclass(kind):
        return kind  # type: ignore[return-value]
    if _is_union(kind):
        found = [arg for arg in typing.get_args(kind) if dataclasses.is_dataclass(arg)]
        return found[0] if len(found) == 1 else None
    return None


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (Union, types.UnionType)


def type_name(kind: Any) -> str:
    """A readable name of a type annotation (``list[str] | None``)."""
    if kind is Any:
        return "any"
    if kind is type(None):
        return "null"
    if _is_union(kind):
        return " | ".join(type_name(arg) for arg in typing.get_args(kind))
    origin = typing.get_origin(kind)
    if origin is Literal:
        return " | ".join(repr(value) for value in typing.get_args(kind))
    if origin in (list, Sequence):
        return f"list[{type_name(typing.get_args(kind)[0])}]"
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list[{type_name(args[0])}]"
        return "[" + ", ".join(type_name(arg) for arg in args) + "]"
    if origin in (dict, Mapping):
        return f"mapping of {type_name(typing.get_args(kind)[1])}"
    if dataclasses.is_dataclass(kind):
        return "section"
    return getattr(kind, "__name__", str(kind))


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a few items per level and ~80 characters per string (bounded work
    and length whatever the value: messages never format a whole unbounded value)."""
    text = _SHORT.repr(value)
    return text if len(text) <= SHORT_LENGTH else text[: SHORT_LENGTH - 3] + "..."


def _fail(where: str, expected: str, found: Any) -> RecipeError:
    return RecipeError(
        f"{where}: expected {expected}, found {short_repr(found)} ({type(found).__name__})"
    )


class _CountingLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses documents expanding to more than ``MAX_NODES`` values."""

    def construct_document(self, node: yaml.Node) -> Any:
        size = _expanded_size(node, {}, MAX_NODES)
        if size > MAX_NODES:
            raise RecipeError(
                f"expands to more than {MAX_NODES} values (aliases counted as written out); "
                "a recipe is a few dozen keys: remove the repeated aliases"
            )
        return super().construct_document(node)


def _expanded_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    """The number of values ``node`` stands for once its aliases are expanded (capped)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = limit + 1  # a recursive alias expands without end
    total = 1
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [item for pair in node.value for item in pair]
    else:
        children = []
    for child in children:
        total += _expanded_size(child, memo, limit)
        if total > limit:
            break
    memo[id(node)] = min(total, limit + 1)
    return memo[id(node)]


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely with a bound on its expanded size.

    Args:
        text: the YAML document.
        source: where it came from (a file name or ``--set ...``), for messages.

    Raises:
        RecipeError: invalid YAML, or a document that expands to more than ``MAX_NODES``
            values (an alias bomb).
    """
    try:
        return yaml.load(text, Loader=_CountingLoader)  # a SafeLoader subclass
    except RecipeError as error:
        raise RecipeError(f"{source}: {error}") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{source}: not valid YAML ({_one_line(error)})") from None
    except RecursionError:
        raise RecipeError(f"{source}: nested too deeply") from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def convert(kind: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``kind`` and return it converted.

    Conversions: an int where a float is expected becomes a float; a list where a tuple is
    expected becomes a tuple; a mapping where a dataclass is expected becomes that dataclass.

    Raises:
        RecipeError: the value does not fit (the message names ``where``).
    """
    if kind is Any:
        return value
    if kind is type(None):
        if value is None:
            return None
        raise _fail(where, "null", value)
    if _is_union(kind):
        return _convert_union(kind, value, where)
    origin = typing.get_origin(kind)
    if origin is Literal:
        allowed = typing.get_args(kind)
        if value in allowed and not isinstance(value, bool):
            return value
        text = short_repr(value)
        close = difflib.get_close_matches(text.strip("'\""), [str(a) for a in allowed], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RecipeError(
            f"{where}: expected one of {', '.join(map(repr, allowed))}, found {text}{hint}"
        )
    if origin in (list, tuple, Sequence):
        return _convert_sequence(kind, value, where)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _fail(where, "a mapping", value)
        item_kind = typing.get_args(kind)[1] if typing.get_args(kind) else Any
        return {str(k): convert(item_kind, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(kind):
        return from_mapping(kind, value, where)  # type: ignore[arg-type]
    return _convert_scalar(kind, value, where)


def _convert_union(kind: Any, value: Any, where: str) -> Any:
    args = typing.get_args(kind)
    if value is None:
        if type(None) in args:
            return None
        raise _fail(where, type_name(kind), value)
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return convert(arg, value, where)
        except RecipeError as error:
            errors.append(error)
    if len(errors) == 1:  # X | None: the message of X is the useful one
        raise errors[0]
    raise _fail(where, type_name(kind), value)


def _convert_sequence(kind: Any, value: Any, where: str) -> Any:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _fail(where, f"a list ({type_name(kind)})", value)
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise _fail(where, f"{len(args)} values {type_name(kind)}", value)
        return tuple(
            convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    item_kind = args[0] if args else Any
    items = [convert(item_kind, v, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if typing.get_origin(kind) is tuple else items


def _convert_scalar(kind: Any, value: Any, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise _fail(where, "true or false", value)
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _fail(where, "an integer", value)
    if kind is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value) if abs(value) < 1e308 or isinstance(value, float) else math.inf
        elif isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise _fail(where, "a number", value)
        if not math.isfinite(number):
            raise _fail(where, "a finite number", value)
        return number
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _fail(where, "a string", value)
    if isinstance(value, kind):
        return value
    raise _fail(where, type_name(kind), value)


def unknown_key_error(where: str, key: str, valid: Sequence[str]) -> RecipeError:
    """The error for a misspelt key: names the closest valid key and lists all of them."""
    close = difflib.get_close_matches(key[:100], list(valid), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return RecipeError(
        f"{where}: unknown key {short_repr(key)}{hint} (valid keys: {', '.join(valid) or 'none'})"
    )


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, strictly.

    Args:
        cls: the dataclass.
        data: a mapping of field name to value (None gives the defaults).
        where: where the data came from (``"recipe.yaml: data"``), for messages.

    Raises:
        RecipeError: an unknown key (with the closest valid one), a missing required key, or a
            value of the wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _fail(where, f"a section with keys {[f.name for f in dataclasses.fields(cls)]}", data)
    hints = typing.get_type_hints(cls)
    names = [item.name for item in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise unknown_key_error(where, str(key), names)
    values = {}
    for item in dataclasses.fields(cls):
        path = f"{where}.{item.name}"
        if item.name in data:
            values[item.name] = convert(hints[item.name], data[item.name], path)
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise RecipeError(f"{path}: required key is missing ({item.metadata.get('help', '')})")
    return cls(**values)


def to_plain(value: Any) -> Any:
    """Dataclasses, tuples and mappings to plain dicts and lists (for YAML and JSON)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: to_plain(getattr(value, item.name)) for item in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    return value


# ------------------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into the key path and the YAML-parsed value.

    Raises:
        RecipeError: no ``=``, or an empty key.
    """
    key, separator, raw = text.partition("=")
    path = [part.strip() for part in key.split(".")]
    if not separator or not all(path):
        raise RecipeError(
            f"--set {short_repr(text)}: expected SECTION.KEY=VALUE, e.g. --set trainer.max_epochs=3"
        )
    try:
        value = load_yaml(raw, f"--set {short_repr(text)}") if raw.strip() else ""
    except RecipeError as error:
        if "expands to more than" in str(error) or "nested too deeply" in str(error):
            raise
        value = raw
    return path, value


def field_type(cls: type, path: Sequence[str], where: str) -> Any:
    """The annotation at ``path`` inside dataclass ``cls`` (through mappings and optionals).

    Raises:
        RecipeError: a key of the path is not a field (with the closest valid key).
    """
    kind: Any = cls
    walked: list[str] = []
    for key in path:
        nested = _dataclass_in(kind)
        if nested is not None:
            hints = typing.get_type_hints(nested)
            if key not in hints:
                prefix = ".".join(walked)
                raise unknown_key_error(
                    f"{where} {prefix or 'recipe'}",
                    key,
                    [f.name for f in dataclasses.fields(nested)],
                )
            kind = hints[key]
        elif typing.get_origin(_strip_none(kind)) in (dict, Mapping):
            args = typing.get_args(_strip_none(kind))
            kind = args[1] if args else Any
        elif kind is Any or _strip_none(kind) is Any:
            kind = Any
        else:
            raise RecipeError(
                f"{where}: {'.'.join(walked)} is a {type_name(kind)}, it has no key "
                f"{short_repr(key)}"
            )
        walked.append(key)
    return kind


def _strip_none(kind: Any) -> Any:
    if _is_union(kind):
        rest = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return kind


def apply_overrides(cls: type, data: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """Merge ``--set`` overrides into plain recipe data, checking each against ``cls``.

    Args:
        cls: the recipe dataclass the data describes.
        data: the plain data (e.g. read from YAML); not modified.
        overrides: ``"section.key=value"`` strings, applied in order.

    Returns:
        A new plain dict.

    Raises:
        RecipeError: a malformed override, an unknown key (with a suggestion) or a value of the
            wrong type for its field.
    """
    merged = _deep_copy(data, [MAX_NODES])
    for text in overrides:
        path, value = parse_override(text)
        where = f"--set {short_repr(text)}"
        kind = field_type(cls, path, where)
        convert(kind, value, f"{where}: {'.'.join(path)}")
        node = merged
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[path[-1]] = value
    return merged


def _deep_copy(data: Any, budget: list[int]) -> Any:
    """A copy of plain data; ``budget[0]`` values at most (shared sub-lists count each time)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise RecipeError(
            f"recipe: expands to more than {MAX_NODES} values (shared or aliased lists counted "
            "as written out); a recipe is a few dozen keys"
        )
    if isinstance(data, Mapping):
        return {str(key): _deep_copy(value, budget) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_deep_copy(value, budget) for value in data]
    return data
