"""Model cards are Hugging Face Hub cards; SHA256SUMS covers config.json and the weights only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from conftest import cli, make_model, save
from huggingface_hub import ModelCard

from foundation import load_pretrained
from foundation.hub import CheckpointError
from foundation.hub.card import render_card
from foundation.hub.card_metadata import hub_license
from foundation.hub.hashing import SUMS_FILE, read_sums, verify_folder
from foundation.hub.package import read_card_file

ROOT = Path(__file__).resolve().parents[1]
HUB_LICENSE_IDS = {"apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "other"}


def card_of(folder: Path) -> ModelCard:
    return ModelCard.load(folder / "README.md")


def test_card_metadata_of_a_checkpoint(tmp_path: Path):
    card = {
        "license": "Apache-2.0 (weights and code)",
        "datasets": ["org/jets"],
        "tags": ["top-tagging"],
        "metrics": {"test/auc": 0.98, "test/accuracy": 0.91, "note": "text is skipped"},
    }
    folder = save(make_model(), tmp_path / "model", card=card, name="pfn-tiny.test")
    data = card_of(folder).data
    assert data.license == "apache-2.0"
    assert data.library_name == "foundation"
    assert data.tags == ["particle-physics", "jets", "pfn-tiny", "top-tagging"]
    assert data.datasets == ["org/jets"]
    assert data.base_model is None
    results = {r.metric_type: r for r in data.eval_results}
    assert sorted(results) == ["accuracy", "auc"]
    assert results["auc"].metric_value == 0.98 and results["auc"].dataset_split == "test"
    assert results["auc"].dataset_type == "org/jets"
    assert results["auc"].task_type == "jet-classification"
    assert data.model_name == "pfn-tiny.test"
    text = (folder / "README.md").read_text()
    assert "| test/auc | 0.98 |" in text  # the metrics table stays in the body


def test_explicit_results_and_validation():
    config = json.loads((ROOT / "checkpoints/jetformer-tiny.sim20k/config.json").read_text())
    result = {"task": "jet-classification", "dataset": "d", "metric": "accuracy", "value": 0.5}
    text = render_card(config, {"results": [result | {"split": "test", "name": "Accuracy"}]})
    (parsed,) = ModelCard(text).data.eval_results
    assert (parsed.metric_name, parsed.dataset_name, parsed.metric_value) == ("Accuracy", "d", 0.5)
    with pytest.raises(ValueError, match=r"results\[0\]: missing \['value'\]"):
        render_card(config, {"results": [{k: v for k, v in result.items() if k != "value"}]})
    with pytest.raises(ValueError, match=r"'datasets' must be a list of strings"):
        render_card(config, {"datasets": [1]})
    with pytest.raises(KeyError, match=r"unknown keys \['licence'\]"):
        render_card(config, {"licence": "MIT"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Apache-2.0", ("apache-2.0", None)),
        ("MIT. See LICENSE.", ("mit", None)),
        ("CC-BY-4.0 (data) and more text", ("cc-by-4.0", None)),
        ("The weaver-core license, see LICENSE", ("other", "the-weaver-core-license-see-license")),
        (None, (None, None)),
    ],
)
def test_license_ids(text, expected):
    assert hub_license(text) == expected


def test_delta_cards_name_their_hub_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A delta on a Hub repo gets ``base_model``; one on a local folder names it in the text."""
    base = save(make_model(), tmp_path / "base")
    tuned = load_pretrained(base)
    with torch.no_grad():
        tuned.heads["top"].net[0].weight.add_(1.0)
    local = save(tuned, tmp_path / "delta", base=str(base))
    assert card_of(local).data.base_model is None
    assert f"Fine-tuned delta on `{base}`" in (local / "README.md").read_text()

    config = json.loads((local / "config.json").read_text())
    config["base"]["name_or_path"] = "hf-hub:org/pfn-base"
    data = ModelCard(render_card(config, {})).data
    assert data.base_model == "org/pfn-base"
    assert data.to_dict()["base_model_relation"] == "finetune"
    config["adapters"] = [{"type": "lora", "kwargs": {"rank": 2}}]
    assert ModelCard(render_card(config, {})).data.to_dict()["base_model_relation"] == "adapter"
    full = json.loads((base / "config.json").read_text())
    assert ModelCard(render_card(full, {"base_model": "org/pfn"})).data.base_model == "org/pfn"


