"""The quickstart end to end on a tiny sample with the shipped backbone (and its refusals)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from foundation.errors import OutputExistsError
from foundation.quickstart import (
    DEFAULT_BACKBONE,
    LR_GRID,
    MARKER,
    QUICKSTART_CARD,
    QuickstartConfig,
    quickstart_recipe,
    run_quickstart,
)


def test_shipped_backbone_is_registered() -> None:
    from foundation import load_pretrained
    from foundation.hub import list_pretrained

    assert DEFAULT_BACKBONE in list_pretrained()
    model = load_pretrained(DEFAULT_BACKBONE, heads=None)
    assert model.feature_schema is not None
    assert model.feature_schema.normalization is not None


def test_quickstart_pins_the_card_its_backbone_was_pretrained_on(tmp_path: Path) -> None:
    """jetformer-tiny.sim300k saw ``default``-card jets: the quickstart makes those (into the
    same folder and cache as before the default card changed), whatever the library's default."""
    import argparse

    from foundation.cli import quickstart as quickstart_cli
    from foundation.simulation.card import DEFAULT_CARD
    from foundation.training.sources import simulation_folder

    assert QUICKSTART_CARD == "default" != DEFAULT_CARD
    simulate = quickstart_recipe(QuickstartConfig(out=tmp_path / "qs")).data.simulate
    assert simulate.card == "default"
    assert simulation_folder(simulate) == (tmp_path / "qs" / "data").resolve()
    commands = argparse.ArgumentParser().add_subparsers()
    quickstart_cli.register(commands)
    assert commands.choices["quickstart"].parse_args([]).card == QUICKSTART_CARD
    other = QuickstartConfig(out=tmp_path / "jc", card="jetclass")
    assert quickstart_recipe(other).data.simulate.card == "jetclass"


@pytest.mark.slow  # simulation, three trainings, ONNX export
def test_quickstart_end_to_end(tmp_path: Path) -> None:
    lines: list[str] = []
    out = tmp_path / "qs"
    config = QuickstartConfig(out=out, jets=60, train_size=30, epochs=1, workers=1, seed=3)
    result = run_quickstart(config, echo=lines.append)
    assert [row["mode"] for row in result.rows] == ["frozen", "full", "scratch"]
    for row in result.rows:
        assert 0.0 <= row["roc_auc"] <= 1.0
        assert row["test_jets"] > 0 and row["train_jets"] == 30
        assert row["lr"] in config.lr_grid[row["mode"]]  # chosen on the validation jets
    assert len(list((out / "study").glob("*/n30/lr*/seed0"))) == sum(map(len, LR_GRID.values()))
    for name in ("roc.png", "model.onnx", "results.md", MARKER):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / MARKER).read_text())
    assert summary["best_mode"] == result.best_mode
    assert summary["onnx_parity_max_abs_difference"] <= 1e-4
    props = {p.key for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert any("feature" in key for key in props)
    assert any("ROC AUC" in line for line in lines)
    assert any(str(out / "model.onnx") in line for line in lines)


def test_quickstart_refuses_a_folder_that_is_not_a_quickstart(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not a quickstart"):
        run_quickstart(QuickstartConfig(out=tmp_path, jets=10, train_size=10, epochs=1))
    assert (tmp_path / "thesis.tex").read_text() == "keep me"


def test_quickstart_names_the_shipped_backbones_when_one_is_missing(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match=DEFAULT_BACKBONE.replace(".", r"\.")):
        run_quickstart(QuickstartConfig(out=tmp_path / "q", backbone="no-such.backbone"))
