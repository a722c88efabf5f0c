"""Unit tests of the backbone building blocks in ``foundation.models.layers``."""

from __future__ import annotations

import pytest
import torch
from conftest import make_batch

from foundation.data.batch import JetBatch
from foundation.models.layers import (
    EtaPhiRotary,
    MaskedBatchNorm,
    Packing,
    apply_rotary,
    attention_allowed,
    attention_bias,
    knn_graph_dense,
    masked_mean,
    masked_softmax,
    pad_particles,
    trim_padding,
)


@pytest.mark.parametrize("count", [0, 1, 2, 5, 9])
def test_knn_never_picks_padding_or_self(count: int) -> None:
    k, slots = 4, 9
    torch.manual_seed(0)
    coords = torch.randn(3, slots, 2)
    mask = torch.zeros(3, slots, dtype=torch.bool)
    mask[0, :count] = True
    mask[1, torch.randperm(slots)[:count]] = True  # padding interleaved with real particles
    index, valid = knn_graph_dense(coords, mask, k)
    assert index.shape == valid.shape == (3, slots, k)
    rows = torch.arange(slots).view(1, slots, 1).expand_as(index)
    assert mask.gather(1, index.flatten(1)).view_as(index)[valid].all()
    assert not (index == rows)[valid].any()
    assert not valid[~mask].any()
    # Each real particle has min(k, count - 1) real neighbours: the nearest ones.
    assert (valid.sum(-1)[mask] == min(k, max(count - 1, 0))).all()
    assert not valid[2].any()


def test_knn_handles_fewer_slots_than_k() -> None:
    mask = torch.tensor([[True, True], [True, False]])
    index, valid = knn_graph_dense(torch.randn(2, 2, 2), mask, k=5)
    assert index.shape == (2, 2, 5)
    assert valid.sum().item() == 2  # 0 <-> 1 in the first jet, nothing in the second
    empty_index, empty_valid = knn_graph_dense(
        torch.zeros(2, 0, 2), torch.zeros(2, 0, dtype=torch.bool), k=3
    )
    assert empty_index.shape == empty_valid.shape == (2, 0, 3)


def test_masked_softmax_is_finite_on_empty_rows() -> None:
    scores = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, False], [False, False, False, False]])
    weights = masked_softmax(scores, mask)
    torch.testing.assert_close(weights[0].sum(), torch.tensor(1.0))
    assert torch.equal(weights[1], torch.zeros(4))
    assert (weights[~mask] == 0).all()
    weights.square().sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_masked_mean_of_nothing_is_zero() -> None:
    x = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = masked_mean(x, mask)
    torch.testing.assert_close(out[0], x[0, :2].mean(0))
    assert torch.equal(out[1], torch.zeros(4))


