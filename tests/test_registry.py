"""The one registry mechanism: names checked, duplicates refused, unknown names suggested;
built-in entries and package names imported lazily, by import statements (never by a string)."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.data.readers.registry import READERS
from foundation.models.adapters import ADAPTERS, list_adapters
from foundation.models.registry import BACKBONES, create_backbone
from foundation.registry import DASHED, Registry
from heads.registry import HEADS, get_head_class


def test_register_get_names() -> None:
    registry: Registry[int] = Registry("thing", example="my_thing")
    registry.register("b_thing")(2)
    registry.add("a_thing", 1)
    assert registry.names() == ["a_thing", "b_thing"]
    assert registry.items() == [("b_thing", 2), ("a_thing", 1)]  # registration order
    assert registry.get("a_thing") == 1
    assert registry.find("nope") is None
    assert "b_thing" in registry and len(registry) == 2


@pytest.mark.parametrize("bad", ["", "Thing", "1thing", "a-b", "a b", None])
def test_malformed_names_are_errors(bad: object) -> None:
    registry: Registry[int] = Registry("thing", example="my_thing")
    with pytest.raises(ValueError, match=r"thing name .* is malformed: .*'my_thing'"):
        registry.register(bad)  # type: ignore[arg-type]


def test_dashed_names() -> None:
    registry: Registry[int] = Registry("backbone", pattern=DASHED)
    registry.add("part-tiny", 1)
    with pytest.raises(ValueError, match="malformed"):
        registry.add("part--tiny", 2)


def test_duplicates_are_errors_naming_the_first() -> None:
    registry: Registry[int] = Registry("thing")
    registry.add("thing", 1, origin="module_a")
    with pytest.raises(ValueError, match=r"thing 'thing' is already registered by 'module_a'"):
        registry.add("thing", 2)
    assert registry.get("thing") == 1


def test_unknown_name_lists_and_suggests() -> None:
    registry: Registry[int] = Registry("thing")
    registry.add("jet_thing", 1)
    registry.add("pair_thing", 2)
    with pytest.raises(KeyError, match=r"registered things: jet_thing, pair_thing; did you mean"):
        registry.get("jet_thng")
    with pytest.raises(KeyError, match=r"unknown thing 'zzz'; registered things: jet_thing, "):
        registry.get("zzz")
    assert "did you mean" not in Registry("thing").unknown_message("x")


def test_the_four_registries_use_it() -> None:
    assert "part-tiny" in BACKBONES.names() and "jet_classification" in HEADS.names()
    assert "jetclass" in READERS and "lora" in list_adapters() == ADAPTERS.names()
    with pytest.raises(KeyError, match=r"did you mean 'part-tiny'\?"):
        create_backbone("part-tinny", in_features=3)
    with pytest.raises(KeyError, match=r"did you mean 'jet_classification'\?"):
        get_head_class("jet_clasification")


def test_builtins_are_registered_once_on_first_use() -> None:
    calls: list[str] = []
    registry: Registry[int] = Registry("thing")

    def builtins() -> None:
        calls.append("load")
        registry.add("builtin", 1)
        assert len(registry) == 2  # a lookup while loading does not load again

    registry = Registry("thing", builtins=builtins)
    registry.add("plugin", 2)
    assert calls == []
    assert registry.names() == ["builtin", "plugin"] and "builtin" in registry
    assert calls == ["load"]


def test_builtins_that_fail_are_retried() -> None:
    attempts: list[int] = []

    def builtins() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ImportError("no module named 'plugin_dependency'")

    registry: Registry[int] = Registry("thing", builtins=builtins)
    with pytest.raises(ImportError, match="plugin_dependency"):
        registry.names()
    assert registry.names() == [] and len(attempts) == 2


ROOT = Path(__file__).resolve().parents[1]
LAZY_PACKAGES = ("foundation", "foundation.hub", "foundation.export", "foundation.training")
BUILTIN_MODULES = ("heads.jet_classification", "foundation.models.zoo", "foundation.models.lora")


def test_packages_and_registries_import_their_contents_on_first_use() -> None:
    code = (
        "import json, sys\n"
        f"import {', '.join(LAZY_PACKAGES)}\n"
        "light = sorted(m for m in sys.modules if m.startswith(('torch', 'foundation.')))\n"
        "import heads.registry, foundation.models.registry, foundation.models.adapters\n"
        f"registered = [m for m in {BUILTIN_MODULES!r} if m in sys.modules]\n"
        "heads.registry.HEADS.names(), foundation.models.registry.BACKBONES.names()\n"
        "foundation.models.adapters.ADAPTERS.names()\n"
        f"used = [m for m in {BUILTIN_MODULES!r} if m in sys.modules]\n"
        "print(json.dumps([light, registered, used]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    light, registered, used = json.loads(result.stdout.strip().splitlines()[-1])
    assert light == ["foundation.export", "foundation.hub", "foundation.training"], light
    assert registered == [] and used == list(BUILTIN_MODULES)


def _calls_named(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines of the calls ``f(...)`` or ``x.f(...)`` whose ``f`` is in ``names``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else None
            name = function.id if isinstance(function, ast.Name) else name
            if name in names:
                lines.append(node.lineno)
    return lines


def test_no_module_is_imported_by_a_string() -> None:
    by_string = {"import_module", "__import__", "find_spec", "spec_from_file_location"}
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in ("foundation", "heads")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line in _calls_named(ast.parse(path.read_text(encoding="utf-8")), by_string)
    ]
    assert found == [], f"modules imported by a string (use an import statement): {found}"


def _top_level_names(path: Path) -> set[str]:
    """The names a module defines or imports at its top level."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", LAZY_PACKAGES[1:])
def test_lazy_names_are_the_public_names(package: str) -> None:
    """``__getattr__``'s cases are ``__all__``; each submodule it imports defines its names."""
    folder = ROOT.joinpath(*package.split("."))
    tree = ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))
    (getter,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    lazy: list[str] = []
    for case in next(n for n in getter.body if isinstance(n, ast.Match)).cases:
        names = [n.value.value for n in ast.walk(case.pattern) if isinstance(n, ast.MatchValue)]
        imports = [n for n in case.body if isinstance(n, ast.ImportFrom)]
        if names:
            assert len(imports) == 1 and imports[0].module == package, ast.dump(case)
            defined = _top_level_names(folder / f"{imports[0].names[0].name}.py")
            assert set(names) <= defined, (imports[0].names[0].name, set(names) - defined)
        lazy += names
    module = importlib.import_module(package)
    assert sorted(lazy) == sorted(module.__all__)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018
