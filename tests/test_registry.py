"""The one registry mechanism: names checked, duplicates refused, unknown names suggested."""

from __future__ import annotations

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
