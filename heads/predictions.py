"""What a head's evaluation collects: one batch's outputs in, a head's numpy arrays out.

A head that can be evaluated returns a :class:`Collector` from :meth:`heads.base.Head.collector`;
:func:`foundation.evaluation.predict.predict` feeds it every batch and gathers its
:class:`HeadPredictions`, which the head's :meth:`~heads.base.Head.score` turns into metrics and
plots. This module is numpy and torch only (no scikit-learn, no matplotlib), so that a head can
import it at module level.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from foundation.data.batch import JetBatch

if TYPE_CHECKING:  # pragma: no cover - typing only
    from heads.base import Head

LABEL_TARGET = "label"
"""The batch target holding the data's class indices (into the data's label names)."""

Scored = tuple[dict[str, Any], list[Path]]
"""What a head's :meth:`~heads.base.Head.score` returns: its metrics and the PNGs it wrote."""


@dataclass(frozen=True)
class PredictionStep:
    """What a collector needs to know about the current batch besides the outputs.

    Attributes:
        batch: the batch the model ran on (masked, for heads that use masking).
        jet_offset: jets seen before this batch (to number jets over the whole loader).
        node_offset: real particles seen before this batch (to number particles).
        raw_jet: the unnormalized jet-level inputs ``[B, J]`` when the loader carries them.
    """

    batch: JetBatch
    jet_offset: int
    node_offset: int
    raw_jet: torch.Tensor | None


@dataclass
class HeadPredictions:
    """What :func:`~foundation.evaluation.predict.predict` collected for one head.

    Attributes:
        name: the head's name in the model.
        kind: the registered name of the head class that scores these arrays
            (:attr:`heads.base.Head.kind`).
        level: the head's level.
        label_names: the head's class (or target, or feature) names.
        arrays: the collected arrays (their keys are the head's own).
        n_jets: jets the model ran on.
        skipped: why nothing was collected (the data lacks the head's target), else None.
    """

    name: str
    kind: str
    level: str
    label_names: tuple[str, ...]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    n_jets: int = 0
    skipped: str | None = None


@dataclass(frozen=True)
class ScoreSettings:
    """The evaluation's settings, passed to every head's :meth:`~heads.base.Head.score`.

    Attributes:
        n_bootstrap: bootstrap resamples of the jet-level metrics (0: none).
        seed: bootstrap seed.
        bins: pT bins of regression heads (a count of equal-population bins, or edges).
        efficiencies: signal efficiencies of the background rejections.
        threshold: pair score above which two tracks are joined in vertex finding.
    """

    n_bootstrap: int
    seed: int
    bins: int | Sequence[float]
    efficiencies: Sequence[float]
    threshold: float


class Collector:
    """Accumulates one head's arrays batch after batch.

    Subclasses implement :meth:`collect_batch`, which calls :meth:`add` with the arrays of one
    batch; a ``KeyError`` there (a target the batch lacks) skips the head when not ``strict``.

    Args:
        name: the head's name in the model.
        head: the head.
        lookup: maps the data's class indices to the head's (see :func:`label_lookup`).

    Attributes:
        label_names: names written with the predictions (default: the head's).
        skipped: why the head was skipped, else None.
    """

    def __init__(self, name: str, head: Head, lookup: np.ndarray | None = None) -> None:
        self.name, self.head, self.lookup = name, head, lookup
        self.chunks: dict[str, list[np.ndarray]] = {}
        self.label_names: tuple[str, ...] = tuple(head.label_names)
        self.skipped: str | None = None

    def add(self, **arrays: np.ndarray) -> None:
        """Append one batch's arrays (concatenated along the first axis at the end)."""
        for key, value in arrays.items():
            self.chunks.setdefault(key, []).append(value)

    def collect(
        self, outputs: Mapping[str, torch.Tensor], step: PredictionStep, strict: bool
    ) -> None:
        """Collect one batch; without ``strict``, a missing target skips the head from then on."""
        if self.skipped is not None:
            return
        try:
            self.collect_batch(outputs, step)
        except KeyError as error:
            if strict:
                raise
            self.skipped = str(error.args[0] if error.args else error)

    def collect_batch(self, outputs: Mapping[str, torch.Tensor], step: PredictionStep) -> None:
        """Read one batch's outputs and targets and :meth:`add` the arrays."""
        raise NotImplementedError  # pragma: no cover - interface

    def result(self, n_jets: int) -> HeadPredictions:
        """The collected arrays (none when skipped)."""
        arrays = {key: np.concatenate(values) for key, values in self.chunks.items()}
        if self.skipped is not None:
            arrays = {}
        head = self.head
        return HeadPredictions(
            self.name, head.kind, head.level, self.label_names, arrays, n_jets, self.skipped
        )


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A detached CPU copy (floating point as float32)."""
    return tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else None).numpy()


def class_labels(target: torch.Tensor, lookup: np.ndarray | None) -> np.ndarray:
    """Class indices from indices or one-hot rows, mapped through ``lookup`` (-1 unlabelled).

    Shapes:
        - target: ``[B]`` or ``[B, K]``
        - output: ``[B]`` int64
    """
    if target.dim() == 2:
        labelled = target.sum(dim=1) > 0
        target = torch.where(labelled, target.argmax(dim=1), -1)
    labels = target.long().cpu().numpy().reshape(-1)
    if lookup is not None:
        labels = np.where(labels >= 0, lookup[np.clip(labels, 0, len(lookup) - 1)], -1)
    return labels


def label_lookup(
    data_label_names: Sequence[str], head_label_names: Sequence[str], head: str = "head"
) -> np.ndarray | None:
    """Map data class indices to a head's class indices by name (-1 for classes it lacks).

    Returns:
        The lookup array ``[len(data_label_names)]``, or None when the names are the same.

    Raises:
        ValueError: no class name is shared and the class counts differ.
    """
    data, own = tuple(data_label_names), tuple(head_label_names)
    if data == own or not data:
        return None
    lookup = np.array([own.index(name) if name in own else -1 for name in data], dtype=np.int64)
    if (lookup >= 0).any():
        return lookup
    if len(data) == len(own):
        warnings.warn(
            f"head {head!r}: data labels {data} share no name with the head's labels {own}; "
            "using the class indices as they are",
            stacklevel=4,
        )
        return None
    raise ValueError(
        f"head {head!r}: the data's labels {data} share no class with the head's labels {own}; "
        "evaluate on data with the classes the head was trained on"
    )
