"""Masked-particle modelling: reconstruct the inputs of particles hidden from the backbone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from heads.base import DataDescription, Head
from heads.layers import masked_mean, mlp
from heads.predictions import Collector, HeadPredictions, Scored, ScoreSettings
from heads.registry import register_head

MASKED_TARGET = "masked_particle"
"""Default key of the reconstruction target ``[B, N, F]`` (the original particle features)."""

MASK_SUFFIX = "_mask"
"""Suffix of the key of the ``[B, N]`` bool target marking which particles were masked."""


def mask_particles(
    batch: JetBatch,
    fraction: float = 0.15,
    *,
    generator: torch.Generator | None = None,
    target: str = MASKED_TARGET,
    fill_value: float = 0.0,
) -> JetBatch:
    """Hide a fraction of the real particles of every jet from the backbone.

    In each jet with ``n`` real particles, ``k = round(fraction * n)`` particles (at least 1 when
    ``n >= 1``, at most ``n - 1`` when ``n >= 2``) are chosen at random. Their features and
    4-vectors are replaced by ``fill_value`` (so pair features do not leak their kinematics);
    they stay real particles in the mask, so the backbone still produces an embedding for them.

    The returned batch carries two extra targets: ``target`` ``[B, N, F]`` (the original features)
    and ``target + "_mask"`` ``[B, N]`` (True where a particle was masked).

    Shapes:
        - batch.particles: ``[B, N, F]``, batch.mask: ``[B, N]``
        - targets[target]: ``[B, N, F]``; targets[target + "_mask"]: ``[B, N]`` bool

    Raises:
        ValueError: ``fraction`` is not in (0, 1].
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"mask_particles: fraction must be in (0, 1], found {fraction}")
    mask = batch.mask
    real = mask.sum(dim=1)
    wanted = torch.round(real.float() * fraction).long()
    wanted = torch.maximum(wanted, (real >= 1).long())
    wanted = torch.minimum(wanted, torch.where(real >= 2, real - 1, real))
    source = generator.device if generator is not None else mask.device
    scores = torch.rand(mask.shape, generator=generator, device=source).to(mask.device)
    scores = torch.where(mask, scores, 2.0)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    selected = (ranks < wanted.unsqueeze(1)) & mask
    hide = selected.unsqueeze(-1)
    targets = dict(batch.targets)
    targets[target] = batch.particles
    targets[target + MASK_SUFFIX] = selected
    return replace(
        batch,
        particles=torch.where(hide, fill_value, batch.particles),
        vectors=torch.where(hide, fill_value, batch.vectors),
        targets=targets,
    )


