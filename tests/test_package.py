"""Packaging a trained checkpoint as a named one: same weights, a new card and provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from foundation import load_pretrained
from foundation.cli import main
from foundation.errors import DataError
from foundation.hub.package import package_checkpoint, read_card_file
from foundation.quickstart import DEFAULT_BACKBONE

CARD = """
title: test-backbone.tiny
summary: A packaged copy for the test.
data: 20 jets made by hand.
metrics: "| metric | value |\\n| --- | --- |\\n| accuracy | 0.5 |"
provenance:
  corpus: foundation simulate --process jetclass --jets 2
"""


def test_package_keeps_weights_and_replaces_card_and_provenance(tmp_path: Path) -> None:
    card_path = tmp_path / "card.yaml"
    card_path.write_text(CARD)
    out = tmp_path / "test-backbone.tiny"
    assert (
        main(
            [
                "hub",
                "package",
                DEFAULT_BACKBONE,
                "--name",
                "test-backbone.tiny",
                "--card",
                str(card_path),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    original = load_pretrained(DEFAULT_BACKBONE)
    packaged = load_pretrained(out)
    for (name, a), (_, b) in zip(
        original.state_dict().items(), packaged.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    text = (out / "README.md").read_text()
    assert "A packaged copy for the test." in text and "| accuracy | 0.5 |" in text
    config = json.loads((out / "config.json").read_text())
    assert config["provenance"] == {"corpus": "foundation simulate --process jetclass --jets 2"}
    with pytest.raises(FileExistsError):
        package_checkpoint(DEFAULT_BACKBONE, out, name="x", card={})


def test_card_file_with_unknown_key_names_it(tmp_path: Path) -> None:
    card_path = tmp_path / "card.yaml"
    card_path.write_text("metrix: 1\n")
    with pytest.raises(DataError, match="metrix"):
        read_card_file(card_path)
