"""The head contract: Features (+ the batch) in, a dict of named outputs out; and the head's task.

A head owns its task, as ATLAS Salt's task classes do: besides its network, loss and metrics it
declares the targets it reads (:meth:`Head.data_targets`), the constructor arguments the data
determines (:meth:`Head.defaults_from_data`), how its predictions are collected
(:meth:`Head.collector`) and scored and plotted (:meth:`Head.score`). Training, evaluation,
studies, baselines and export call these methods; none of them knows a head by its name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from heads.predictions import Collector, HeadPredictions, Scored, ScoreSettings


class DataDescription(Protocol):
    """What a head may read about the prepared data (e.g. the training's ``DataSummary``)."""

    @property
    def label_names(self) -> tuple[str, ...]: ...  # class names, in class-index order

    @property
    def feature_names(self) -> tuple[str, ...]: ...  # particle input features, in order


class Head(nn.Module):
    """Base class of every registered head.

    Subclasses set the class attribute ``level`` (``"jet"``, ``"particle"`` or ``"pair"``) and, in
    ``__init__``, store the keyword arguments they were built with in ``self.config``
    (JSON-serialisable), so that ``create_head(head_type, **config)`` rebuilds them.

    Attributes:
        head_type: the registered name (set by :func:`~heads.registry.register_head`).
        kind: the registered name of the class whose :meth:`collector` and :meth:`score` the
            head uses (its own name, or a registered parent's when it inherits them); the
            ``kind`` of its :class:`~heads.predictions.HeadPredictions` and of ``metrics.json``.
        level: what one output row describes: a jet, a particle or a pair of particles.
        task: ``"classification"``, ``"regression"`` or ``"reconstruction"`` (what baselines
            and exporters look for; ``""`` for none of those).
        uses_masking: the head is trained and evaluated on batches made by
            :func:`heads.masked_particle.mask_particles` (the model's other heads see the same
            masked batch in training).
        target_key: the key of ``batch.targets`` that the loss and metrics read.
        label_names: class names of classification heads, target names of regression heads.
        output_names: the keys of the dict returned by ``forward``, in order (ONNX output names).
        config: constructor arguments, enough to rebuild the head.
    """

    head_type: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    level: ClassVar[str] = ""
    task: ClassVar[str] = ""
    uses_masking: ClassVar[bool] = False

    target_key: str
    label_names: tuple[str, ...]
    config: dict[str, Any]

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the outputs of ``forward``, in order."""
        raise NotImplementedError  # pragma: no cover - interface

    @classmethod
    def defaults_from_backbone(cls, backbone: Backbone) -> dict[str, Any]:
        """Constructor arguments implied by the backbone the head sits on (``in_features``)."""
        return {"in_features": int(backbone.num_features)}

    def forward(self, features: Features, batch: JetBatch) -> dict[str, torch.Tensor]:
        """Compute the head's outputs (padding entries of particle/pair outputs are 0)."""
        raise NotImplementedError  # pragma: no cover - interface

    def loss(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> torch.Tensor:
        """Scalar training loss from this head's outputs and ``batch.targets``."""
        raise NotImplementedError  # pragma: no cover - interface

    def metrics(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> dict[str, torch.Tensor]:
        """Simple per-batch metrics (detached scalar tensors) from outputs and targets."""
        raise NotImplementedError  # pragma: no cover - interface

    def target(self, batch: JetBatch, key: str | None = None) -> torch.Tensor:
        """Return ``batch.targets[key or self.target_key]`` with a clear error when it is absent.

        Raises:
            KeyError: the batch has no such target (the message lists the targets it has).
        """
        key = key or self.target_key
        if key not in batch.targets:
            available = ", ".join(sorted(batch.targets)) or "none"
            raise KeyError(
                f"head {self.head_type!r} needs target {key!r} in batch.targets; "
                f"the batch has: {available}"
            )
        return batch.targets[key]

    # ------------------------------------------------------------------------------ the task
    @classmethod
    def defaults_from_data(cls, data: DataDescription) -> dict[str, Any]:
        """Constructor arguments the prepared data determines, used where a recipe leaves them
        out (e.g. the class names of a classifier). None by default."""
        return {}

    def data_targets(self) -> tuple[str, ...]:
        """The ``batch.targets`` keys the data must provide for this head (default: its
        ``target_key``)."""
        return (self.target_key,)

    def evaluation_targets(self) -> tuple[str, ...]:
        """Targets the evaluation reads when the data has them, besides :meth:`data_targets`
        (none by default)."""
        return ()

    def with_derived_targets(self, batch: JetBatch) -> JetBatch:
        """``batch`` with the targets this head derives from others added where missing
        (unchanged by default); applied before the model runs in evaluation."""
        return batch

    def collector(self, name: str, data_label_names: Sequence[str]) -> Collector | None:
        """A fresh :class:`~heads.predictions.Collector` of this head's predictions, or None
        when the head cannot be evaluated (the default).

        Args:
            name: the head's name in the model.
            data_label_names: the data's class names, which ``batch.targets["label"]`` indexes
                (empty when unknown).
        """
        return None

    @classmethod
    def score(
        cls, predictions: HeadPredictions, folder: Path | None, settings: ScoreSettings
    ) -> Scored:
        """Metrics of collected predictions and, with ``folder``, the PNG plots written there
        (named ``<head>_<plot>.png``).

        Raises:
            NotImplementedError: the head has a collector but no scoring.
        """
        raise NotImplementedError(
            f"head {cls.head_type!r} collects predictions but defines no score()"
        )

    def class_probabilities(self, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Probabilities over ``label_names`` from a classification head's outputs: its
        ``probabilities``, or ``[1 - p, p]`` from a binary ``probability``.

        Shapes:
            - output: ``[rows, K]`` (``K = len(label_names)``)

        Raises:
            KeyError: the outputs hold neither.
        """
        if "probabilities" in outputs:
            return outputs["probabilities"]
        if "probability" in outputs:
            probability = outputs["probability"].unsqueeze(-1)
            return torch.cat([1 - probability, probability], dim=-1)
        raise KeyError(
            f"head {self.head_type!r}: no 'probabilities' or 'probability' output among "
            f"{list(outputs)}"
        )

    @property
    def binary_output(self) -> str | None:
        """The output holding the probability of ``label_names[1]`` when the head is a binary
        classifier with one score per row, else None (the default)."""
        return None

    def extra_repr(self) -> str:
        return f"level={self.level!r}, target={self.target_key!r}"
