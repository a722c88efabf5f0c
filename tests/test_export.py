"""ONNX export: parity across shapes, metadata, embeddings-only graphs, failures, compression,
the ``export`` / ``bench`` commands and the deployment consumers (DESIGN.md §3 Export)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import (
    JET_FEATURES,
    NORMALIZATION,
    PARTICLE_FEATURES,
    backbone_kwargs,
    make_batch,
    make_model,
    save,
    slow_except,
    tiny_backbones,
)

from foundation import __version__
from foundation.errors import OutputExistsError
from foundation.export import (
    ExportError,
    ExportParityError,
    ParityConfig,
    compression_cost,
    export_onnx,
    quantize,
    read_metadata,
)
from foundation.export import parity as parity_module
from foundation.export.inputs import random_jets
from foundation.export.session import create_session, run_session
from foundation.hub import FeatureSchema, sha256_file
from foundation.model import Model
from heads.jet_classification import JetClassificationHead

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = FeatureSchema(PARTICLE_FEATURES, JET_FEATURES, NORMALIZATION)
SMALL = ParityConfig(counts=(0, 1, 2, 16), batch_sizes=(1, 3))
"""A lighter parity grid for tests whose subject is not parity itself."""


def schema_model(backbone: str = "pfn-tiny", **heads: dict) -> Model:
    """``make_model`` (one head per level), or the given heads, with the test feature schema."""
    if heads:
        torch.manual_seed(0)
        model = Model.create(backbone, backbone_kwargs(), heads)
    else:
        model = make_model(backbone)
    model.feature_schema = SCHEMA
    return model


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` (temporary files of a failed write included)."""
    return sorted(path.name for path in folder.iterdir())


def feeds_of(batch) -> dict[str, np.ndarray]:
    return {
        "particles": batch.particles.numpy(),
        "vectors": batch.vectors.numpy(),
        "mask": batch.mask.numpy(),
        "jet": batch.jet.numpy(),
    }


# --------------------------------------------------------------------------------- parity
# PyG backbones are left out: packed graphs have data-dependent sizes, and exporting one raises
# ExportError (tests/test_graph.py).
@pytest.mark.parametrize(
    "backbone",
    slow_except([b for b in tiny_backbones() if not b.startswith("pyg-")], {"pfn-tiny"}),
)
def test_every_tiny_backbone_exports_with_one_head_per_level(backbone: str, tmp_path: Path):
    model = schema_model(backbone)  # heads: top (jet), origin (particle), vertex (pair)
    real = make_batch(seed=3)  # jets with 0, 1, 3 and 6 particles and targets
    report = export_onnx(model, tmp_path / "model.onnx", batches=[real])

    assert report.parity is not None and report.parity.passed, report.parity.table()
    assert report.outputs == [
        "top.logit",
        "top.probability",
        "origin.logits",
        "origin.probabilities",
        "vertex.logits",
        "vertex.probabilities",
    ]
    labels = report.parity.cases
    for count in (0, 1, 2, 16, 50, 128):
        for size in (1, 3, 17):
            assert f"N={count} B={size}" in labels
    assert any("scattered" in label for label in labels) and labels[-1].startswith("batch[0]")
    assert all(o.max_abs <= 1e-4 for o in report.parity.outputs)

    session = create_session(tmp_path / "model.onnx")
    shapes = {node.name: node.shape for node in session.get_inputs()}
    assert shapes["particles"] == ["batch", "num_particles", len(PARTICLE_FEATURES)]
    assert shapes["mask"] == ["batch", "num_particles"]
    assert session.get_inputs()[2].type == "tensor(bool)"
    empty = random_jets(2, 0, len(PARTICLE_FEATURES), len(JET_FEATURES))
    outputs = run_session(session, feeds_of(empty))
    assert outputs["top.logit"].shape == (2,) and np.isfinite(outputs["top.logit"]).all()
    assert outputs["origin.logits"].shape[:2] == (2, 0)
    assert outputs["vertex.logits"].shape == (2, 0, 0)


