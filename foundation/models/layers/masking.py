"""Masked reductions and padding helpers: the one place where ``(x, mask)`` semantics live.

Every backbone keeps padding rows at exactly zero on output and never lets a padded particle
influence a real one. These helpers implement that contract without producing NaN for jets with
zero real particles (no softmax over an all-masked row, no division by a zero count).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from foundation.data.batch import JetBatch


def is_exporting() -> bool:
    """True while tracing, exporting to ONNX or compiling: steps that read tensor values in
    Python (packing, eager trimming) are skipped or replaced by graph operations then.

    Eager trimming reads tensor values (``mask.any().item()``); under tracing that would freeze
    the particle count into the graph, under ``torch.compile`` it would break the graph.
    """
    return bool(
        torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()
    )


def _is_tracing() -> bool:
    return bool(torch.jit.is_tracing() or torch.onnx.is_in_onnx_export())


def trim_padding(batch: JetBatch) -> JetBatch:
    """Drop trailing all-padding slots: eagerly, or inside a traced (ONNX) graph.

    Eager mode cuts the batch to its last real particle (:meth:`JetBatch.trimmed`). A traced
    graph does the same with an index tensor (cumulative sum, ``NonZero``, ``Gather``), so the
    exported model trims every batch it is given to that batch's own last real particle. Under
    ``torch.compile`` nothing is trimmed (a data-dependent shape would break the graph). The
    backbone output is padded back to the input ``N`` with :func:`pad_particles`, so trimming
    changes speed only, never results.
    """
    if torch.compiler.is_compiling():
        return batch
    if not _is_tracing():
        return batch.trimmed()
    occupied = batch.mask.any(dim=0).to(torch.int32)  # [N]
    # A slot is kept when it or a later slot holds a real particle of some jet.
    kept = occupied.flip(0).cumsum(0).flip(0) > 0
    slots = kept.nonzero().squeeze(1)
    return replace(
        batch,
        particles=batch.particles.index_select(1, slots),
        mask=batch.mask.index_select(1, slots),
        vectors=batch.vectors.index_select(1, slots),
    )


def pad_particles(x: torch.Tensor, num_particles: int) -> torch.Tensor:
    """Pad per-particle rows with zeros up to ``num_particles`` (the inverse of
    :func:`trim_padding`).

    Shapes:
        - x: ``[B, n, D]`` with ``n <= num_particles``
        - output: ``[B, num_particles, D]``
    """
    if torch.compiler.is_compiling():
        return x  # nothing was trimmed
    missing = num_particles - x.shape[1]
    if not _is_tracing() and missing == 0:
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


def attention_bias(
    query_mask: torch.Tensor, key_mask: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """:func:`attention_allowed` as an additive mask: 0 where allowed, the lowest finite value
    of ``dtype`` elsewhere.

    Built once per forward and shared by every block. A boolean mask costs the same in eager
    mode, but the ONNX exporter turns it, in every block, into ``Where(mask, 0, -inf)`` over
    ``[B, 1, N, N]`` plus a NaN guard over the ``[B, H, N, N]`` attention weights (31 % of
    JetFormer-S's ONNX Runtime time); an additive mask leaves one ``Add`` per block.

    Shapes:
        - query_mask: ``[B, L]`` bool
        - key_mask: ``[B, S]`` bool
        - output: ``[B, 1, L, S]`` of ``dtype``
    """
    allowed = attention_allowed(query_mask, key_mask)
    return torch.zeros_like(allowed, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
