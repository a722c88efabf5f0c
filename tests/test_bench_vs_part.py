"""The ParT-vs-project harness (``benchmarks/bench_vs_part.py``) on tiny sizes.

Timings are never checked (benchmarks are run by hand): these tests run every code path of the
harness — PyTorch and ONNX Runtime measurements, the bf16 autocast path of the GPU run on the
CPU, the loader-fed run, the profile, the shared D1 training loop and the table — on a ParT
built small, batch 4, N = 16.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip(
    "weaver.nn.model.ParticleTransformer",
    reason="the reference ParT comes from weaver-core (pip install 'foundation-jets[weaver]')",
)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_vs_part as harness  # noqa: E402

SMALL_PART = {
    "embed_dims": [16, 32, 16],
    "pair_embed_dims": [8, 8],
    "num_heads": 2,
    "num_layers": 1,
    "num_cls_layers": 1,
}
TINY = harness.Settings(
    threads=1, batch_size=4, particles=16, mean_particles=8, budget=0.0, min_repeats=1
)


def _contender(name: str) -> harness.Contender:
    return harness.build_contender(name, 17, part_overrides=SMALL_PART)


@pytest.mark.parametrize("name", [harness.REFERENCE, "jetformer-tiny"])
@pytest.mark.slow  # ONNX export and timing loops
def test_measure_torch_and_onnx(name: str, tmp_path: Path) -> None:
    contender = _contender(name)
    row = harness.measure_torch(contender, TINY)
    for key in ("infer_jets_per_s", "train_jets_per_s", "latency_ms", "flops_per_jet"):
        assert row[key] > 0, key
    assert row["infer_peak_mib"] > 0 and row["train_peak_mib"] > row["infer_peak_mib"]
    onnx = harness.measure_onnx(contender, TINY, tmp_path)
    assert "onnx_error" not in onnx
    assert onnx["onnx_infer_jets_per_s"] > 0 and onnx["onnx_latency_ms"] > 0
    assert onnx["onnx_max_abs_diff"] < 1e-4  # the same padded jets give the same outputs


def test_weaver_part_reads_the_jets_channels_first() -> None:
    contender = _contender(harness.REFERENCE)
    jets, _ = harness.benchmark_jets(TINY)
    contender.model.eval()
    with torch.no_grad():
        logits = contender.model(jets)
        again = contender.model(jets)
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits, again)  # eval mode: deterministic (trimming only)


def test_bfloat16_path_runs_on_cpu() -> None:
    """The GPU run's autocast path, exercised with device=cpu."""
    settings = harness.Settings(**{**TINY.__dict__, "dtype": "bfloat16"})
    for name in (harness.REFERENCE, "jetformer-tiny"):
        row = harness.measure_torch(_contender(name), settings)
        assert row["train_jets_per_s"] > 0


def test_loader_fed_run_and_profile(tmp_path: Path) -> None:
    cache = harness.synthetic_cache(tmp_path / "cache", 24, 16, 8)
    loader = harness.make_cache_loader(cache, batch_size=4, workers=0)
    contender = _contender("jetformer-tiny")
    result = harness.loader_fed_run(contender, loader, TINY, steps=8, warmup=1)
    assert result["steps"] == 8 and result["jets_per_s"] > 0
    assert 0 <= result["loader_wait_fraction"] <= 1
    assert result["gpu_idle_fraction"] == result["loader_wait_fraction"]  # CPU: host wait
    profile = harness.profile_inference(contender, TINY, top=5)
    assert 0 < len(profile) <= 5 and all(row["share"] >= 0 for row in profile)


@pytest.mark.slow  # two trainings
def test_accuracy_uses_one_loop_for_both(tmp_path: Path) -> None:
    from d1_accuracy import d1_data
    from synthetic import random_records, write_jetclass_root

    from foundation.data.schema import TOP_LABELS

    files = [str(tmp_path / "d1.root")]
    write_jetclass_root(random_records(80, 8, seed=0, label_names=TOP_LABELS), files[0])
    data = d1_data(files, cache_root=str(tmp_path / "cache"), train_size=None, batch_size=16)
    results = harness.run_accuracy(
        [harness.REFERENCE, "jetformer-tiny"],
        data,
        epochs=1,
        lr=1e-3,
        settings=TINY,
        part_overrides=SMALL_PART,
    )
    for scores in results.values():
        held_out = len(data.indices["val"]) + len(data.indices["test"])
        assert 0 <= scores["auc"] <= 1 and scores["eval_jets"] == held_out
        assert scores["epochs"] == 1 and scores["train_seconds"] > 0