@register_head("masked_particle")
class MaskedParticleHead(Head):
    """Reconstruct the input features of masked particles (self-supervised pretraining).

    Run the backbone on a batch made by :func:`mask_particles`; the head predicts the original
    ``F`` features at every real particle and the loss is the mean squared error over the masked
    particles only (optionally per-feature weighted).

    Shapes:
        - features.particles: ``[B, N, D]``
        - outputs: ``reconstruction [B, N, F]`` (0 on padding)
        - targets: ``[B, N, F]`` and ``[B, N]`` bool (see :func:`mask_particles`)

    Args:
        in_features: embedding width ``D`` of the backbone.
        num_inputs: number ``F`` of particle input features to reconstruct.
        target: key of the reconstruction target (the mask is ``target + "_mask"``).
        feature_names: optional names of the ``F`` features (``label_names`` of the head).
        feature_weights: optional per-feature weights of the squared error.
        hidden: widths of the hidden layers of the MLP.
        dropout: dropout after each hidden layer.
    """

    level = "particle"
    task = "reconstruction"
    uses_masking = True

    def __init__(
        self,
        in_features: int,
        num_inputs: int,
        target: str = MASKED_TARGET,
        feature_names: Sequence[str] | None = None,
        feature_weights: Sequence[float] | None = None,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        num_inputs = int(num_inputs)
        names = tuple(str(n) for n in feature_names) if feature_names else ()
        if num_inputs < 1 or (names and len(names) != num_inputs):
            raise ValueError(
                f"masked_particle: num_inputs must be >= 1 and match feature_names, found "
                f"num_inputs={num_inputs} and {len(names)} names"
            )
        weights = None if feature_weights is None else [float(w) for w in feature_weights]
        if weights is not None and (
            len(weights) != num_inputs or not all(map(math.isfinite, weights))
        ):
            raise ValueError(
                f"masked_particle: feature_weights needs {num_inputs} finite values, "
                f"found {weights}"
            )
        self.label_names = names
        self.target_key = target
        self.num_inputs = num_inputs
        self.net = mlp(in_features, hidden, num_inputs, dropout)
        self.register_buffer(
            "feature_weights",
            torch.ones(num_inputs) if weights is None else torch.tensor(weights),
            persistent=False,
        )
        self.config = {
            "in_features": int(in_features),
            "num_inputs": num_inputs,
            "target": target,
            "feature_names": list(names) or None,
            "feature_weights": weights,
            "hidden": [int(size) for size in hidden],
            "dropout": float(dropout),
        }

    @classmethod
    def defaults_from_backbone(cls, backbone: Backbone) -> dict[str, object]:
        defaults = super().defaults_from_backbone(backbone)
        in_inputs = getattr(backbone, "config", {}).get("in_features")
        if in_inputs is not None:
            defaults["num_inputs"] = int(in_inputs)
        return defaults

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("reconstruction",)

    @classmethod
    def defaults_from_data(cls, data: DataDescription) -> dict[str, Any]:
        """The names of the data's particle features."""
        return {"feature_names": list(data.feature_names)}

    def data_targets(self) -> tuple[str, ...]:
        """None: :func:`mask_particles` makes the head's targets from the batch."""
        return ()

    def collector(self, name: str, data_label_names: Sequence[str]) -> Collector:
        """Collects the squared reconstruction error of each masked particle."""
        from heads.evaluation.masked_particle import MaskedParticleCollector

        return MaskedParticleCollector(name, self)

    @classmethod
    def score(
        cls, predictions: HeadPredictions, folder: Path | None, settings: ScoreSettings
    ) -> Scored:
        """See :func:`heads.evaluation.masked_particle.score`."""
        from heads.evaluation.masked_particle import score

        return score(predictions, folder, settings)

    def forward(self, features: Features, batch: JetBatch) -> dict[str, torch.Tensor]:
        reconstruction = self.net(features.particles)
        return {"reconstruction": torch.where(features.mask.unsqueeze(-1), reconstruction, 0.0)}

    def _targets(self, batch: JetBatch) -> tuple[torch.Tensor, torch.Tensor]:
        hint = "make the batch with heads.masked_particle.mask_particles(batch)"
        try:
            original = self.target(batch)
            selected = self.target(batch, self.target_key + MASK_SUFFIX)
        except KeyError as error:
            raise KeyError(f"{error.args[0]}; {hint}") from None
        expected = (*batch.mask.shape, self.num_inputs)
        if tuple(original.shape) != expected or selected.shape != batch.mask.shape:
            raise ValueError(
                f"masked_particle: targets {self.target_key!r}: expected shapes {expected} and "
                f"{tuple(batch.mask.shape)}, found {tuple(original.shape)} and "
                f"{tuple(selected.shape)}; {hint}"
            )
        return original, selected.bool() & batch.mask

    def loss(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> torch.Tensor:
        original, selected = self._targets(batch)
        squared = (outputs["reconstruction"] - original) ** 2
        weighted = (squared * self.feature_weights).sum(dim=-1) / self.feature_weights.sum()
        return masked_mean(weighted, selected)

    @torch.no_grad()
    def metrics(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> dict[str, torch.Tensor]:
        original, selected = self._targets(batch)
        squared = ((outputs["reconstruction"] - original) ** 2).mean(dim=-1)
        return {
            "mse": masked_mean(squared, selected),
            "masked_fraction": selected.sum().float() / batch.mask.sum().clamp(min=1),
        }