def test_sums_cover_config_and_weights_only(tmp_path: Path):
    model = make_model()
    folder = save(model, tmp_path / "model", card={"license": "MIT"})
    assert sorted(read_sums(folder)) == ["config.json", "model.safetensors"]
    (folder / "README.md").write_text("# edited by hand\n")  # a card edit never breaks loading
    load_pretrained(folder)
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"pfn-tiny"', '"pfn-tiny" '))
    with pytest.raises(CheckpointError, match=r"config.json: sha256 mismatch"):
        load_pretrained(folder)


def test_folders_whose_sums_list_the_card_still_load(tmp_path: Path):
    """Folders written before the rule list README.md in SHA256SUMS: the entry is not checked."""
    folder = save(make_model(), tmp_path / "model")
    lines = [f"{hashlib.sha256(b'old card').hexdigest()}  README.md\n"]
    lines += [f"{digest}  {name}\n" for name, digest in read_sums(folder).items()]
    (folder / SUMS_FILE).write_text("".join(lines))
    assert "README.md" in read_sums(folder)  # a README.md that differs from its listed hash
    assert sorted(verify_folder(folder)) == ["config.json", "model.safetensors"]
    load_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(CheckpointError, match=r"model.safetensors: sha256 mismatch"):
        load_pretrained(folder)


def test_shipped_cards_are_hub_cards():
    """Every shipped card is a Hub card whose SHA256SUMS leaves it out; the project's own
    pretrained backbones (jetformer-*) name their data and carry a model-index."""
    folders = sorted(p.parent for p in (ROOT / "checkpoints").glob("*/config.json"))
    assert folders
    for folder in folders:
        data = card_of(folder).data
        assert data.library_name == "foundation", folder.name
        assert data.license is None or data.license in HUB_LICENSE_IDS, (folder, data.license)
        listed = read_sums(folder)
        assert "README.md" not in listed, f"{folder.name}: SHA256SUMS still lists the card"
        assert "config.json" in listed and "model.safetensors" in listed
        if folder.name.startswith("jetformer-"):
            assert data.license == "apache-2.0", folder.name
            assert data.datasets, f"{folder.name}: no datasets in the card"
            assert data.eval_results, f"{folder.name}: no model-index results in the card"


def test_refreshing_a_card_in_place_keeps_the_bytes(tmp_path: Path):
    """``foundation hub package FOLDER --out FOLDER`` writes the card and SHA256SUMS only."""
    folder = save(make_model(), tmp_path / "pfn-tiny.test", name="pfn-tiny.test")
    before = {
        p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in {".json", ".safetensors"}
    }
    card = tmp_path / "card.yaml"
    card.write_text("license: MIT\ndatasets: [org/jets]\nsummary: refreshed\n")
    out = str(folder)
    assert cli("hub", "package", out, "--name", "pfn-tiny.test", "--card", str(card), "--out", out,
               "--overwrite") == 0  # fmt: skip
    after = {name: (folder / name).read_bytes() for name in before}
    assert after == before
    assert card_of(folder).data.datasets == ["org/jets"]
    assert "refreshed" in (folder / "README.md").read_text()
    load_pretrained(folder)
    with pytest.raises(ValueError, match=r"field 'name' is 'pfn-tiny.test', not 'other.name'"):
        cli("hub", "package", out, "--name", "other.name", "--card", str(card), "--out", out,
            "--overwrite")  # fmt: skip


def test_card_files_render_as_hub_cards():
    """Every card file of recipes/cards renders, with its checkpoint's config, to a Hub card."""
    paths = sorted((ROOT / "recipes" / "cards").glob("*.yaml"))
    assert paths
    for path in paths:
        card, _ = read_card_file(path)
        config_path = ROOT / "checkpoints" / path.stem / "config.json"
        if not config_path.is_file():
            continue
        data = ModelCard(render_card(json.loads(config_path.read_text()), card)).data
        assert data.license in HUB_LICENSE_IDS, path
        if path.stem.startswith("jetformer-"):
            assert len(data.eval_results) == len(card["results"]), path
