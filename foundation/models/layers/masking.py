"""Masked reductions and padding helpers: the one place where ``(x, mask)`` semantics live.

Every backbone keeps padding rows at exactly zero on output and never lets a padded particle
influence a real one. These helpers implement that contract without producing NaN for jets with
zero real particles (no softmax over an all-masked row, no division by a zero count).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from foundation.data.batch import JetBatch


def is_exporting() -> bool:
    """True while tracing, exporting to ONNX or compiling: shape-changing steps are skipped then.

    Trimming padding reads tensor values (``mask.any().item()``); under tracing that would freeze
    the particle count into the graph, under ``torch.compile`` it would break the graph.
    """
    return bool(
        torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()
    )


def trim_padding(batch: JetBatch) -> JetBatch:
    """Drop trailing all-padding slots (eager mode only; a no-op while exporting or compiling).

    The backbone output is padded back to the input ``N`` with :func:`pad_particles`, so trimming
    changes speed only, never results.
    """
    return batch if is_exporting() else batch.trimmed()


def pad_particles(x: torch.Tensor, num_particles: int) -> torch.Tensor:
    """Pad per-particle rows with zeros up to ``num_particles``.

    Shapes:
        - x: ``[B, n, D]`` with ``n <= num_particles``
        - output: ``[B, num_particles, D]``
    """
    if is_exporting():
        return x  # nothing was trimmed
    missing = num_particles - x.shape[1]
    if missing == 0:
        return x
    return F.pad(x, (0, 0, 0, missing))


def zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set padding rows to exactly zero (``where``, so non-finite padding values cannot leak).

    Shapes:
        - x: ``[*, D]``
        - mask: ``[*]`` bool, True for real entries
        - output: ``[*, D]``
    """
    return torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Sum of real entries along ``dim`` (zero when there are none).

    Shapes:
        - x: ``[B, N, D]`` (``dim=1``) or any shape with ``mask`` = ``x.shape[:-1]``
        - mask: ``x.shape[:-1]`` bool
        - output: ``x`` without ``dim``
    """
    return zero_padding(x, mask).sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean of real entries along ``dim`` (zero when there are none).

    Shapes:
        - x: ``[B, N, D]`` (``dim=1``) or any shape with ``mask`` = ``x.shape[:-1]``
        - mask: ``x.shape[:-1]`` bool
        - output: ``x`` without ``dim``
    """
    count = mask.sum(dim=dim, keepdim=True).clamp(min=1).to(x.dtype)
    return masked_sum(x, mask, dim=dim) / count


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over real entries only; weights are zero on padding and all zero for empty rows.

    Unlike ``scores.masked_fill(~mask, -inf).softmax(dim)`` this never returns NaN.

    Shapes:
        - scores: any shape
        - mask: same shape as ``scores`` (or broadcastable to it), bool
        - output: same shape as ``scores``
    """
    if not is_exporting() and scores.shape[dim] == 0:
        return torch.zeros_like(scores)  # amax needs a non-empty axis
    lowest = torch.finfo(scores.dtype).min
    top = scores.masked_fill(~mask, lowest).amax(dim=dim, keepdim=True).detach()
    shifted = torch.where(mask, scores - top, torch.full_like(scores, float("-inf")))
    weights = shifted.exp()
    total = weights.sum(dim=dim, keepdim=True)
    return weights / total.clamp(min=torch.finfo(scores.dtype).tiny)


def attention_allowed(query_mask: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """Which keys each query may attend to, such that no row is ever fully masked.

    A real query sees real keys only. A padded query sees every key: its output is garbage that
    is never read (real queries never attend to padded keys) and is zeroed on output, but it is
    finite, so a jet with zero real particles produces no NaN in any attention backend. The rule
    needs no data-dependent control flow and no ``eye(N)``, so it exports with dynamic ``N``.

    Shapes:
        - query_mask: ``[B, L]`` bool
        - key_mask: ``[B, S]`` bool
        - output: ``[B, 1, L, S]`` bool (broadcasts over heads)
    """
    return key_mask[:, None, None, :] | ~query_mask[:, None, :, None]
