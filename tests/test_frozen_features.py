"""FrozenFeatureCache: cached features equal the backbone's, whatever the batching; refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import backbone_kwargs, make_batch, tiny_backbones
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from foundation.models.frozen_features import FrozenFeatureCache, frozen_problems, jet_keys
from foundation.models.registry import create_backbone

TOLERANCE = 1e-5
COUNTS = (1, 40, 0, 3, 17, 1, 8, 25, 2, 11)
"""A pool of jets: single particles, an empty jet and many particles (N up to 40)."""


WEAVER_PARTICLENET = {"missing_neighbours": "zero_features", "coordinates": [0, 1]}
"""The options of the converted JetClass ParticleNets (weaver-core's padded-slot kNN)."""

VARIANTS = [pytest.param(name, {}, id=name) for name in tiny_backbones()] + [
    pytest.param("particlenet-tiny", WEAVER_PARTICLENET, id="particlenet-tiny-weaver")
]


def frozen(name: str, seed: int = 0, **kwargs: object) -> Backbone:
    torch.manual_seed(seed)
    backbone = create_backbone(name, **(backbone_kwargs() | kwargs)).eval()
    backbone.requires_grad_(False)
    return backbone


def rows(batch: JetBatch, index: list[int], slots: int | None = None) -> JetBatch:
    """Jets ``index`` of ``batch`` as a new batch, trimmed, then padded to ``slots``."""
    picked = torch.tensor(index)
    sub = JetBatch(
        particles=batch.particles[picked],
        mask=batch.mask[picked],
        vectors=batch.vectors[picked],
        jet=batch.jet[picked],
        feature_names=batch.feature_names,
        jet_feature_names=batch.jet_feature_names,
    ).trimmed()
    if slots is None:
        return sub
    extra = slots - sub.num_particles
    pad = torch.nn.functional.pad
    return replace(
        sub,
        particles=pad(sub.particles, (0, 0, 0, extra)),
        mask=pad(sub.mask, (0, extra)),
        vectors=pad(sub.vectors, (0, 0, 0, extra)),
    )


def max_difference(a: Features, b: Features) -> float:
    assert a.particles.shape == b.particles.shape
    assert a.jet.shape == b.jet.shape
    assert torch.equal(a.mask, b.mask)
    differences = torch.cat([(a.particles - b.particles).flatten(), (a.jet - b.jet).flatten()])
    return float(differences.abs().max()) if differences.numel() else 0.0


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS)
def test_cached_features_equal_the_backbone_on_any_batching(name: str, kwargs: dict) -> None:
    backbone = frozen(name, **kwargs)
    pool = make_batch(COUNTS, seed=1)
    cache = FrozenFeatureCache(backbone)
    generator = torch.Generator().manual_seed(2)
    batchings = [
        [list(range(len(COUNTS)))],  # the whole pool: every jet computed
        [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9]],  # the same jets again: every jet from the cache
    ]
    for _ in range(3):  # shuffled re-batchings of 3 jets, padded to more slots than needed
        order = torch.randperm(len(COUNTS), generator=generator).tolist()
        batchings.append([order[i : i + 3] for i in range(0, len(order), 3)])
    for batching in batchings:
        for index in batching:
            batch = rows(pool, index, slots=48)
            with torch.no_grad():
                expected = backbone(batch)
            got = cache(batch)
            assert max_difference(got, expected) <= TOLERANCE, (name, index)
            assert not got.particles.requires_grad
    stats = cache.stats
    assert stats.jets == len(COUNTS)
    assert stats.misses == len(COUNTS)  # every jet was computed once
    assert stats.hits == sum(len(index) for b in batchings for index in b) - len(COUNTS)


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS)
def test_single_jets_and_scattered_slots(name: str, kwargs: dict) -> None:
    backbone = frozen(name, **kwargs)
    cache = FrozenFeatureCache(backbone)
    for counts, scatter in (((1,), False), ((40,), False), ((1, 40, 5), True), ((0, 0), False)):
        batch = make_batch(counts, seed=3, num_particles=max(counts) + 4, scatter=scatter)
        with torch.no_grad():
            expected = backbone(batch)
        for _ in range(2):  # computed, then from the cache
            assert max_difference(cache(batch), expected) <= TOLERANCE, (name, counts)