def test_parity_failure_raises_with_table_and_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous export")
    real_run = parity_module.run_session

    def drifting(session, feeds):
        outputs = real_run(session, feeds)
        outputs["origin.logits"] = outputs["origin.logits"] + 1e-3
        return outputs

    monkeypatch.setattr(parity_module, "run_session", drifting)
    with pytest.raises(ExportParityError) as caught:
        export_onnx(schema_model(), path, parity_config=SMALL, overwrite=True)
    failed = {o.name for o in caught.value.report.outputs if not o.passed(1e-4)}
    assert failed == {"origin.logits"}
    assert "origin.logits" in str(caught.value) and "FAIL" in str(caught.value)
    assert path.read_bytes() == b"previous export"
    assert leftovers(tmp_path) == ["model.onnx"]


def test_nan_output_fails_parity_whatever_the_tolerance(tmp_path, monkeypatch):
    real_run = parity_module.run_session

    def poisoned(session, feeds):
        outputs = real_run(session, feeds)
        outputs["top.probability"] = outputs["top.probability"] * np.nan
        return outputs

    monkeypatch.setattr(parity_module, "run_session", poisoned)
    with pytest.raises(ExportParityError, match="NaN/inf"):
        export_onnx(schema_model(), tmp_path / "m.onnx", parity_config=SMALL, tolerance=0.1)
    assert leftovers(tmp_path) == []


class _EigenHead(JetClassificationHead):
    """Uses an operator without an ONNX translation (eigenvalues)."""

    def forward(self, features, batch):
        outputs = super().forward(features, batch)
        gram = features.particles.transpose(1, 2) @ features.particles
        outputs["logit"] = outputs["logit"] + torch.linalg.eigvalsh(gram)[:, -1]
        return outputs


class _BranchingHead(JetClassificationHead):
    """Branches in Python on a tensor value (the trace would freeze one branch)."""

    def forward(self, features, batch):
        outputs = super().forward(features, batch)
        if batch.mask.sum() > 3:
            outputs["logit"] = outputs["logit"] * 2
        return outputs


class _MisnamedHead(JetClassificationHead):
    """Returns keys that differ from its output_names."""

    def forward(self, features, batch):
        return {"score": super().forward(features, batch)["logit"]}


@pytest.mark.parametrize(
    ("head_class", "message"),
    [
        (_EigenHead, "linalg_eigvalsh"),
        (_BranchingHead, "depends on tensor values"),
        (_MisnamedHead, "declares output_names"),
    ],
)
def test_unexportable_head_gives_a_clear_error_and_no_file(head_class, message, tmp_path):
    model = Model.create("pfn-tiny", backbone_kwargs())
    model.add_head("bad", head_class(model.backbone.num_features))
    model.feature_schema = SCHEMA
    with pytest.raises(ExportError, match=message):
        export_onnx(model, tmp_path / "bad.onnx")
    assert leftovers(tmp_path) == []


