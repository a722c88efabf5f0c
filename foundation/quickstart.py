"""The quickstart: the whole product on a laptop in minutes.

It simulates a small top-vs-QCD sample (jets of pT 550-650 GeV, R = 0.8), loads the shipped
pretrained backbone, trains the same top-tagging head three ways on the same labelled jets
(frozen pretrained backbone, fully fine-tuned pretrained backbone, and the same architecture
from scratch), compares them on held-out jets (ROC AUC and background rejection 1/εB at
εS = 0.3), exports the best model to ONNX with the parity check and saves the plots.

Everything lands in one folder (``quickstart/`` by default). A rerun reuses the simulated jets
and the finished runs; the derived files (table, plot, ONNX model) are rewritten.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from foundation.data.slots import DEFAULT_MAX_PARTICLES
from foundation.errors import OutputExistsError
from foundation.training.modes import HEADLINE

DEFAULT_BACKBONE = "jetformer-tiny.sim300k"
"""The shipped checkpoint the quickstart fine-tunes (see ``foundation hub list``)."""
QUICKSTART_CARD = "default"
"""The detector card of the quickstart's jets: ``default`` (``generic-lhc-v1``), the card
:data:`DEFAULT_BACKBONE` was pretrained on and the README's quickstart table was measured with
(pinned: the library's default card, ``jetclass``, would make other jets)."""
MODES: tuple[str, ...] = HEADLINE
LR_GRID: dict[str, tuple[float, ...]] = {
    "frozen": (1e-3, 3e-3),
    "full": (2e-4, 1e-3),
    "scratch": (3e-3, 1e-2),
}
"""Learning rates each mode chooses from on the validation split (heads train at 5x the rate
when the backbone is pretrained): a frozen backbone's head, a fine-tuned backbone and fresh
weights each learn best at their own rate."""
MARKER = "quickstart.json"
HEAD = "top"


@dataclass(frozen=True)
class QuickstartConfig:
    """What the quickstart makes, and where.

    Attributes:
        out: output folder (refused when it holds something other than a quickstart).
        backbone: pretrained checkpoint name, folder or Hub repository.
        jets: simulated jets per class (top and QCD), split 50/10/40 by event (a large test
            split, so that a background rejection of several hundred is still measured).
        train_size: labelled training jets (a stratified, seeded subsample).
        epochs: training epochs of each of the three runs.
        workers: parallel simulation processes.
        seed: seed of the simulation, the subsample and the training.
        card: detector card of the simulated jets, a shipped name or YAML path (default
            :data:`QUICKSTART_CARD`, the pretraining card of :data:`DEFAULT_BACKBONE`; another
            backbone may want another card, e.g. ``jetclass`` for one pretrained on its jets).
        lr_grid: learning rates per mode, the best on the validation split kept (one run per
            rate: the quickstart makes ``sum(len(grid))`` runs).
    """

    out: Path = Path("quickstart")
    backbone: str = DEFAULT_BACKBONE
    jets: int = 2500
    train_size: int = 1000
    epochs: int = 15
    workers: int = 2
    seed: int = 42
    card: str = QUICKSTART_CARD
    lr_grid: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(LR_GRID))


