"""weaver-core ParticleNet -> the project's ParticleNet: the same outputs on the same jets.

In float64 the logits agree to 1e-9 (the same function); in float32 the probabilities agree to
1e-5 and the logits to 2e-6 of the largest one (a few rounding steps).

weaver's network runs on 128 padded slots, channels first (padding slots hold garbage it must
ignore); the project's gets the same jets as a JetBatch. Random weaver networks (7 / 13 / 17
inputs, fusion on and off, use_counts on and off, randomised BatchNorm statistics) and the three
JetClass-trained files of ``../shared/weights/jetclass-particlenet`` (when present).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from foundation.convert import (
    ConversionError,
    convert_weaver_particlenet,
    read_state_dict,
    read_weaver_data_config,
)
from foundation.convert.weaver_config import WeaverDataConfig, WeaverVariable
from foundation.data.batch import JetBatch
from foundation.data.schema import FEATURE_SETS, JETCLASS_LABELS

weaver_particlenet = pytest.importorskip(
    "weaver.nn.model.ParticleNet", reason="weaver-core (the reference) is not installed"
)

SLOTS = 128
COUNTS = (1, 128, 0, 2, 17, 40)
"""Real particles per jet: one, all 128 slots, none, fewer than k + 1, exactly k + 1, many."""
SMALL_COUNTS = (1, 2, 0)
"""A batch whose JetBatch is trimmed to N = 2 < k + 1 (weaver still runs on 128 slots)."""
WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights" / "jetclass-particlenet"
SMALL_CONVS = [(4, (8, 8)), (5, (12, 16)), (3, (24,))]


def _data_config(feature_set: str, labels: tuple[str, ...] = JETCLASS_LABELS) -> WeaverDataConfig:
    names = FEATURE_SETS[feature_set]
    return WeaverDataConfig(
        source="test",
        features=tuple(WeaverVariable(name, None) for name in names),
        points=("part_deta", "part_dphi"),
        vectors=("part_px", "part_py", "part_pz", "part_energy"),
        length=SLOTS,
        labels=labels,
        definitions={},
    )


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Random weights and BatchNorm statistics, so that eval-mode BatchNorm is not the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                size = module.num_features
                module.weight.copy_(1 + 0.3 * torch.randn(size, generator=generator))
                module.bias.copy_(0.2 * torch.randn(size, generator=generator))
                module.running_mean.copy_(0.3 * torch.randn(size, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
                module.num_batches_tracked.fill_(1000)


def _jets(
    features: int, coordinates: list[int], seed: int, counts: tuple[int, ...] = COUNTS
) -> tuple[JetBatch, tuple]:
    """The same jets as a JetBatch and as weaver's channels-first padded inputs.

    weaver's padding slots hold random values (as weaver's ``wrap`` padding repeats particles);
    the JetBatch has zeros there.
    """
    generator = torch.Generator().manual_seed(seed)
    batch = len(counts)
    mask = torch.arange(SLOTS).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)
    particles = torch.randn(batch, SLOTS, features, generator=generator)
    particles[..., coordinates] *= 0.3
    garbage = torch.randn(batch, SLOTS, features, generator=generator)
    weaver_features = torch.where(mask.unsqueeze(-1), particles, garbage)
    particles = particles * mask.unsqueeze(-1)
    vectors = torch.randn(batch, SLOTS, 4, generator=generator) * mask.unsqueeze(-1)
    jets = JetBatch(particles=particles, mask=mask, vectors=vectors, jet=torch.zeros(batch, 0))
    points = weaver_features[..., coordinates].transpose(1, 2).contiguous()
    inputs = (points, weaver_features.transpose(1, 2).contiguous(), mask.unsqueeze(1).float())
    return jets, inputs


def _physical_jets(config: WeaverDataConfig, seed: int) -> tuple[JetBatch, tuple]:
    """Jets of random but physical particles (a hard core, soft spray, consistent identities),
    through the project's feature pipeline and the config's normalization: the logits of the
    trained networks stay in their usual range (random features drive them to |logit| > 100,
    where one float32 rounding step alone is 1e-5)."""
    from foundation.data.features import particle_features
    from foundation.data.records import JetRecords

    rng = np.random.default_rng(seed)
    counts = np.array(COUNTS)
    n = int(counts.sum())
    pt = 500 * rng.dirichlet(np.ones(n) * 0.3) + 0.5
    eta, phi = rng.normal(0, 0.15, n), rng.normal(0, 0.15, n)
    kind = rng.integers(0, 5, n)
    charge = np.where(kind == 0, rng.choice([-1.0, 1.0], n), 0.0)
    particles = {
        "part_px": pt * np.cos(phi),
        "part_py": pt * np.sin(phi),
        "part_pz": pt * np.sinh(eta),
        "part_energy": pt * np.cosh(eta),
        "part_deta": eta,
        "part_dphi": phi,
        "part_charge": charge,
        "part_isChargedHadron": (kind == 0) * 1.0,
        "part_isNeutralHadron": (kind == 1) * 1.0,
        "part_isPhoton": (kind == 2) * 1.0,
        "part_isElectron": (kind == 3) * 1.0,
        "part_isMuon": (kind == 4) * 1.0,
        "part_d0val": rng.normal(0, 0.05, n) * (charge != 0),
        "part_d0err": rng.uniform(0, 0.05, n) * (charge != 0),
        "part_dzval": rng.normal(0, 0.05, n) * (charge != 0),
        "part_dzerr": rng.uniform(0, 0.05, n) * (charge != 0),
    }
    records = JetRecords(
        counts=counts,
        particles={k: v.astype(np.float32) for k, v in particles.items()},
        jets={
            "jet_pt": np.full(len(counts), 500.0, dtype=np.float32),
            "jet_eta": np.zeros(len(counts), dtype=np.float32),
            "jet_phi": np.zeros(len(counts), dtype=np.float32),
            "jet_energy": np.full(len(counts), 520.0, dtype=np.float32),
        },
        labels=np.zeros(len(counts), dtype=np.int64),
        label_names=config.labels,
        event_id=np.arange(len(counts)),
    )
    flat = config.normalizer().apply(particle_features(records, config.feature_names))
    mask = torch.arange(SLOTS).unsqueeze(0) < torch.from_numpy(counts).unsqueeze(1)
    features = torch.zeros(len(counts), SLOTS, len(config.features))
    features[mask] = torch.from_numpy(flat)
    jets = JetBatch(
        particles=features,
        mask=mask,
        vectors=torch.zeros(len(counts), SLOTS, 4),
        jet=torch.zeros(len(counts), 0),
    )
    points = features[..., config.coordinates()].transpose(1, 2).contiguous()
    inputs = (points, features.transpose(1, 2).contiguous(), mask.unsqueeze(1).float())
    return jets, inputs


def _compare(
    weaver_model: torch.nn.Module,
    config: WeaverDataConfig,
    seed: int,
    physical: bool = False,
    counts: tuple[int, ...] = COUNTS,
    **options,
):
    state = {f"mod.{key}": value for key, value in weaver_model.state_dict().items()}
    model = convert_weaver_particlenet(state, config, **options)
    if physical:
        jets, inputs = _physical_jets(config, seed)
    else:
        jets, inputs = _jets(len(config.features), config.coordinates(), seed, counts)
    with torch.no_grad():
        expected = weaver_model(*inputs)
        found = model(jets)["jetclass"]["logits"]
        assert found.shape == expected.shape
        assert torch.isfinite(found).all()
        # float32: the probabilities agree to 1e-5; the logits to a few float32 steps of the
        # largest logit (trained networks reach |logit| ~ 80, where one step is 7.6e-6)
        probabilities = (found.softmax(-1) - expected.softmax(-1)).abs().max().item()
        assert probabilities <= 1e-5, f"max |probability difference| {probabilities:.2e}"
        scale = max(1.0, expected.abs().max().item())
        difference = (found - expected).abs().max().item()
        assert difference <= 2e-6 * scale, f"max |logit difference| {difference:.2e}"
        # float64: the same function, so the logits agree far below 1e-5
        double = [x.double() for x in inputs]
        jets64 = dataclasses.replace(jets, particles=jets.particles.double())
        expected64 = weaver_model.double()(*double)
        found64 = model.double()(jets64)["jetclass"]["logits"]
        difference64 = (found64 - expected64).abs().max().item()
        assert difference64 <= 1e-9, f"max |logit difference| in float64 {difference64:.2e}"
        weaver_model.float()
        model.float()
    return model, jets, found


@pytest.mark.parametrize(
    ("feature_set", "use_fusion", "use_counts", "fc_params"),
    [
        ("kin", False, True, [(32, 0.1)]),
        ("kinpid", True, True, [(32, 0.1), (16, 0.1)]),
        ("full", True, False, [(32, 0.0)]),
        ("full", False, False, [(32, 0.1)]),
    ],
)
def test_random_weaver_networks_give_the_same_logits(
    feature_set: str, use_fusion: bool, use_counts: bool, fc_params: list
) -> None:
    labels = JETCLASS_LABELS[:5]
    config = _data_config(feature_set, labels)
    reference = weaver_particlenet.ParticleNet(
        input_dims=len(config.features),
        num_classes=len(labels),
        conv_params=SMALL_CONVS,
        fc_params=fc_params,
        use_fusion=use_fusion,
        use_fts_bn=True,
        use_counts=use_counts,
        trim=False,
    )
    _randomise(reference, seed=len(config.features))
    reference.eval()
    model, jets, _ = _compare(
        reference,
        config,
        seed=1,
        conv_params=SMALL_CONVS,
        fc_params=fc_params,
        use_fusion=use_fusion,
        use_counts=use_counts,
    )
    # the empty jet gets the classifier of a zero embedding, as in weaver
    assert model.backbone(jets).jet[COUNTS.index(0)].abs().max() == 0
    options = {"conv_params": SMALL_CONVS, "fc_params": fc_params, "use_fusion": use_fusion}
    _compare(reference, config, seed=6, counts=SMALL_COUNTS, use_counts=use_counts, **options)


@pytest.mark.parametrize("feature_set", ["kin", "kinpid", "full"])
@pytest.mark.slow  # weaver-core and the checkpoint on files
def test_jetclass_files_give_the_same_logits(feature_set: str) -> None:
    path = WEIGHTS / f"ParticleNet_{feature_set}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is not present (the JetClass ParticleNet weights)")
    config = read_weaver_data_config(WEIGHTS / f"JetClass_{feature_set}.yaml")
    state = read_state_dict(path)
    reference = weaver_particlenet.ParticleNet(
        input_dims=len(config.features),
        num_classes=len(config.labels),
        conv_params=[(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))],
        fc_params=[(256, 0.1)],
        use_fusion=False,
        use_fts_bn=True,
        use_counts=True,
        trim=False,
    )
    reference.load_state_dict({key.removeprefix("mod."): v for key, v in state.items()})
    reference.eval()
    _compare(reference, config, seed=2, physical=True)


def test_a_state_dict_that_does_not_fit_is_refused_with_the_keys_named() -> None:
    config = _data_config("kin")
    reference = weaver_particlenet.ParticleNet(
        input_dims=7, num_classes=10, conv_params=SMALL_CONVS, fc_params=[(32, 0.1)], trim=False
    )  # use_fusion=True by default in weaver
    state = reference.state_dict()
    with pytest.raises(ConversionError, match=r"unexpected key\(s\): fusion_block"):
        convert_weaver_particlenet(state, config, conv_params=SMALL_CONVS, fc_params=[(32, 0.1)])
    state = {k: v for k, v in state.items() if not k.startswith("fusion_block")}
    state.pop("fc.1.bias")
    state["bn_fts.weight"] = torch.ones(8)
    with pytest.raises(ConversionError) as error:
        convert_weaver_particlenet(state, config, conv_params=SMALL_CONVS, fc_params=[(32, 0.1)])
    message = str(error.value)
    assert "missing key(s): fc.1.bias" in message
    assert "bn_fts.weight (8,) (expected (7,))" in message


def test_identity_shortcuts_are_refused() -> None:
    with pytest.raises(ConversionError, match="identity shortcut"):
        convert_weaver_particlenet({}, _data_config("kin"), conv_params=[(4, (7,))])


def test_state_dict_files_load_without_pickle(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"mod.a": torch.ones(2)}, good)
    assert set(read_state_dict(good)) == {"mod.a"}
    bad = tmp_path / "bad.pt"
    torch.save({"mod.a": np.arange(3)}, bad)  # a numpy array needs pickle
    with pytest.raises(ConversionError, match=r"bad\.pt"):
        read_state_dict(bad)
    with pytest.raises(ConversionError, match="not found"):
        read_state_dict(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------------ features
def _weaver_yaml(tmp_path: Path) -> Path:
    text = {
        "new_variables": {
            "part_pt": "np.hypot(part_px, part_py)",
            "part_pt_log": "np.log(part_pt)",
            "part_d0": "np.tanh(part_d0val)",
            "part_deltaR": "np.hypot(part_deta, part_dphi)",
        },
        "preprocess": {"method": "manual"},
        "inputs": {
            "pf_points": {"length": 128, "vars": [["part_deta", None], ["part_dphi", None]]},
            "pf_features": {
                "length": 128,
                "vars": [
                    ["part_pt_log", 1.7, 0.7],
                    ["part_deltaR", 0.2, 4.0],
                    ["part_charge", None],
                    ["part_d0", None],
                    ["part_d0err", 0, 1, 0, 1],
                    ["part_deta", None],
                    ["part_dphi", None],
                ],
            },
            "pf_vectors": {"length": 128, "vars": [["part_px", None], ["part_energy", None]]},
        },
        "labels": {"type": "simple", "value": ["label_QCD", "label_Tbqq"]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(text))
    return path


def test_feature_pipeline_reproduces_the_yaml_definitions(tmp_path: Path) -> None:
    """The project's features + Normalizer = weaver's formulas and preprocessing, from numpy."""
    from foundation.data.features import particle_features
    from foundation.data.records import JetRecords

    config = read_weaver_data_config(_weaver_yaml(tmp_path))
    rng = np.random.default_rng(0)
    n = 400
    px, py = rng.normal(0, 30, n), rng.normal(0, 30, n)
    pz = rng.normal(0, 50, n)
    energy = np.sqrt(px**2 + py**2 + pz**2) * 1.001
    deta, dphi = rng.normal(0, 0.3, n), rng.normal(0, 0.3, n)
    branches = {
        "part_px": px,
        "part_py": py,
        "part_pz": pz,
        "part_energy": energy,
        "part_deta": deta,
        "part_dphi": dphi,
        "part_charge": rng.choice([-1.0, 0.0, 1.0], n),
        "part_d0val": rng.normal(0, 2, n),
        "part_d0err": rng.uniform(-0.5, 1.5, n),  # outside [0, 1] on both sides: clipped
    }
    records = JetRecords(
        counts=np.array([n]),
        particles={k: v.astype(np.float32) for k, v in branches.items()},
        jets={
            "jet_pt": np.array([500.0]),
            "jet_eta": np.zeros(1),
            "jet_phi": np.zeros(1),
            "jet_energy": np.array([600.0]),
        },
        labels=np.zeros(1, dtype=np.int64),
        label_names=config.labels,
        event_id=np.zeros(1, dtype=np.int64),
    )
    raw = particle_features(records, config.feature_names)
    found = config.normalizer().apply(raw)
    b = {k: v.astype(np.float32) for k, v in branches.items()}
    direct = {
        "part_pt_log": np.log(np.hypot(b["part_px"], b["part_py"])),
        "part_deltaR": np.hypot(b["part_deta"], b["part_dphi"]),
        "part_charge": b["part_charge"],
        "part_d0": np.tanh(b["part_d0val"]),
        "part_d0err": b["part_d0err"],
        "part_deta": b["part_deta"],
        "part_dphi": b["part_dphi"],
    }
    for column, variable in enumerate(config.features):
        expected = variable.apply(direct[variable.name])
        np.testing.assert_allclose(found[:, column], expected, rtol=1e-6, atol=1e-6)
    d0err = found[:, config.feature_names.index("part_d0err")]
    assert d0err.min() == 0 and d0err.max() == 1  # [part_d0err, 0, 1, 0, 1] clips to [0, 1]
    untouched = config.feature_names.index("part_deta")
    assert np.array_equal(found[:, untouched], b["part_deta"])  # null: not clipped at ±5


def test_normalization_record_survives_json(tmp_path: Path) -> None:
    import json

    from foundation.data.normalization import Normalizer

    normalizer = read_weaver_data_config(_weaver_yaml(tmp_path)).normalizer()
    again = Normalizer.from_dict(json.loads(json.dumps(normalizer.to_dict(), allow_nan=False)))
    values = np.random.default_rng(1).normal(0, 10, (50, len(normalizer.names)))
    assert np.array_equal(again.apply(values), normalizer.apply(values))
    assert again.to_dict() == normalizer.to_dict()
    from foundation.errors import DataError

    broken = {**normalizer.to_dict(), "clip_max": ["five"] * len(normalizer.names)}
    with pytest.raises(DataError, match="clip_max"):
        Normalizer.from_dict(broken)
    old_style = {key: value for key, value in normalizer.to_dict().items() if "clip_" not in key}
    assert Normalizer.from_dict({**old_style, "clip": 5.0}).clip_min is None  # old files load


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"preprocess": {"method": "auto"}}, "preprocess.method"),
        ({"new_variables": {"part_pt_log": "np.log1p(part_pt)"}}, "new_variables.part_pt_log"),
        ({"labels": {"type": "custom", "value": {"x": "y"}}}, "labels"),
    ],
)
def test_data_configs_the_project_cannot_reproduce_are_refused(
    tmp_path: Path, edit: dict, field: str
) -> None:
    from foundation.errors import DataError

    path = _weaver_yaml(tmp_path)
    data = yaml.safe_load(path.read_text())
    for key, value in edit.items():
        data[key] = {**data[key], **value} if key == "new_variables" else value
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match=field):
        read_weaver_data_config(path)


# ------------------------------------------------------------------------- shipped checkpoints
REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("particlenet.jetclass-kin", "particlenet.jetclass-kinpid", "particlenet.jetclass-full")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoints_are_their_source_converted(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foundation import load_pretrained
    from foundation.hub.hashing import sha256_file
    from foundation.training.normalization import normalizers_from_record

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = REPO / "checkpoints" / name
    model = load_pretrained(name, search_paths=[REPO / "checkpoints"])
    assert (folder / "LICENSE").read_text().startswith("MIT License")
    provenance = model.source["config"]["provenance"]
    assert provenance["repository"] == "jet-universe/particle_transformer"
    assert model.backbone.config["missing_neighbours"] == "zero_features"
    particles, _ = normalizers_from_record(model.feature_schema.normalization)
    assert particles.names == model.feature_schema.particle_features  # fine-tuning reuses it
    source = WEIGHTS / provenance["file"]
    if not source.is_file():
        pytest.skip(f"{source} is not present (the JetClass ParticleNet weights)")
    assert sha256_file(source) == provenance["sha256"]
    feature_set = name.rsplit("-", 1)[1]
    config = read_weaver_data_config(WEIGHTS / f"JetClass_{feature_set}.yaml")
    converted = convert_weaver_particlenet(read_state_dict(source), config)
    shipped = model.state_dict()
    assert shipped.keys() == converted.state_dict().keys()
    assert all(torch.equal(shipped[key], value) for key, value in converted.state_dict().items())


def test_hub_convert_command_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    from foundation import load_pretrained
    from foundation.cli import main

    config_path = _weaver_yaml(tmp_path)
    config = read_weaver_data_config(config_path)
    reference = weaver_particlenet.ParticleNet(
        input_dims=len(config.features),
        num_classes=len(config.labels),
        conv_params=SMALL_CONVS,
        fc_params=[(32, 0.1)],
        use_fusion=True,
        use_counts=False,
        trim=False,
    )
    _randomise(reference, seed=3)
    reference.eval()
    state_path = tmp_path / "net.pt"
    torch.save({f"mod.{k}": v for k, v in reference.state_dict().items()}, state_path)
    license_path = tmp_path / "LICENSE"
    license_path.write_text("MIT License\n")
    options = '{"conv_params": [[4, [8, 8]], [5, [12, 16]], [3, [24]]], "fc_params": [[32, 0.1]], '
    options += '"use_fusion": true, "use_counts": false}'
    out = tmp_path / "converted"
    arguments = ["hub", "convert", "weaver", "particlenet", str(state_path)]
    arguments += ["--data-config", str(config_path), "--out", str(out), "--options", options]
    assert main([*arguments, "--license", str(license_path)]) == 0
    model = load_pretrained(out)
    assert (out / "LICENSE").read_text() == "MIT License\n"
    assert model.backbone.config["pool_slots"] == SLOTS and model.backbone.config["fusion"]
    _, jets, found = _compare(reference, config, seed=4, **_options(options))
    with torch.no_grad():
        assert torch.equal(model(jets)["jetclass"]["logits"], found)
    assert main(arguments) == 1  # the folder exists: refused without --overwrite


def test_unknown_architectures_are_refused_by_name() -> None:
    from foundation.convert import get_converter

    with pytest.raises(KeyError, match="particlenet"):
        get_converter("dgcnn")


def _options(text: str) -> dict:
    import json

    return json.loads(text)


@pytest.mark.slow  # ONNX export and parity
def test_converted_particlenet_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    """The weaver-exact kNN (topk(k + 1) minus the nearest, zero-feature padding neighbours)
    exports for any N: the exporter's parity cases include N = 0, 1, 2 and 128."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from foundation.export.exporter import export_onnx

    config = _data_config("kin", JETCLASS_LABELS[:3])
    reference = weaver_particlenet.ParticleNet(
        input_dims=7, num_classes=3, conv_params=SMALL_CONVS, fc_params=[(16, 0.1)], trim=False
    )
    _randomise(reference, seed=5)
    state = {f"mod.{k}": v for k, v in reference.state_dict().items()}
    model = convert_weaver_particlenet(
        state, config, conv_params=SMALL_CONVS, fc_params=[(16, 0.1)], use_fusion=True
    )
    report = export_onnx(model, tmp_path / "pn.onnx")
    assert report.parity is not None and "N=0 B=1" in report.parity.cases
