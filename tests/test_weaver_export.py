"""weaver's / CMSSW's ONNX signature: the graph CMSSW runs and its preprocess.json.

The reference is weaver-core itself: its data pipeline (``DataConfig``, ``_build_new_variables``,
``_finalize_inputs``) turns raw jets into the four inputs, its ``DataConfig.export_json`` writes
the preprocess.json to match, and its ParticleNet with the ParT authors' weights gives the
probabilities the exported graph must reproduce. weaver's pipeline imports numba only to compile
its padding kernels; without numba they run as plain Python (the same code, slower).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from foundation.data.normalization import Normalizer
from foundation.export import ParityConfig
from foundation.export.parity import OutputParity, compare_output
from foundation.export.session import create_session, run_session
from foundation.export.weaver_signature import (
    INPUT_NAMES,
    export_weaver_onnx,
    weaver_layout,
)
from foundation.hub import FeatureSchema, save_pretrained
from foundation.model import Model

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT.parent / "shared" / "weights" / "jetclass-particlenet"
KIN = ("part_pt_log", "part_e_log", "part_logptrel", "part_logerel", "part_deltaR")
KIN += ("part_deta", "part_dphi")
COUNTS = (1, 128, 0, 2, 17, 40, 150)
"""Real particles per jet: one, all slots, none, fewer than k + 1, k + 1, many, truncated."""
QUICK = ParityConfig(counts=(1, 2, 128), batch_sizes=(1, 3))


def _weaver_pipeline():
    """weaver's ``DataConfig``, ``_build_new_variables`` and ``_finalize_inputs``."""
    pytest.importorskip("awkward", reason="awkward (weaver's data pipeline) is not installed")
    pytest.importorskip("weaver", reason="weaver-core (the reference) is not installed")
    stubbed = False
    try:
        import numba  # noqa: F401
    except ImportError:  # the kernels are plain Python functions under numba.njit
        stub = types.ModuleType("numba")
        stub.njit = lambda *a, **k: a[0] if a and callable(a[0]) else (lambda f: f)
        sys.modules["numba"] = stubbed = stub
    try:
        from weaver.utils.data.config import DataConfig
        from weaver.utils.data.preprocess import _build_new_variables
        from weaver.utils.dataset import _finalize_inputs
    finally:
        if stubbed:  # weaver's modules keep it; nothing else sees a fake numba
            del sys.modules["numba"]
    return DataConfig, _build_new_variables, _finalize_inputs


def _raw_jets(seed: int, labels: list[str]):
    """JetClass-like raw branches: a hard core and a soft spray around the jet axis."""
    import awkward as ak

    rng = np.random.default_rng(seed)
    counts = np.array(COUNTS)
    n = int(counts.sum())
    pt = 500 * rng.dirichlet(np.ones(n) * 0.3) + 0.5
    eta, phi = rng.normal(0, 0.15, n), rng.normal(0, 0.15, n)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = pt * np.cosh(eta)
    flat = {
        "part_px": px,
        "part_py": py,
        "part_pz": pz,
        "part_energy": energy,
        "part_deta": eta,
        "part_dphi": phi,
    }
    table = {k: ak.unflatten(v.astype(np.float32), counts) for k, v in flat.items()}
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    table["jet_pt"] = np.hypot(np.add.reduceat(px, starts), np.add.reduceat(py, starts))
    table["jet_energy"] = np.add.reduceat(energy, starts)
    table["jet_pt"][counts == 0] = 1.0  # reduceat repeats the next jet's first value for them
    table["jet_energy"][counts == 0] = 1.0
    for index, label in enumerate(labels):
        table[label] = (np.arange(len(counts)) % len(labels) == index).astype(np.int32)
    return ak.Array(table)


def _weaver_particlenet(feature_set: str) -> torch.nn.Module:
    weaver_particlenet = pytest.importorskip("weaver.nn.model.ParticleNet")
    path = WEIGHTS / f"ParticleNet_{feature_set}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is not present (the JetClass ParticleNet weights)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    network = weaver_particlenet.ParticleNet(
        input_dims=7 if feature_set == "kin" else 17,
        num_classes=10,
        conv_params=[(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))],
        fc_params=[(256, 0.1)],
        use_fusion=False,
        use_fts_bn=True,
        use_counts=True,
    )
    network.load_state_dict({key.removeprefix("mod."): value for key, value in state.items()})
    return network.eval()


