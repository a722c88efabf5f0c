"""The data-efficiency study: the same head trained with N labelled jets, from the pretrained
backbone (frozen, fine-tuned) and from scratch, over several seeds.

For every (mode, N, seed) a full run is made in ``<out>/<mode>/n<N>/seed<k>/`` (a finished run
is reused when the study is run again); a mode with a learning-rate grid trains seed 0 at each
rate of the grid, keeps the best on the validation split and trains the other seeds at it, in
``<out>/<mode>/n<N>/lr<rate>/seed<k>/``. Seed ``k`` shifts both the training seed and the seed of
the stratified label subsample. The test metrics of every run are summarised as mean ± standard
deviation per (mode, N) in ``study.md`` and ``study.json``, and each metric is plotted against N
on a log axis (``study_<metric>.png``).

Every head is scored on the full test split with the metrics of ``foundation evaluate``
(:func:`evaluation_metrics`): AUC and 1/εB at εS = 0.3 and 0.5 for jet classification,
response and resolution for regression, per-class efficiency and purity for particles, pair AUC
and vertex finding for pairs. The ``gbt`` mode puts gradient-boosted trees beside them: on jet
substructure for jet classification and regression, on single particles and on particle pairs
for particle and pair classification (:mod:`foundation.baselines.on_recipe`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from foundation.errors import OutputExistsError
from foundation.io import write_json
from foundation.training.modes import HEADLINE, MODES
from foundation.training.plots import (  # noqa: F401 - draw_metric: the benchmarks' import
    companion_rejection,
    draw_metric,
    plot_metric,
    plot_metrics,
)
from foundation.training.recipe import Recipe, with_changes
from foundation.training.run_folder import RunPaths

if TYPE_CHECKING:
    from foundation.model import Model
    from foundation.training.datamodule import JetDataModule

STUDY_MODES: tuple[str, ...] = (*MODES, "gbt")
"""Modes a study can compare (``scratch``: the pretrained architecture with fresh weights;
``gbt``: gradient-boosted trees on the same labelled and test jets, for every head but masked
particles; see :func:`foundation.baselines.on_recipe.gbt_on_recipe`)."""
BASELINE_MODE = "gbt"
SIGNAL_EFFICIENCIES: tuple[float, ...] = (0.3, 0.5)


@dataclass(frozen=True)
class StudyPoint:
    """One run of the study and its test metrics."""

    mode: str
    size: int
    seed: int
    folder: Path
    metrics: dict[str, float]


@dataclass(frozen=True)
class StudyResult:
    """Every run, the summary table (``{mode: {size: {metric: {mean, std, n}}}}``), and files."""

    points: list[StudyPoint]
    table: dict[str, dict[int, dict[str, dict[str, float]]]]
    markdown: Path
    json: Path
    plots: list[Path]
    lr_selection: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """``{mode: {N: {"monitor", "scores": {lr: value}, "chosen": lr}}}`` of the learning-rate
    grids."""


def _best_model_and_test_data(run: Path) -> tuple[Model, JetDataModule] | None:
    """The run's best model and its recipe's prepared data (None: no test jets)."""
    from foundation.hub.checkpoint import load_pretrained
    from foundation.training.builder import head_targets
    from foundation.training.datamodule import JetDataModule
    from foundation.training.recipe import load_recipe

    paths = RunPaths(run)
    recipe = load_recipe(paths.recipe)
    model = load_pretrained(paths.best).eval()
    data = JetDataModule(recipe.data, seed=recipe.trainer.seed, show_progress=False)
    normalization = model.feature_schema.normalization if model.feature_schema else None
    data.prepare(normalization=normalization)
    data.require_targets(head_targets(model))
    return (model, data) if len(data.indices["test"]) else None


@torch.no_grad()
def binary_scores(run: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Test-split signal probabilities and labels of each binary jet-classification head.

    Returns:
        ``{head: (scores [M], labels [M])}`` over the labelled test jets of the run's best model.
    """
    loaded = _best_model_and_test_data(run)
    if loaded is None:
        return {}
    model, data = loaded
    wanted = [
        name
        for name, head in model.heads.items()
        if head.head_type == "jet_classification" and getattr(head, "binary", False)
    ]
    collected: dict[str, tuple[list, list]] = {name: ([], []) for name in wanted}
    for batch in data.loader("test") if wanted else ():
        outputs = model(batch, heads=wanted)
        for name in wanted:
            labels = model.heads[name].class_indices(batch)
            keep = labels >= 0
            collected[name][0].append(outputs[name]["probability"][keep].double().numpy())
            collected[name][1].append(labels[keep].numpy())
    return {name: (np.concatenate(s), np.concatenate(y)) for name, (s, y) in collected.items()}


