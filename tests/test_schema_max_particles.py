"""``max_particles`` in the checkpoint's feature schema: written by training, read by consumers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import JET_FEATURES, PARTICLE_FEATURES, backbone_kwargs
from synthetic import random_records, write_jetclass_root

from foundation import load_pretrained
from foundation.data.cache import write_cache
from foundation.data.features import pad_jets
from foundation.data.schema import TOP_LABELS
from foundation.data.slots import DEFAULT_MAX_PARTICLES
from foundation.evaluation.inputs import evaluation_dataset
from foundation.hub import FeatureSchema, read_config, save_pretrained
from foundation.hub.errors import CheckpointError
from foundation.inference import predict, to_batch
from foundation.model import Model

SLOTS = 16


def saved(folder: Path, max_particles: int | None) -> Path:
    """A tiny checkpoint whose schema records ``max_particles`` (None: an old one)."""
    torch.manual_seed(0)
    model = Model.create("pfn-tiny", backbone_kwargs(), {"top": {"type": "jet_classification"}})
    schema = FeatureSchema(PARTICLE_FEATURES, JET_FEATURES, max_particles=max_particles)
    return save_pretrained(model, folder, feature_schema=schema)


@pytest.fixture(scope="module")
def records():
    """Six jets, most with more than ``SLOTS`` particles."""
    return random_records(6, mean_particles=40, seed=1)


def test_recorded_value_round_trips(tmp_path: Path) -> None:
    folder = saved(tmp_path / "ckpt", SLOTS)
    assert read_config(folder)["feature_schema"]["max_particles"] == SLOTS
    schema = load_pretrained(folder).feature_schema
    assert schema.max_particles == SLOTS and schema.particle_slots == SLOTS
    assert FeatureSchema.from_dict(schema.to_dict()) == schema


def test_a_config_without_the_field_means_128(tmp_path: Path) -> None:
    folder = saved(tmp_path / "old", None)
    assert "max_particles" not in read_config(folder)["feature_schema"]
    schema = load_pretrained(folder).feature_schema
    assert schema.max_particles is None and schema.particle_slots == DEFAULT_MAX_PARTICLES == 128
    assert schema.to_dict() == read_config(folder)["feature_schema"]


def test_predict_pads_to_the_checkpoints_slots(tmp_path: Path, records) -> None:
    assert int(records.counts.max()) > SLOTS
    model = load_pretrained(saved(tmp_path / "ckpt", SLOTS))
    batch = to_batch(records, model)
    assert batch.mask.shape == (len(records.counts), SLOTS)
    hardest = pad_jets(records, PARTICLE_FEATURES, SLOTS, JET_FEATURES)
    np.testing.assert_array_equal(batch.vectors.numpy(), hardest.vectors)
    assert to_batch(records, model, max_particles=8).mask.shape[1] == 8
    old = load_pretrained(saved(tmp_path / "old", None))
    assert to_batch(records, old).mask.shape[1] == 128
    scores = predict(model, records)["top"]["probability"]
    expected = model.eval()(batch)["top"]["probability"].detach().numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_evaluation_cache_uses_the_checkpoints_slots(tmp_path: Path, records) -> None:
    root = write_jetclass_root(records, tmp_path / "jets.root")
    model = load_pretrained(saved(tmp_path / "ckpt", SLOTS))
    with evaluation_dataset(model, root) as dataset:
        assert dataset.info.max_particles == SLOTS
    with evaluation_dataset(model, root, max_particles=8) as dataset:
        assert dataset.info.max_particles == 8
    old = load_pretrained(saved(tmp_path / "old", None))
    with evaluation_dataset(old, root) as dataset:
        assert dataset.info.max_particles == 128


@pytest.mark.parametrize("value", [0, -1, 4097, 16.0, "16", True])
def test_invalid_values_are_refused_naming_the_field(value, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_particles"):
        FeatureSchema(PARTICLE_FEATURES, max_particles=value)
    folder = saved(tmp_path / "ckpt", SLOTS)
    config = json.loads((folder / "config.json").read_text())
    config["feature_schema"]["max_particles"] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"feature_schema.*max_particles"):
        read_config(folder)


def test_training_records_the_recipes_slots(tmp_path: Path) -> None:
    from foundation.training.builder import build_model
    from foundation.training.datamodule import JetDataModule
    from foundation.training.recipe import recipe_from_dict

    cache = tmp_path / "cache"
    jets = random_records(40, mean_particles=8, seed=3, label_names=TOP_LABELS, truth=True)
    write_cache(jets, cache, features="kin", max_particles=SLOTS)
    recipe = recipe_from_dict(
        {
            "name": "slots",
            "data": {"cache": str(cache), "features": "kin", "max_particles": SLOTS},
            "model": {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}},
            "output": {"folder": str(tmp_path / "run")},
        }
    )
    summary = JetDataModule(recipe.data, show_progress=False).prepare(None)
    model = build_model(recipe, summary)
    assert model.feature_schema.max_particles == SLOTS
    folder = save_pretrained(model, tmp_path / "ckpt")
    assert load_pretrained(folder).feature_schema.max_particles == SLOTS