@dataclass
class QuickstartResult:
    """The comparison table and the files written."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    best_mode: str = ""
    files: dict[str, str] = field(default_factory=dict)


def quickstart_recipe(config: QuickstartConfig) -> Any:
    """The top-tagging fine-tuning recipe the quickstart runs (a validated ``Recipe``)."""
    from foundation.training.recipe import recipe_from_dict
    from heads.jet_classification import JetClassificationHead

    out = config.out.resolve()
    return recipe_from_dict(
        {
            "name": "quickstart_top_tagging",
            "description": "Top (t -> bqq') vs QCD jets, R = 0.8, pT 550-650 GeV (quickstart).",
            "data": {
                "simulate": {
                    "process": "toptagging",
                    "jets": config.jets,
                    "seed": config.seed,
                    "pt_range": [550.0, 650.0],
                    "shard_size": max(1, config.jets // 2),
                    "workers": config.workers,
                    "card": config.card,
                    "folder": str(out / "data"),
                },
                "cache_root": str(out / "cache"),
                "features": "full",
                "max_particles": DEFAULT_MAX_PARTICLES,
                "classes": ["label_QCD", "label_Tbqq"],
                "split": {"train": 0.5, "val": 0.1, "test": 0.4, "seed": config.seed},
                "train_size": config.train_size,
                "batch_size": 128,
            },
            "model": {
                "pretrained": config.backbone,
                "heads": {
                    HEAD: {"type": JetClassificationHead.head_type, "kwargs": {"hidden": [64]}}
                },
            },
            "finetune": {"mode": "full", "head_lr_multiplier": 5.0},
            "optimizer": {"lr": 1.0e-3, "weight_decay": 0.01, "schedule": "cosine"},
            "trainer": {"max_epochs": config.epochs, "seed": config.seed, "log_every": 10},
            "output": {"folder": str(out / "runs")},
        },
        "quickstart",
    )


def _check_folder(out: Path) -> None:
    """Refuse a non-empty folder that is not a previous quickstart."""
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise OutputExistsError(out, f"files that are not a quickstart (no {MARKER})")


def training_threads() -> int:
    """Intra-op threads for training: the cores not already busy (1-minute load), at least 1.

    On a shared machine, as many threads as cores spin against the other jobs and multiply the
    training time (measured: 7x with one 2-thread neighbour on 2 cores); one thread per free core
    does not. The quickstart asks before it starts its own simulation workers.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        load = 0.0
    return max(1, min(cores or 1, round((cores or 1) - load)))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run_quickstart(
    config: QuickstartConfig, echo: Callable[[str], None] = print
) -> QuickstartResult:
    """Run the quickstart end to end and return its table and files.

    Raises:
        OutputExistsError: ``config.out`` holds files that are not a quickstart.
        KeyError: the pretrained backbone is not found (the message lists the shipped ones).
    """
    from foundation.export import export_onnx
    from foundation.training.sources import simulate

    clock = _PhaseClock(echo)
    threads = training_threads()  # before our own simulation workers load the machine
    out = config.out
    _check_folder(out)
    _check_backbone(config.backbone)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"config": {**asdict(config), "out": str(out)}}))

    echo(
        f"[1/4] simulating {config.jets} top and {config.jets} QCD jets "
        f"(pT 550-650 GeV, detector card {config.card}) into {out / 'data'} ..."
    )
    recipe = quickstart_recipe(config)
    simulate(recipe.data.simulate)
    clock.done("simulation")
    study = _train(config, recipe, threads, echo)
    clock.done("training")

    echo("[3/4] evaluating on held-out jets ...")
    result = _score(study, recipe, out)
    clock.done("evaluation")

    best = max(result.rows, key=lambda row: row["roc_auc"])
    echo(f"[4/4] exporting the best model ({best['mode']}) to ONNX with the parity check ...")
    report = export_onnx(Path(best["run"]) / "best", out / "model.onnx", overwrite=True)
    clock.done("export")
    worst = max(o.max_abs for o in report.parity.outputs) if report.parity else float("nan")
    result.files.update(
        {
            "onnx_model": str(report.path),
            "study_table": str(study.markdown),
            "simulated_jets": str(out / "data"),
            "runs": str(out / "study"),
        }
    )
    table = format_rows(result.rows)
    (out / "results.md").write_text(table + "\n")
    result.files["results"] = str(out / "results.md")
    _write_marker(config, result, worst)
    echo("")
    echo(table)
    echo("")
    echo(
        f"ONNX parity (ONNX Runtime vs PyTorch, {len(report.parity.cases) if report.parity else 0}"
        f" shapes incl. 0 and 1 particles): max |difference| = {worst:.1e}"
    )
    for name, path in result.files.items():
        echo(f"  {name:<15} {path}")
    echo(f"quickstart finished in {clock.total()}")
    return result


