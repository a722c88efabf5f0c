"""Batch normalisation whose statistics come from real particles (or real pairs / edges) only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedBatchNorm(nn.Module):
    """Batch normalisation over the last (channel) axis, ignoring padding entries.

    In training mode the mean and variance are taken over the real entries of the batch only, so
    the output of a jet does not depend on how much padding the batch carries (plain
    ``BatchNorm1d`` over padded tensors mixes zeros into its statistics). In eval mode it is the
    usual affine transform with running statistics, which exports to ONNX as two element-wise ops.
    Padding entries of the output are exactly zero. A batch without real entries leaves the
    running statistics untouched.

    Training gathers the real entries and runs PyTorch's fused batch norm on them (forward and
    backward in a few passes; ParticleNet's edge norms train about 3x faster on CPU than with
    masked element-wise sums). Under ``torch.compile`` (no data-dependent shapes) and for
    batches of fewer than two real entries, the statistics are masked sums instead: the same
    function up to float rounding.

    Args:
        num_features: channel count ``C``.
        eps: added to the variance.
        momentum: running-statistics update factor (as in :class:`torch.nn.BatchNorm1d`).

    Shapes:
        - x: ``[*, C]``
        - mask: ``[*]`` bool, True for real entries, or ``None`` when every entry is real
        - output: ``[*, C]``
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.training and not torch.compiler.is_compiling():
            fused = self._train_fused(x, mask)
            if fused is not None:
                return fused
        if self.training:
            flat = x.reshape(-1, self.num_features).float()
            if mask is None:
                count = flat.new_tensor(flat.shape[0])
                mean = flat.mean(dim=0) if flat.shape[0] else flat.new_zeros(self.num_features)
                var = (flat - mean).square().sum(dim=0) / count.clamp(min=1)
            else:
                weight = mask.reshape(-1, 1).to(flat.dtype)
                count = weight.sum()
                mean = (flat * weight).sum(dim=0) / count.clamp(min=1)
                var = ((flat - mean).square() * weight).sum(dim=0) / count.clamp(min=1)
            self._update_running(mean, var, count)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        out = torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))
        if mask is None:
            return out
        return torch.where(
            mask.unsqueeze(-1), out, torch.zeros((), dtype=out.dtype, device=out.device)
        )

    def _train_fused(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """Training-mode output from ``F.batch_norm`` on the real entries only (which also
        moves the running statistics), or None for fewer than two real entries."""
        flat = x.reshape(-1, self.num_features)
        if mask is None:
            real, rows = flat, None
        else:
            rows = mask.reshape(-1).nonzero().squeeze(1)
            real = flat.index_select(0, rows)
        if real.shape[0] < 2:
            return None
        normed = F.batch_norm(
            real.float(),
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=True,
            momentum=self.momentum,
            eps=self.eps,
        ).to(x.dtype)
        if rows is None:
            return normed.reshape(x.shape)
        return flat.new_zeros(flat.shape).index_copy(0, rows, normed).reshape(x.shape)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor) -> None:
        """Move the running statistics towards this batch (no-op without at least 2 entries)."""
        unbiased = var * count / (count - 1).clamp(min=1)
        step = self.momentum * (count > 1).to(mean.dtype)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), step)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), step)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
