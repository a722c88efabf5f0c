"""Fine-tuning on data that lacks the fields a pretrained backbone's features come from.

A Top Tagging Landscape file holds 4-vectors only: the ``full`` features' identities, charges
and impact parameters would all be 0. Fine-tuning a ``full`` backbone on it is an error naming
the features and a backbone that fits, unless ``data.allow_missing_fields: true`` (a warning);
a ``kin`` backbone fine-tunes on it as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from synthetic import random_records, write_top_landscape_hdf5

from foundation.data.features import MissingFieldsWarning
from foundation.data.normalization import Normalizer
from foundation.data.schema import FEATURE_SETS, JET_INPUTS, TOP_LABELS
from foundation.hub import FeatureSchema, save_pretrained
from foundation.model import Model
from foundation.training.normalization import normalization_record
from foundation.training.recipe import RecipeError, recipe_from_dict
from foundation.training.run import train

SLOTS = 12


@pytest.fixture(scope="module")
def top_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 top/QCD jets as a Top Landscape HDF5 file (E, px, py, pz per particle only)."""
    pytest.importorskip("h5py", reason="h5py reads the Top Landscape files")
    records = random_records(80, mean_particles=6, seed=5, label_names=TOP_LABELS)
    path = tmp_path_factory.mktemp("top") / "top.h5"
    return write_top_landscape_hdf5(records, path, max_particles=SLOTS)


def _pretrained(folder: Path, feature_set: str) -> Path:
    """A tiny 'pretrained' ParticleNet on a feature set, with an identity normalization."""
    names = FEATURE_SETS[feature_set]
    torch.manual_seed(0)
    model = Model.create("particlenet-tiny", {"in_features": len(names)})
    particles = Normalizer(names, np.zeros(len(names)), np.ones(len(names)), clip=None)
    jet = Normalizer(JET_INPUTS, np.zeros(len(JET_INPUTS)), np.ones(len(JET_INPUTS)), clip=None)
    save_pretrained(
        model,
        folder,
        feature_schema=FeatureSchema(names, JET_INPUTS),
        normalization=normalization_record(particles, jet),
    )
    return folder


def _recipe(top_file: Path, base: Path, out: Path, feature_set: str, **data: Any):
    return recipe_from_dict(
        {
            "name": "missing-inputs",
            "data": {
                "files": [str(top_file)],
                "cache_root": str(out.parent / "cache"),
                "features": feature_set,
                "max_particles": SLOTS,
                "batch_size": 16,
                **data,
            },
            "model": {
                "backbone": None,
                "pretrained": str(base),
                "heads": {"top": {"type": "jet_classification"}},
            },
            "finetune": {"mode": "frozen"},
            "trainer": {"max_epochs": 1, "progress_bar": False, "eval_train_batches": 1},
            "output": {"folder": str(out)},
        }
    )


def test_a_full_backbone_on_four_vectors_is_refused_unless_allowed(
    top_file: Path, tmp_path: Path
) -> None:
    base = _pretrained(tmp_path / "full-base", "full")
    recipe = _recipe(top_file, base, tmp_path / "refused", "full")
    with pytest.warns(MissingFieldsWarning), pytest.raises(RecipeError) as caught:
        train(recipe)
    message = str(caught.value)
    for text in ("part_isPhoton", "part_d0", "part_charge", "particlenet.jetclass-kin"):
        assert text in message
    assert "data.allow_missing_fields: true" in message
    assert not (tmp_path / "refused" / "best").exists()

    allowed = _recipe(top_file, base, tmp_path / "allowed", "full", allow_missing_fields=True)
    with pytest.warns(MissingFieldsWarning, match="0 for every particle"):
        result = train(allowed)
    assert result.best.is_dir() and np.isfinite(result.metrics["test"]["loss"])


def test_a_kin_backbone_fine_tunes_on_four_vectors(top_file: Path, tmp_path: Path) -> None:
    import warnings

    base = _pretrained(tmp_path / "kin-base", "kin")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingFieldsWarning)
        result = train(_recipe(top_file, base, tmp_path / "kin", "kin"))
    assert result.best.is_dir() and np.isfinite(result.metrics["test"]["loss"])


def test_the_flag_leaves_cache_folders_and_stored_recipes_alone(tmp_path: Path) -> None:
    from foundation.training.recipe import load_recipe, save_recipe
    from foundation.training.run import _check_resume
    from foundation.training.run_folder import RunPaths
    from foundation.training.sources import cache_folder

    data = {"files": [str(tmp_path / "top.h5")], "features": "kin"}
    model = {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}}
    plain = recipe_from_dict({"name": "r", "data": data, "model": model})
    flagged = recipe_from_dict(
        {"name": "r", "data": {**data, "allow_missing_fields": True}, "model": model}
    )
    assert cache_folder(plain.data) == cache_folder(flagged.data)  # the same cached arrays
    # runs and studies saved before the key existed still match a recipe that leaves it out
    assert "allow_missing_fields" not in plain.to_dict()["data"]
    assert flagged.to_dict()["data"]["allow_missing_fields"] is True
    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    save_recipe(plain, paths.recipe)
    assert "allow_missing_fields" not in paths.recipe.read_text()
    assert load_recipe(paths.recipe) == plain
    _check_resume(paths, plain)  # an older run resumes
    with pytest.raises(RecipeError, match=r"data\.allow_missing_fields"):
        _check_resume(paths, flagged)  # switching it on is a change