def evaluation_metrics(run: Path) -> dict[str, float]:
    """Every scalar metric of ``foundation evaluate`` on the run's test split, for every head.

    Named ``<head>/<metric>``, nested names joined by ``/``; counts and binned series are left
    out. Jet classification: accuracy, AUC, 1/εB at εS = 0.3 and 0.5; jet regression: MAE,
    RMSE, median response, σ68 and IQR/2 of the model and of the detector-level reference;
    particle classification: accuracy, AUC and per-class efficiency, purity and AUC; pair
    classification: pair AUC and vertex finding; masked particles: MSE.
    """
    from foundation.evaluation.evaluate import evaluate_predictions, flatten_metrics
    from foundation.evaluation.predict import predict

    loaded = _best_model_and_test_data(run)
    if loaded is None:
        return {}
    model, data = loaded
    predictions = predict(model, data.loader("test"), label_names=data.summary.label_names)
    report = evaluate_predictions(
        predictions, None, n_bootstrap=0, efficiencies=SIGNAL_EFFICIENCIES
    )
    metrics: dict[str, float] = {}
    for head, entry in report.items():
        flatten_metrics(entry["metrics"], head, metrics)
    return metrics


# ---------------------------------------------------------------------------------- runs
def point_recipe(
    recipe: Recipe, mode: str, size: int, seed: int, out: Path, lr: float | None = None
) -> Recipe:
    """The recipe of one study run (for ``gbt``, the recipe whose jets the trees see).

    ``lr`` replaces ``optimizer.lr`` and puts the run in ``<mode>/n<N>/lr<lr>/seed<k>/``
    (a point of a learning-rate grid); without it the run is ``<mode>/n<N>/seed<k>/``.
    """
    changes: dict[str, Any] = {} if mode == BASELINE_MODE else {"finetune": {"mode": mode}}
    folder = out / mode / f"n{size}"
    if lr is not None:
        changes["optimizer"] = {"lr": lr}
        folder = folder / f"lr{lr:g}"
    return with_changes(
        recipe,
        data={"train_size": size, "subsample_seed": recipe.data.subsample_seed + seed},
        trainer={"seed": recipe.trainer.seed + seed, "progress_bar": False},
        output={"folder": str(folder / f"seed{seed}")},
        **changes,
    )


def validation_score(recipe: Recipe) -> float:
    """The finished run's value of ``trainer.monitor`` (e.g. ``val/loss``) for its best model.

    Raises:
        ValueError: the run's metrics.json has no such value.
    """
    paths = RunPaths(recipe.run_folder)
    split, _, name = recipe.trainer.monitor.partition("/")
    value = json.loads(paths.metrics.read_text()).get(split, {}).get(name)
    if value is None:
        raise ValueError(
            f"{paths.metrics}: trainer.monitor: expected a value {split}/{name} to choose the "
            f"learning rate by, found none"
        )
    return float(value)