def test_keys_follow_the_inputs_not_the_padding() -> None:
    batch = make_batch((3, 5), seed=4)
    padded = rows(batch, [0, 1], slots=9)
    swapped = rows(batch, [1, 0])
    keys = jet_keys(batch)
    assert jet_keys(padded) == keys
    assert jet_keys(swapped) == keys[::-1]
    assert keys[0] != keys[1]
    for field in ("particles", "vectors", "jet"):
        changed = getattr(batch, field).clone()
        changed[0, 0] += 1.0
        assert jet_keys(replace(batch, **{field: changed}))[0] != keys[0], field
        assert jet_keys(replace(batch, **{field: changed}))[1] == keys[1], field
    moved = make_batch((3, 5), seed=4, scatter=True, num_particles=5)
    assert jet_keys(moved)[0] != keys[0]  # other slots: another key
    renamed = replace(batch, feature_names=tuple(f"x{i}" for i in range(7)))
    assert jet_keys(renamed)[0] != keys[0]


def test_duplicate_jets_are_computed_once() -> None:
    backbone = frozen("pfn-tiny")
    batch = make_batch((4, 2), seed=5)
    doubled = rows(batch, [0, 1, 0, 0])
    cache = FrozenFeatureCache(backbone)
    with torch.no_grad():
        expected = backbone(doubled)
    assert max_difference(cache(doubled), expected) <= TOLERANCE
    assert (cache.stats.misses, cache.stats.jets) == (2, 2)


def test_max_jets_stops_storing_but_stays_exact() -> None:
    backbone = frozen("particlenet-tiny")
    pool = make_batch(COUNTS, seed=6)
    cache = FrozenFeatureCache(backbone, max_jets=4)
    for _ in range(2):
        with torch.no_grad():
            expected = backbone(pool)
        assert max_difference(cache(pool), expected) <= TOLERANCE
    stats = cache.stats
    assert stats.jets == 4
    assert stats.misses == len(COUNTS) + (len(COUNTS) - 4)  # the 6 left out run again
    assert stats.uncached == 2 * (len(COUNTS) - 4)
    features = backbone.num_features
    assert stats.bytes == 4 * (sum(COUNTS[:4]) + 4) * features
    assert len(FrozenFeatureCache(backbone, max_jets=0).__call__(pool).jet) == len(COUNTS)
    with pytest.raises(ValueError, match="max_jets"):
        FrozenFeatureCache(backbone, max_jets=-1)


def test_changed_weights_empty_the_cache() -> None:
    backbone = frozen("pfn-tiny")
    batch = make_batch(seed=7)
    cache = FrozenFeatureCache(backbone)
    before = cache(batch)
    backbone.load_state_dict(frozen("pfn-tiny", seed=1).state_dict())
    with torch.no_grad():
        expected = backbone(batch)
    after = cache(batch)
    assert max_difference(after, expected) <= TOLERANCE
    assert max_difference(after, before) > 1e-3
    assert cache.stats.clears == 1
    parameter = next(backbone.parameters())
    parameter.data = parameter.data * 2.0  # new storage: seen
    with torch.no_grad():
        expected = backbone(batch)
    assert max_difference(cache(batch), expected) <= TOLERANCE
    assert cache.stats.clears == 2


def test_refuses_a_backbone_that_is_not_frozen() -> None:
    backbone = create_backbone("pfn-tiny", **backbone_kwargs())
    with pytest.raises(ValueError, match="training mode"):
        FrozenFeatureCache(backbone.eval().train())
    backbone.eval()
    with pytest.raises(ValueError, match="require gradients"):
        FrozenFeatureCache(backbone)
    backbone.requires_grad_(False)
    cache = FrozenFeatureCache(backbone)
    backbone.train()
    with pytest.raises(RuntimeError, match=r"no longer frozen.*training mode"):
        cache(make_batch())
    backbone.eval()
    next(backbone.parameters()).requires_grad_(True)
    with pytest.raises(RuntimeError, match="require gradients"):
        cache(make_batch())
    assert frozen_problems(frozen("pfn-tiny")) == []


class BatchMeanBackbone(Backbone):
    """A backbone that subtracts the batch mean of the jet embeddings (not batch-independent)."""

    def __init__(self, in_features: int, in_jet_features: int = 0) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 8)
        self.num_features = 8

    def forward(self, batch: JetBatch) -> Features:
        particles = self.linear(batch.particles) * batch.mask.unsqueeze(-1)
        jet = particles.sum(dim=1)
        return Features(particles=particles, jet=jet - jet.mean(dim=0), mask=batch.mask)


class TorchBatchNormBackbone(BatchMeanBackbone):
    def __init__(self, in_features: int, in_jet_features: int = 0) -> None:
        super().__init__(in_features, in_jet_features)
        self.norm = nn.BatchNorm1d(8, track_running_stats=False)