@pytest.mark.slow  # ONNX export
def test_weaver_pipeline_inputs_give_weaver_particlenets_probabilities(tmp_path: Path) -> None:
    DataConfig, build_new_variables, finalize_inputs = _weaver_pipeline()
    reference = _weaver_particlenet("kin")
    report = export_weaver_onnx(
        ROOT / "checkpoints" / "particlenet.jetclass-kin",
        tmp_path / "kin.onnx",
        parity_config=QUICK,
    )
    assert report.parity is not None and report.parity.passed
    config = DataConfig.load(
        str(WEIGHTS / "JetClass_kin.yaml"), load_observers=False, load_reweight_info=False
    )
    expected_json = tmp_path / "weaver-preprocess.json"
    config.export_json(str(expected_json))
    written = json.loads((tmp_path / "preprocess.json").read_text())
    assert written == json.loads(expected_json.read_text())  # weaver's own layout and values

    table = build_new_variables(_raw_jets(3, config.label_value), config.test_var_funcs)
    inputs = finalize_inputs(table, config)
    feeds = {name: np.ascontiguousarray(inputs[f"_{name}"]) for name in config.input_names}
    assert feeds["pf_features"].shape == (len(COUNTS), 7, 128)
    assert feeds["pf_features"][0, :, 5].tolist() == feeds["pf_features"][0, :, 0].tolist()  # wrap
    session = create_session(tmp_path / "kin.onnx")
    assert [node.name for node in session.get_inputs()] == list(INPUT_NAMES)
    found = run_session(session, feeds)["softmax"]
    with torch.no_grad():
        logits = reference(
            torch.from_numpy(feeds["pf_points"]),
            torch.from_numpy(feeds["pf_features"]),
            torch.from_numpy(feeds["pf_mask"]),
        )
    expected = logits.softmax(-1).numpy()
    assert found.shape == (len(COUNTS), 10) and np.isfinite(found).all()
    difference = np.abs(found - expected).max()
    assert difference <= 1e-5, f"max |probability difference| {difference:.2e}"


@pytest.mark.slow  # training and ONNX export
def test_trained_particlenet_passes_the_project_signature_gate(tmp_path: Path) -> None:
    """Logits up to ~170: one float32 step there is 1.5e-5, so the gate is relative above 1."""
    from foundation.export import export_onnx

    report = export_onnx(
        ROOT / "checkpoints" / "particlenet.jetclass-kin",
        tmp_path / "kin.onnx",
        parity_config=ParityConfig(counts=(1, 128), batch_sizes=(17,)),
    )
    assert report.parity is not None and report.parity.passed
    logits = next(o for o in report.parity.outputs if o.name == "jetclass.logits")
    assert logits.max_scaled <= 1e-4


def test_parity_is_absolute_below_one_and_relative_above() -> None:
    large, small = OutputParity("logits"), OutputParity("probabilities")
    compare_output(large, "case", np.array([170.0, -3.0]), np.array([170.0 + 2e-4, -3.0]))
    compare_output(small, "case", np.array([0.5, 0.0]), np.array([0.5 + 2e-4, 0.0]))
    assert large.max_abs == pytest.approx(2e-4) and large.passed(1e-4)
    assert small.max_abs == pytest.approx(2e-4) and not small.passed(1e-4)
    nan = OutputParity("x")
    compare_output(nan, "case", np.array([1.0]), np.array([np.nan]))
    assert not nan.passed(0.1)


def _tiny_checkpoint(folder: Path, heads: dict, jet_inputs: int = 0) -> Path:
    """A particlenet-tiny (first graph from the 4-vectors) with a fitted-style normalization."""
    torch.manual_seed(0)
    model = Model.create(
        "particlenet-tiny", {"in_features": 7, "in_jet_features": jet_inputs}, heads
    )
    center = np.array([1.7, 2.0, -4.7, -4.7, 0.2, 0.0, 0.0])
    scale = np.array([1.4, 1.4, 1.4, 1.4, 0.25, 0.2, 0.2])
    particles = Normalizer(KIN, center, scale, clip=5.0, method="standard").to_dict()
    jet = Normalizer(("jet_pt_log",), np.zeros(1), np.ones(1), clip=None, method="none").to_dict()
    schema = FeatureSchema(KIN, ("jet_pt_log",), {"particles": particles, "jet": jet})
    return Path(save_pretrained(model, folder, feature_schema=schema))


