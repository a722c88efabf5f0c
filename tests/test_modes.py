"""The fine-tuning mode table: one row per recipe mode, and what the code reads from it."""

from __future__ import annotations

import typing

import pytest

from foundation.evaluation.labels import MODE_LABELS
from foundation.training.modes import HEADLINE, MODES, ModeName, get_mode, mode_names
from foundation.training.recipe import FinetuneConfig


def test_every_recipe_mode_has_one_row() -> None:
    literal = typing.get_type_hints(FinetuneConfig)["mode"]
    assert set(typing.get_args(literal)) == set(MODES) == set(typing.get_args(ModeName))
    assert set(HEADLINE) <= set(MODES)
    assert all(MODE_LABELS[name] == mode.label for name, mode in MODES.items())


def test_the_table_says_what_the_modes_did() -> None:
    assert mode_names(freezes_backbone=True) == ("frozen", "linear", "lora")
    assert mode_names(saves_delta=True) == ("frozen", "linear", "lora")
    assert mode_names(pretraining=True) == ("full", "scratch")
    assert mode_names(needs_pretrained=False) == ("full", "scratch")
    assert mode_names(fresh_weights=True) == ("scratch",)
    assert mode_names(head_lr_multiplier=False) == ("scratch",)
    assert mode_names(layer_decay=True) == ("lwld",)
    assert mode_names(gradual_unfreezing=True) == ("unfreeze",)
    assert mode_names(linear_heads=True) == ("linear",)
    assert mode_names(lora=True) == ("lora",)


def test_unknown_mode_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="expected one of frozen, linear, full"):
        get_mode("froze")