@pytest.mark.slow  # a recipe's data module and a training
def test_accuracy_data_matches_a_study_point(tmp_path: Path) -> None:
    from d1_accuracy import d1_data
    from synthetic import random_records, write_jetclass_root

    from foundation.data.schema import TOP_LABELS
    from foundation.training.datamodule import JetDataModule
    from foundation.training.recipe import load_recipe, with_changes
    from foundation.training.study import point_recipe

    files = [str(tmp_path / "d1.root")]
    write_jetclass_root(random_records(120, 8, seed=1, label_names=TOP_LABELS), files[0])
    cache_root = str(tmp_path / "cache")
    data = d1_data(files, cache_root=cache_root, train_size=30, batch_size=16, subsample_seed=2)
    base = with_changes(
        load_recipe(harness.DEFAULT_RECIPE),
        data={"files": files, "simulate": None, "cache_root": cache_root},
    )
    study = JetDataModule(point_recipe(base, "full", 30, 2, tmp_path).data, show_progress=False)
    study.prepare()
    for split in ("train", "test"):
        assert np.array_equal(data.indices[split], study.indices[split])
    other = d1_data(files, cache_root=cache_root, train_size=30, batch_size=16, subsample_seed=0)
    assert not np.array_equal(other.indices["train"], data.indices["train"])
    results = harness.run_accuracy(
        ["jetformer-tiny"], data, epochs=1, lr=1e-3, settings=TINY, eval_splits=("test",)
    )
    assert results["jetformer-tiny"]["eval_jets"] == len(data.indices["test"])


def test_table_has_ratios_to_part() -> None:
    rows = [
        {"name": harness.REFERENCE, "params": 10, "train_jets_per_s": 100.0, "latency_ms": 4.0},
        {"name": "jetformer-s", "params": 5, "train_jets_per_s": 300.0, "latency_ms": 1.0},
    ]
    harness.with_ratios(rows)
    assert rows[1]["train_jets_per_s_ratio"] == pytest.approx(3.0)
    assert rows[1]["latency_ms_ratio"] == pytest.approx(0.25)
    assert rows[1]["onnx_infer_jets_per_s_ratio"] is None
    accuracy = {
        "jetformer-s": {"auc": 0.9, "auc_std": 0.01, "rejection_0.3": 50.0, "rejection_0.3_std": 5}
    }
    table = harness.format_table(rows, accuracy)
    assert "3.00" in table and "0.9000" in table and "ratios to weaver-part" in table
    accuracy["jetformer-s"].update(
        {"rejection_0.5": 20.0, "rejection_0.5_std": 2.0, "train_jets_per_s": 100.0},
        eval_jets=10,
        epochs=1,
    )
    assert "50.0±5.0" in harness.format_accuracy(accuracy)


@pytest.mark.slow  # the whole benchmark on tiny sizes
def test_main_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "vs_part.json"
    argv = [
        "--out", str(out), "--names", "jetformer-tiny", "--threads", "1", "--batch-size", "4",
        "--particles", "16", "--mean-particles", "8", "--budget", "0", "--min-repeats", "1",
        "--part-overrides", json.dumps(SMALL_PART),
    ]  # fmt: skip
    harness.main(argv)
    payload = json.loads(out.read_text())
    assert [row["name"] for row in payload["results"]] == [harness.REFERENCE, "jetformer-tiny"]
    assert payload["results"][1]["onnx_infer_jets_per_s_ratio"] > 0
    assert payload["settings"]["batch_size"] == 4 and payload["machine"]["threads"] == 1


@pytest.mark.slow  # ONNX exports of two models
def test_onnx_on_trimmed_jets(tmp_path: Path) -> None:
    settings = harness.Settings(**{**TINY.__dict__, "particles": 32, "onnx_trim": True})
    onnx = harness.measure_onnx(_contender(harness.REFERENCE), settings, tmp_path, profile=True)
    assert onnx["onnx_max_abs_diff"] < 1e-4
    assert onnx["onnx_profile"] and onnx["onnx_profile"][0]["ms_per_call"] >= 0


@pytest.mark.slow  # trainings per study point
def test_part_study_scores_every_point_under_the_study_names(tmp_path: Path) -> None:
    import part_study
    from d1_accuracy import d1_data
    from synthetic import random_records, write_jetclass_root

    from foundation.data.schema import TOP_LABELS

    files = [str(tmp_path / "d1.root")]
    write_jetclass_root(random_records(120, 8, seed=3, label_names=TOP_LABELS), files[0])
    d1_data(files, cache_root=str(tmp_path / "cache"), train_size=None, batch_size=16)
    (cache,) = (path for path in (tmp_path / "cache").iterdir() if path.is_dir())
    out = tmp_path / "part_d1.json"
    argv = [
        "--recipe", str(harness.DEFAULT_RECIPE), "--cache", str(cache), "--sizes", "20,30",
        "--seeds", "2", "--names", harness.REFERENCE, "jetformer-tiny", "--epochs", "1",
        "--batch-size", "8", "--threads", "1", "--part-overrides", json.dumps(SMALL_PART),
        "--out", str(out),
    ]  # fmt: skip
    part_study.main(argv)
    payload = json.loads(out.read_text())
    assert len(payload["runs"]) == 2 * 2 * 2
    for name in (harness.REFERENCE, "jetformer-tiny"):
        for size in ("20", "30"):
            entry = payload["table"][name][size]["top/auc"]
            assert entry["n"] == 2 and 0 <= entry["mean"] <= 1
            assert set(payload["table"][name][size]) == {
                "top/auc", "top/rejection_at_0.3", "top/rejection_at_0.5"
            }  # fmt: skip
    with pytest.raises(SystemExit, match="exists"):
        part_study.main(argv)
