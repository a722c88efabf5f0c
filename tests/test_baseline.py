"""Gradient-boosted-tree baseline: substructure observables, training, scoring, the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import random_records, write_jetclass_root

from foundation.baselines import (
    SUBSTRUCTURE_FEATURES,
    BaselineConfig,
    fit_baseline,
    predict_baseline,
    substructure_features,
    substructure_matrix,
)
from foundation.data.records import JetRecords
from foundation.data.schema import TOP_LABELS
from foundation.errors import DataError, OutputExistsError


def _cli(*argv: str) -> int:
    from foundation.cli import baseline as baseline_cli

    parser = argparse.ArgumentParser(prog="foundation")
    baseline_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def _two_particle_jets() -> JetRecords:
    """Jet 0: two particles (pT 30 at Δη = 0.1, pT 10 at Δφ = -0.2, one charged); jet 1: empty."""
    pt = np.array([30.0, 10.0])
    eta = np.array([0.1, 0.0])
    phi = np.array([0.0, -0.2])
    particles = {
        "part_px": (pt * np.cos(phi)).astype(np.float32),
        "part_py": (pt * np.sin(phi)).astype(np.float32),
        "part_pz": (pt * np.sinh(eta)).astype(np.float32),
        "part_energy": (pt * np.cosh(eta)).astype(np.float32),
        "part_deta": eta.astype(np.float32),
        "part_dphi": phi.astype(np.float32),
        "part_charge": np.array([1.0, 0.0], dtype=np.float32),
    }
    jets = {
        "jet_pt": np.array([40.0, 0.0], dtype=np.float32),
        "jet_eta": np.zeros(2, dtype=np.float32),
        "jet_phi": np.zeros(2, dtype=np.float32),
        "jet_energy": np.array([41.0, 0.0], dtype=np.float32),
        "jet_tau1": np.array([0.5, 0.0], dtype=np.float32),
        "jet_tau2": np.array([0.25, 0.0], dtype=np.float32),
    }
    return JetRecords(
        counts=np.array([2, 0]),
        particles=particles,
        jets=jets,
        labels=np.array([0, 1]),
        label_names=TOP_LABELS,
        event_id=np.arange(2),
    )


def test_substructure_on_a_hand_made_jet() -> None:
    features = substructure_features(_two_particle_jets())
    assert tuple(features) == SUBSTRUCTURE_FEATURES
    assert features["multiplicity"].tolist() == [2, 0]
    assert features["girth"][0] == pytest.approx((30 * 0.1 + 10 * 0.2) / 40, rel=1e-5)
    assert features["ptd"][0] == pytest.approx(np.sqrt(30**2 + 10**2) / 40, rel=1e-5)
    assert features["lead_pt_fraction"][0] == pytest.approx(30 / 40, rel=1e-5)
    assert features["mass"][0] == pytest.approx(np.sqrt(41**2 - 40**2), rel=1e-4)
    assert features["tau21"][0] == pytest.approx(0.5)
    assert features["charged_multiplicity"].tolist() == [1, 0]
    for name in ("sdmass", "tau32"):  # no jet_sdmass / jet_tau3 branch
        assert np.isnan(features[name]).all()
    for name in ("girth", "ptd", "lead_pt_fraction", "tau21"):  # the empty jet
        assert np.isnan(features[name][1])
    assert substructure_matrix(_two_particle_jets(), ("mass", "girth")).shape == (2, 2)
    with pytest.raises(KeyError, match="unknown"):
        substructure_matrix(_two_particle_jets(), ("nsubjets",))


def _separable(n: int, seed: int) -> JetRecords:
    """Random jets whose soft-drop mass depends on the class (top near 175, QCD near 40 GeV)."""
    records = random_records(n, mean_particles=6, seed=seed, truth=True, label_names=TOP_LABELS)
    rng = np.random.default_rng(seed)
    sdmass = np.where(records.labels == 1, 175.0, 40.0) + rng.normal(0, 25, n)
    jets = {**records.jets, "jet_sdmass": sdmass.astype(np.float32)}
    return dataclasses.replace(records, jets=jets)


@pytest.mark.slow  # the CLI trains gradient-boosted trees
def test_baseline_cli_classification_end_to_end(tmp_path: Path) -> None:
    train = write_jetclass_root(_separable(400, 1), tmp_path / "train.root")
    test = write_jetclass_root(_separable(200, 2), tmp_path / "test.root")
    out = tmp_path / "gbt"
    common = ("--train", str(train), "--test", str(test), "--max-iter", "30", "--bootstrap", "5")
    assert _cli("baseline", *common, "--train-size", "300", "--seed", "3", "--out", str(out)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    gbt = metrics["heads"]["gbt"]["metrics"]
    assert gbt["auc"] > 0.9 and gbt["n"] == 200 and gbt["auc_std"] > 0
    assert metrics["baseline"]["n_train"] == 300
    config = json.loads((out / "baseline.json").read_text())["config"]
    assert BaselineConfig.from_dict(config) == BaselineConfig(train_size=300, seed=3, max_iter=30)
    names = {path.name for path in out.iterdir()}
    assert {"gbt_roc.png", "gbt_scores.png", "predictions.npz"} <= names
    assert not [name for name in names if name.endswith((".pkl", ".pickle", ".joblib"))]
    with np.load(out / "predictions.npz", allow_pickle=False) as stored:
        scores = stored["scores"]
    assert scores.shape == (200,)
    # retraining from baseline.json gives the same predictions
    from foundation.data.readers import read_jets

    retrained = fit_baseline(read_jets(train), BaselineConfig.from_dict(config))
    again = predict_baseline(retrained, read_jets(test), BaselineConfig.from_dict(config))
    assert np.array_equal(again[:, 1], scores)
    with pytest.raises(OutputExistsError):
        _cli("baseline", *common, "--out", str(out))


def test_baseline_regression(tmp_path: Path) -> None:
    from foundation.baselines import run_baseline

    train, test = _separable(300, 3), _separable(150, 4)
    config = BaselineConfig(task="regression", target="jet_truth_pt", max_iter=30)
    result = run_baseline(train, test, config, tmp_path / "reg", n_bootstrap=0, bins=3)
    pt = result["heads"]["gbt"]["metrics"]["jet_truth_pt"]
    assert pt["model"]["median_response"] == pytest.approx(1.0, abs=0.05)
    assert pt["reference"]["median_response"] == pytest.approx(1.0, abs=0.05)
    assert len(pt["model_binned"]) == 3
    assert (tmp_path / "reg" / "gbt_jet_truth_pt_response_vs_pt.png").is_file()
    no_truth = dataclasses.replace(test, truth={})
    with pytest.raises(DataError, match="jet_truth_pt"):
        fit_baseline(no_truth, config)


def test_baseline_config_is_checked() -> None:
    with pytest.raises(ValueError, match="target"):
        BaselineConfig(task="classification", target="jet_truth_pt")
    with pytest.raises(ValueError, match="task"):
        BaselineConfig(task="ranking")
    with pytest.raises(ValueError, match="features"):
        BaselineConfig(features=("nsubjets",))
    with pytest.raises(KeyError, match="unknown keys"):
        BaselineConfig.from_dict({"depth": 3})


@pytest.mark.slow  # gradient-boosted trees per point
def test_study_gbt_mode_uses_the_recipes_jets_and_splits(tmp_path: Path) -> None:
    from foundation.baselines.on_recipe import gbt_on_recipe
    from foundation.training.recipe import recipe_from_dict
    from foundation.training.study import data_efficiency

    files = [
        write_jetclass_root(_separable(300, seed), tmp_path / f"{seed}.root") for seed in (5, 6)
    ]
    recipe = recipe_from_dict(
        {
            "name": "gbt-test",
            "data": {
                "files": [str(path) for path in files],
                "cache": str(tmp_path / "cache"),
                "features": "kin",
                "max_particles": 16,
                "split": {"train": 0.6, "val": 0.1, "test": 0.3, "seed": 0},
            },
            "model": {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}},
            "output": {"folder": str(tmp_path / "run")},
        }
    )
    result = data_efficiency(recipe, sizes=[120, 240], seeds=2, modes=["gbt"], out=tmp_path / "s")
    assert [(p.mode, p.size, p.seed) for p in result.points] == [
        ("gbt", 120, 0),
        ("gbt", 120, 1),
        ("gbt", 240, 0),
        ("gbt", 240, 1),
    ]
    assert result.table["gbt"][240]["top/auc"]["mean"] > 0.9  # soft-drop mass separates
    assert result.points[0].metrics != result.points[1].metrics  # another label subsample
    # an infinite rejection (no background jet passes) cannot be stored and is left out
    assert "top/auc" in result.points[0].metrics
    assert set(result.points[0].metrics) <= {
        "top/auc",
        "top/rejection_at_0.3",
        "top/rejection_at_0.5",
    }
    again = data_efficiency(recipe, sizes=[120], seeds=1, modes=["gbt"], out=tmp_path / "s")
    assert again.points[0].metrics == result.points[0].metrics  # kept, not retrained
    regression = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, heads={}))
    with pytest.raises(
        ValueError,
        match=r"jet_classification head .*, a jet_regression head .* or a particle_class",
    ):
        gbt_on_recipe(regression)


def _calibrated(n: int, seed: int) -> JetRecords:
    """Random jets whose particle-level pT departs from the detector-level one by a factor set
    by the multiplicity (so trees on substructure can correct it)."""
    records = random_records(n, mean_particles=6, seed=seed, truth=True, label_names=TOP_LABELS)
    spread = (records.counts - records.counts.mean()) / records.counts.std()
    truth_pt = records.jets["jet_pt"] * np.exp(0.1 * spread)
    return dataclasses.replace(
        records, truth={**records.truth, "jet_truth_pt": truth_pt.astype(np.float32)}
    )


@pytest.mark.slow  # gradient-boosted trees per point
def test_study_gbt_mode_regresses_the_recipes_targets(tmp_path: Path) -> None:
    from foundation.baselines.on_recipe import regression_target
    from foundation.training.recipe import recipe_from_dict
    from foundation.training.study import data_efficiency
    from foundation.training.targets import JET_TARGETS

    records = [_calibrated(300, seed) for seed in (7, 8)]
    files = [write_jetclass_root(r, tmp_path / f"{i}.root") for i, r in enumerate(records)]
    recipe = recipe_from_dict(
        {
            "name": "gbt-regression-test",
            "data": {
                "files": [str(path) for path in files],
                "cache": str(tmp_path / "cache"),
                "features": "kin",
                "max_particles": 16,
                "split": {"train": 0.6, "val": 0.1, "test": 0.3, "seed": 0},
            },
            "model": {
                "backbone": "pfn-tiny",
                "heads": {
                    "calibration": {
                        "type": "jet_regression",
                        "kwargs": {"targets": ["log_pt_ratio", "log_mass_ratio"]},
                    }
                },
            },
            "output": {"folder": str(tmp_path / "run")},
        }
    )
    result = data_efficiency(recipe, sizes=[300], seeds=1, modes=["gbt"], out=tmp_path / "s")
    metrics = result.points[0].metrics
    pt = "calibration/log_pt_ratio"
    # the detector-level jet is off by ~10 % (σ68 of its response); the trees correct it
    assert metrics[f"{pt}/reference/sigma68"] > 0.07
    assert metrics[f"{pt}/model/sigma68"] < 0.5 * metrics[f"{pt}/reference/sigma68"]
    assert metrics[f"{pt}/model/median_response"] == pytest.approx(1.0, abs=0.03)
    assert "calibration/log_mass_ratio/model/sigma68" in metrics
    assert result.table["gbt"][300][f"{pt}/model/sigma68"]["n"] == 1
    # the target is the one the training computes from the raw jet inputs
    jets = records[0]
    raw = np.log(jets.jets["jet_pt"]).astype(np.float32).reshape(-1, 1)
    trained_on = JET_TARGETS["log_pt_ratio"][2](
        {"jet_truth_pt": jets.truth["jet_truth_pt"], "raw_jet": raw}, ["jet_pt_log"]
    )
    np.testing.assert_allclose(regression_target(jets, "log_pt_ratio"), trained_on, atol=1e-5)
    no_truth = dataclasses.replace(jets, truth={})
    with pytest.raises(DataError, match="jet_truth_pt"):
        regression_target(no_truth, "log_pt_ratio")


def _constituent_truth(n: int, seed: int) -> JetRecords:
    """Random jets whose particle origin follows the impact parameter (displaced charged
    particles from a b hadron, the rest "other") and whose tracks share a vertex when they share
    a charge."""
    records = random_records(n, mean_particles=8, seed=seed, truth=True, label_names=TOP_LABELS)
    charge = records.particles["part_charge"]
    displaced = (charge != 0) & (np.abs(records.particles["part_d0val"]) > 0.04)
    origin = np.where(displaced, 1, 3).astype(np.int32)
    vertex = np.select([charge > 0, charge < 0], [1, 2], -1).astype(np.int32)
    return dataclasses.replace(
        records, truth={**records.truth, "part_origin": origin, "part_vertex": vertex}
    )


@pytest.mark.slow  # gradient-boosted trees per point
def test_study_gbt_mode_classifies_particles_and_pairs(tmp_path: Path) -> None:
    from foundation.training.recipe import recipe_from_dict
    from foundation.training.study import data_efficiency

    files = [
        write_jetclass_root(_constituent_truth(200, seed), tmp_path / f"{seed}.root")
        for seed in (3, 4)
    ]
    recipe = recipe_from_dict(
        {
            "name": "gbt-constituents-test",
            "data": {
                "files": [str(path) for path in files],
                "cache": str(tmp_path / "cache"),
                "features": "full",
                "max_particles": 24,
                "split": {"train": 0.6, "val": 0.1, "test": 0.3, "seed": 0},
            },
            "model": {
                "backbone": "pfn-tiny",
                "heads": {
                    "origin": {
                        "type": "particle_classification",
                        "kwargs": {"target": "part_origin"},
                    },
                    "vertex": {
                        "type": "pair_classification",
                        "kwargs": {"target": "pair_same_vertex"},
                    },
                },
            },
            "output": {"folder": str(tmp_path / "run")},
        }
    )
    result = data_efficiency(recipe, sizes=[200], seeds=1, modes=["gbt"], out=tmp_path / "s")
    metrics = result.points[0].metrics
    assert metrics["origin/per_class/b_hadron/auc"] > 0.95  # the impact parameter decides
    assert metrics["origin/per_class/b_hadron/efficiency"] > 0.9
    assert metrics["vertex/auc"] > 0.95  # the charges decide
    assert 0 < metrics["vertex/vertex_finding/efficiency"] <= 1
    assert "origin/accuracy" in metrics and "vertex/pair_purity" in metrics