@pytest.mark.slow  # ONNX export
def test_export_command_writes_the_weaver_graph_and_preprocess_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from foundation.cli import main

    heads = {"top": {"type": "jet_classification", "label_names": ["label_QCD", "label_Tbqq"]}}
    folder = _tiny_checkpoint(tmp_path / "tiny", heads)
    out = tmp_path / "cmssw" / "model.onnx"
    assert main(["export", str(folder), "--onnx", str(out), "--signature", "weaver"]) == 0
    assert "softmax [B, 2]" in capsys.readouterr().out
    session = create_session(out)
    shapes = {node.name: node.shape for node in session.get_inputs()}
    assert shapes == {
        "pf_points": ["batch", 2, "num_particles"],  # unread by this backbone, kept for CMSSW
        "pf_features": ["batch", 7, "num_particles"],
        "pf_vectors": ["batch", 4, "num_particles"],
        "pf_mask": ["batch", 1, "num_particles"],
    }
    assert all(node.type == "tensor(float)" for node in session.get_inputs())
    assert [node.name for node in session.get_outputs()] == ["softmax"]
    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert metadata["foundation.signature"] == "weaver"
    preprocess = json.loads((out.parent / "preprocess.json").read_text())
    assert preprocess["output_names"] == ["label_QCD", "label_Tbqq"]
    assert preprocess["input_names"] == list(INPUT_NAMES)
    info = preprocess["pf_features"]["var_infos"]["part_pt_log"]
    assert info == {
        "median": 1.7,
        "norm_factor": pytest.approx(1 / 1.4),
        "replace_inf_value": 0,
        "lower_bound": -5.0,
        "upper_bound": 5.0,
        "pad": 0,
    }
    assert preprocess["pf_points"]["var_names"] == ["part_deta", "part_dphi"]
    assert preprocess["pf_mask"]["var_length"] == 128
    # the binary head's two probabilities sum to 1 on a 1-particle jet among padded ones
    feeds = {
        "pf_points": np.zeros((2, 2, 5), np.float32),
        "pf_features": np.random.default_rng(0).normal(size=(2, 7, 5)).astype(np.float32),
        "pf_vectors": np.tile(np.array([3, 1, 2, 4], np.float32)[None, :, None], (2, 1, 5)),
        "pf_mask": np.array([[[1, 0, 0, 0, 0]], [[1, 1, 1, 1, 1]]], np.float32),
    }
    softmax = run_session(session, feeds)["softmax"]
    np.testing.assert_allclose(softmax.sum(-1), 1.0, atol=1e-6)
    feeds["pf_features"][0, :, 1:] = 99.0  # padding garbage is ignored
    np.testing.assert_allclose(run_session(session, feeds)["softmax"], softmax, atol=1e-6)
    again = ["export", str(folder), "--onnx", str(out), "--signature", "weaver"]
    assert main(again) == 1  # the files exist: refused without --overwrite
    assert main([*again, "--quantize", "int8", "--overwrite"]) == 2
    assert "--quantize" in capsys.readouterr().err


def test_models_that_do_not_fit_the_signature_are_refused(tmp_path: Path) -> None:
    regression = {"mass": {"type": "jet_regression"}}
    with pytest.raises(ValueError, match="jet_classification"):
        export_weaver_onnx(_tiny_checkpoint(tmp_path / "a", regression), tmp_path / "a.onnx")
    two = {
        "a": {"type": "jet_classification", "label_names": ["x", "y", "z"]},
        "b": {"type": "jet_classification", "label_names": ["x", "y"]},
    }
    model = Model.create("particlenet-tiny", {"in_features": 7, "in_jet_features": 0}, two)
    model.feature_schema = FeatureSchema(KIN)
    with pytest.raises(ValueError, match=r"one jet_classification head, found \['a', 'b'\]"):
        weaver_layout(model)
    assert weaver_layout(model, "a").labels == ("x", "y", "z")
    with pytest.raises(ValueError, match="pool_slots 64"):
        model.backbone.config["pool_slots"] = 64
        weaver_layout(model, "a", length=128)
    jets = {"top": {"type": "jet_classification", "label_names": ["q", "t"]}}
    with pytest.raises(ValueError, match="jet-level inputs"):
        export_weaver_onnx(_tiny_checkpoint(tmp_path / "b", jets, 1), tmp_path / "b.onnx")
    assert not list(tmp_path.glob("*.onnx")) and not (tmp_path / "preprocess.json").exists()
