"""Atomic writes and the one JSON policy (foundation.io)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from foundation.io import atomic_path, jsonable, write_json, write_text
from foundation.locking import temporary_prefix


def test_jsonable_policy() -> None:
    value = {1: (np.float32(0.5), np.arange(2)), "x": [math.nan, -math.inf, np.float64(np.inf)]}
    assert jsonable(value) == {"1": [0.5, [0, 1]], "x": [None, None, None]}
    kept = jsonable({"x": (math.inf,)}, allow_nan=True)
    assert kept == {"x": [math.inf]}


def test_write_json_is_strict_and_replaces_whole(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "metrics.json"
    write_json(path, {"auc": 0.9, "rejection": math.inf})
    assert path.read_text() == '{\n  "auc": 0.9,\n  "rejection": null\n}\n'
    write_json(path, {"rejection": math.inf}, allow_nan=True)
    assert json.loads(path.read_text()) == {"rejection": math.inf}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json(path, {"kept": True})
    with pytest.raises(TypeError):
        write_json(path, {"folder": tmp_path})
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        temporary.write_text("partial")
        raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"kept": True}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    stale = tmp_path / (temporary_prefix(path) + "dead")
    stale.write_text("left by kill -9")
    write_text(path, "new")
    assert path.read_text() == "new" and not stale.exists()
    assert os.listdir(tmp_path) == ["card.md"]
