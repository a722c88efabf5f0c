"""Reliability of exported models (issue 17): weights hash, corrupt and truncated files,
inconsistent input shapes, empty jets, the parity tolerance, temporaries of killed exports."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import JET_FEATURES, NORMALIZATION, PARTICLE_FEATURES, backbone_kwargs

from foundation.cli import main
from foundation.errors import DataError
from foundation.export import ParityConfig, export_onnx, quantize, read_metadata
from foundation.export.files import atomic_file
from foundation.export.metadata import WEIGHTS_KEY, weights_sha256
from foundation.export.session import create_session, run_session
from foundation.hub import FeatureSchema
from foundation.model import Model

ROOT = Path(__file__).resolve().parents[1]
SMALL = ParityConfig(counts=(0, 1, 5), batch_sizes=(1, 2), scattered=False)


def consumer():
    spec = importlib.util.spec_from_file_location("score_jet", ROOT / "deploy/python/score_jet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = Model.create("pfn-tiny", backbone_kwargs(), {"top": {"type": "jet_classification"}})
    model.feature_schema = FeatureSchema(PARTICLE_FEATURES, JET_FEATURES, NORMALIZATION)
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    export_onnx(model, path, parity_config=SMALL)
    return path


def jet_file(folder: Path, count: int = 4) -> Path:
    rng = np.random.default_rng(count)
    particles = rng.normal(size=(count, len(PARTICLE_FEATURES)))
    vectors = np.abs(rng.normal(size=(count, 4))) * 10
    return consumer().write_jet(folder / f"jet{count}.txt", particles, vectors, [1.0, 0.5])


def corrupted(source: Path, target: Path) -> Path:
    """``source`` with the exponent bytes of one weight flipped (metadata kept as written)."""
    model = onnx.load(str(source))
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    raw = bytearray(tensor.raw_data)
    raw[3] ^= 0x7F  # the sign/exponent byte of the first float32 (little-endian)
    tensor.raw_data = bytes(raw)
    onnx.save(model, str(target))
    return target


# ---------------------------------------------------------------------------- weights hash
def test_export_carries_a_weights_hash_that_every_reader_recomputes(
    exported: Path, tmp_path: Path
) -> None:
    stored = read_metadata(exported)["weights_sha256"]
    assert stored == weights_sha256(onnx.load(str(exported)))
    found, props = consumer().weights_and_metadata(exported.read_bytes())  # without onnx
    assert found == stored and props[WEIGHTS_KEY] == stored
    int8 = quantize(exported, tmp_path / "model.int8.onnx", "int8")  # its own weights, own hash
    assert read_metadata(int8)["weights_sha256"] != stored
    create_session(int8)


def test_corrupted_weights_are_refused_by_every_consumer(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = corrupted(exported, tmp_path / "bad.onnx")
    with pytest.raises(DataError, match=r"weights_sha256.*corrupted or was edited"):
        create_session(bad)
    with pytest.raises(DataError, match="corrupted or was edited"):
        read_metadata(bad)
    assert consumer().main([str(bad), str(jet_file(tmp_path))]) == 1
    err = capsys.readouterr().err
    assert "weights do not match the sha256 written at export" in err
    assert main(["bench", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "corrupted or was edited" in err and "Traceback" not in err


def test_truncated_file_is_one_clear_error(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = exported.read_bytes()
    for size in (len(data) // 2, len(data) - 7, 10):
        bad = tmp_path / "cut.onnx"
        bad.write_bytes(data[:size])
        with pytest.raises(DataError, match=r"(not readable|an ONNX model|ONNX Runtime)"):
            create_session(bad)
        assert consumer().main([str(bad), str(jet_file(tmp_path))]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_nan_outputs_are_an_error_not_a_score(exported: Path, tmp_path: Path) -> None:
    model = onnx.load(str(exported))
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    tensor.raw_data = np.full(len(tensor.raw_data) // 4, np.nan, np.float32).tobytes()
    from foundation.export.metadata import metadata_of, set_metadata

    set_metadata(model, metadata_of(model))  # a consistent hash: the weights themselves are NaN
    path = tmp_path / "nan.onnx"
    onnx.save(model, str(path))
    module = consumer()
    session = module.open_model(path)
    particles, vectors, jet = module.read_jet(jet_file(tmp_path))
    with pytest.raises(ValueError, match=r"output 'top\..*' is NaN/inf"):
        module.score(session, particles, vectors, jet)


# ------------------------------------------------------------------------------- shapes
def test_inputs_of_different_jets_are_refused(exported: Path) -> None:
    session = create_session(exported)
    feeds = {
        "particles": np.zeros((1, 20, len(PARTICLE_FEATURES)), np.float32),
        "vectors": np.zeros((1, 5, 4), np.float32),
        "mask": np.ones((1, 5), bool),
        "jet": np.zeros((1, len(JET_FEATURES)), np.float32),
    }
    with pytest.raises(ValueError, match=r"axis 1 \(num_particles\) has size 5, but input"):
        run_session(session, feeds)
    feeds["particles"] = np.zeros((1, 5, 3), np.float32)
    with pytest.raises(ValueError, match="axis 2 must have size 7, found 3"):
        run_session(session, feeds)
    feeds["particles"] = np.zeros((1, 5, len(PARTICLE_FEATURES)), np.float32)
    feeds["mask"] = np.ones((1, 5), np.float32)
    with pytest.raises(ValueError, match="expected dtype bool, found float32"):
        run_session(session, feeds)


def test_a_jet_without_particles_is_written_and_scored(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = jet_file(tmp_path, count=0)
    assert path.read_text().splitlines()[1] == f"0 {len(PARTICLE_FEATURES)} 2"
    assert consumer().main([str(exported), str(path), "--json"]) == 0
    assert "top.probability" in capsys.readouterr().out


# ----------------------------------------------------------------------- tolerance, files
@pytest.mark.parametrize("tolerance", ["inf", "nan", "0", "-1", "5"])
def test_absurd_parity_tolerances_are_refused(
    tolerance: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["export", "x", "--onnx", str(tmp_path / "m.onnx"), "--tolerance", tolerance])
    assert "expected a number in (0, 0.1]" in capsys.readouterr().err
    with pytest.raises(ValueError, match="parity tolerance"):
        ParityConfig(tolerance=float(tolerance))


def test_temporary_of_a_killed_export_is_removed_by_the_next(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    code = textwrap.dedent(
        f"""
        import time
        from foundation.export.files import atomic_file
        with atomic_file({str(target)!r}) as temporary:
            temporary.write_bytes(b"half an export")
            print(temporary, flush=True)
            time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    left = Path(writer.stdout.readline().strip())
    with atomic_file(target) as mine:  # a live writer's temporary is left alone
        assert left.exists() and mine != left
        mine.write_bytes(b"first")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert left.exists()  # kill -9: no cleanup ran
    with atomic_file(target, overwrite=True) as temporary:
        temporary.write_bytes(b"second")
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert target.read_bytes() == b"second"
