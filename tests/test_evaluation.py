"""Evaluation: metrics against scikit-learn, known cases, bootstrap, vertex finding, the
evaluate_model pipeline on a tiny untrained model, and ``foundation evaluate`` on a checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from synthetic import random_records, write_jetclass_root

from foundation.data.cache import write_cache
from foundation.data.loading import JetCacheDataset, fit_cache_normalizers, make_loader
from foundation.data.normalization import Normalizer
from foundation.data.schema import JET_INPUTS, JETCLASS_LABELS, ORIGIN_CLASSES, TOP_LABELS
from foundation.errors import DataError, OutputExistsError
from foundation.evaluation import (
    accuracy,
    background_rejection,
    binned_response,
    bootstrap,
    classification_metrics,
    connected_components,
    evaluate_model,
    find_vertices,
    iqr_half,
    pair_metrics,
    particle_metrics,
    predict,
    regression_metrics,
    response_summary,
    roc_auc,
    sigma68,
    signal_vs_background_score,
    vertex_finding_metrics,
)
from foundation.evaluation.inputs import normalizers_from_schema, unavailable_features
from foundation.hub import FeatureSchema
from foundation.model import Model

FEATURES = "kin"


def _binary(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return 1 / (1 + np.exp(-rng.normal(labels * 1.5, 1.0))), labels


# ------------------------------------------------------------------------- classification
def test_auc_and_accuracy_agree_with_sklearn() -> None:
    scores, labels = _binary()
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert accuracy(scores, labels) == pytest.approx(np.mean((scores > 0.5) == labels))
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 3000)
    probabilities = rng.dirichlet(np.ones(4), 3000)
    probabilities[np.arange(3000), labels] += 0.4
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    expected = roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    assert roc_auc(probabilities, labels) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(roc_auc(scores[:10], np.ones(10)))


def test_background_rejection_on_a_known_distribution() -> None:
    # background flat on [0, 1], signal with density 2s: eps_S(t) = 1 - t^2, eps_B(t) = 1 - t
    grid = (np.arange(200_000) + 0.5) / 200_000
    scores = np.concatenate([np.sqrt(grid), grid])
    labels = np.concatenate([np.ones_like(grid), np.zeros_like(grid)])
    for eff in (0.3, 0.5):
        expected = 1 / (1 - np.sqrt(1 - eff))
        assert background_rejection(scores, labels, eff) == pytest.approx(expected, rel=1e-3)
    assert background_rejection([0.9, 0.8, 0.1], [1, 1, 0], 0.5) == np.inf
    assert np.isnan(background_rejection([0.9, 0.8], [1, 1], 0.5))
    with pytest.raises(ValueError, match="signal_efficiency"):
        background_rejection(scores, labels, 0.0)


def test_multiclass_metrics_use_the_signal_vs_background_score() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 2000)
    probabilities = rng.dirichlet(np.ones(3), 2000)
    probabilities[np.arange(2000), labels] += 0.3
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels[:5] = -1  # unlabelled jets are left out
    result = classification_metrics(probabilities, labels, ("qcd", "top", "w"), n_bootstrap=5)
    assert result["n"] == 1995 and result["background"] == "qcd"
    rows = labels >= 0
    expected_auc = roc_auc_score(labels[rows], probabilities[rows], multi_class="ovr")
    assert result["auc"] == pytest.approx(expected_auc)
    pair = (labels == 2) | (labels == 0)
    discriminant = probabilities[pair, 2] / (probabilities[pair, 2] + probabilities[pair, 0])
    w = result["signal_vs_background"]["w"]
    assert w["auc"] == pytest.approx(roc_auc_score(labels[pair] == 2, discriminant))
    assert w["rejection_at_0.5"] == pytest.approx(
        background_rejection(discriminant, labels[pair] == 2, 0.5)
    )
    assert w["auc_std"] > 0
    assert signal_vs_background_score(np.zeros((1, 3)), 1)[0] == 0.5


def test_bootstrap_is_seeded() -> None:
    scores, labels = _binary(500)
    first = bootstrap(roc_auc, scores, labels, n=30, seed=4)
    assert first == bootstrap(roc_auc, scores, labels, n=30, seed=4)
    assert first != bootstrap(roc_auc, scores, labels, n=30, seed=5)
    assert 0 < first[1] < 0.05 and abs(first[0] - roc_auc(scores, labels)) < 3 * first[1]
    mean, std = bootstrap(lambda s: np.array([s.mean(), s.max()]), scores, n=10)
    assert mean.shape == std.shape == (2,)
    with pytest.raises(ValueError, match="length"):
        bootstrap(roc_auc, scores, labels[:-1])


# ------------------------------------------------------------------------------ regression
def test_resolution_of_gaussian_response() -> None:
    rng = np.random.default_rng(3)
    true = rng.uniform(500, 1000, 50_000)
    predicted = true * rng.normal(1.02, 0.1, true.size)
    summary = response_summary(predicted, true, n_bootstrap=10)
    assert summary["median_response"] == pytest.approx(1.02, abs=0.003)
    assert summary["sigma68"] == pytest.approx(0.1, rel=0.03)
    assert summary["iqr_half"] == pytest.approx(0.6745 * 0.1, rel=0.03)
    assert 0 < summary["sigma68_std"] < 0.005
    values = rng.normal(0, 2.0, 100_000)
    assert sigma68(values) == pytest.approx(2.0, rel=0.02)
    assert iqr_half(values) == pytest.approx(0.6745 * 2.0, rel=0.02)
    rows = binned_response(predicted, true, true, [500, 750, 1000])
    assert [row["n"] for row in rows] == [int((true < 750).sum()), int((true >= 750).sum())]
    result = regression_metrics(predicted, true, reference=true * 0.9, bins=4, n_bootstrap=0)
    assert len(result["model_binned"]) == len(result["reference_binned"]) == 4
    assert result["reference"]["median_response"] == pytest.approx(0.9)
    assert response_summary([1.0, np.nan], [0.0, 1.0])["n"] == 0  # true <= 0 and NaN dropped


# --------------------------------------------------------------------- particles and pairs
def test_particle_metrics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, 3000)
    probabilities = rng.dirichlet(np.ones(5), 3000)
    probabilities[np.arange(3000), labels] += 0.25
    labels_with_padding = np.concatenate([labels, -np.ones(50, dtype=np.int64)])
    probabilities_with_padding = np.concatenate([probabilities, np.full((50, 5), 0.2)])
    result = particle_metrics(probabilities_with_padding, labels_with_padding, ORIGIN_CLASSES)
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, probabilities.argmax(axis=1), labels=range(5), zero_division=np.nan
    )
    assert result["n"] == 3000
    for k, name in enumerate(ORIGIN_CLASSES):
        assert result["per_class"][name]["efficiency"] == pytest.approx(recall[k])
        assert result["per_class"][name]["purity"] == pytest.approx(precision[k])
    expected = roc_auc_score(
        labels, probabilities / probabilities.sum(1, keepdims=True), multi_class="ovr"
    )
    assert result["auc"] == pytest.approx(expected)


def test_vertex_finding_on_a_hand_made_example() -> None:
    # jet 0: tracks 0-2 from displaced vertex 1, tracks 3-4 from the primary vertex 0;
    # jet 1: tracks 5-6 from vertex 1 (missed: their pair scores 0.2), track 7 from vertex 2,
    # tracks 8-9 a fake group (true vertices 0 and 3: neither has >= 2 tracks in the group...)
    true_vertex = np.array([1, 1, 1, 0, 0, 1, 1, 2, 0, 3])
    jet = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    first = np.array([0, 1, 0, 3, 2, 5, 8, 7])
    second = np.array([1, 2, 2, 4, 3, 6, 9, 8])
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.1, 0.2, 0.6, 0.3])
    reco = find_vertices(10, first, second, scores)
    assert len(set(reco[[0, 1, 2]])) == 1 and reco[3] == reco[4] and reco[3] != reco[0]
    assert reco[5] != reco[6] and reco[8] == reco[9]
    result = vertex_finding_metrics(reco, true_vertex, jet)
    # true displaced vertices with >= 2 tracks: (jet 0, 1) found, (jet 1, 1) missed
    assert result["n_true_displaced"] == 2 and result["n_found_displaced"] == 1
    assert result["efficiency"] == 0.5
    # reconstructed groups with >= 2 tracks: {0,1,2} and {3,4} match, {8,9} is fake
    assert result["n_reco"] == 3 and result["n_reco_matched"] == 2
    assert result["purity"] == pytest.approx(2 / 3)
    assert result["primary_efficiency"] == 1.0
    pairs = pair_metrics(
        scores,
        (true_vertex[first] == true_vertex[second]).astype(int),
        first,
        second,
        num_tracks=10,
        true_vertex=true_vertex,
        track_jet=jet,
    )
    assert pairs["vertex_finding"] == result
    expected = roc_auc_score(true_vertex[first] == true_vertex[second], scores)
    assert pairs["auc"] == pytest.approx(expected)


def test_union_find_agrees_with_scipy() -> None:
    rng = np.random.default_rng(6)
    first, second = rng.integers(0, 300, 250), rng.integers(0, 300, 250)
    with_scipy = connected_components(300, first, second)
    without = connected_components(300, first, second, use_scipy=False)
    assert np.array_equal(with_scipy, without)
    assert connected_components(3, [], []).tolist() == [0, 1, 2]


# ------------------------------------------------------------------------- evaluate_model
def _tiny_model(num_features: int, label_names: tuple[str, ...] = TOP_LABELS) -> Model:
    torch.manual_seed(0)
    return Model.create(
        "pfn-tiny",
        {"in_features": num_features, "in_jet_features": len(JET_INPUTS)},
        {
            "top": {"type": "jet_classification", "label_names": list(label_names)},
            "pt": {
                "type": "jet_regression",
                "targets": ["jet_truth_pt"],
                "target_offset": [100.0],
                "target_scale": [50.0],
            },
            "ratio": {"type": "jet_regression", "targets": ["log_pt_ratio"]},
            "origin": {"type": "particle_classification"},
            "vertex": {"type": "pair_classification"},
            "masked": {"type": "masked_particle"},
        },
    )


def _cache(tmp_path: Path, n: int = 48, **kwargs) -> JetCacheDataset:
    records = random_records(n, mean_particles=8, seed=1, truth=True, **kwargs)
    write_cache(records, tmp_path / "cache", features=FEATURES, max_particles=16)
    return JetCacheDataset(tmp_path / "cache")


@pytest.mark.slow  # evaluation plots
def test_evaluate_model_writes_metrics_and_plots(tmp_path: Path) -> None:
    dataset = _cache(tmp_path, label_names=TOP_LABELS)
    model = _tiny_model(len(dataset.feature_names))
    loader = make_loader(dataset, batch_size=20)
    result = evaluate_model(model, loader, tmp_path / "eval", n_bootstrap=5, bins=2)
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written == result and result["n_jets"] == 48
    heads = result["heads"]
    assert set(heads) == {"top", "pt", "ratio", "origin", "vertex", "masked"}
    assert (
        0 <= heads["top"]["metrics"]["auc"] <= 1 and "rejection_at_0.3" in heads["top"]["metrics"]
    )
    pt = heads["pt"]["metrics"]["jet_truth_pt"]
    assert len(pt["model_binned"]) == 2 and pt["reference"]["median_response"] > 0
    assert set(heads["origin"]["metrics"]["per_class"]) == set(ORIGIN_CLASSES)
    assert "efficiency" in heads["vertex"]["metrics"]["vertex_finding"]
    assert heads["masked"]["metrics"]["mse"] > 0
    assert set(heads["masked"]["metrics"]["per_feature"]) == set(dataset.feature_names)
    plots = [name for head in heads.values() for name in head["plots"]]
    assert "top_roc.png" in plots and "pt_jet_truth_pt_response_vs_pt.png" in plots
    for name in plots:
        assert (tmp_path / "eval" / name).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(OutputExistsError):
        evaluate_model(model, loader, tmp_path / "eval")


def test_predict_collects_and_maps_labels(tmp_path: Path) -> None:
    dataset = _cache(tmp_path, label_names=JETCLASS_LABELS)
    model = _tiny_model(len(dataset.feature_names), ("label_QCD", "label_Tbqq"))
    predictions = predict(model, make_loader(dataset, batch_size=16), heads=["top", "vertex"])
    labels = predictions["top"].arrays["labels"]
    data_labels = np.asarray(np.load(tmp_path / "cache" / "label.npy"))
    expected = np.select([data_labels == 0, data_labels == 8], [0, 1], -1)
    assert np.array_equal(labels, expected)
    pairs = predictions["vertex"].arrays
    assert (pairs["first"] < pairs["second"]).all()
    assert len(pairs["node_jet"]) == int(np.load(tmp_path / "cache" / "mask.npy").sum())
    with pytest.raises(ValueError, match="share no class"):
        predict(
            _tiny_model(len(dataset.feature_names), ("a", "b", "c")),
            make_loader(dataset, batch_size=16),
            heads=["top"],
        )


# ------------------------------------------------------------------------------- the CLI
def _cli(*argv: str) -> int:
    from foundation.cli import evaluate as evaluate_cli

    parser = argparse.ArgumentParser(prog="foundation")
    evaluate_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_normalization_forms() -> None:
    particles = Normalizer(("a", "b"), np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    jet = Normalizer(("j",), np.array([0.5]), np.array([1.0]))
    schema = FeatureSchema(
        ("a", "b"), ("j",), {"particles": particles.to_dict(), "jet": jet.to_dict()}
    )
    found = normalizers_from_schema(schema)
    assert found[0].names == ("a", "b") and found[1].names == ("j",)
    assert normalizers_from_schema(FeatureSchema(("a", "b"))) == (None, None)
    assert normalizers_from_schema(FeatureSchema(("a", "b"), (), particles.to_dict()))[1] is None
    per_feature, _ = normalizers_from_schema(
        FeatureSchema(("a", "b"), (), {"a": {"mean": 1.0, "std": 3.0}})
    )
    assert per_feature.center.tolist() == [1.0, 0.0] and per_feature.scale.tolist() == [3.0, 1.0]
    with pytest.raises(DataError, match="normalization"):
        normalizers_from_schema(FeatureSchema(("a",), (), {"weird": 1}))
    assert unavailable_features(("part_d0", "part_deta"), ("part_px",)) == ["part_d0"]


@pytest.mark.slow  # the CLI in a fresh Python process
def test_cli_evaluates_a_saved_checkpoint(tmp_path: Path) -> None:
    records = random_records(40, mean_particles=8, seed=2, truth=True, label_names=TOP_LABELS)
    data = str(write_jetclass_root(records, tmp_path / "jets.root"))
    write_cache(records, tmp_path / "train_cache", features=FEATURES, max_particles=16)
    particle_norm, jet_norm = fit_cache_normalizers(JetCacheDataset(tmp_path / "train_cache"))
    model = _tiny_model(len(particle_norm.names))
    schema = FeatureSchema(
        particle_norm.names,
        JET_INPUTS,
        {"particles": particle_norm.to_dict(), "jet": jet_norm.to_dict()},
    )
    run = tmp_path / "run"
    model.save_pretrained(run / "best", feature_schema=schema)
    options = ("--batch-size", "16", "--bootstrap", "3", "--max-particles", "16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on the happy path
        assert _cli("evaluate", str(run), "--data", data, *options, "--device", "cpu") == 0
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert metrics["data"]["n_jets"] == 40 and metrics["checkpoint"]["sha256"]
    assert set(metrics["heads"]) == {"top", "pt", "ratio", "origin", "vertex", "masked"}
    # a ratio target is scored on the corrected jet pT, against the file's detector-level pT
    ratio = metrics["heads"]["ratio"]["metrics"]["log_pt_ratio"]
    assert ratio["quantity"] == "jet_truth_pt" and ratio["model"]["n"] == 40
    expected = np.median(records.jets["jet_pt"] / records.truth["jet_truth_pt"])
    assert ratio["reference"]["median_response"] == pytest.approx(expected, rel=1e-4)
    # a checkpoint folder needs --out; a cache kept with --cache is reused
    best, kept, out = str(run / "best"), str(tmp_path / "kept"), str(tmp_path / "second")
    quick = ("--bootstrap", "0", "--heads", "top", "--out", out)
    assert _cli("evaluate", best, "--data", data, "--cache", kept, *quick) == 0
    assert (tmp_path / "kept" / "cache.json").is_file()
    assert _cli("evaluate", best, "--cache", kept, *quick, "--overwrite") == 0
    assert json.loads((tmp_path / "second" / "metrics.json").read_text())["n_jets"] == 40
    other = str(write_jetclass_root(records[:5], tmp_path / "other.root"))
    with pytest.raises(DataError, match="sources"):
        _cli("evaluate", best, "--data", other, "--cache", kept, *quick, "--overwrite")
    # refusals: other features, an existing output, no --out for a checkpoint folder
    write_cache(records, tmp_path / "full", features="full", max_particles=16)
    with pytest.raises(DataError, match="unexpected"):
        _cli("evaluate", str(run), "--cache", str(tmp_path / "full"), "--out", str(tmp_path / "x"))
    with pytest.raises(OutputExistsError):
        _cli("evaluate", str(run), "--data", data)
    with pytest.raises(ValueError, match="--out is required"):
        _cli("evaluate", best, "--data", data)


def test_evaluate_predictions_multiclass_and_signed_targets(tmp_path: Path) -> None:
    from foundation.evaluation import HeadPredictions, evaluate_predictions

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 300)
    probabilities = rng.dirichlet(np.ones(3), 300)
    signed = rng.normal(0, 1, (300, 1))
    predictions = {
        "jets": HeadPredictions(
            "jets",
            "jet_classification",
            "jet",
            ("qcd", "w", "top"),
            {"scores": probabilities, "labels": labels},
            300,
        ),
        "ratio": HeadPredictions(
            "ratio",
            "jet_regression",
            "jet",
            ("log_pt_ratio",),
            {"predicted": signed + 0.1, "true": signed},
            300,
        ),
    }
    report = evaluate_predictions(predictions, tmp_path, n_bootstrap=0)
    assert set(report["jets"]["metrics"]["signal_vs_background"]) == {"w", "top"}
    assert report["jets"]["plots"] == ["jets_roc.png", "jets_scores.png"]
    ratio = report["ratio"]["metrics"]["log_pt_ratio"]
    assert ratio["mae"] == pytest.approx(0.1) and "model" not in ratio
    assert report["ratio"]["plots"] == []


def test_data_lacking_fields_of_the_features_is_refused(tmp_path: Path) -> None:
    from foundation.data.schema import PARTICLE_FEATURES_FULL
    from foundation.evaluation.inputs import check_cache

    records = random_records(10, mean_particles=4, seed=3)
    kinematic_only = {
        name: records.particles[name] for name in ("part_px", "part_py", "part_pz", "part_energy")
    }
    info = write_cache(
        dataclasses.replace(records, particles=kinematic_only), tmp_path / "c", max_particles=8
    )
    model = _tiny_model(len(PARTICLE_FEATURES_FULL))
    model.feature_schema = FeatureSchema(PARTICLE_FEATURES_FULL, JET_INPUTS)
    with pytest.raises(DataError, match="part_d0val"):
        check_cache(model, info)
    check_cache(model, info, allow_missing_fields=True)


def test_heads_without_targets_in_the_data_are_skipped(tmp_path: Path) -> None:
    records = random_records(20, mean_particles=5, seed=4, label_names=TOP_LABELS)  # no truth
    write_cache(records, tmp_path / "c", features=FEATURES, max_particles=8)
    dataset = JetCacheDataset(tmp_path / "c")
    model = _tiny_model(len(dataset.feature_names))
    result = evaluate_model(
        model, make_loader(dataset, batch_size=8), tmp_path / "e", n_bootstrap=0
    )
    skipped = {name for name, head in result["heads"].items() if "skipped" in head}
    assert skipped == {"pt", "ratio", "origin", "vertex"}
    assert "jet_truth_pt" in result["heads"]["pt"]["skipped"]
    assert result["heads"]["top"]["metrics"]["n"] == 20
    with pytest.raises(KeyError, match="part_origin"):
        predict(model, make_loader(dataset, batch_size=8), heads=["origin"])
