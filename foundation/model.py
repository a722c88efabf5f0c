"""The :class:`Model`: one backbone and any number of named task heads, each with a loss weight."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.adapters import apply_adapter
from foundation.models.base import Backbone, Features
from foundation.models.registry import create_backbone
from heads.base import Head
from heads.registry import create_head, get_head_class

if TYPE_CHECKING:
    from foundation.hub.schema import FeatureSchema

_HEAD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Model(nn.Module):
    """A backbone shared by named heads.

    ``state_dict`` keys are ``backbone.<...>`` and ``heads.<name>.<...>``; a checkpoint folder
    stores them with the backbone's registered name and arguments and each head's type, arguments
    and loss weight (see :func:`foundation.hub.save_pretrained`).

    Args:
        backbone: a backbone instance.
        backbone_name: its registered name (needed to save the model; :meth:`create` sets it).
        heads: optional heads by name.
        loss_weights: optional loss weight by head name (default 1.0).

    Attributes:
        feature_schema: the input feature schema of a model loaded from a checkpoint (else None).
        adapters: adapters applied to the backbone, as ``{"type", "kwargs"}`` records, in order.
        source: where a model loaded with ``foundation.load_pretrained`` came from
            (``name_or_path``, ``revision``, ``folder``, ``sha256``, ``record``...), else None.
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        backbone_name: str | None = None,
        heads: Mapping[str, Head] | None = None,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.backbone_name = backbone_name
        self.heads = nn.ModuleDict()
        self.loss_weights: dict[str, float] = {}
        self.feature_schema: FeatureSchema | None = None
        self.adapters: list[dict[str, Any]] = []
        self.source: dict[str, Any] | None = None
        self._backbone_frozen = False
        weights = dict(loss_weights or {})
        unknown = set(weights) - set(heads or {})
        if unknown:
            raise KeyError(f"loss_weights name heads that are not given: {sorted(unknown)}")
        for name, head in (heads or {}).items():
            self.add_head(name, head, weight=weights.get(name, 1.0))

    @classmethod
    def create(
        cls,
        backbone: str,
        backbone_kwargs: Mapping[str, Any] | None = None,
        heads: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Model:
        """Build a model from registered names.

        Args:
            backbone: registered backbone name (e.g. ``"part-tiny"``).
            backbone_kwargs: its constructor arguments (``in_features`` is required).
            heads: ``{name: {"type": head_type, "weight": 1.0, **head_kwargs}}``; ``type``
                defaults to the head's name.

        Example:
            >>> model = Model.create("pfn-tiny", {"in_features": 17},
            ...                      {"jet_classification": {"label_names": ["qcd", "top"]}})
        """
        instance = create_backbone(backbone, **dict(backbone_kwargs or {}))
        model = cls(instance, backbone_name=backbone)
        for name, spec in (heads or {}).items():
            spec = dict(spec)
            head_type = spec.pop("type", name)
            weight = float(spec.pop("weight", 1.0))
            model.add_head(name, head_type, weight=weight, **spec)
        return model

    # ----------------------------------------------------------------------------------- heads
    def add_head(self, name: str, head: Head | str, *, weight: float = 1.0, **kwargs: Any) -> Head:
        """Attach a head under ``name``.

        Args:
            name: lower-case identifier (letters, digits, '_'), unique in this model.
            head: a head instance or a registered head type; a type is built with ``kwargs``,
                ``in_features`` (and other backbone-implied arguments) filled in.
            weight: the head's weight in :meth:`loss`.

        Raises:
            ValueError: malformed or duplicate name, negative weight, or a head whose
                ``in_features`` does not match the backbone.
        """
        if not isinstance(name, str) or not _HEAD_NAME.match(name):
            raise ValueError(
                f"head name {name!r} is malformed: expected lower-case letters, digits and '_', "
                "starting with a letter"
            )
        if name in self.heads:
            raise ValueError(f"the model already has a head named {name!r}; remove_head() first")
        if not weight >= 0:
            raise ValueError(f"head {name!r}: loss weight must be >= 0, found {weight}")
        if isinstance(head, str):
            arguments = {**get_head_class(head).defaults_from_backbone(self.backbone), **kwargs}
            head = create_head(head, **arguments)
        elif kwargs:
            raise ValueError(f"head {name!r}: keyword arguments only apply to a head type name")
        if not isinstance(head, Head):
            raise TypeError(f"head {name!r}: expected a Head or a head type, found {type(head)}")
        width = head.config.get("in_features")
        if width is not None and width != self.backbone.num_features:
            raise ValueError(
                f"head {name!r}: in_features={width} does not match the backbone's "
                f"num_features={self.backbone.num_features}"
            )
        self.heads[name] = head
        self.loss_weights[name] = float(weight)
        return head

    def remove_head(self, name: str) -> Head:
        """Detach and return the head ``name``."""
        head = self._head(name)
        del self.heads[name]
        del self.loss_weights[name]
        return head

    def reset_head(self, name: str) -> Head:
        """Replace the head ``name`` with a freshly initialised one of the same type and config."""
        old = self._head(name)
        fresh = create_head(old.head_type, **old.config)
        tensor = next(iter([*old.parameters(), *old.buffers()]), None)
        if tensor is not None:
            fresh.to(tensor.device)
        self.heads[name] = fresh
        return fresh

    def _head(self, name: str) -> Head:
        if name not in self.heads:
            raise KeyError(f"no head named {name!r}; heads: {', '.join(self.heads) or 'none'}")
        return self.heads[name]  # type: ignore[return-value]

    # -------------------------------------------------------------------------------- backbone
    def freeze_backbone(self, frozen: bool = True) -> None:
        """Stop (or restart) training the backbone.

        A frozen backbone has ``requires_grad=False`` and stays in eval mode (no dropout, fixed
        normalisation statistics) even when the model is put in training mode. Adapter
        parameters (names not in the base backbone, e.g. LoRA) are frozen too; re-enable them
        after freezing when fine-tuning with adapters.
        """
        self._backbone_frozen = bool(frozen)
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(not frozen)
        self.train(self.training)

    @property
    def backbone_frozen(self) -> bool:
        """Whether :meth:`freeze_backbone` is in effect."""
        return self._backbone_frozen

    def train(self, mode: bool = True) -> Model:
        super().train(mode)
        if self._backbone_frozen:
            self.backbone.eval()
        return self

    def add_adapter(self, adapter_type: str, **kwargs: Any) -> None:
        """Apply a registered adapter (see :mod:`foundation.models.adapters`) and record it."""
        apply_adapter(self, adapter_type, **kwargs)

    # --------------------------------------------------------------------------------- compute
    def features(self, batch: JetBatch) -> Features:
        """Run the backbone only."""
        return self.backbone(batch)

    def forward(
        self,
        batch: JetBatch,
        heads: Iterable[str] | None = None,
        features: Features | None = None,
    ) -> dict[str, dict[str, torch.Tensor]]:
        """Run the backbone once and every head (or the named ones) on its features.

        Args:
            batch: the jets.
            heads: the heads to run (default: all).
            features: the backbone's features of ``batch``, when they were computed already
                (e.g. by a :class:`~foundation.models.frozen_features.FrozenFeatureCache`).

        Returns:
            ``{head_name: {output_name: tensor}}``.
        """
        names = list(self.heads) if heads is None else list(heads)
        if features is None:
            features = self.backbone(batch)
        return {name: self._head(name)(features, batch) for name in names}

    def loss(
        self,
        batch: JetBatch,
        outputs: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
        heads: Sequence[str] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of the heads' losses.

        Args:
            batch: the batch with the targets of every head used.
            outputs: outputs of :meth:`forward` on ``batch`` (computed when None).
            heads: the heads to include (default: all).

        Returns:
            ``(total, {head_name: loss})`` where ``total = sum(weight * loss)``.
        """
        names = list(self.heads) if heads is None else list(heads)
        if outputs is None:
            outputs = self.forward(batch, names)
        per_head = {name: self._head(name).loss(dict(outputs[name]), batch) for name in names}
        if not per_head:
            total = batch.particles.new_zeros(())
        else:
            total = sum(self.loss_weights[name] * value for name, value in per_head.items())
        return total, per_head  # type: ignore[return-value]

    @torch.no_grad()
    def metrics(
        self,
        batch: JetBatch,
        outputs: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
        heads: Sequence[str] | None = None,
    ) -> dict[str, dict[str, torch.Tensor]]:
        """Each head's simple metrics on ``batch`` (``{head_name: {metric: scalar}}``)."""
        names = list(self.heads) if heads is None else list(heads)
        if outputs is None:
            outputs = self.forward(batch, names)
        return {name: self._head(name).metrics(dict(outputs[name]), batch) for name in names}

    # ---------------------------------------------------------------------------- checkpoints
    def check_feature_schema(self, batch_or_names: JetBatch | Sequence[str]) -> list[str]:
        """Differences between a batch's (or a list of) feature names and the checkpoint's.

        Returns:
            Human-readable differences; empty when they match.

        Raises:
            ValueError: the model has no feature schema (it was not loaded from a checkpoint).
        """
        if self.feature_schema is None:
            raise ValueError(
                "this model has no feature schema: it was not loaded from a checkpoint; "
                "set model.feature_schema or load it with foundation.load_pretrained"
            )
        return self.feature_schema.differences(batch_or_names)

    def save_pretrained(self, folder: str | PathLike[str], **kwargs: Any) -> Any:
        """Write a checkpoint folder (see :func:`foundation.hub.save_pretrained`)."""
        from foundation.hub.checkpoint import save_pretrained  # on first use: huggingface_hub

        return save_pretrained(self, folder, **kwargs)
