"""Splits, subsampling, normalization and the cache: determinism, round trips, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import random_records

from foundation.data.batch import JetBatch
from foundation.data.cache import CACHE_INFO, read_cache_info, write_cache
from foundation.data.features import pad_jets
from foundation.data.loading import (
    BatchIndexSampler,
    JetCacheDataset,
    collate_jets,
    fit_cache_normalizers,
    make_loader,
    same_vertex_targets,
)
from foundation.data.normalization import UNTOUCHED_FEATURES, Normalizer
from foundation.data.records import JetRecords
from foundation.data.schema import FEATURE_SETS, JET_INPUTS, PARTICLE_FEATURES_FULL
from foundation.data.splits import event_hash, split_codes, split_indices, subsample
from foundation.errors import DataError, OutputExistsError
from foundation.simulation.card import DEFAULT_CARD
from foundation.training.recipe import DataConfig, SimulateConfig
from foundation.training.sources import cache_folder, simulation_folder

# ----------------------------------------------------------------------------- splits


def test_splits_are_deterministic_and_event_disjoint() -> None:
    event_id = np.repeat(np.arange(5000), 2)  # two jets per event
    first = split_indices(event_id, seed=1)
    assert set(first) == {"train", "val", "test"}
    again = split_indices(event_id, seed=1)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    events = {name: set(event_id[idx]) for name, idx in first.items()}
    assert not events["train"] & events["val"] and not events["train"] & events["test"]
    assert not events["val"] & events["test"]
    fractions = {name: len(idx) / len(event_id) for name, idx in first.items()}
    assert abs(fractions["train"] - 0.8) < 0.03 and abs(fractions["test"] - 0.1) < 0.02
    other = split_codes(event_id, seed=2)
    assert (other != split_codes(event_id, seed=1)).any()


def test_split_of_a_jet_depends_only_on_its_event() -> None:
    event_id = np.arange(1000) * 7919
    codes = split_codes(event_id, {"train": 0.5, "test": 0.5}, seed=3)
    permutation = np.random.default_rng(0).permutation(1000)
    np.testing.assert_array_equal(
        split_codes(event_id[permutation], {"train": 0.5, "test": 0.5}, 3), codes[permutation]
    )
    # fixed values guard against an accidental change of the hash (it would move old splits)
    np.testing.assert_allclose(
        event_hash(np.array([0, 1, 12345]), seed=0),
        [0.6524484863740322, 0.03401170130434639, 0.4778188605350767],
        rtol=1e-12,
    )
    assert event_hash(np.array([0]), seed=7)[0] == pytest.approx(0.7215081806049702, rel=1e-12)


def test_split_fractions_are_checked() -> None:
    with pytest.raises(ValueError, match="sum"):
        split_codes(np.arange(3), {"train": 0.7, "test": 0.2})
    with pytest.raises(ValueError, match="non-negative"):
        split_codes(np.arange(3), {"train": 1.5, "test": -0.5})


def test_subsample_is_stratified_and_seeded() -> None:
    labels = np.array([0] * 700 + [1] * 200 + [2] * 100)
    picked = subsample(labels, 100, seed=4)
    assert len(picked) == 100 and len(np.unique(picked)) == 100
    np.testing.assert_array_equal(np.bincount(labels[picked]), [70, 20, 10])
    np.testing.assert_array_equal(picked, np.sort(picked))
    np.testing.assert_array_equal(picked, subsample(labels, 100, seed=4))
    assert not np.array_equal(picked, subsample(labels, 100, seed=5))
    assert len(subsample(labels, 7, seed=0)) == 7
    with pytest.raises(ValueError, match="1000"):
        subsample(labels, 1001)


# ----------------------------------------------------------------------------- normalization


def test_normalizer_fit_apply_and_json_round_trip() -> None:
    rng = np.random.default_rng(0)
    names = FEATURE_SETS["kinpid"]
    values = rng.normal(3.0, 2.0, (4, 50, len(names))).astype(np.float32)
    mask = rng.random((4, 50)) < 0.7
    values[~mask] = 1000.0  # padding must not enter the fit
    norm = Normalizer.fit(values, names, mask=mask)
    real = values[mask]
    column = names.index("part_pt_log")
    assert norm.center[column] == pytest.approx(np.median(real[:, column]), rel=1e-5)
    low, high = np.percentile(real[:, column], [16, 84])
    assert norm.scale[column] == pytest.approx((high - low) / 2, rel=1e-5)
    for name in UNTOUCHED_FEATURES:
        assert norm.center[names.index(name)] == 0 and norm.scale[names.index(name)] == 1
    restored = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert restored.names == norm.names and restored.clip == norm.clip
    np.testing.assert_array_equal(restored.center, norm.center)
    out = restored.apply(values, mask)
    assert out.dtype == np.float32 and (out[~mask] == 0).all()
    assert np.abs(out).max() <= 5.0
    torch_out = restored.apply(torch.from_numpy(values), torch.from_numpy(mask))
    np.testing.assert_allclose(torch_out.numpy(), out, rtol=1e-6, atol=1e-6)
    subset = norm.select(["part_dphi", "part_pt_log"])
    assert subset.center[1] == norm.center[column]


def test_normalizer_bad_input() -> None:
    with pytest.raises(DataError, match="center"):
        Normalizer.from_dict({"names": ["a", "b"], "center": [0.0], "scale": [1.0, 1.0]})
    with pytest.raises(DataError, match="scale"):
        Normalizer.from_dict({"names": ["a"], "center": [0.0]})
    with pytest.raises(DataError, match="real particle"):
        Normalizer.fit(np.zeros((2, 3, 1)), ["a"], mask=np.zeros((2, 3), bool))
    norm = Normalizer(("a",), np.zeros(1), np.ones(1))
    with pytest.raises(DataError, match="1 features"):
        norm.apply(np.zeros((2, 3)))


# ----------------------------------------------------------------------------- cache


@pytest.fixture
def records() -> JetRecords:
    return random_records(64, mean_particles=6, seed=7, truth=True)


def test_cache_round_trip(records: JetRecords, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    info = write_cache(records, folder, max_particles=8, chunk_size=20)
    assert info.n_jets == 64 and info.max_particles == 8
    assert info.feature_names == PARTICLE_FEATURES_FULL and info.jet_feature_names == JET_INPUTS
    assert set(info.truth_names) == {
        "jet_truth_pt",
        "jet_truth_eta",
        "jet_truth_phi",
        "jet_truth_mass",
        "jet_truth_parton_id",
        "part_origin",
        "part_vertex",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # no temporary folder left
    described = json.loads((folder / CACHE_INFO).read_text())
    assert described["arrays"]["particles"] == {"dtype": "float16", "shape": [64, 8, 17]}
    expected = pad_jets(records, "full", 8)
    dataset = JetCacheDataset(folder)
    batch = dataset[np.array([5, 2, 40])]
    np.testing.assert_allclose(
        batch["particles"], expected.particles[[5, 2, 40]], rtol=2e-3, atol=2e-3
    )
    np.testing.assert_array_equal(batch["mask"], expected.mask[[5, 2, 40]])
    np.testing.assert_allclose(batch["vectors"], expected.vectors[[5, 2, 40]])
    np.testing.assert_array_equal(batch["part_vertex"], expected.truth["part_vertex"][[5, 2, 40]])
    np.testing.assert_array_equal(batch["label"], records.labels[[5, 2, 40]])
    single = dataset[2]
    assert single["particles"].shape == (8, 17)


def test_cache_with_empty_and_single_particle_jets(tmp_path: Path) -> None:
    records = random_records(40, mean_particles=0.7, seed=2, truth=True)
    assert (records.counts == 0).any() and (records.counts == 1).any()
    info = write_cache(records, tmp_path / "c", max_particles=1)
    assert info.truncated_jets == int((records.counts > 1).sum())
    dataset = JetCacheDataset(tmp_path / "c")
    norm, jet_norm = fit_cache_normalizers(dataset)
    dataset = JetCacheDataset(tmp_path / "c", normalizer=norm, jet_normalizer=jet_norm)
    batch = next(iter(make_loader(dataset, batch_size=40)))
    np.testing.assert_array_equal(batch.mask.sum(1).numpy(), np.minimum(records.counts, 1))
    assert torch.isfinite(batch.particles).all() and torch.isfinite(batch.jet).all()
    assert (batch.particles[~batch.mask] == 0).all()
    write_cache(records, tmp_path / "none", max_particles=0)
    empty = collate_jets(JetCacheDataset(tmp_path / "none")[np.arange(3)])
    assert empty.particles.shape == (3, 0, 17) and empty.targets["part_origin"].shape == (3, 0)


def test_collate_makes_a_jet_batch(records: JetRecords, tmp_path: Path) -> None:
    write_cache(records, tmp_path / "c", max_particles=8)
    dataset = JetCacheDataset(tmp_path / "c", features=["part_deta", "part_dphi", "part_pt_log"])
    batch = collate_jets(dataset[np.arange(10)])
    assert isinstance(batch, JetBatch)
    assert batch.particles.shape == (10, 8, 3) and batch.particles.dtype == torch.float32
    assert batch.feature_names == ("part_deta", "part_dphi", "part_pt_log")
    assert batch.vectors.shape == (10, 8, 4) and batch.jet.shape == (10, len(JET_INPUTS))
    assert batch.targets["label"].dtype == torch.long and batch.targets["label"].shape == (10,)
    assert batch.targets["jet_truth_pt"].dtype == torch.float32
    for name in ("part_origin", "part_vertex"):
        target = batch.targets[name]
        assert target.dtype == torch.long and target.shape == (10, 8)
        assert (target[~batch.mask] == -1).all()
    per_item = collate_jets([dataset[i] for i in range(10)])
    torch.testing.assert_close(per_item.particles, batch.particles)
    torch.testing.assert_close(per_item.targets["part_vertex"], batch.targets["part_vertex"])


def test_loader_normalized_from_train_split(records: JetRecords, tmp_path: Path) -> None:
    write_cache(records, tmp_path / "c", max_particles=8)
    splits = split_indices(records.event_id, seed=0)
    train = JetCacheDataset(tmp_path / "c", indices=splits["train"])
    norm, jet_norm = fit_cache_normalizers(train)
    everything, _ = fit_cache_normalizers(JetCacheDataset(tmp_path / "c"))
    assert not np.array_equal(norm.center, everything.center)  # fitted on train only
    dataset = JetCacheDataset(
        tmp_path / "c", indices=splits["train"], normalizer=norm, jet_normalizer=jet_norm
    )
    loader = make_loader(dataset, batch_size=16, shuffle=True, seed=3)
    seen = []
    for batch in loader:
        assert (batch.particles[~batch.mask] == 0).all()
        assert batch.particles.abs().max() <= 5.0
        seen.append(batch.targets["label"])
    assert sum(len(s) for s in seen) == len(splits["train"])
    loader.sampler.set_epoch(1)
    assert sum(len(b) for b in loader) == len(splits["train"])


def test_streaming_write_from_several_records(tmp_path: Path) -> None:
    parts = [random_records(10, 4, seed=s) for s in (1, 2, 3)]
    info = write_cache(iter(parts), tmp_path / "c", features="kin", max_particles=4, chunk_size=4)
    assert info.n_jets == 30 and info.feature_names == FEATURE_SETS["kin"]
    labels = JetCacheDataset(tmp_path / "c")[np.arange(30)]["label"]
    np.testing.assert_array_equal(labels, np.concatenate([p.labels for p in parts]))


def test_cache_refuses_to_overwrite(records: JetRecords, tmp_path: Path) -> None:
    folder = tmp_path / "c"
    write_cache(records.select(slice(0, 10)), folder, max_particles=4)
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_cache(records, folder, max_particles=4)
    assert read_cache_info(folder).n_jets == 10  # untouched
    write_cache(records, folder, max_particles=4, overwrite=True)
    assert read_cache_info(folder).n_jets == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_failed_write_leaves_nothing(records: JetRecords, tmp_path: Path) -> None:
    other = random_records(5, 3, seed=1, label_names=("label_QCD", "label_Tbqq"))
    with pytest.raises(DataError, match="label_names"):
        write_cache(iter([records, other]), tmp_path / "c", max_particles=4)
    assert list(tmp_path.iterdir()) == []


def test_cache_bad_input(records: JetRecords, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cache\.json"):
        JetCacheDataset(tmp_path)
    write_cache(records, tmp_path / "c", max_particles=4)
    with pytest.raises(DataError, match="indices"):
        JetCacheDataset(tmp_path / "c", indices=[0, 64])
    with pytest.raises(DataError, match="features"):
        JetCacheDataset(tmp_path / "c", features=["part_nope"])
    np.save(tmp_path / "c" / "mask.npy", np.zeros((3, 4), bool))
    with pytest.raises(DataError, match="mask"):
        JetCacheDataset(tmp_path / "c")[np.arange(2)]


def test_sampler_partitions_batches() -> None:
    sampler = BatchIndexSampler(10, 3, shuffle=True, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))
    assert all((np.diff(b) > 0).all() for b in batches)
    ranks = [list(BatchIndexSampler(10, 3, True, 1, rank=r, world_size=2)) for r in (0, 1)]
    assert [len(r) for r in ranks] == [2, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(ranks[0] + ranks[1])), np.arange(10))
    assert len(BatchIndexSampler(10, 3, drop_last=True)) == 3


def test_same_vertex_targets() -> None:
    vertex = torch.tensor([[0, 0, 1, -1, 0]])
    mask = torch.tensor([[True, True, True, True, False]])
    target = same_vertex_targets(vertex, mask)
    assert target.shape == (1, 5, 5) and target.dtype == torch.float32
    assert target[0, 0, 1] == 1 and target[0, 1, 0] == 1
    assert target[0, 0, 2] == 0
    assert (target[0, 3] == -1).all() and (target[0, :, 3] == -1).all()  # untracked
    assert (target[0, 4] == -1).all()  # padding
    assert (torch.diagonal(target[0]) == -1).all()


@pytest.mark.parametrize(
    ("card", "suffix"),
    [
        ("default", ""),
        ("jetclass", "-jetclass"),
        ("jetclass2", "-jetclass2"),
        ("my/cms.yaml", "-cms"),
    ],
)
def test_simulation_folder_names_the_card(card: str, suffix: str) -> None:
    """Jets of two cards never share a folder (nor a cache): the folder name carries the card."""
    config = SimulateConfig(
        process="toptagging", jets=8000, seed=2, pt_range=(550.0, 650.0), card=card
    )
    assert simulation_folder(config) == Path(f"data/sim/toptagging-8000-s2-pt550-650{suffix}")
    unnamed = SimulateConfig(process="toptagging", jets=8000, seed=2, pt_range=(550.0, 650.0))
    assert (card == DEFAULT_CARD) == (
        cache_folder(DataConfig(simulate=config)) == cache_folder(DataConfig(simulate=unnamed))
    )
