"""The :class:`JetBatch`: padded tensors with an explicit mask, the one input of every model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch


@dataclass
class JetBatch:
    """A batch of jets, padded to a common particle count with an explicit mask.

    Shapes:
        - particles: ``[B, N, F]`` float32, particle features (padding rows are zero).
        - mask: ``[B, N]`` bool, True for a real particle. ``N`` may be 0; a jet may have 0 or 1
          real particles.
        - vectors: ``[B, N, 4]`` float32, (px, py, pz, E) in GeV, used for pair features.
        - jet: ``[B, J]`` float32, jet-level inputs (``J`` may be 0).
        - targets: name -> tensor, jet level ``[B]`` / ``[B, K]``, particle level ``[B, N]`` or
          ``[B, N, K]``, pair level ``[B, N, N]`` (pair-level names start with ``pair_``).

    Attributes:
        feature_names: names of the ``F`` particle features, in order.
        jet_feature_names: names of the ``J`` jet-level inputs, in order.
    """

    particles: torch.Tensor
    mask: torch.Tensor
    vectors: torch.Tensor
    jet: torch.Tensor
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    feature_names: tuple[str, ...] = ()
    jet_feature_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.particles.dim() != 3:
            raise ValueError(
                f"JetBatch.particles: expected shape [B, N, F], found {tuple(self.particles.shape)}"
            )
        batch, count, _ = self.particles.shape
        if tuple(self.mask.shape) != (batch, count):
            raise ValueError(
                f"JetBatch.mask: expected shape {(batch, count)}, found {tuple(self.mask.shape)}"
            )
        if self.mask.dtype != torch.bool:
            raise ValueError(f"JetBatch.mask: expected dtype torch.bool, found {self.mask.dtype}")
        if tuple(self.vectors.shape) != (batch, count, 4):
            raise ValueError(
                f"JetBatch.vectors: expected shape {(batch, count, 4)}, "
                f"found {tuple(self.vectors.shape)}"
            )
        if self.jet.dim() != 2 or self.jet.shape[0] != batch:
            raise ValueError(
                f"JetBatch.jet: expected shape [{batch}, J], found {tuple(self.jet.shape)}"
            )
        if self.feature_names and len(self.feature_names) != self.particles.shape[-1]:
            raise ValueError(
                f"JetBatch.feature_names: expected {self.particles.shape[-1]} names, "
                f"found {len(self.feature_names)}"
            )

    def __len__(self) -> int:
        return self.particles.shape[0]

    @property
    def num_particles(self) -> int:
        """The padded particle count ``N``."""
        return self.particles.shape[1]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> JetBatch:
        """Return a copy with every tensor moved to ``device``."""

        def move(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(device, non_blocking=non_blocking)

        return replace(
            self,
            particles=move(self.particles),
            mask=move(self.mask),
            vectors=move(self.vectors),
            jet=move(self.jet),
            targets={name: move(value) for name, value in self.targets.items()},
        )

    def trimmed(self) -> JetBatch:
        """Drop trailing particle slots that are padding in every jet (keeps ``N >= 0``).

        Only slots after the last real particle of the batch are dropped, so the result is the
        same whether or not real particles are packed at the front.

        Particle-level targets (second axis ``N``) are trimmed with them, and so is the third
        axis of pair-level targets (names starting with ``pair_``).
        """
        occupied = self.mask.any(dim=0).nonzero()
        count = int(occupied.max().item()) + 1 if occupied.numel() else 0
        if count == self.num_particles:
            return self
        full = self.num_particles
        targets = {}
        for name, value in self.targets.items():
            if value.dim() >= 2 and value.shape[1] == full:
                value = value[:, :count]
                if name.startswith("pair_") and value.dim() >= 3 and value.shape[2] == full:
                    value = value[:, :, :count]
            targets[name] = value
        return replace(
            self,
            particles=self.particles[:, :count],
            mask=self.mask[:, :count],
            vectors=self.vectors[:, :count],
            targets=targets,
        )
