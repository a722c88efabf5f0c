"""The hub sits below the model: it never imports it, and a run reads its base once (issue 18).

``foundation.hub`` reads and writes plain configs and tensors; ``foundation.load_pretrained`` (above
it) builds models. A fine-tuning run resolves, hashes and reads its pretrained base once, when it
loads it, and hands that record to every save (each improvement ``ExportBest`` keeps, ``last/``,
the final ``best/``) and to the reload of ``best/``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import save_tiny_base
from synthetic import random_records

import foundation.hub.hashing as hashing
import foundation.hub.reading as reading
from foundation import load_pretrained
from foundation.data.cache import write_cache
from foundation.data.schema import TOP_LABELS
from foundation.hub import save_pretrained
from foundation.training.callbacks import ExportBest
from foundation.training.recipe import recipe_from_dict
from foundation.training.run import train

HUB = Path(__file__).resolve().parents[1] / "foundation" / "hub"
ABOVE_THE_HUB = ("foundation.model", "foundation.training", "foundation.loading")


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top, inside functions or under TYPE_CHECKING."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(HUB.glob("*.py")), ids=lambda path: path.name)
def test_no_hub_module_imports_the_model_or_training(path: Path) -> None:
    above = [
        name
        for name in _imported_modules(path)
        if any(name == top or name.startswith(f"{top}.") for top in ABOVE_THE_HUB)
    ]
    assert not above, f"{path.name} imports {above}"


def test_importing_the_hub_loads_no_model_or_training_module() -> None:
    submodules = sorted(path.stem for path in HUB.glob("*.py") if path.stem != "__init__")
    code = (
        "import importlib, json, sys\n"
        f"for name in {submodules!r}:\n"
        "    importlib.import_module(f'foundation.hub.{name}')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    above = [name for name in loaded if name.startswith(ABOVE_THE_HUB)]
    assert "foundation.hub.checkpoint" in loaded and not above, above


# ------------------------------------------------------------------------- one read per run
@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("layering") / "cache"
    records = random_records(80, mean_particles=8, seed=5, label_names=TOP_LABELS, truth=True)
    write_cache(records, folder, features="kin", max_particles=16)
    return folder


@pytest.fixture(scope="module")
def pretrained(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("base") / "pfn-tiny.base"
    return save_tiny_base(cache, folder, "pfn-tiny", {"in_features": 7}, n_jets=40)


def test_a_fine_tune_resolves_hashes_and_reads_its_base_once(
    cache: Path, pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: Counter[str] = Counter()
    read: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    saved_best = 0
    sha256_file, load_file = hashing.sha256_file, reading.load_file
    resolve_checkpoint = reading.resolve_checkpoint

    def count_hash(path):  # type: ignore[no-untyped-def]
        hashed[str(Path(path).resolve())] += 1
        return sha256_file(path)

    def count_read(path, device="cpu"):  # type: ignore[no-untyped-def]
        read[str(Path(path).resolve())] += 1
        return load_file(path, device=device)

    def count_resolve(reference, *args, **kwargs):  # type: ignore[no-untyped-def]
        resolved[str(Path(str(reference)).resolve())] += 1
        return resolve_checkpoint(reference, *args, **kwargs)

    def every_validation_improves(self: ExportBest, value: float) -> bool:
        nonlocal saved_best
        saved_best += 1
        return True

    monkeypatch.setattr(hashing, "sha256_file", count_hash)
    monkeypatch.setattr(reading, "load_file", count_read)
    monkeypatch.setattr(reading, "resolve_checkpoint", count_resolve)
    monkeypatch.setattr(ExportBest, "_better", every_validation_improves)
    recipe = recipe_from_dict(
        {
            "name": "layering",
            "data": {"cache": str(cache), "features": "kin", "max_particles": 16, "batch_size": 16},
            "model": {
                "backbone": None,
                "pretrained": str(pretrained),
                "heads": {"top": {"type": "jet_classification"}},
            },
            "finetune": {"mode": "frozen"},
            "trainer": {"max_epochs": 3, "progress_bar": False, "log_every": 1},
            "output": {"folder": str(tmp_path / "run")},
        }
    )
    result = train(recipe)
    assert result.delta and saved_best >= 3  # ExportBest saved every one of 3 validations
    base = pretrained.resolve()
    assert resolved[str(base)] == 1
    assert hashed[str(base / "model.safetensors")] == 1
    assert hashed[str(base / "config.json")] == 1
    assert read[str(base / "model.safetensors")] == 1
    config = json.loads((result.best / "config.json").read_text())
    assert config["base"]["sha256"] == sha256_file(base / "model.safetensors")
    assert config["base"]["name_or_path"] == str(base)
    # the delta still loads on its own, through the one entry point
    monkeypatch.undo()
    tuned = load_pretrained(result.best)
    assert tuned.source["base"]["sha256"] == config["base"]["sha256"]


def test_a_delta_refuses_a_backbone_changed_since_the_base_was_read(pretrained: Path) -> None:
    from foundation.training.builder import base_record

    model = load_pretrained(pretrained, heads=None)
    record = base_record(model)
    with torch.no_grad():
        next(model.backbone.parameters()).add_(1.0)
    with pytest.raises(ValueError, match=r"1 backbone tensor\(s\) differ from the base"):
        save_pretrained(model, pretrained.parent / "delta", base=record)
