"""Inputs of deploy/python/score_jet.py (issue 15): the project writes them from jet files
(``foundation export --example-jets``, :mod:`foundation.export.jet_files`), and the consumer
refuses features that the checkpoint's normalization cannot have produced."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import JET_FEATURES, PARTICLE_FEATURES, backbone_kwargs
from synthetic import random_records, write_jetclass_root

from foundation import load_pretrained
from foundation.data.features import pad_jets
from foundation.data.normalization import Normalizer
from foundation.data.readers import read_jets
from foundation.data.records import JetRecords
from foundation.errors import DataError, OutputExistsError
from foundation.export.jet_files import check_onnx_schema, write_jet_files
from foundation.hub import FeatureSchema, save_pretrained
from foundation.inference import predict
from foundation.model import Model
from foundation.training.normalization import normalization_record

ROOT = Path(__file__).resolve().parents[1]
COUNT = 4


def consumer():
    spec = importlib.util.spec_from_file_location("score_jet", ROOT / "deploy/python/score_jet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(*argv: str) -> int:
    from foundation.cli import export as export_cli

    parser = argparse.ArgumentParser(prog="foundation")
    export_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def jets_with_an_empty_one() -> JetRecords:
    """Four random jets, the second without particles."""
    records = random_records(4, mean_particles=6, seed=3)
    first = records.select([0])
    empty = dataclasses.replace(
        first,
        counts=np.zeros(1, np.int64),
        particles={name: values[:0] for name, values in first.particles.items()},
    )
    return JetRecords.concat([first, empty, records.select([1, 2])])


def fitted_schema(records: JetRecords) -> FeatureSchema:
    """The test features with a normalization fitted on ``records`` (clip 5)."""
    padded = pad_jets(records, PARTICLE_FEATURES, 32, JET_FEATURES)
    particles = Normalizer.fit(padded.particles, PARTICLE_FEATURES, padded.mask)
    jet = Normalizer.fit(padded.jet, JET_FEATURES)
    return FeatureSchema(PARTICLE_FEATURES, JET_FEATURES, normalization_record(particles, jet))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A checkpoint with a fitted normalization, a ROOT file, and the export of
    ``foundation export CKPT --onnx model.onnx --example-jets FILE --example-count 4``."""
    folder = tmp_path_factory.mktemp("score_jet_inputs")
    records = jets_with_an_empty_one()
    root = write_jetclass_root(records, folder / "jets.root")
    torch.manual_seed(0)
    model = Model.create("pfn-tiny", backbone_kwargs(), {"top": {"type": "jet_classification"}})
    checkpoint = save_pretrained(model, folder / "ckpt", feature_schema=fitted_schema(records))
    onnx_path = folder / "model.onnx"
    code = run_cli("export", str(checkpoint), "--onnx", str(onnx_path),
                   "--example-jets", str(root), "--example-count", str(COUNT))  # fmt: skip
    assert code == 0
    return {"checkpoint": checkpoint, "root": root, "onnx": onnx_path}


