"""Checkpoint folders: save -> load bit-exact, strict loading, bad files, deltas, names, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import (
    JET_FEATURES,
    NORMALIZATION,
    PARTICLE_FEATURES,
    PROVENANCE,
    cli,
    make_batch,
    make_model,
    outputs_equal,
    run_eval,
    save,
    tiny_backbones,
)
from safetensors.torch import load_file, save_file
from torch import nn

from foundation import __version__, load_pretrained
from foundation.data.batch import JetBatch
from foundation.errors import OutputExistsError
from foundation.hub import (
    CHECKPOINTS_ENV,
    FORMAT_VERSION,
    CheckpointError,
    list_pretrained,
    push_to_hub,
    save_pretrained,
)
from foundation.hub.hashing import write_sums
from foundation.model import Model
from foundation.models.adapters import list_adapters, register_adapter

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Model, Path]:
    model = make_model()
    return model, save(model, tmp_path / "ckpt")


def resum(folder: Path) -> None:
    """Rewrite SHA256SUMS after a deliberate edit, to reach the checks behind the hashes."""
    write_sums(folder)


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    resum(folder)


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("backbone", tiny_backbones())
def test_save_load_bit_exact(tmp_path: Path, backbone: str):
    model = make_model(backbone)
    folder = save(model, tmp_path / backbone)
    loaded = load_pretrained(folder)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    batch = make_batch()
    outputs_equal(run_eval(model, batch), run_eval(loaded, batch))
    assert loaded.backbone_name == backbone and loaded.loss_weights == model.loss_weights
    assert list(loaded.heads) == list(model.heads)
    assert not loaded.training


def test_folder_contents(saved):
    _, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "SHA256SUMS",
        "config.json",
        "model.safetensors",
    ]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left
    config = json.loads((folder / "config.json").read_text())
    assert config["library_version"] == __version__
    assert config["format_version"] == FORMAT_VERSION
    assert config["backbone"]["name"] == "pfn-tiny"
    assert config["backbone"]["kwargs"]["in_features"] == len(PARTICLE_FEATURES)
    assert config["feature_schema"] == {
        "particle_features": list(PARTICLE_FEATURES),
        "jet_features": list(JET_FEATURES),
        "normalization": NORMALIZATION,
    }
    assert config["provenance"] == PROVENANCE
    top = config["heads"]["top"]
    assert top["type"] == "jet_classification" and top["loss_weight"] == 2.0
    assert top["label_names"] == ["label_QCD", "label_Tbqq"]
    assert top["output_names"] == ["logit", "probability"]
    sums = (folder / "SHA256SUMS").read_text().split("\n")
    assert {line.split("  ")[1] for line in sums if line} == {  # the card is not hashed
        "config.json",
        "model.safetensors",
    }
    weights = load_file(folder / "model.safetensors")
    assert all(key.startswith(("backbone.", "heads.")) for key in weights)


def test_model_card(tmp_path: Path):
    card = {
        "data": "Random jets for the unit tests.",
        "metrics": {"auc": 0.5},
        "license": "Apache-2.0",
        "limitations": ["not a physics model"],
    }
    folder = save(make_model(), tmp_path / "card", card=card)
    text = (folder / "README.md").read_text()
    for section in (
        "Training data",
        "Training recipe",
        "Metrics",
        "Intended use",
        "Limitations",
        "License",
        "Inputs",
        "Provenance",
    ):
        assert f"## {section}" in text
    assert "| auc | 0.5 |" in text and "Random jets" in text and "- not a physics model" in text
    assert "\nlicense: apache-2.0\n" in text  # the Hub's license id
    assert text.count("_Not provided._") == 3  # recipe, intended use, citation
    with pytest.raises(KeyError, match=r"unknown keys"):
        save(make_model(), tmp_path / "typo", card={"metrcs": {}})


@pytest.mark.slow  # a fresh Python process importing torch
def test_load_in_a_fresh_process(saved, tmp_path: Path):
    model, folder = saved
    batch = make_batch()
    expected = run_eval(model, batch)
    inputs = tmp_path / "batch.safetensors"
    save_file(
        {
            "particles": batch.particles,
            "mask": batch.mask,
            "vectors": batch.vectors,
            "jet": batch.jet,
        },
        inputs,
    )
    produced = tmp_path / "outputs.safetensors"
    code = (
        "import sys, torch\n"
        "from safetensors.torch import load_file, save_file\n"
        "from foundation.data.batch import JetBatch\n"
        "from foundation import load_pretrained\n"
        "model = load_pretrained(sys.argv[1])\n"
        "batch = JetBatch(**load_file(sys.argv[2]))\n"
        "with torch.no_grad():\n"
        "    out = model(batch)\n"
        "save_file({f'{h}.{k}': v.contiguous() for h, o in out.items() for k, v in o.items()},"
        " sys.argv[3])\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(inputs), str(produced)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    other = load_file(produced)
    for head, named in expected.items():
        for key, value in named.items():
            assert torch.equal(other[f"{head}.{key}"], value), (head, key)


@pytest.mark.slow  # two Python processes
def test_weights_file_bytes_are_reproducible_across_processes(saved, tmp_path: Path):
    """Same weights, same sha256 (deltas record their base's): safetensors' own metadata order
    varies between processes, the written header does not."""
    import hashlib
    import struct

    from foundation.hub.checkpoint import write_weights

    _, folder = saved
    tensors = load_file(folder / "model.safetensors")
    metadata = {"format": "pt", "zeta": "1", "alpha": "2", "mid": "3"}
    here = write_weights(tensors, tmp_path / "here.safetensors", metadata)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from safetensors.torch import load_file\n"
        "from foundation.hub.checkpoint import write_weights\n"
        "write_weights(load_file(sys.argv[1]), Path(sys.argv[2]),"
        " {'mid': '3', 'alpha': '2', 'zeta': '1', 'format': 'pt'})\n"
    )
    digests = {hashlib.sha256(here.read_bytes()).hexdigest()}
    for index in range(2):
        there = tmp_path / f"there{index}.safetensors"
        result = subprocess.run(
            [sys.executable, "-c", code, str(folder / "model.safetensors"), str(there)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        digests.add(hashlib.sha256(there.read_bytes()).hexdigest())
    assert len(digests) == 1
    blob = here.read_bytes()
    length = struct.unpack("<Q", blob[:8])[0]
    assert length % 8 == 0
    header = json.loads(blob[8 : 8 + length])
    assert list(header["__metadata__"]) == sorted(metadata)
    loaded = load_file(here)
    assert all(torch.equal(loaded[key], value) for key, value in tensors.items())


def test_overwrite_is_explicit_and_atomic(saved):
    model, folder = saved
    before = (folder / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError, match=r"overwrite"):
        save(model, folder)
    with pytest.raises(ValueError, match=r"JSON"):
        save(make_model(seed=1), folder, overwrite=True, provenance={"bad": object()})
    assert (folder / "model.safetensors").read_bytes() == before
    save(make_model(seed=1), folder, overwrite=True)
    assert (folder / "model.safetensors").read_bytes() != before


def test_save_needs_a_matching_schema(tmp_path: Path):
    model = make_model()
    with pytest.raises(ValueError, match=r"feature_schema"):
        save_pretrained(model, tmp_path / "a")
    with pytest.raises(ValueError, match=r"in_features=7"):
        save_pretrained(model, tmp_path / "b", feature_schema=["a", "b"])
    with pytest.raises(ValueError, match=r"backbone name"):
        save_pretrained(Model(model.backbone), tmp_path / "c", feature_schema=PARTICLE_FEATURES)


# ----------------------------------------------------------------------------- head choice
def test_heads_left_out_on_purpose(saved):
    model, folder = saved
    backbone_only = load_pretrained(folder, heads=None)
    assert len(backbone_only.heads) == 0
    one = load_pretrained(folder, heads=["origin"])
    assert list(one.heads) == ["origin"]
    batch = make_batch()
    torch.testing.assert_close(
        run_eval(one, batch)["origin"]["logits"], run_eval(model, batch)["origin"]["logits"]
    )
    with pytest.raises(KeyError, match=r"no head.*'nope'.*its heads: top, origin, vertex"):
        load_pretrained(folder, heads=["nope"])


# --------------------------------------------------------------------------- bad checkpoints
def test_truncated_weights(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*sha256 mismatch"):
        load_pretrained(folder)
    resum(folder)  # a consistently truncated file
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*not a readable safetensors"):
        load_pretrained(folder)


def test_tampered_file(saved):
    _, folder = saved
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"loss_weight": 2.0', '"loss_weight": 3.0'))
    with pytest.raises(CheckpointError, match=r"config\.json.*sha256 mismatch"):
        load_pretrained(folder)
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(CheckpointError, match=r"SHA256SUMS.*missing"):
        load_pretrained(folder)


@pytest.mark.parametrize("change", ["extra", "missing", "shape"])
def test_weights_must_match_exactly(saved, change: str):
    _, folder = saved
    path = folder / "model.safetensors"
    weights = load_file(path)
    if change == "extra":
        weights["heads.top.surprise"] = torch.zeros(3)
        pattern = r"1 unexpected key\(s\): heads\.top\.surprise"
    elif change == "missing":
        del weights["heads.origin.net.0.weight"]
        pattern = r"1 missing key\(s\): heads\.origin\.net\.0\.weight"
    else:
        weights["heads.top.net.0.bias"] = torch.zeros(5)
        pattern = r"shape mismatch.*heads\.top\.net\.0\.bias \(5,\)"
    save_file(weights, path)
    resum(folder)
    with pytest.raises(CheckpointError, match=pattern) as error:
        load_pretrained(folder)
    assert "model.safetensors" in str(error.value)


def test_newer_versions(saved):
    _, folder = saved
    edit_config(folder, library_version="99.0.0")
    with pytest.raises(CheckpointError, match=r"config\.json.*library_version.*99\.0\.0.*upgrade"):
        load_pretrained(folder)
    edit_config(folder, format_version=FORMAT_VERSION + 1)
    with pytest.raises(CheckpointError, match=r"config\.json.*format version 2 is newer.*upgrade"):
        load_pretrained(folder)


def test_unknown_architecture_and_head(saved):
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    edit_config(folder, backbone={**config["backbone"], "name": "transformer-xxl"})
    with pytest.raises(CheckpointError, match=r"unknown architecture 'transformer-xxl'.*pfn-tiny"):
        load_pretrained(folder)
    heads = {**config["heads"], "top": {**config["heads"]["top"], "type": "jet_tagging_v9"}}
    edit_config(folder, backbone=config["backbone"], heads=heads)
    with pytest.raises(CheckpointError, match=r"unknown head 'jet_tagging_v9'"):
        load_pretrained(folder)
    assert list(load_pretrained(folder, heads=["origin"]).heads) == ["origin"]


def test_malformed_config(saved):
    _, folder = saved
    (folder / "config.json").write_text("{not json")
    resum(folder)
    with pytest.raises(CheckpointError, match=r"config\.json.*not valid JSON"):
        load_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({"format": "foundation-checkpoint"}))
    with pytest.raises(CheckpointError, match=r"format_version"):
        load_pretrained(folder)


def test_no_pickle_on_the_load_path(saved, monkeypatch):
    _, folder = saved

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load (pickle) used on a load path")

    monkeypatch.setattr(torch, "load", refuse)
    load_pretrained(folder)


# ---------------------------------------------------------------------------- feature schema
def test_check_feature_schema(saved):
    _, folder = saved
    model = load_pretrained(folder)
    batch = make_batch()
    assert model.check_feature_schema(batch) == []
    assert model.check_feature_schema(list(PARTICLE_FEATURES)) == []
    swapped = list(PARTICLE_FEATURES)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert "another order" in model.check_feature_schema(swapped)[0]
    problems = model.check_feature_schema([*PARTICLE_FEATURES[:-1], "part_charge"])
    assert problems == [
        f"particle_features: missing ['{PARTICLE_FEATURES[-1]}']",
        "particle_features: unexpected ['part_charge']",
    ]
    unnamed = JetBatch(batch.particles, batch.mask, batch.vectors, batch.jet)
    assert "no feature_names" in model.check_feature_schema(unnamed)[0]
    assert model.feature_schema.normalization == NORMALIZATION
    with pytest.raises(ValueError, match=r"no feature schema"):
        make_model().check_feature_schema(batch)


# ------------------------------------------------------------------------- pretrained names
def test_load_by_registered_name(saved, tmp_path: Path, monkeypatch):
    model, folder = saved
    registry = tmp_path / "registry"
    save(model, registry / "pfn-tiny.unit", name="pfn-tiny.unit")
    monkeypatch.setenv(CHECKPOINTS_ENV, str(registry))
    assert "pfn-tiny.unit" in list_pretrained()
    loaded = load_pretrained("pfn-tiny.unit")
    assert loaded.source["kind"] == "pretrained"
    outputs_equal(run_eval(model, make_batch()), run_eval(loaded, make_batch()))
    assert list_pretrained([tmp_path]) == ["ckpt"]
    with pytest.raises(KeyError, match=r"unknown checkpoint 'nothing.here'.*pfn-tiny.unit"):
        load_pretrained("nothing.here")
    with pytest.raises(ValueError, match=r"revision"):
        load_pretrained(folder, revision="v1")


def test_a_pretrained_backbone_is_the_model_without_heads(saved, tmp_path: Path, monkeypatch):
    model, _ = saved
    save(model, tmp_path / "registry" / "pfn-tiny.unit")
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path / "registry"))
    batch = make_batch()
    expected = model.backbone.eval()(batch).jet
    loaded = load_pretrained("pfn-tiny.unit", heads=None)
    assert not loaded.heads and torch.equal(loaded.backbone(batch).jet, expected)
    assert loaded.feature_schema.particle_features == PARTICLE_FEATURES


@pytest.mark.parametrize("name", ["load_pretrained", "from_pretrained", "create_backbone"])
def test_one_way_to_load(name: str) -> None:
    """``foundation.load_pretrained`` only: the hub's loaders are gone, with a pointer to it."""
    import foundation.hub

    with pytest.raises(AttributeError, match=r"use foundation\.load_pretrained"):
        getattr(foundation.hub, name)
    assert not hasattr(Model, "from_pretrained")


# ------------------------------------------------------------------------------------ deltas
_ADAPTER = "unit_test_offset"
if _ADAPTER not in list_adapters():

    @register_adapter(_ADAPTER)
    def _offset_adapter(model: Model, width: int) -> None:
        """A stand-in for LoRA: an extra backbone parameter that the base does not have."""
        model.backbone.register_parameter("unit_offset", nn.Parameter(torch.zeros(width)))


def test_delta_checkpoint(saved, tmp_path: Path):
    _, base_folder = saved
    tuned = load_pretrained(base_folder)
    tuned.add_adapter(_ADAPTER, width=3)
    tuned.freeze_backbone()
    with torch.no_grad():
        tuned.heads["top"].net[0].weight.add_(1.0)
        tuned.backbone.unit_offset.add_(2.0)
    delta = save(tuned, tmp_path / "delta", base=str(base_folder))
    stored = load_file(delta / "model.safetensors")
    assert all(key.startswith("heads.") for key in stored if key != "backbone.unit_offset")
    assert "backbone.unit_offset" in stored
    config = json.loads((delta / "config.json").read_text())
    assert config["base"]["name_or_path"] == str(base_folder)
    assert config["adapters"] == [{"type": _ADAPTER, "kwargs": {"width": 3}}]

    loaded = load_pretrained(delta)
    for key, value in tuned.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.source["base"]["sha256"] == config["base"]["sha256"]

    # The base changed after the fine-tune: its hash no longer matches.
    save(make_model(seed=5), base_folder, overwrite=True)
    with pytest.raises(CheckpointError, match=r"base checkpoint .* sha256 .* fine-tune was made"):
        load_pretrained(delta)


def test_delta_refuses_a_changed_backbone(saved, tmp_path: Path):
    _, base_folder = saved
    tuned = load_pretrained(base_folder)
    with torch.no_grad():
        next(tuned.backbone.parameters()).add_(1.0)
    with pytest.raises(ValueError, match=r"backbone tensor.*differ from the base"):
        save(tuned, tmp_path / "delta", base=str(base_folder))
    assert not (tmp_path / "delta").exists()


# ---------------------------------------------------------------------------------- upload
def test_push_to_hub_builds_the_upload(saved):
    _, folder = saved
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def create_branch(self, repo_id, **kwargs):
            calls.append(("create_branch", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))
            return "commit-info"

    assert push_to_hub(folder, "hf-hub:org/pfn", revision="v1", api=FakeApi()) == "commit-info"
    assert [c[0] for c in calls] == ["create_repo", "create_branch", "upload_folder"]
    upload = calls[-1][2]
    assert upload["repo_id"] == "org/pfn" and upload["folder_path"] == str(folder)
    assert upload["revision"] == "v1"
    assert upload["allow_patterns"] == [
        "README.md",
        "SHA256SUMS",
        "config.json",
        "model.safetensors",
    ]
    (folder / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(CheckpointError, match=r"sha256 mismatch"):
        push_to_hub(folder, "org/pfn", api=FakeApi())


# -------------------------------------------------------------------------------------- CLI
def test_cli_list_info_download(saved, tmp_path: Path, monkeypatch, capsys):
    model, _ = saved
    registry = tmp_path / "registry"
    save(model, registry / "pfn-tiny.unit", name="pfn-tiny.unit")
    monkeypatch.setenv(CHECKPOINTS_ENV, str(registry))

    assert cli("hub", "list") == 0
    listing = capsys.readouterr().out
    assert "pfn-tiny.unit" in listing and "origin,top,vertex" in listing

    assert cli("hub", "info", "pfn-tiny.unit") == 0
    info = capsys.readouterr().out
    assert "backbone:    pfn-tiny" in info and PARTICLE_FEATURES[0] in info

    out = tmp_path / "copy"
    assert cli("hub", "download", "pfn-tiny.unit", "--out", str(out)) == 0
    assert capsys.readouterr().out.strip() == str(out)
    outputs_equal(run_eval(model, make_batch()), run_eval(load_pretrained(out), make_batch()))
    with pytest.raises(OutputExistsError):
        cli("hub", "download", "pfn-tiny.unit", "--out", str(out))
    assert cli("hub", "download", "pfn-tiny.unit", "--out", str(out), "--overwrite") == 0


def test_shipped_checkpoints_load():
    """Every folder under checkpoints/ loads strictly; finding none is a failure."""
    names = list_pretrained([REPO / "checkpoints"])
    assert names, f"no checkpoint found under {REPO / 'checkpoints'}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in names:
            weights = REPO / "checkpoints" / name / "model.safetensors"
            assert weights.is_file(), f"{name}: no model.safetensors"
            load_pretrained(name, search_paths=[REPO / "checkpoints"])