def test_existing_file_needs_overwrite(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        export_onnx(schema_model(top={"type": "jet_classification"}), path, parity_config=SMALL)
    assert path.read_bytes() == b"keep me"


def test_model_without_schema_or_head_is_refused(tmp_path):
    model = make_model("pfn-tiny")
    with pytest.raises(ValueError, match="feature schema"):
        export_onnx(model, tmp_path / "m.onnx")
    model.feature_schema = SCHEMA
    with pytest.raises(KeyError, match="no head"):
        export_onnx(model, tmp_path / "m.onnx", heads="top,nope")
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------- metadata
def test_checkpoint_run_folder_exports_with_metadata(tmp_path):
    model = make_model("jetformer-tiny")
    checkpoint = save(model, tmp_path / "run" / "best")
    path = tmp_path / "exported" / "model.onnx"
    report = export_onnx(tmp_path / "run", path, heads="top", parity_config=SMALL)

    assert report.outputs == ["top.logit", "top.probability"]
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["foundation.library_version"] == __version__
    assert props["foundation.source_sha256"] == sha256_file(checkpoint / "model.safetensors")
    config = json.loads((checkpoint / "config.json").read_text())
    assert json.loads(props["foundation.config"]) == config
    schema = json.loads(props["foundation.feature_schema"])
    assert schema == SCHEMA.to_dict() and schema["normalization"] == NORMALIZATION
    assert json.loads(props["foundation.label_names"]) == {"top": ["label_QCD", "label_Tbqq"]}

    metadata = read_metadata(path)
    assert metadata["embeddings_only"] is False
    assert metadata["heads"]["top"]["target"] == "label"
    assert [i["name"] for i in metadata["inputs"]] == report.inputs
    assert {i["name"]: i["dtype"] for i in metadata["inputs"]}["mask"] == "bool"
    assert metadata["outputs"][0] == {
        "name": "top.logit",
        "head": "top",
        "output": "logit",
        "level": "jet",
        "shape": ["batch"],
    }
    assert metadata["parity"]["passed"] is True
    runtime = create_session(path).get_modelmeta().custom_metadata_map
    assert runtime["foundation.source_sha256"] == report.source_sha256

    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        export_onnx(tmp_path / "exported", tmp_path / "other.onnx")


# ----------------------------------------------------------------------- embeddings only
def test_backbone_then_heads_graphs_compose_to_the_full_model(tmp_path):
    model = schema_model("particlenet-tiny")
    config = ParityConfig(batch_sizes=(1, 3))
    heads = export_onnx(model, tmp_path / "heads.onnx", embeddings_only=True, parity_config=config)
    assert heads.parity is not None and heads.parity.passed
    assert heads.inputs == ["particle_embeddings", "jet_embedding", "mask", "vectors"]
    assert heads.outputs[0] == "top.logit"
    backbone = export_onnx(model, tmp_path / "backbone.onnx", heads=[], parity_config=SMALL)
    assert backbone.outputs == ["particle_embeddings", "jet_embedding"]

    batch = make_batch(seed=5)
    embeddings = run_session(create_session(tmp_path / "backbone.onnx"), feeds_of(batch))
    outputs = run_session(
        create_session(tmp_path / "heads.onnx"),
        {**embeddings, "mask": batch.mask.numpy(), "vectors": batch.vectors.numpy()},
    )
    with torch.no_grad():
        expected = model.eval()(batch)
    for name, value in outputs.items():
        head, output = name.split(".")
        np.testing.assert_allclose(value, expected[head][output].numpy(), atol=1e-4)


# ---------------------------------------------------------------------------- compression
def test_quantization_delta_auc_and_speed(tmp_path):
    model = schema_model(top={"type": "jet_classification", "hidden": [64]})
    fp32 = tmp_path / "model.onnx"
    export_onnx(model, fp32, parity_config=SMALL)
    batches = [random_jets(64, 32, 7, 2, mean_particles=16, seed=seed) for seed in range(3)]
    with torch.no_grad():
        for batch in batches:  # labels the float32 model separates well, not perfectly
            logit = model.eval()(batch)["top"]["logit"]
            noise = 0.5 * logit.std() * torch.randn(len(batch), generator=torch.Generator())
            batch.targets["label"] = (logit + noise > logit.median()).long()

    for mode in ("int8", "fp16"):
        compressed = quantize(fp32, tmp_path / f"model.{mode}.onnx", mode)
        assert read_metadata(compressed)["quantization"]["mode"] == mode
        assert read_metadata(compressed)["config"] == read_metadata(fp32)["config"]
        cost = compression_cost(fp32, compressed, batches, threads=1)
        assert cost.output == "top.logit" and cost.jets == 192 and cost.mode == mode
        assert 0.5 < cost.auc_reference <= 1.0
        assert abs(cost.delta_auc) < 0.05, cost
        assert cost.reference_jets_per_s > 0 and cost.compressed_jets_per_s > 0
    assert cost.max_abs_diff < 0.05  # fp16
    with pytest.raises(ValueError, match="mode"):
        quantize(fp32, tmp_path / "x.onnx", "int4")


# ------------------------------------------------------------------------------ commands
def run_cli(*argv: str) -> int:
    from foundation.cli import bench as bench_cli
    from foundation.cli import export as export_cli

    parser = argparse.ArgumentParser(prog="foundation")
    subparsers = parser.add_subparsers(dest="command")
    export_cli.register(subparsers)
    bench_cli.register(subparsers)
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_export_and_bench_commands(tmp_path, capsys):
    checkpoint = save(schema_model(top={"type": "jet_classification"}), tmp_path / "ckpt")
    path = tmp_path / "model.onnx"
    assert run_cli("export", str(checkpoint), "--onnx", str(path), "--quantize", "int8") == 0
    printed = capsys.readouterr().out
    assert "top.probability" in printed and "ok" in printed and "model.int8.onnx" in printed
    assert path.is_file() and (tmp_path / "model.int8.onnx").is_file()

    assert run_cli("export", str(checkpoint), "--onnx", str(tmp_path / "t.onnx"),
                   "--tolerance", "1e-15") == 1  # fmt: skip
    assert "disagree" in capsys.readouterr().err
    assert not (tmp_path / "t.onnx").exists()

    options = ["--batch-size", "8", "--particles", "16", "--real", "8", "--min-seconds", "0"]
    out = tmp_path / "bench.json"
    assert run_cli("bench", str(path), "--threads", "1", "--json", str(out), *options) == 0
    results = json.loads(out.read_text())["results"]
    assert {(r["backend"], r["mode"]) for r in results if r["device"] == "cpu"} == {
        (backend, mode)
        for backend in ("pytorch", "onnxruntime")
        for mode in ("throughput", "latency")
    }
    assert all(r["jets_per_s"] > 0 and r["max_abs_diff"] < 1e-4 for r in results)
    assert "jets/s" in capsys.readouterr().out


# ----------------------------------------------------------------------------- consumers
def _python_consumer():
    spec = importlib.util.spec_from_file_location(
        "score_jet", ROOT / "deploy" / "python" / "score_jet.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported_jet(tmp_path_factory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """An exported model, a jet file of 6 particles and ONNX Runtime's outputs for that jet."""
    folder = tmp_path_factory.mktemp("consumer")
    model = schema_model("part-tiny", top={"type": "jet_classification"})
    path = folder / "model.onnx"
    export_onnx(model, path, parity_config=SMALL)
    batch = make_batch([6], seed=9)
    jet_file = _python_consumer().write_jet(
        folder / "jet.txt", batch.particles[0].numpy(), batch.vectors[0].numpy(), batch.jet[0]
    )
    return path, jet_file, run_session(create_session(path), feeds_of(batch))


def test_python_consumer_reads_a_jet_file_and_matches(exported_jet, capsys):
    path, jet_file, expected = exported_jet
    assert _python_consumer().main([str(path), str(jet_file), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    for name, value in expected.items():
        np.testing.assert_allclose(found[name], value, atol=1e-5)


def _onnxruntime_headers() -> Path | None:
    for variable in ("ONNXRUNTIME_INCLUDE_DIR", "ONNXRUNTIME_ROOT"):
        if os.environ.get(variable):
            root = Path(os.environ[variable])
            for folder in (root, root / "include", root / "include" / "onnxruntime"):
                if (folder / "onnxruntime_cxx_api.h").is_file():
                    return folder
    return None


def test_cpp_consumer_matches_python(exported_jet, tmp_path):
    headers = _onnxruntime_headers()
    if shutil.which("g++") is None or headers is None:
        pytest.skip(
            "C++ consumer not built: needs g++ and the ONNX Runtime C/C++ headers "
            "(onnxruntime_cxx_api.h; set ONNXRUNTIME_ROOT or ONNXRUNTIME_INCLUDE_DIR); the "
            "onnxruntime wheel ships only libonnxruntime.so"
        )
    import onnxruntime

    capi = Path(onnxruntime.__file__).parent / "capi"
    library = next(iter(sorted(capi.glob("libonnxruntime.so*"))))
    binary = tmp_path / "score_jet"
    command = ["g++", "-std=c++17", "-O1", f"-I{headers}", str(ROOT / "deploy/cpp/score_jet.cpp"),
               str(library), f"-Wl,-rpath,{capi}", "-o", str(binary)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    path, jet_file, expected = exported_jet
    result = subprocess.run([str(binary), str(path), str(jet_file)], capture_output=True,
                            text=True, check=True)  # fmt: skip
    found = {}
    for line in result.stdout.splitlines():
        name, values = line.split(":", 1)
        found[name.split(" [")[0]] = np.array([float(v) for v in values.split()])
    for name, value in expected.items():
        np.testing.assert_allclose(found[name], value.reshape(-1), atol=1e-5)


def test_python_consumer_rejects_a_malformed_jet_file(tmp_path):
    (tmp_path / "bad.txt").write_text("2 3 0\n1 2 3 4 5 6 7\n")
    with pytest.raises(ValueError, match="expected 3 data lines"):
        _python_consumer().read_jet(tmp_path / "bad.txt")


def test_consumer_script_runs_without_torch(exported_jet):
    path, jet_file, _ = exported_jet
    code = (
        "import sys, runpy; sys.modules['torch'] = None; sys.argv = ['score_jet', *sys.argv[1:]]; "
        f"runpy.run_path({str(ROOT / 'deploy/python/score_jet.py')!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), str(jet_file)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "top.probability [1]:" in result.stdout
