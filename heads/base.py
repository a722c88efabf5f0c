"""The head contract: Features (+ the batch) in, a dict of named outputs out."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features


class Head(nn.Module):
    """Base class of every registered head.

    Subclasses set the class attribute ``level`` (``"jet"``, ``"particle"`` or ``"pair"``) and, in
    ``__init__``, store the keyword arguments they were built with in ``self.config``
    (JSON-serialisable), so that ``create_head(head_type, **config)`` rebuilds them.

    Attributes:
        head_type: the registered name (set by :func:`~heads.registry.register_head`).
        level: what one output row describes: a jet, a particle or a pair of particles.
        target_key: the key of ``batch.targets`` that the loss and metrics read.
        label_names: class names of classification heads, target names of regression heads.
        output_names: the keys of the dict returned by ``forward``, in order (ONNX output names).
        config: constructor arguments, enough to rebuild the head.
    """

    head_type: ClassVar[str] = ""
    level: ClassVar[str] = ""

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

    def extra_repr(self) -> str:
        return f"level={self.level!r}, target={self.target_key!r}"
