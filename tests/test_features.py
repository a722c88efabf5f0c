"""Particle features against hand-computed values; sorting, truncation, padding, N = 0 and 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic import random_records

from foundation.data.features import (
    TRUTH_PAD,
    jet_inputs,
    pad_jets,
    padding_index,
    particle_features,
    resolve_feature_names,
)
from foundation.data.records import JetRecords
from foundation.data.schema import FEATURE_SETS, JET_INPUTS, PARTICLE_FEATURES_FULL


def two_particle_jet(with_axis_branches: bool = True) -> JetRecords:
    """One jet: a softer electron (stored first) and a harder charged hadron."""
    particles = {
        "part_px": np.array([0.0, 3.0], np.float32),
        "part_py": np.array([-2.0, 4.0], np.float32),
        "part_pz": np.array([2.0, 0.0], np.float32),
        "part_energy": np.array([3.0, 5.0], np.float32),
        "part_charge": np.array([-1.0, 1.0], np.float32),
        "part_isChargedHadron": np.array([0.0, 1.0], np.float32),
        "part_isNeutralHadron": np.zeros(2, np.float32),
        "part_isPhoton": np.zeros(2, np.float32),
        "part_isElectron": np.array([1.0, 0.0], np.float32),
        "part_isMuon": np.zeros(2, np.float32),
        "part_d0val": np.array([-1.0, 0.5], np.float32),
        "part_d0err": np.array([0.2, 0.1], np.float32),
        "part_dzval": np.array([0.0, 2.0], np.float32),
        "part_dzerr": np.array([0.4, 0.3], np.float32),
    }
    jets = {"jet_pt": np.array([6.0]), "jet_energy": np.array([8.0])}
    if with_axis_branches:
        jets.update({"jet_eta": np.array([0.1]), "jet_phi": np.array([0.5])})
    return JetRecords(
        counts=np.array([2]),
        particles=particles,
        jets={k: v.astype(np.float32) for k, v in jets.items()},
        labels=np.array([0]),
        label_names=("label_QCD",),
        event_id=np.array([7]),
    )


def expected_two_particle() -> dict[str, list[float]]:
    """Hand-computed ParT features of :func:`two_particle_jet`, in stored order."""
    eta = [math.asinh(1.0), 0.0]
    phi = [-math.pi / 2, math.atan2(4, 3)]
    deta = [e - 0.1 for e in eta]
    dphi = [p - 0.5 for p in phi]
    return {
        "part_pt_log": [math.log(2), math.log(5)],
        "part_e_log": [math.log(3), math.log(5)],
        "part_logptrel": [math.log(2 / 6), math.log(5 / 6)],
        "part_logerel": [math.log(3 / 8), math.log(5 / 8)],
        "part_deltaR": [math.hypot(a, b) for a, b in zip(deta, dphi, strict=True)],
        "part_charge": [-1, 1],
        "part_isChargedHadron": [0, 1],
        "part_isNeutralHadron": [0, 0],
        "part_isPhoton": [0, 0],
        "part_isElectron": [1, 0],
        "part_isMuon": [0, 0],
        "part_d0": [math.tanh(-1.0), math.tanh(0.5)],
        "part_d0err": [0.2, 0.1],
        "part_dz": [0.0, math.tanh(2.0)],
        "part_dzerr": [0.4, 0.3],
        "part_deta": deta,
        "part_dphi": dphi,
    }


def test_features_match_hand_computed_values() -> None:
    features = particle_features(two_particle_jet())
    expected = expected_two_particle()
    assert features.shape == (2, 17) and features.dtype == np.float32
    for column, name in enumerate(PARTICLE_FEATURES_FULL):
        np.testing.assert_allclose(features[:, column], expected[name], rtol=1e-5, atol=1e-6)


def test_deta_dphi_branches_are_used_when_present() -> None:
    records = two_particle_jet()
    particles = dict(records.particles)
    particles["part_deta"] = np.array([0.25, -0.5], np.float32)
    particles["part_dphi"] = np.array([0.125, 0.75], np.float32)
    with_branches = JetRecords(
        counts=records.counts,
        particles=particles,
        jets=records.jets,
        labels=records.labels,
        label_names=records.label_names,
        event_id=records.event_id,
    )
    out = particle_features(with_branches, ["part_deta", "part_dphi", "part_deltaR"])
    np.testing.assert_allclose(out[:, 0], [0.25, -0.5])
    np.testing.assert_allclose(out[:, 1], [0.125, 0.75])
    np.testing.assert_allclose(out[:, 2], np.hypot([0.25, -0.5], [0.125, 0.75]), rtol=1e-6)


def test_jet_axis_from_particles_when_branches_absent() -> None:
    records = two_particle_jet(with_axis_branches=False)
    out = particle_features(records, ["part_deta", "part_dphi"])
    jet_px, jet_py, jet_pz = 3.0, 2.0, 2.0
    jet_eta = math.asinh(jet_pz / math.hypot(jet_px, jet_py))
    jet_phi = math.atan2(jet_py, jet_px)
    np.testing.assert_allclose(out[:, 0], [math.asinh(1.0) - jet_eta, -jet_eta], rtol=1e-5)
    np.testing.assert_allclose(
        out[:, 1], [-math.pi / 2 - jet_phi, math.atan2(4, 3) - jet_phi], rtol=1e-5
    )


def test_dphi_wraps_around_pi() -> None:
    records = two_particle_jet()
    jets = {**records.jets, "jet_phi": np.array([3.0], np.float32)}
    wrapped = JetRecords(
        counts=records.counts,
        particles=records.particles,
        jets=jets,
        labels=records.labels,
        label_names=records.label_names,
        event_id=records.event_id,
    )
    dphi = particle_features(wrapped, ["part_dphi"])[:, 0]
    assert np.all(np.abs(dphi) <= math.pi)
    np.testing.assert_allclose(dphi[0], -math.pi / 2 - 3.0 + 2 * math.pi, rtol=1e-5)


def test_absent_fields_give_zero() -> None:
    records = two_particle_jet()
    vectors = {k: records.particles[k] for k in ("part_px", "part_py", "part_pz", "part_energy")}
    bare = JetRecords(
        counts=records.counts,
        particles=vectors,
        jets=records.jets,
        labels=records.labels,
        label_names=records.label_names,
        event_id=records.event_id,
    )
    out = particle_features(bare)
    kinematic = {"part_pt_log", "part_e_log", "part_logptrel", "part_logerel", "part_deltaR"}
    for column, name in enumerate(PARTICLE_FEATURES_FULL):
        if name not in kinematic | {"part_deta", "part_dphi"}:
            assert (out[:, column] == 0).all(), name


def test_padding_sorts_by_pt_and_masks() -> None:
    padded = pad_jets(two_particle_jet(), "full", max_particles=4)
    expected = expected_two_particle()
    assert padded.particles.shape == (1, 4, 17)
    np.testing.assert_array_equal(padded.mask, [[True, True, False, False]])
    column = PARTICLE_FEATURES_FULL.index("part_pt_log")
    np.testing.assert_allclose(
        padded.particles[0, :2, column], [math.log(5), math.log(2)], rtol=1e-6
    )
    np.testing.assert_allclose(padded.particles[0, 0, -1], expected["part_dphi"][1], rtol=1e-5)
    np.testing.assert_array_equal(padded.particles[0, 2:], 0)
    np.testing.assert_allclose(padded.vectors[0, :2], [[3, 4, 0, 5], [0, -2, 2, 3]])
    np.testing.assert_array_equal(padded.vectors[0, 2:], 0)
    assert padded.feature_names == PARTICLE_FEATURES_FULL
    assert padded.jet.shape == (1, len(JET_INPUTS))


def test_truncation_keeps_the_hardest() -> None:
    records = random_records(20, mean_particles=10, seed=1, truth=True)
    padded = pad_jets(records, "kin", max_particles=3)
    pt = np.hypot(records.particles["part_px"], records.particles["part_py"])
    for jet in range(records.n_jets):
        start, stop = records.offsets[jet], records.offsets[jet + 1]
        top = np.sort(pt[start:stop])[::-1][:3]
        got = np.exp(padded.particles[jet, padded.mask[jet], 0])
        np.testing.assert_allclose(got, top, rtol=1e-5)
        assert padded.mask[jet].sum() == min(3, records.counts[jet])
        # truth is laid out like the particles, -1 on padding
        origin = padded.truth["part_origin"][jet]
        assert (origin[~padded.mask[jet]] == TRUTH_PAD).all()
        order = np.argsort(-pt[start:stop], kind="stable")[:3]
        np.testing.assert_array_equal(
            origin[padded.mask[jet]], records.truth["part_origin"][start:stop][order]
        )
    assert padded.truth["jet_truth_pt"].shape == (records.n_jets,)


def test_zero_and_one_particle_jets() -> None:
    records = random_records(6, mean_particles=3, seed=2, truth=True)
    counts = np.array([0, 1, 0, 1, 0, 0])
    keep = np.concatenate(
        [np.arange(records.offsets[j], records.offsets[j] + c) for j, c in enumerate(counts)]
    )
    small = JetRecords(
        counts=counts,
        particles={k: v[keep.astype(int)] for k, v in records.particles.items()},
        jets=records.jets,
        labels=records.labels,
        label_names=records.label_names,
        event_id=records.event_id,
        truth={
            k: (v[keep.astype(int)] if k.startswith("part_") else v)
            for k, v in records.truth.items()
        },
    )
    padded = pad_jets(small, "full", max_particles=2)
    np.testing.assert_array_equal(padded.mask.sum(axis=1), counts)
    assert np.isfinite(padded.particles).all() and np.isfinite(padded.jet).all()
    np.testing.assert_array_equal(padded.particles[counts == 0], 0)
    none = pad_jets(small, "kin", max_particles=0)
    assert none.particles.shape == (6, 0, 7) and none.mask.shape == (6, 0)
    assert none.truth["part_vertex"].shape == (6, 0)


def test_jets_without_any_particle() -> None:
    records = random_records(3, 3, seed=0).select(slice(0, 3))
    empty = JetRecords(
        counts=np.zeros(3, np.int64),
        particles={k: v[:0] for k, v in records.particles.items()},
        jets={},
        labels=records.labels,
        label_names=records.label_names,
        event_id=records.event_id,
    )
    padded = pad_jets(empty, "full", max_particles=5)
    assert not padded.mask.any() and (padded.particles == 0).all()
    np.testing.assert_array_equal(padded.jet, 0)


def test_jet_inputs() -> None:
    records = two_particle_jet()
    out = jet_inputs(records)
    eta = 0.1
    mass = math.sqrt(8.0**2 - (6.0 * math.cosh(eta)) ** 2)
    np.testing.assert_allclose(out[0], [math.log(6.0), eta, math.log1p(mass), 2], rtol=1e-5)


def test_feature_sets() -> None:
    assert resolve_feature_names("kin") == FEATURE_SETS["kin"]
    assert resolve_feature_names(["part_dphi", "part_pt_log"]) == ("part_dphi", "part_pt_log")
    out = particle_features(two_particle_jet(), "kinpid")
    assert out.shape == (2, 13)
    with pytest.raises(KeyError, match="kinpid"):
        resolve_feature_names("everything")
    with pytest.raises(KeyError, match="part_nope"):
        resolve_feature_names(["part_nope"])


def test_padding_index_vectorized_layout() -> None:
    layout = padding_index(np.array([3, 0, 2]), np.array([1.0, 3.0, 2.0, 5.0, 4.0]), 2)
    np.testing.assert_array_equal(layout.source, [1, 2, 3, 4])
    np.testing.assert_array_equal(layout.mask, [[True, True], [False, False], [True, True]])
    np.testing.assert_array_equal(layout.gather(np.arange(5.0)), [[1, 2], [0, 0], [3, 4]])
    with pytest.raises(ValueError, match="max_particles"):
        padding_index(np.array([1]), np.array([1.0]), -1)


def test_features_whose_fields_the_data_lacks_are_never_silent() -> None:
    """Top Landscape-like jets (4-vectors only): the full set is refused, kin fits."""
    import dataclasses
    import warnings

    from foundation.data.features import MissingFieldsWarning, check_feature_fields
    from foundation.errors import DataError

    records = random_records(6, mean_particles=4, seed=5)
    vectors = ("part_px", "part_py", "part_pz", "part_energy")
    four_vectors = dataclasses.replace(
        records, particles={name: records.particles[name] for name in vectors}
    )
    with pytest.raises(DataError, match=r"part_d0val.*'kin' feature set.*jetclass-kin"):
        check_feature_fields(PARTICLE_FEATURES_FULL, vectors, "top.h5")
    with pytest.raises(DataError, match="part_isMuon"):
        particle_features(four_vectors, "kinpid", on_missing="error")
    with pytest.warns(MissingFieldsWarning, match="part_d0"):
        values = particle_features(four_vectors, "full")
    assert not values[:, PARTICLE_FEATURES_FULL.index("part_d0")].any()
    with pytest.warns(MissingFieldsWarning):
        check_feature_fields(FEATURE_SETS["full"], vectors, allow_missing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        particle_features(four_vectors, "kin", on_missing="error")
        assert check_feature_fields(FEATURE_SETS["full"], records.particles) == {}
