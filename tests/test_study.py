"""Unit tests of the study's parts that need no training: the per-run scores of a model, the
summary over seeds, the report's files, and the checks of a study request."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_batch, make_model

from foundation.evaluation.study_scores import binary_classifier_scores, is_binary_jet_classifier
from foundation.evaluation.study_summary import StudyPoint, summarize
from foundation.training.study_report import (
    markdown_table,
    plot_name,
    study_markdown,
    study_record,
    write_study_report,
)

EVALUATION = Path(__file__).resolve().parents[1] / "foundation" / "evaluation"


@pytest.mark.parametrize("name", ["study_scores.py", "study_summary.py"])
def test_the_studys_evaluation_modules_do_not_import_training(name: str) -> None:
    imported = set()
    for node in ast.walk(ast.parse((EVALUATION / name).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not [module for module in imported if module.startswith("foundation.training")]


def _points() -> list[StudyPoint]:
    values = {("full", 100): [0.8, 0.9], ("full", 10): [0.6, math.nan], ("gbt", 10): [0.7]}
    return [
        StudyPoint(mode, size, seed, Path(f"{mode}/n{size}/seed{seed}"), {"top/auc": value})
        for (mode, size), seeds in values.items()
        for seed, value in enumerate(seeds)
    ]


def test_binary_classifier_scores_are_the_heads_probabilities() -> None:
    model = make_model().eval()
    assert [name for name, head in model.heads.items() if is_binary_jet_classifier(head)] == ["top"]
    batches = [make_batch(seed=0), make_batch(seed=1)]
    scores = binary_classifier_scores(model, batches)
    assert set(scores) == {"top"}
    with torch.no_grad():
        expected = torch.cat([model(b)["top"]["probability"] for b in batches]).double().numpy()
    np.testing.assert_array_equal(scores["top"][0], expected)
    labels = torch.cat([model.heads["top"].class_indices(b) for b in batches]).numpy()
    np.testing.assert_array_equal(scores["top"][1], labels)
    assert scores["top"][0].shape == scores["top"][1].shape == (8,)


def test_binary_classifier_scores_do_not_read_batches_without_such_a_head() -> None:
    model = make_model().eval()
    model.heads.pop("top")

    def unread():
        raise AssertionError("batches read without a binary head")
        yield

    assert binary_classifier_scores(model, unread()) == {}


def test_summary_keeps_the_order_of_the_points_and_drops_nan() -> None:
    table = summarize(_points())
    assert list(table) == ["full", "gbt"] and list(table["full"]) == [100, 10]
    assert table["full"][100]["top/auc"] == pytest.approx(
        {"mean": 0.85, "std": 0.0707107, "n": 2, "infinite": 0}
    )
    assert table["full"][10]["top/auc"] == {"mean": 0.6, "std": 0.0, "n": 1, "infinite": 0}
    nan_only = summarize([StudyPoint("full", 5, 0, Path("."), {"r": math.nan})])
    assert nan_only == {"full": {5: {}}}


def test_markdown_sorts_sizes_and_names_the_chosen_learning_rates() -> None:
    table = summarize(_points())
    rows = markdown_table(table).splitlines()
    assert rows[0] == "| mode | N | top/auc |"
    assert [row.split(" | ")[:2] for row in rows[2:]] == [
        ["| full", "10"],
        ["| full", "100"],
        ["| gbt", "10"],
    ]
    selections = {
        "full": {"10": {"monitor": "val/loss", "scores": {1e-4: 0.7, 1e-3: 0.5}, "chosen": 1e-3}}
    }
    text = study_markdown("top", 2, table, selections)
    assert text.startswith("# Data efficiency: top\n\nTest metrics, mean ± std over 2 seed(s).")
    assert text.endswith("- full, N = 10: lr 0.001 (val/loss: 0.0001: 0.7, 0.001: 0.5)\n")
    assert "Learning rate" not in study_markdown("top", 2, table, {})


def test_study_record_and_files(tmp_path: Path) -> None:
    points = _points()
    table = summarize(points)
    selections = {
        "full": {"10": {"monitor": "val/loss", "scores": {1e-4: 0.7, 1e-3: 0.5}, "chosen": 1e-3}}
    }
    request = {"recipe": {"name": "top"}, "sizes": [10, 100], "seeds": 2}
    record = study_record(request, table, selections, points)
    assert list(record["table"]["full"]) == ["100", "10"]
    assert record["lr_selection"]["full"]["10"]["scores"] == {"0.0001": 0.7, "0.001": 0.5}
    assert record["runs"][0] == {
        "mode": "full",
        "size": 100,
        "seed": 0,
        "folder": "full/n100/seed0",
        "metrics": {"top/auc": 0.8},
    }
    assert plot_name("top/rejection_at_0.3") == "study_top_rejection_at_0.3.png"
    files = write_study_report(tmp_path, "top", request, points, table, selections)
    assert files.markdown.read_text(encoding="utf-8") == study_markdown("top", 2, table, selections)
    stored = json.loads(files.json.read_text())
    assert stored["request"] == request and stored["runs"][1]["metrics"] == {"top/auc": 0.9}
    assert [path.name for path in files.plots] == ["study_top_auc.png"]
    assert files.plots[0].is_file()


@pytest.mark.parametrize(
    "arguments, match",
    [
        ({"modes": ["sideways"]}, "--modes"),
        ({"modes": []}, "--modes"),
        ({"sizes": []}, "--sizes"),
        ({"sizes": [0]}, "--sizes"),
        ({"seeds": 0}, "--seeds"),
        ({"lr_grid": {"gbt": [1e-3]}, "modes": ["gbt", "full"]}, "--lr-grid"),
        ({"lr_grid": {"full": []}}, "positive"),
    ],
)
def test_study_request_is_checked_before_anything_runs(
    tmp_path: Path, arguments: dict, match: str
) -> None:
    from foundation.training.recipe import recipe_from_dict
    from foundation.training.study import data_efficiency

    recipe = recipe_from_dict(
        {
            "name": "checks",
            "data": {"cache": str(tmp_path / "cache"), "features": "kin"},
            "model": {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}},
            "output": {"folder": str(tmp_path / "run")},
        }
    )
    request = {"sizes": [10], "seeds": 1, "modes": ["full"], "out": tmp_path / "study"}
    with pytest.raises(ValueError, match=match):
        data_efficiency(recipe, **(request | arguments))
    assert not (tmp_path / "study").exists()