def test_masked_batchnorm_ignores_padding() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6, 3) * 5 + 2
    mask = torch.rand(4, 6) > 0.4
    norm = MaskedBatchNorm(3).train()
    out = norm(x, mask)
    real = out[mask]
    torch.testing.assert_close(real.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    # Changing padding values or adding padding slots changes nothing.
    noisy = torch.where(mask.unsqueeze(-1), x, torch.full_like(x, 1e3))
    wider = torch.cat([x, torch.zeros(4, 3, 3)], dim=1)
    wider_mask = torch.cat([mask, torch.zeros(4, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(MaskedBatchNorm(3).train()(noisy, mask), out)
    torch.testing.assert_close(MaskedBatchNorm(3).train()(wider, wider_mask)[:, :6], out)


def test_masked_batchnorm_keeps_running_stats_without_real_entries() -> None:
    norm = MaskedBatchNorm(2).train()
    out = norm(torch.randn(3, 4, 2), torch.zeros(3, 4, dtype=torch.bool))
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.equal(norm.running_mean, torch.zeros(2))
    assert torch.equal(norm.running_var, torch.ones(2))


@pytest.mark.parametrize("real_entries", [2, 37], ids=["two", "many"])
@pytest.mark.parametrize("masked", [True, False], ids=["mask", "no-mask"])
def test_masked_batchnorm_training_matches_direct_statistics(
    real_entries: int, masked: bool
) -> None:
    """Training output, input gradient and running statistics equal a float64 computation
    of batch norm over the real entries."""
    torch.manual_seed(real_entries)
    shape = (5, 8, 4) if masked else (real_entries, 4)
    x = (torch.randn(shape) * 3 + 1).requires_grad_()
    mask = None
    if masked:
        mask = torch.zeros(40, dtype=torch.bool)
        mask[torch.randperm(40)[:real_entries]] = True
        mask = mask.reshape(5, 8)
    norm = MaskedBatchNorm(4, momentum=0.25).train()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.5, 1.0, 2.0, -1.0]))
        norm.bias.copy_(torch.tensor([0.1, 0.0, -0.2, 0.3]))
    upstream = torch.randn(shape)
    (norm(x, mask) * upstream).sum().backward()

    x64 = x.detach().double().requires_grad_()
    keep = torch.ones(shape[:-1], dtype=torch.bool) if mask is None else mask
    real = x64[keep]
    mean = real.mean(0)
    var = real.var(0, unbiased=False)
    expected = torch.zeros_like(x64)
    expected[keep] = (real - mean) / torch.sqrt(var + norm.eps) * norm.weight.double().detach()
    expected[keep] += norm.bias.double().detach()
    (expected * upstream.double()).sum().backward()
    torch.testing.assert_close(
        norm(x.detach(), mask).double(), expected.detach(), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(x.grad.double(), x64.grad, atol=1e-4, rtol=1e-4)
    unbiased = real.detach().var(0, unbiased=True)
    # two training calls so far: each moves the running statistics by momentum = 0.25
    expected_mean = (1 - (1 - 0.25) ** 2) * mean.detach()
    expected_var = (1 - 0.25) ** 2 + (1 - (1 - 0.25) ** 2) * unbiased
    torch.testing.assert_close(norm.running_mean.double(), expected_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(norm.running_var.double(), expected_var, atol=1e-5, rtol=1e-5)


def test_masked_batchnorm_with_one_real_entry_gives_the_bias() -> None:
    """One real entry has zero variance: its output is the bias, running statistics stay."""
    norm = MaskedBatchNorm(2).train()
    with torch.no_grad():
        norm.bias.copy_(torch.tensor([0.5, -1.0]))
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[1, 2] = True
    out = norm(torch.rand(3, 4, 2), mask)
    torch.testing.assert_close(out[1, 2], norm.bias.detach(), atol=1e-3, rtol=0)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    assert torch.equal(norm.running_mean, torch.zeros(2))
    assert torch.equal(norm.running_var, torch.ones(2))


def test_rotary_logits_depend_on_separation_only() -> None:
    torch.manual_seed(0)
    rotary = EtaPhiRotary(head_dim=12, rotary_dim=8, num_heads=2)
    q, k = torch.randn(1, 2, 5, 12), torch.randn(1, 2, 5, 12)
    coords = torch.randn(1, 5, 2)
    shifted = coords + torch.tensor([0.7, -0.3])

    def logits(points: torch.Tensor) -> torch.Tensor:
        cos, sin = rotary(points)
        return apply_rotary(q, cos, sin) @ apply_rotary(k, cos, sin).transpose(-1, -2)

    torch.testing.assert_close(logits(shifted), logits(coords), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(logits(coords), q @ k.transpose(-1, -2))


def test_attention_allowed_never_masks_a_whole_row() -> None:
    mask = torch.tensor([[True, False, True], [False, False, False]])
    allowed = attention_allowed(mask, mask)
    assert allowed.shape == (2, 1, 3, 3)
    assert allowed.any(-1).all()
    assert torch.equal(allowed[0, 0, 0], mask[0])  # real queries see real keys only


def test_attention_bias_adds_nothing_where_allowed_and_blocks_the_rest() -> None:
    mask = torch.tensor([[True, False, True], [False, False, False]])
    bias = attention_bias(mask, mask)
    allowed = attention_allowed(mask, mask)
    assert bias.dtype == torch.float32 and bias.shape == allowed.shape
    assert torch.equal(bias[allowed], torch.zeros(int(allowed.sum())))
    assert (bias[~allowed] == torch.finfo(torch.float32).min).all()
    logits = torch.randn(2, 1, 3, 3)
    torch.testing.assert_close(
        (logits + bias).softmax(-1), logits.masked_fill(~allowed, float("-inf")).softmax(-1)
    )


@pytest.mark.parametrize("scatter", [False, True])
def test_traced_trimming_follows_each_batch(scatter: bool) -> None:
    def embed(particles: torch.Tensor, mask: torch.Tensor, vectors: torch.Tensor):
        jet = particles.new_zeros(particles.shape[0], 0)
        batch = trim_padding(JetBatch(particles, mask, vectors, jet))
        return pad_particles(batch.particles * 2, particles.shape[1]), batch.particles.shape[1]

    example = make_batch([4, 2], num_particles=6)
    traced = torch.jit.trace(embed, (example.particles, example.mask, example.vectors))
    for counts, slots in [([3, 1, 0], 9), ([5], 5), ([0, 0], 4)]:
        batch = make_batch(counts, num_particles=slots, seed=1, scatter=scatter)
        padded, kept = traced(batch.particles, batch.mask, batch.vectors)
        assert int(kept) == batch.trimmed().num_particles
        torch.testing.assert_close(
            padded,
            torch.nn.functional.pad(batch.trimmed().particles * 2, (0, 0, 0, slots - int(kept))),
        )


def test_packing_round_trip() -> None:
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    x = torch.randn(3, 3, 4)
    packing = Packing(mask)
    packed = packing.pack(x)
    assert packed.shape == (5, 4)
    padded = packing.pad(packed)
    assert torch.equal(padded[mask], x[mask])
    assert torch.equal(padded[~mask], torch.zeros(4, 4))
    per_jet = packing.per_jet(torch.arange(3.0).unsqueeze(-1))
    assert per_jet.squeeze(-1).tolist() == [0.0, 0.0, 2.0, 2.0, 2.0]
