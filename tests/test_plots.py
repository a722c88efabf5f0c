"""Plots: human axis labels, lower-limit markers for infinite rejections, files written."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from foundation.evaluation import plots as evaluation_plots
from foundation.evaluation.labels import is_rejection, metric_label, mode_label
from foundation.evaluation.plots import new_figure, plot_roc
from foundation.training.plots import (
    LIMIT_NOTE,
    companion_rejection,
    draw_metric,
    format_lr,
    loss_title,
    plot_loss_curves,
    plot_metrics,
    series_color,
)

PNG = b"\x89PNG\r\n\x1a\n"


def entry(mean: float, std: float = 0.0, n: int = 3, infinite: int = 0) -> dict[str, float]:
    return {"mean": mean, "std": std, "n": n, "infinite": infinite}


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("top/auc", "ROC AUC"),
        ("quark/accuracy", "accuracy"),
        (
            "top/rejection_at_0.3",
            "background rejection $1/\\varepsilon_B$ at $\\varepsilon_S$ = 0.3",
        ),
        (
            "calibration/log_mass_ratio/model/relative_sigma68",
            "jet mass resolution $\\sigma_{68}$ / median",
        ),
        (
            "calibration/log_mass_ratio/reference/relative_sigma68",
            "jet mass resolution $\\sigma_{68}$ / median (detector-level jet)",
        ),
        ("reg/jet_truth_pt/mae", "jet $p_T$ mean absolute error [GeV]"),
        (
            "calibration/log_pt_ratio/model/median_response",
            "jet $p_T$ median response (predicted / true)",
        ),
        ("origin/per_class/pileup/efficiency", "efficiency, class pileup"),
        ("vertex/vertex_finding/purity", "vertex-finding purity"),
        ("something/new_metric", "new metric"),
    ],
)
def test_metric_keys_get_human_labels(key: str, label: str) -> None:
    assert metric_label(key) == label


def test_modes_get_the_tables_names() -> None:
    assert mode_label("full") == "pretrained, fine-tuned"
    assert mode_label("frozen") == "pretrained, frozen"
    assert mode_label("scratch") == "from scratch"
    assert mode_label("ParT (weaver)") == "ParT (weaver)"
    assert series_color("full") == series_color("pretrained, fine-tuned")
    assert len({series_color(m) for m in ("frozen", "full", "scratch", "gbt")}) == 4


def test_rejections_are_recognised_and_paired_with_the_auc() -> None:
    assert is_rejection("top/rejection_at_0.5") and not is_rejection("top/auc")
    table = {"full": {1000: {"top/auc": entry(0.99), "top/rejection_at_0.3": entry(500)}}}
    assert companion_rejection(table, "top/auc") == "top/rejection_at_0.3"
    assert companion_rejection(table, "origin/auc") is None
    assert companion_rejection(table, "top/accuracy") is None


def test_infinite_rejections_are_lower_limit_markers_with_a_note() -> None:
    metric = "top/rejection_at_0.3"
    table = {
        "full": {1000: {metric: entry(800, 50)}, 5000: {metric: entry(900, 30, n=2, infinite=1)}},
        "gbt": {1000: {metric: entry(math.inf, n=0, infinite=3)}},
    }
    axis = new_figure().add_subplot()
    limits = draw_metric(axis, table, metric)
    assert limits == [("full", 5000), ("gbt", 1000)]
    markers = [line for line in axis.get_lines() if line.get_marker() == "^"]
    positions = sorted((float(m.get_xdata()[0]), float(m.get_ydata()[0])) for m in markers)
    assert positions[0] == (1000.0, pytest.approx(1.6 * 930))  # above every finite point
    assert positions[1] == (5000.0, 900.0)  # the finite seeds' mean, marked as a lower limit
    assert any(text.get_text() == LIMIT_NOTE for text in axis.texts)
    assert axis.get_yscale() == "log" and axis.get_xscale() == "log"
    assert axis.get_ylabel() == metric_label(metric)
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert sorted(legend) == ["gradient-boosted trees (\u221e)", "pretrained, fine-tuned"]


def test_finite_tables_have_no_markers_or_note() -> None:
    axis = new_figure().add_subplot()
    assert draw_metric(axis, {"scratch": {1000: {"top/auc": entry(0.98, 0.01)}}}, "top/auc") == []
    assert not axis.texts and axis.get_yscale() == "linear"
    assert axis.get_ylabel() == "ROC AUC"


def test_roc_keeps_the_range_without_background_as_a_lower_limit(monkeypatch, tmp_path) -> None:
    figures = []
    real_save = evaluation_plots.save_figure
    monkeypatch.setattr(
        evaluation_plots,
        "save_figure",
        lambda figure, path: figures.append(figure) or real_save(figure, path),
    )
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(200), np.zeros(150)]
    scores = np.r_[rng.normal(3, 1, 200), rng.normal(0, 1, 150)]
    path = plot_roc({"pretrained, frozen": (scores, labels)}, tmp_path / "roc.png", title="t")
    assert path.read_bytes().startswith(PNG)
    axis = figures[0].axes[0]
    assert [line for line in axis.get_lines() if line.get_marker() == "^"]
    legend = " ".join(text.get_text() for text in axis.get_legend().get_texts())
    assert "no background jet passes" in legend and "= 150" in legend


def test_study_panels_and_loss_curves_are_written(tmp_path: Path) -> None:
    table = {
        "frozen": {1000: {"top/auc": entry(0.99, 0.001), "top/rejection_at_0.3": entry(800, 90)}},
        "scratch": {1000: {"top/auc": entry(0.98, 0.002), "top/rejection_at_0.3": entry(300, 40)}},
    }
    path = plot_metrics(table, ["top/auc", "top/rejection_at_0.3"], tmp_path / "s" / "both.png")
    assert path.read_bytes().startswith(PNG)
    with pytest.raises(ValueError, match="at least one metric"):
        plot_metrics(table, [], tmp_path / "none.png")
    history = {"train_step": [[1, 0.7], [2, 0.6]], "val": [[2, 0.65]]}
    loss = plot_loss_curves(history, tmp_path / "loss.png", title="top", mode="full", lr=2e-4)
    assert loss.read_bytes().startswith(PNG)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # atomic writes


def test_loss_titles_say_the_mode_and_the_rate() -> None:
    assert loss_title("top_tagging", "full", 2e-4) == "top_tagging: pretrained, fine-tuned, lr 2e-4"
    assert loss_title("top_tagging") == "top_tagging"
    assert loss_title("", "scratch", 3e-3) == "from scratch, lr 3e-3"
    assert [format_lr(x) for x in (1e-3, 2.5e-4, 0.01, 0.5)] == ["1e-3", "2.5e-4", "0.01", "0.5"]


def test_study_figure_puts_the_rejection_beside_the_auc(tmp_path: Path) -> None:
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import plot_study_with_part

    rows = {
        "1000": {"top/auc": entry(0.99), "top/rejection_at_0.3": entry(math.inf, n=0, infinite=3)}
    }
    (tmp_path / "study.json").write_text(json.dumps({"table": {"full": rows}}))
    (tmp_path / "part.json").write_text(json.dumps({"table": {}}))
    captured = []
    original = plot_study_with_part.plot_metrics

    def capture(table, metrics, path, **kwargs):
        captured.append(list(metrics))
        return original(table, metrics, path, **kwargs)

    plot_study_with_part.plot_metrics = capture
    try:
        argv = ["--study", str(tmp_path / "study.json"), "--part", str(tmp_path / "part.json")]
        out = plot_study_with_part.main(
            [*argv, "--metric", "top/auc", "--out", str(tmp_path / "a.png")]
        )
        plot_study_with_part.main(
            [*argv, "--metric", "top/auc", "--no-rejection", "--out", str(tmp_path / "b.png")]
        )
    finally:
        plot_study_with_part.plot_metrics = original
    assert out.read_bytes().startswith(PNG)
    assert captured == [["top/auc", "top/rejection_at_0.3"], ["top/auc"]]