def score_file(onnx_path: Path, jet_file: Path, capsys: pytest.CaptureFixture) -> dict:
    assert consumer().main([str(onnx_path), str(jet_file), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------------ the project writes
def test_export_writes_jet_files_that_score_like_pytorch(exported, capsys):
    capsys.readouterr()
    files = sorted((exported["onnx"].parent / "model.jets").iterdir())
    assert [file.name for file in files] == [f"jet_{i:03d}.txt" for i in range(COUNT)]
    model = load_pretrained(exported["checkpoint"])
    expected = predict(model, read_jets(exported["root"]))["top"]
    for index, file in enumerate(files):
        found = score_file(exported["onnx"], file, capsys)
        for output, values in expected.items():
            np.testing.assert_allclose(found[f"top.{output}"], values[index : index + 1], atol=1e-5)
    particles, vectors, jet = consumer().read_jet(files[1])  # the jet without particles
    assert particles.shape == (0, len(PARTICLE_FEATURES)) and vectors.shape == (0, 4)
    assert jet.shape == (len(JET_FEATURES),)
    assert "label_" in files[0].read_text().splitlines()[1]  # where the jet came from


def test_written_values_read_back_exactly(exported, tmp_path):
    from foundation.inference import to_batch

    model = load_pretrained(exported["checkpoint"])
    records = read_jets(exported["root"])
    files = write_jet_files(records, model, tmp_path / "jets", count=2, onnx=exported["onnx"])
    batch = to_batch(records, model)
    particles, vectors, jet = consumer().read_jet(files[0])
    real = batch.mask[0].numpy()
    np.testing.assert_array_equal(particles, batch.particles[0].numpy()[real])
    np.testing.assert_array_equal(vectors, batch.vectors[0].numpy()[real])
    np.testing.assert_array_equal(jet, batch.jet[0].numpy())
    assert np.abs(particles).max() <= 5.0  # clipped as the normalization says


def test_existing_folders_are_kept(exported, tmp_path):
    model = load_pretrained(exported["checkpoint"])
    folder = tmp_path / "jets"
    write_jet_files(exported["root"], model, folder, count=3)
    with pytest.raises(OutputExistsError, match="jet files"):
        write_jet_files(exported["root"], model, folder, count=1)
    assert write_jet_files(exported["root"], model, folder, count=1, overwrite=True) == [
        folder / "jet_000.txt"
    ]
    assert sorted(path.name for path in folder.iterdir()) == ["jet_000.txt"]
    (folder / "notes.md").write_text("mine")
    with pytest.raises(FileExistsError, match=r"notes\.md"):
        write_jet_files(exported["root"], model, folder, count=1, overwrite=True)
    assert (folder / "notes.md").read_text() == "mine"


def test_a_graph_of_another_schema_is_refused(exported):
    model = load_pretrained(exported["checkpoint"])
    model.feature_schema = FeatureSchema(PARTICLE_FEATURES, JET_FEATURES, None)
    with pytest.raises(DataError, match=r"foundation\.feature_schema"):
        check_onnx_schema(model, exported["onnx"])


def test_command_refuses_example_jets_where_they_cannot_be_scored(exported, tmp_path, capsys):
    common = ["--example-jets", str(exported["root"]), "--onnx", str(tmp_path / "m.onnx")]
    assert run_cli("export", str(exported["checkpoint"]), "--embeddings-only", *common) == 2
    assert run_cli("export", str(exported["checkpoint"]), "--signature", "weaver", *common) == 2
    assert "--example-jets" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------------- the consumer refuses
def test_unnormalized_jet_is_refused(exported, tmp_path, capsys):
    """Raw features of a 1 TeV-scale jet (its leading particle has ln(pT / GeV) > 5) are refused.

    Raw values that happen to lie inside the clip range cannot be told apart (see score_jet).
    """
    records = read_jets(exported["root"]).select([0])
    momenta = ("part_px", "part_py", "part_pz", "part_energy", "jet_pt", "jet_energy")
    boosted = dataclasses.replace(
        records,
        particles={k: v * 20 if k in momenta else v for k, v in records.particles.items()},
        jets={k: v * 20 if k in momenta else v for k, v in records.jets.items()},
    )
    padded = pad_jets(boosted, PARTICLE_FEATURES, 32, JET_FEATURES)
    real = padded.mask[0]
    assert np.abs(padded.particles[0][real]).max() > 5  # raw features leave the clip range
    raw = consumer().write_jet(
        tmp_path / "raw.txt", padded.particles[0][real], padded.vectors[0][real], padded.jet[0]
    )
    capsys.readouterr()
    assert consumer().main([str(exported["onnx"]), str(raw)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    message = captured.err.strip()
    assert "\n" not in message
    assert str(raw) in message and "outside [-5, 5]" in message and "--example-jets" in message
    assert any(f"'{name}'" in message for name in PARTICLE_FEATURES)


def test_per_feature_clip_bounds_and_jet_inputs():
    module = consumer()
    record = {
        "particles": {"names": ["a", "b"], "center": [0, 0], "scale": [1, 1], "clip": None,
                      "clip_min": [-1.0, None], "clip_max": [1.0, 2.0]},
        "jet": {"names": ["j"], "center": [0], "scale": [1], "clip": 3.0},
    }  # fmt: skip
    schema = {"particle_features": ["a", "b"], "jet_features": ["j"], "normalization": record}
    jet = np.array([0.5], np.float32)
    module.check_inputs("ok.txt", np.array([[1.0, -1e6], [-1.0, 2.0]], np.float32), jet, schema)
    with pytest.raises(ValueError, match=r"'b' of particle 2 is 2.5, outside \[-inf, 2\]"):
        module.check_inputs("b.txt", np.array([[0, 0], [0, 2.5]], np.float32), jet, schema)
    with pytest.raises(ValueError, match=r"j.txt: jet input 'j' is -4, outside \[-3, 3\]"):
        module.check_inputs("j.txt", np.zeros((0, 2), np.float32), np.array([-4.0]), schema)
    with pytest.raises(ValueError, match="2 jet inputs, the model takes 1: j"):
        module.check_inputs("w.txt", np.zeros((0, 2), np.float32), np.zeros(2), schema)
    unclipped = {**schema, "normalization": {"a": {"mean": 1.0, "std": 2.0}}}
    module.check_inputs("any.txt", np.full((1, 2), 1e6, np.float32), np.array([9.0]), unclipped)