def test_refuses_a_backbone_that_depends_on_the_batch() -> None:
    backbone = BatchMeanBackbone(**backbone_kwargs()).eval().requires_grad_(False)
    cache = FrozenFeatureCache(backbone)
    cache(make_batch((3,), seed=8))  # one jet: nothing to compare yet
    with pytest.raises(ValueError, match=r"not batch-independent.*differ by up to"):
        cache(make_batch((2, 4, 6), seed=9))
    assert len(cache) == 0
    unchecked = FrozenFeatureCache(backbone, verify=False)
    assert len(unchecked(make_batch((2, 4, 6), seed=9)).jet) == 3
    statistics = TorchBatchNormBackbone(**backbone_kwargs()).eval().requires_grad_(False)
    with pytest.raises(ValueError, match="batch norms without running statistics: norm"):
        FrozenFeatureCache(statistics)


def test_empty_batch_and_storage_device() -> None:
    backbone = frozen("pfn-tiny")
    cache = FrozenFeatureCache(backbone, storage="cpu")
    empty = make_batch((), num_particles=3)
    assert cache(empty).particles.shape == (0, 3, backbone.num_features)
    batch = make_batch(seed=10)
    first, second = cache(batch), cache(batch)
    assert torch.equal(first.particles, second.particles)
    assert torch.equal(first.jet, second.jet)
    second.jet.add_(1.0)  # outputs are copies: the cache is not changed through them
    assert torch.equal(cache(batch).jet, first.jet)


def test_a_frozen_model_in_training_mode() -> None:
    """As a frozen fine-tune uses it: heads on cached features equal the model's outputs, the
    model's state_dict is unchanged, and a LoRA-adapted backbone is refused."""
    from conftest import make_model

    from foundation.models.lora import ADAPTER_NAME, lora_parameters

    model = make_model("part-tiny")
    keys = list(model.state_dict())
    model.freeze_backbone(True)
    cache = FrozenFeatureCache(model.backbone)
    model.train()  # Lightning's call at every epoch: the frozen backbone stays in eval mode
    batch = make_batch(seed=11)
    for _ in range(2):
        features = cache(batch)
        with torch.no_grad():
            expected = model.eval()(batch)
            got = {name: head(features, batch) for name, head in model.heads.items()}
        model.train()
        for head, outputs in expected.items():
            for output, value in outputs.items():
                difference = (got[head][output] - value).abs().max()
                assert difference <= TOLERANCE, (head, output)
    assert list(model.state_dict()) == keys
    adapted = make_model("part-tiny")
    adapted.add_adapter(ADAPTER_NAME, rank=2, alpha=4.0, targets=["in_proj"])
    adapted.freeze_backbone(True)
    for parameter in lora_parameters(adapted.backbone):
        parameter.requires_grad_(True)
    with pytest.raises(ValueError, match=r"require gradients.*lora"):
        FrozenFeatureCache(adapted.backbone)


def test_autocast_gets_its_own_entries() -> None:
    backbone = frozen("pfn-tiny")
    batch = make_batch(seed=12)
    cache = FrozenFeatureCache(backbone)
    full, keys = cache(batch), jet_keys(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert set(jet_keys(batch)).isdisjoint(keys)
        low = cache(batch)
        with torch.no_grad():
            expected = backbone(batch)
    assert (full.jet.dtype, low.jet.dtype) == (torch.float32, expected.jet.dtype)
    assert max_difference(low, expected) == 0.0
    assert cache.stats.jets == 2 * len(batch)


def test_particlenet_graph_of_tied_distances_ignores_padding_and_batch() -> None:
    """Particles on a grid (calorimeter cells) have many equal distances: the neighbours chosen
    among them are the same whatever the padding and the other jets of the batch."""
    from foundation.models.particlenet import knn_graph_slots

    grid = torch.stack(torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij"), -1)
    coords = 0.02 * grid.reshape(1, 36, 2)  # 36 cells, 4 at equal distance around most
    mask = torch.ones(1, 36, dtype=torch.bool)
    alone = knn_graph_slots(coords, mask, k=16)
    for extra in (1, 3, 50):
        padded = torch.cat([coords, torch.zeros(1, extra, 2)], dim=1)
        padded_mask = torch.cat([mask, torch.zeros(1, extra, dtype=torch.bool)], dim=1)
        other = torch.rand(1, 36 + extra, 2)
        index, valid = knn_graph_slots(
            torch.cat([other, padded]), torch.cat([torch.ones_like(padded_mask), padded_mask]), 16
        )
        assert torch.equal(index[1:, :36], alone[0]) and torch.equal(valid[1:, :36], alone[1])
