"""Reliability of checkpoint configs (issue 17): wrong argument types and NaN are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_model, save

from foundation import load_pretrained
from foundation.hub.errors import CheckpointError


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return save(make_model("jetformer-tiny"), tmp_path / "ckpt")


def edit(folder: Path, change) -> Path:
    """Change config.json and its line in SHA256SUMS (as an author of a broken file would)."""
    import hashlib

    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))
    sums = folder / "SHA256SUMS"
    if sums.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines = [
            f"{digest}  config.json" if line.endswith("config.json") else line
            for line in sums.read_text().splitlines()
        ]
        sums.write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["backbone"]["kwargs"].update(dim="32"),
            r"backbone\.kwargs\.dim': expected an integer, found '32'",
        ),
        (
            lambda c: c["backbone"]["kwargs"].update(dropout=float("nan")),
            r"backbone\.kwargs\.dropout': expected a finite number",
        ),
        (
            lambda c: c["backbone"]["kwargs"].update(num_heads=2.5),
            r"num_heads': expected an integer",
        ),
        (
            lambda c: c["heads"]["top"]["kwargs"].update(hidden="64"),
            r"heads\.top\.kwargs\.hidden': expected",
        ),
        (
            lambda c: c["heads"]["top"].update(loss_weight=float("inf")),
            r"heads\.top\.loss_weight': expected a finite",
        ),
    ],
)
def test_bad_constructor_arguments_name_the_field(checkpoint: Path, change, message: str) -> None:
    edit(checkpoint, change)
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(checkpoint)
