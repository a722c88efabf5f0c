"""D1 accuracy side by side: one plain training loop, the same jets, epochs and optimizer for all.

Every contender is a module mapping a :class:`JetBatch` to class logits ``[B, 2]`` (QCD, top),
trained from scratch with softmax cross-entropy by :func:`train_classifier`: AdamW, linear
warm-up (5 % of the steps) then cosine decay to 0, a fixed seed, the data module's seeded
shuffling. No early stopping and no model selection: the validation split is unused, the test
split is scored once, after the last epoch.

The jets are the recipe's D1 definition (``recipes/top_tagging.yaml``: classes, split, features,
128 particle slots, normalization fitted on the training jets) read from ROOT files, through the
project's cache and :class:`~foundation.training.datamodule.JetDataModule`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from harness import autocast
from torch import nn

from foundation.data.batch import JetBatch
from foundation.evaluation.metrics import binary_metrics, rejection_key
from foundation.training.datamodule import JetDataModule
from foundation.training.optim import WarmupSchedule
from foundation.training.recipe import load_recipe, with_changes

SIGNAL_EFFICIENCIES = (0.3, 0.5)
DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "top_tagging.yaml"


def d1_data(
    files: Sequence[str] = (),
    *,
    cache: str | None = None,
    cache_root: str = "data/cache",
    train_size: int | None,
    batch_size: int,
    seed: int = 0,
    recipe: str | Path = DEFAULT_RECIPE,
    subsample_seed: int | None = None,
) -> JetDataModule:
    """The prepared D1 data module: the recipe's data section, reading ``files`` or ``cache``.

    Args:
        files: D1 ROOT files or globs (cached under ``cache_root`` on first use).
        cache: an existing cache folder of D1 jets instead (e.g. the one the data-efficiency
            study made), so that both studies use the same jets and splits.
        cache_root: parent of the cache made from ``files``.
        train_size: training jets (a stratified, seeded subsample; None: the whole split).
        batch_size: training and evaluation batch size.
        seed: shuffling seed.
        recipe: the recipe whose ``data`` section defines the jets (D1 by default).
        subsample_seed: ``K`` adds ``K`` to the recipe's ``data.subsample_seed``, as seed ``K``
            of the data-efficiency study does (the same labelled jets); None keeps it.

    Raises:
        DataError: bad files, or ``train_size`` above the training split.
    """
    base = load_recipe(recipe)
    changed = with_changes(
        base,
        data={
            "files": [] if cache else list(files),
            "cache": cache,
            "simulate": None,
            "cache_root": cache_root,
            "train_size": train_size,
            "batch_size": batch_size,
            "subsample_seed": base.data.subsample_seed + (subsample_seed or 0),
        },
        model={"pretrained": None, "backbone": "jetformer-tiny"},
    )
    data = JetDataModule(changed.data, seed=seed, show_progress=False)
    data.prepare()
    data.require_targets(["label"])
    return data


def _labels(batch: JetBatch) -> torch.Tensor:
    return batch.targets["label"].long()


def train_classifier(
    model: nn.Module,
    batches: Callable[[int], Sequence[JetBatch] | Any],
    *,
    epochs: int,
    steps_per_epoch: int,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Train ``model`` (JetBatch -> logits) with the shared recipe; returns timing figures.

    Args:
        model: the classifier, on ``device``.
        batches: ``batches(epoch)`` -> an iterable of training batches (labels in
            ``targets["label"]``, -1 ignored).
        epochs: passes over the data.
        steps_per_epoch: batches per epoch (sets the schedule length).
        lr: peak learning rate.
        weight_decay: AdamW weight decay (on every parameter).
        device: where the model is.
        autocast_dtype: e.g. ``torch.bfloat16`` for mixed precision, None for float32.
    """
    device = torch.device(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    total = max(1, epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupSchedule(total, round(0.05 * total), "cosine", 0.0)
    )
    model.train()
    started = time.perf_counter()
    jets = 0
    last_loss = float("nan")
    for epoch in range(epochs):
        for batch in batches(epoch):
            batch = batch.to(device, non_blocking=True)
            labels = _labels(batch)
            with autocast(device, autocast_dtype):
                logits = model(batch)
            loss = F.cross_entropy(logits.float(), labels.clamp(min=0), reduction="none")
            loss = (loss * (labels >= 0)).sum() / (labels >= 0).sum().clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            jets += len(batch)
            last_loss = float(loss.detach())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {"train_seconds": seconds, "train_jets_per_s": jets / seconds, "final_loss": last_loss}


@torch.no_grad()
def predict(
    model: nn.Module,
    batches: Sequence[JetBatch] | Any,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Signal probabilities (softmax of class 1) and labels of the labelled jets."""
    device = torch.device(device)
    model.eval()
    scores, labels = [], []
    for batch in batches:
        batch = batch.to(device)
        with autocast(device, autocast_dtype):
            logits = model(batch)
        keep = _labels(batch) >= 0
        scores.append(torch.softmax(logits.float(), dim=-1)[:, 1][keep].double().cpu().numpy())
        labels.append(_labels(batch)[keep].cpu().numpy())
    return np.concatenate(scores), np.concatenate(labels)


def physics_scores(scores: np.ndarray, labels: np.ndarray, resamples: int = 100) -> dict[str, Any]:
    """ROC AUC and 1/εB at εS = 0.3 and 0.5, each with a bootstrap standard deviation
    (:func:`~foundation.evaluation.metrics.binary_metrics`, under the harness's key names)."""
    metrics = binary_metrics(
        scores, labels, efficiencies=SIGNAL_EFFICIENCIES, n_bootstrap=resamples, seed=0
    )
    out: dict[str, Any] = {"eval_jets": len(labels), "eval_signal": int(labels.sum())}
    names = {"auc": "auc"} | {rejection_key(e): f"rejection_{e:g}" for e in SIGNAL_EFFICIENCIES}
    for source, name in names.items():
        out[name] = metrics[source]
        out[f"{name}_std"] = metrics[f"{source}_std"]
    return out
