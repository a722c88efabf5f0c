"""Every shipped checkpoint gives its stored outputs on fixed jets (tests/golden/).

Regenerate the stored values with ``python tests/golden/make_golden.py`` only when a change of
a shipped model's outputs is intended.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
REGENERATE = "python tests/golden/make_golden.py"


def _make_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_GOLDEN = _make_golden()
FOLDERS = MAKE_GOLDEN.shipped_checkpoints()
STORED = json.loads(MAKE_GOLDEN.GOLDEN_FILE.read_text(encoding="utf-8"))


def test_every_shipped_checkpoint_has_golden_outputs() -> None:
    names = sorted(folder.name for folder in FOLDERS)
    assert names, f"no checkpoint folder under {MAKE_GOLDEN.CHECKPOINTS}"
    assert names == sorted(STORED), f"checkpoints and stored outputs differ; run {REGENERATE}"


@pytest.mark.parametrize("folder", FOLDERS, ids=[folder.name for folder in FOLDERS])
def test_shipped_checkpoint_outputs_are_unchanged(folder: Path) -> None:
    stored = STORED.get(folder.name)
    if stored is None:
        pytest.fail(f"{folder.name}: no stored outputs; run {REGENERATE}")
    found = MAKE_GOLDEN.golden_outputs(folder)
    assert found["inputs"] == pytest.approx(stored["inputs"], rel=1e-5), (
        f"{folder.name}: the fixed input jets changed (random_records or the features / "
        "normalization pipeline), so the outputs cannot be compared"
    )
    assert found["outputs"].keys() == stored["outputs"].keys()
    for head, outputs in stored["outputs"].items():
        assert found["outputs"][head].keys() == outputs.keys(), f"{folder.name}: head {head}"
        for name, rows in outputs.items():
            for jet, (new, old) in enumerate(zip(found["outputs"][head][name], rows, strict=True)):
                assert new == pytest.approx(old, rel=1e-5, abs=1e-6), (
                    f"{folder.name}: {head}/{name} of jet {jet}: found {new}, stored {old}"
                )