class _PhaseClock:
    """Prints how long each phase took, and the total."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.started = self.mark = time.monotonic()

    def done(self, phase: str) -> None:
        now = time.monotonic()
        self.echo(f"      {phase} done in {_minutes(now - self.mark)}")
        self.mark = now

    def total(self) -> str:
        return _minutes(time.monotonic() - self.started)


def _check_backbone(backbone: str) -> None:
    """Refuse a pretrained backbone that cannot be found, listing the shipped ones."""
    from foundation.hub import list_pretrained
    from foundation.hub.resolve import resolve_checkpoint

    try:
        resolve_checkpoint(backbone, None)
    except (OSError, ValueError, KeyError) as error:
        raise KeyError(
            f"pretrained backbone {backbone!r} not found ({error}); shipped: "
            f"{', '.join(list_pretrained()) or 'none'}"
        ) from None


def _train(config: QuickstartConfig, recipe: Any, threads: int, echo: Callable[[str], None]) -> Any:
    """The three modes at each of their learning rates, a line per epoch (a ``StudyResult``)."""
    import torch

    from foundation.training.epoch_log import EpochLog
    from foundation.training.study import data_efficiency

    torch.set_num_threads(threads)
    runs = sum(len(config.lr_grid.get(mode, (0,))) for mode in MODES)
    echo(
        f"[2/4] training the '{HEAD}' head on {config.train_size} labelled jets: "
        f"{', '.join(MODES)} (backbone {config.backbone}), each at the best of its learning "
        f"rates on the validation jets: {runs} runs of {config.epochs} epochs, {threads} "
        f"thread{'s' if threads > 1 else ''} ..."
    )
    return data_efficiency(
        recipe,
        [config.train_size],
        1,
        MODES,
        config.out / "study",
        lr_grid=config.lr_grid,
        callbacks=[EpochLog(echo, base=config.out / "study")],
    )


def _score(study: Any, recipe: Any, out: Path) -> QuickstartResult:
    """AUC and 1/εB of every mode on the test jets, and the ROC plot."""
    from foundation.evaluation.labels import mode_label
    from foundation.evaluation.metrics import background_rejection, roc_auc
    from foundation.evaluation.plots import plot_roc
    from foundation.training.run_scores import binary_scores

    chosen = study.lr_selection
    result = QuickstartResult()
    curves = {}
    for point in study.points:
        scores, labels = binary_scores(point.folder)[HEAD]
        curves[mode_label(point.mode)] = (scores, labels)  # the legend names of the table
        result.rows.append(
            {
                "mode": point.mode,
                "train_jets": point.size,
                "test_jets": len(labels),
                "test_background_jets": int((labels == 0).sum()),
                "lr": chosen[point.mode][str(point.size)]["chosen"]
                if point.mode in chosen
                else recipe.optimizer.lr,
                "roc_auc": roc_auc(scores, labels),
                "rejection_at_0.3": background_rejection(scores, labels, 0.3),
                "run": str(point.folder),
            }
        )
    result.best_mode = max(result.rows, key=lambda row: row["roc_auc"])["mode"]
    result.files["roc_plot"] = str(plot_roc(curves, out / "roc.png", title="top vs QCD"))
    return result


def _write_marker(config: QuickstartConfig, result: QuickstartResult, worst: float) -> None:
    """``quickstart.json``: the configuration, the table, the parity and the files."""
    rows = [
        {k: _finite(v) if isinstance(v, float) else v for k, v in row.items()}
        for row in result.rows
    ]
    record = {
        "config": {**asdict(config), "out": str(config.out)},
        "rows": rows,
        "best_mode": result.best_mode,
        "onnx_parity_max_abs_difference": _finite(worst),
        "files": result.files,
    }
    (config.out / MARKER).write_text(json.dumps(record, indent=2))


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table."""
    from foundation.evaluation.labels import mode_label

    lines = [
        "| backbone | labelled jets | learning rate | test jets | ROC AUC | 1/εB at εS = 0.3 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        rejection = row["rejection_at_0.3"]
        # No test background jet passes: the rejection is only bounded by the sample size.
        shown = (
            f"{rejection:.1f}" if math.isfinite(rejection) else f"> {row['test_background_jets']}"
        )
        lines.append(
            f"| {mode_label(row['mode'])} | {row['train_jets']} | {row['lr']:g} "
            f"| {row['test_jets']} "
            f"| {row['roc_auc']:.4f} | {shown} |"
        )
    return "\n".join(lines)
