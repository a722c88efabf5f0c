"""Helpers the benchmark harnesses share (``foundation.benchmarking``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation.benchmarking import write_json


def test_write_json_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "results" / "run.json"
    write_json(path, {"jets_per_s": 1.5})
    write_json(path, {"jets_per_s": 2.5, "name": "jetformer-s"})
    assert json.loads(path.read_text()) == {"jets_per_s": 2.5, "name": "jetformer-s"}
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]


def test_write_json_of_a_bad_payload_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_json(path, {"kept": True})
    with pytest.raises(TypeError, match="Path"):
        write_json(path, {"folder": tmp_path})
    assert json.loads(path.read_text()) == {"kept": True}  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # and no temporary file