def choose_lr(
    recipe: Recipe,
    mode: str,
    size: int,
    grid: Sequence[float],
    out: Path,
    overwrite: bool,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train seed 0 of (``mode``, N) at each learning rate of ``grid``; keep the best by the
    recipe's ``trainer.monitor`` on the validation split (the test split is never looked at).

    Returns:
        ``{"monitor", "scores": {lr: value}, "chosen": lr}``.
    """
    scores = {}
    for lr in grid:
        point = point_recipe(recipe, mode, size, 0, out, lr)
        # No test-split scoring: only the chosen rate's runs are scored.
        _train_point(point, overwrite, callbacks)
        scores[lr] = validation_score(point)
    best = min if recipe.trainer.monitor_mode == "min" else max
    return {
        "monitor": recipe.trainer.monitor,
        "scores": scores,
        "chosen": best(scores, key=scores.get),
    }


def _run_baseline_point(
    recipe: Recipe, overwrite: bool, records_cache: dict[Path, Any] | None = None
) -> dict[str, float]:
    """The ``gbt`` point: trees on the recipe's labelled jets, scored on its test jets; the
    metrics are kept in ``<folder>/metrics.json`` next to the recipe, and reused;
    an infinite rejection is stored as the string ``"inf"``."""
    from foundation.baselines.on_recipe import gbt_on_recipe

    paths = RunPaths(recipe.run_folder)
    expected = json.loads(json.dumps(recipe.to_dict()))
    if overwrite or not paths.metrics.is_file():
        metrics = gbt_on_recipe(recipe, SIGNAL_EFFICIENCIES, records_cache)
        paths.root.mkdir(parents=True, exist_ok=True)
        stored_metrics = {k: v if math.isfinite(v) else str(v) for k, v in metrics.items()}
        record = {"baseline": BASELINE_MODE, "recipe": expected, "test": stored_metrics}
        write_json(paths.metrics, record)
    stored = json.loads(paths.metrics.read_text())
    if stored.get("recipe") != expected:
        raise OutputExistsError(paths.root, "a finished baseline of another recipe")
    return {key: float(value) for key, value in stored["test"].items() if value is not None}


def _train_point(recipe: Recipe, overwrite: bool, callbacks: Sequence[Any] = ()) -> RunPaths:
    """Train the run unless a finished run of the same recipe is there (or ``overwrite``)."""
    from foundation.training.recipe import load_recipe
    from foundation.training.run import train

    paths = RunPaths(recipe.run_folder)
    if paths.metrics.is_file() and not overwrite and load_recipe(paths.recipe) != recipe:
        raise OutputExistsError(paths.root, "a finished run of another recipe")
    if overwrite or not paths.metrics.is_file():
        train(recipe, overwrite=True, show_progress=False, callbacks=callbacks)
    return paths


def _run_point(recipe: Recipe, overwrite: bool, callbacks: Sequence[Any] = ()) -> dict[str, float]:
    paths = _train_point(recipe, overwrite, callbacks)
    test = json.loads(paths.metrics.read_text()).get("test", {})
    metrics = {key: float(value) for key, value in test.items() if value is not None}
    # The exact test-split metrics replace the training engine's batch-averaged ones.
    metrics.update(evaluation_metrics(paths.root))
    return metrics


def summarize(points: Sequence[StudyPoint]) -> dict[str, dict[int, dict[str, dict[str, float]]]]:
    """Mean, standard deviation (ddof 1; 0 for one value) and count of each metric per mode
    and N, over the seeds with a finite value; ``infinite`` counts the seeds whose value is
    +inf (a background rejection where no test background jet passes the cut)."""
    table: dict[str, dict[int, dict[str, dict[str, float]]]] = {}
    groups: dict[tuple[str, int], list[StudyPoint]] = {}
    for point in points:
        groups.setdefault((point.mode, point.size), []).append(point)
    for (mode, size), members in groups.items():
        names = sorted({name for point in members for name in point.metrics})
        row = {}
        for name in names:
            values = np.array(
                [p.metrics[name] for p in members if name in p.metrics], dtype=np.float64
            )
            infinite = int(np.isposinf(values).sum())
            values = values[np.isfinite(values)]
            if not values.size and not infinite:
                continue
            entry = {"mean": math.inf, "std": 0.0, "n": 0, "infinite": infinite}
            if values.size:
                std = float(values.std(ddof=1)) if values.size > 1 else 0.0
                entry.update(mean=float(values.mean()), std=std, n=int(values.size))
            row[name] = entry
        table.setdefault(mode, {})[size] = row
    return table


def _cell(entry: dict[str, float] | None) -> str:
    if entry is None:
        return "-"
    infinite = int(entry.get("infinite", 0))
    if not entry["n"]:
        return f"∞ ({infinite} of {infinite})"
    text = f"{entry['mean']:.4g} ± {entry['std']:.2g}"
    if infinite:
        text += f" (∞ in {infinite} of {infinite + int(entry['n'])}, left out)"
    return text


def markdown_table(table: dict[str, dict[int, dict[str, dict[str, float]]]]) -> str:
    """The summary as a markdown table: one row per (mode, N), one column per metric."""
    metrics = sorted({m for rows in table.values() for row in rows.values() for m in row})
    lines = [
        "| mode | N | " + " | ".join(metrics) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in metrics) + " |",
    ]
    for mode, rows in table.items():
        for size in sorted(rows):
            cells = [_cell(rows[size].get(metric)) for metric in metrics]
            lines.append(f"| {mode} | {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def lr_selection_text(selections: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """The learning rates chosen per mode and N, with the validation score of each (markdown)."""
    if not selections:
        return ""
    lines = ["", "Learning rate chosen per mode and N on seed 0's validation split:", ""]
    for mode, rows in selections.items():
        for size, entry in rows.items():
            scores = ", ".join(f"{lr:g}: {value:.4g}" for lr, value in entry["scores"].items())
            lines.append(
                f"- {mode}, N = {size}: lr {entry['chosen']:g} ({entry['monitor']}: {scores})"
            )
    return "\n".join(lines) + "\n"


def _plot_name(metric: str) -> str:
    return "study_" + "".join(c if c.isalnum() or c in "._-" else "_" for c in metric) + ".png"


def data_efficiency(
    recipe: Recipe,
    sizes: Sequence[int],
    seeds: int,
    modes: Sequence[str] = HEADLINE,
    out: str | Path | None = None,
    overwrite: bool = False,
    lr_grid: Mapping[str, Sequence[float]] | None = None,
    callbacks: Sequence[Any] = (),
) -> StudyResult:
    """Run the data-efficiency study of ``recipe`` and write its table and plots.

    Each mode can have its own learning-rate grid: for every N, seed 0 is trained at each
    learning rate, the one with the best ``trainer.monitor`` on the validation split is kept
    (:func:`choose_lr`), and the other seeds are trained at it. Modes learn at different rates
    (a frozen backbone's head, a fine-tuned backbone and fresh weights), so one learning rate for
    all would favour some of them.

    Args:
        recipe: a fine-tuning recipe (``model.pretrained`` set for the pretrained modes).
        sizes: labelled training jets N.
        seeds: seeds per (mode, N).
        modes: fine-tuning modes to compare (see :data:`STUDY_MODES`).
        out: study folder (default ``<recipe run folder>-data-efficiency``).
        overwrite: redo finished runs (default: reuse them, so a stopped study continues).
        lr_grid: learning rates (``optimizer.lr``) to choose from, by mode; modes without one
            train at the recipe's.
        callbacks: Lightning callbacks added to every training run (e.g.
            :class:`~foundation.training.epoch_log.EpochLog` for a line per epoch).

    Raises:
        ValueError: unknown modes, no sizes, fewer than one seed, a bad learning-rate grid.
        RecipeError: a mode that needs ``model.pretrained`` without one.
    """
    unknown = [mode for mode in modes if mode not in STUDY_MODES]
    if unknown or not modes:
        raise ValueError(f"--modes: expected some of {', '.join(STUDY_MODES)}, found {list(modes)}")
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--sizes: expected positive numbers of jets, found {list(sizes)}")
    if seeds < 1:
        raise ValueError(f"--seeds: expected at least 1, found {seeds}")
    lr_grid = {mode: [float(lr) for lr in grid] for mode, grid in (lr_grid or {}).items()}
    for mode, grid in lr_grid.items():
        if mode not in modes or mode == BASELINE_MODE:
            raise ValueError(
                f"--lr-grid: expected a trained mode of --modes ({', '.join(modes)}), "
                f"found {mode!r}"
            )
        if not grid or min(grid) <= 0:
            raise ValueError(f"--lr-grid {mode}: expected positive learning rates, found {grid}")
    folder = Path(out) if out else Path(f"{recipe.run_folder}-data-efficiency")
    if (folder / "study.json").is_file() and not overwrite:
        existing = json.loads((folder / "study.json").read_text()).get("request", {})
        if existing and existing.get("recipe") != recipe.to_dict():
            raise OutputExistsError(folder, "a study of another recipe")
    folder.mkdir(parents=True, exist_ok=True)
    points = []
    records_cache: dict[Path, Any] = {}  # the trees' jets, read once for every gbt point
    selections: dict[str, dict[str, dict[str, Any]]] = {}
    for mode in modes:
        for size in sizes:
            lr = None
            if mode in lr_grid:
                selection = choose_lr(
                    recipe, mode, int(size), lr_grid[mode], folder, overwrite, callbacks
                )
                selections.setdefault(mode, {})[str(size)] = selection
                lr = selection["chosen"]
            for seed in range(seeds):
                point = point_recipe(recipe, mode, int(size), seed, folder, lr)
                if mode == BASELINE_MODE:
                    metrics = _run_baseline_point(point, overwrite, records_cache)
                else:
                    # Seed 0 at the chosen rate was (re)trained by choose_lr already.
                    retrain = overwrite and not (lr is not None and seed == 0)
                    metrics = _run_point(point, retrain, callbacks)
                points.append(StudyPoint(mode, int(size), seed, point.run_folder, metrics))
    table = summarize(points)
    request = {
        "recipe": recipe.to_dict(),
        "sizes": list(sizes),
        "seeds": seeds,
        "modes": list(modes),
        "lr_grid": lr_grid,
    }
    json_path = folder / "study.json"
    write_json(
        json_path,
        {
            "request": request,
            "table": {
                mode: {str(n): row for n, row in rows.items()} for mode, rows in table.items()
            },
            "lr_selection": {
                mode: {
                    n: {**entry, "scores": {f"{lr:g}": v for lr, v in entry["scores"].items()}}
                    for n, entry in rows.items()
                }
                for mode, rows in selections.items()
            },
            "runs": [
                {
                    "mode": p.mode,
                    "size": p.size,
                    "seed": p.seed,
                    "folder": str(p.folder),
                    "metrics": p.metrics,
                }
                for p in points
            ],
        },
    )
    markdown = folder / "study.md"
    title = (
        f"# Data efficiency: {recipe.name}\n\nTest metrics, mean ± std over {seeds} seed(s).\n\n"
    )
    markdown.write_text(
        title + markdown_table(table) + lr_selection_text(selections), encoding="utf-8"
    )
    metric_names = sorted({m for rows in table.values() for row in rows.values() for m in row})
    plots = [plot_metric(table, m, folder / _plot_name(m)) for m in metric_names]
    for metric in metric_names:  # ROC AUC with 1/εB at εS = 0.3 beside it
        rejection = companion_rejection(table, metric)
        if rejection is not None:
            both = folder / _plot_name(f"{metric}_and_rejection")
            plots.append(plot_metrics(table, [metric, rejection], both))
    return StudyResult(points, table, markdown, json_path, plots, selections)
