"""Run a :class:`~foundation.model.Model` over a loader and collect outputs and targets (numpy).

Each head collects its own arrays: :meth:`heads.base.Head.collector` gives the
:class:`~heads.predictions.Collector` that reads one batch's outputs and targets (the arrays of
the built-in heads are described in :mod:`heads.evaluation`). Heads that use masking
(:attr:`heads.base.Head.uses_masking`) run on a copy of each batch masked with
:func:`heads.masked_particle.mask_particles` (seeded); the others on the batch with the targets
their heads derive (:meth:`heads.base.Head.with_derived_targets`) added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import torch

from foundation.data.batch import JetBatch
from foundation.model import Model
from heads.base import Head
from heads.predictions import (
    LABEL_TARGET,
    Collector,
    HeadPredictions,
    PredictionStep,
    label_lookup,
)

__all__ = [
    "LABEL_TARGET",
    "RAW_JET",
    "HeadPredictions",
    "head_kind",
    "label_lookup",
    "predict",
]

RAW_JET = "raw_jet"
"""Batch target with the unnormalized jet-level inputs ``[B, J]`` (see
:class:`foundation.evaluation.inputs.EvaluationDataset`); it is not passed on to the heads."""


def head_kind(head: Head) -> str | None:
    """The evaluation kind of a head (:attr:`heads.base.Head.kind`, the ``kind`` of its
    predictions), or None when it cannot be evaluated (it has no collector)."""
    return head.kind if type(head).collector is not Head.collector else None


def _data_label_names(loader: Iterable[JetBatch]) -> tuple[str, ...]:
    info = getattr(getattr(loader, "dataset", None), "info", None)
    return tuple(getattr(info, "label_names", ()) or ())


def _collectors(
    model: Model, names: Sequence[str], data_labels: Sequence[str], named: bool
) -> list[Collector]:
    """The collector of each named head; a head without one is left out, or an error when the
    heads were ``named`` by the caller."""
    collectors = []
    for name in names:
        if name not in model.heads:
            raise KeyError(f"no head named {name!r}; heads: {', '.join(model.heads) or 'none'}")
        head: Head = model.heads[name]  # type: ignore[assignment]
        collector = head.collector(name, data_labels)
        if collector is None:
            if named:
                raise ValueError(f"head {name!r} ({head.head_type}) cannot be evaluated")
            continue
        collectors.append(collector)
    return collectors


@torch.no_grad()
def predict(
    model: Model,
    loader: Iterable[JetBatch],
    *,
    heads: Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    mask_fraction: float = 0.15,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, HeadPredictions]:
    """Run ``model`` (in eval mode, no gradients) over ``loader`` and collect every head's arrays.

    Args:
        model: the model.
        loader: yields :class:`~foundation.data.batch.JetBatch` es (e.g.
            :func:`foundation.data.loading.make_loader`).
        heads: the heads to evaluate; a head whose target the data lacks is an error. By
            default every head that can be evaluated, skipping (with the reason in
            :attr:`HeadPredictions.skipped`) those whose targets the data lacks.
        label_names: the data's class names, which ``batch.targets["label"]`` indexes (default:
            ``loader.dataset.info.label_names`` when the loader reads a cache). A classification
            head whose own ``label_names`` differ gets the labels mapped by name; jets of
            classes it does not know get -1 (left out).
        mask_fraction: fraction of particles hidden for heads that use masking.
        seed: seed of that masking.
        device: where to run (default: the model's device).

    Returns:
        ``{head_name: HeadPredictions}``.

    Raises:
        KeyError: a named head does not exist, or a batch lacks a named head's target.
        ValueError: a named head cannot be evaluated, or labels that cannot be mapped.
    """
    from heads.masked_particle import mask_particles

    names = list(model.heads) if heads is None else list(heads)
    data_labels = tuple(label_names) if label_names is not None else _data_label_names(loader)
    collectors = _collectors(model, names, data_labels, named=heads is not None)
    if device is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    strict = heads is not None
    regular = [c for c in collectors if not c.head.uses_masking]
    masked = [c for c in collectors if c.head.uses_masking]
    model.eval()
    jets = nodes = 0
    for batch in loader:
        raw_jet = batch.targets.get(RAW_JET)
        if raw_jet is not None:
            targets = {key: value for key, value in batch.targets.items() if key != RAW_JET}
            batch = dataclasses.replace(batch, targets=targets)
        batch = batch.to(device).trimmed()
        for collector in regular:
            batch = collector.head.with_derived_targets(batch)
        if regular:
            outputs = model(batch, heads=[c.name for c in regular])
            step = PredictionStep(batch, jets, nodes, raw_jet)
            for collector in regular:
                collector.collect(outputs[collector.name], step, strict)
        if masked:
            hidden = mask_particles(batch, mask_fraction, generator=generator)
            outputs = model(hidden, heads=[c.name for c in masked])
            step = PredictionStep(hidden, jets, nodes, raw_jet)
            for collector in masked:
                collector.collect(outputs[collector.name], step, strict)
        jets += len(batch)
        nodes += int(batch.mask.sum())
    return {c.name: c.result(jets) for c in collectors}
