"""Dense k-nearest-neighbour graphs on padded jets (no ``torch_cluster`` needed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from foundation.models.layers.masking import is_exporting


def pairwise_sq_distances(coords: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between all particles of each jet.

    Uses ``|a|² + |b|² - 2 a·b`` (one batched matmul; exports to ONNX, unlike ``cdist``).

    Shapes:
        - coords: ``[B, N, C]``
        - output: ``[B, N, N]``
    """
    coords = coords.float()
    sq = coords.square().sum(dim=-1)
    inner = torch.bmm(coords, coords.transpose(1, 2))
    return (sq.unsqueeze(2) + sq.unsqueeze(1) - 2 * inner).clamp(min=0)


def knn_graph_dense(
    coords: torch.Tensor, mask: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest real neighbours of every particle (itself excluded).

    Padding is never chosen as a neighbour. A particle of a jet with fewer than ``k + 1`` real
    particles gets its real neighbours and invalid filler slots; ``valid`` says which slots are
    real edges. Rows of padded particles are all invalid. The output always has ``k`` slots, also
    for ``N < k`` (filler index 0).

    Args:
        coords: coordinates the distance is measured in (e.g. (Δη, Δφ) or learned features).
        mask: True for real particles.
        k: neighbours per particle.

    Returns:
        ``(index, valid)``: neighbour positions along ``N`` and the edge mask.

    Shapes:
        - coords: ``[B, N, C]``
        - mask: ``[B, N]`` bool
        - index: ``[B, N, k]`` int64
        - valid: ``[B, N, k]`` bool
    """
    batch, count, _ = coords.shape
    dist = pairwise_sq_distances(coords)
    # Forbidden edges: padded neighbours and self loops.
    positions = torch.arange(count, device=coords.device)
    forbidden = ~mask.unsqueeze(1) | (positions.unsqueeze(0) == positions.unsqueeze(1))
    dist = dist.masked_fill(forbidden, float("inf"))
    if is_exporting():
        # ONNX TopK needs k <= N: append k never-chosen columns so that any N (0 too) runs;
        # slots that land on them are invalid and point at particle 0, like the eager filler.
        values, index = F.pad(dist, (0, k), value=float("inf")).topk(k, dim=-1, largest=False)
        valid = torch.isfinite(values) & mask.unsqueeze(-1)
        return torch.where(valid, index, torch.zeros_like(index)), valid
    take = min(k, count)
    values, index = dist.topk(take, dim=-1, largest=False)
    valid = torch.isfinite(values) & mask.unsqueeze(-1)
    if take < k:
        filler = k - take
        index = torch.cat([index, index.new_zeros(batch, count, filler)], dim=-1)
        valid = torch.cat([valid, valid.new_zeros(batch, count, filler)], dim=-1)
    return index, valid


def gather_neighbours(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Features of each particle's neighbours.

    Shapes:
        - x: ``[B, N, C]``
        - index: ``[B, N, k]`` positions along ``N``
        - output: ``[B, N, k, C]``
    """
    batch, count, channels = x.shape
    k = index.shape[-1]
    if is_exporting():
        # A gather per jet keeps the batch axis: ONNX Reshape reads a 0 in a target shape as
        # "copy that axis", so the flat [B * N, C] form below cannot be exported for N = 0.
        flat_index = index.reshape(batch, count * k, 1).expand(-1, -1, channels)
        return torch.gather(x, 1, flat_index).view(batch, count, k, channels)
    offsets = (torch.arange(batch, device=x.device) * count).view(batch, 1, 1)
    flat = (index + offsets).reshape(-1)
    return x.reshape(batch * count, channels).index_select(0, flat).view(batch, count, k, channels)
