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
(:func:`foundation.training.run_scores.evaluation_metrics`): AUC and 1/εB at εS = 0.3 and 0.5
for jet classification, response and resolution for regression, per-class efficiency and purity
for particles, pair AUC and vertex finding for pairs. The ``gbt`` mode puts gradient-boosted
trees beside them: on jet substructure for jet classification and regression, on single
particles and on particle pairs for particle and pair classification
(:mod:`foundation.baselines.on_recipe`).

This module runs the study; the summary over seeds is
:func:`foundation.evaluation.study_summary.summarize` and the files it writes come from
:mod:`foundation.training.study_report`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import OutputExistsError
from foundation.evaluation.study_scores import SIGNAL_EFFICIENCIES
from foundation.evaluation.study_summary import StudyPoint, StudySummary, summarize
from foundation.io import write_json
from foundation.training.modes import HEADLINE, MODES
from foundation.training.recipe import Recipe, with_changes
from foundation.training.run_folder import RunPaths
from foundation.training.run_scores import evaluation_metrics
from foundation.training.study_report import STUDY_JSON, write_study_report

STUDY_MODES: tuple[str, ...] = (*MODES, "gbt")
"""Modes a study can compare (``scratch``: the pretrained architecture with fresh weights;
``gbt``: gradient-boosted trees on the same labelled and test jets, for every head but masked
particles; see :func:`foundation.baselines.on_recipe.gbt_on_recipe`)."""
BASELINE_MODE = "gbt"


@dataclass(frozen=True)
class StudyResult:
    """Every run, the summary table (``{mode: {size: {metric: {mean, std, n}}}}``), and files."""

    points: list[StudyPoint]
    table: StudySummary
    markdown: Path
    json: Path
    plots: list[Path]
    lr_selection: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """``{mode: {N: {"monitor", "scores": {lr: value}, "chosen": lr}}}`` of the learning-rate
    grids."""


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
    """A trained point: its run (trained unless finished) and its test-split metrics."""
    paths = _train_point(recipe, overwrite, callbacks)
    test = json.loads(paths.metrics.read_text()).get("test", {})
    metrics = {key: float(value) for key, value in test.items() if value is not None}
    # The exact test-split metrics replace the training engine's batch-averaged ones.
    metrics.update(evaluation_metrics(paths.root))
    return metrics


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
    lr_grid = _checked_request(sizes, seeds, modes, lr_grid)
    folder = _study_folder(recipe, out, overwrite)
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
    files = write_study_report(folder, recipe.name, request, points, table, selections)
    return StudyResult(points, table, files.markdown, files.json, files.plots, selections)


def _checked_request(
    sizes: Sequence[int],
    seeds: int,
    modes: Sequence[str],
    lr_grid: Mapping[str, Sequence[float]] | None,
) -> dict[str, list[float]]:
    """The learning-rate grids as floats, once the request is checked (see
    :func:`data_efficiency` for the errors)."""
    unknown = [mode for mode in modes if mode not in STUDY_MODES]
    if unknown or not modes:
        raise ValueError(f"--modes: expected some of {', '.join(STUDY_MODES)}, found {list(modes)}")
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--sizes: expected positive numbers of jets, found {list(sizes)}")
    if seeds < 1:
        raise ValueError(f"--seeds: expected at least 1, found {seeds}")
    grids = {mode: [float(lr) for lr in grid] for mode, grid in (lr_grid or {}).items()}
    for mode, grid in grids.items():
        if mode not in modes or mode == BASELINE_MODE:
            raise ValueError(
                f"--lr-grid: expected a trained mode of --modes ({', '.join(modes)}), "
                f"found {mode!r}"
            )
        if not grid or min(grid) <= 0:
            raise ValueError(f"--lr-grid {mode}: expected positive learning rates, found {grid}")
    return grids


def _study_folder(recipe: Recipe, out: str | Path | None, overwrite: bool) -> Path:
    """The study folder, made; a study of another recipe there is kept unless ``overwrite``.

    Raises:
        OutputExistsError: the folder's ``study.json`` was written for another recipe.
    """
    folder = Path(out) if out else Path(f"{recipe.run_folder}-data-efficiency")
    if (folder / STUDY_JSON).is_file() and not overwrite:
        existing = json.loads((folder / STUDY_JSON).read_text()).get("request", {})
        if existing and existing.get("recipe") != recipe.to_dict():
            raise OutputExistsError(folder, "a study of another recipe")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
