"""Helpers the benchmark harnesses share (``benchmarks/harness.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from harness import write_json


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


def test_part_study_reads_the_runs_of_a_log_cut_short(tmp_path: Path) -> None:
    import part_study

    log = tmp_path / "part_d1.log"
    log.write_text(
        "N = 1000, seed 0: 1635 test jets\n"
        "  weaver-part: AUC 0.9597, 1/εB(0.3) 44.7 on 1635 held-out jets; trained in 20 s\n"
        "  jetformer-tiny: AUC 0.9814, 1/εB(0.3) 161.0 on 1635 held-out jets; trained in 9 s\n"
        "N = 1000, seed 1: 1635 test jets\n"
        "  weaver-part: AUC 0.9827, 1/εB(0.3) inf on 1635 held-out jets; trained in 12 s\n"
        "N = 1000, seed 2: 1635 test jets\n",  # stopped here
        encoding="utf-8",
    )
    records = part_study.read_log(log, "top")
    assert [(r["mode"], r["size"], r["seed"]) for r in records] == [
        ("weaver-part", 1000, 0),
        ("jetformer-tiny", 1000, 0),
        ("weaver-part", 1000, 1),
    ]
    assert records[2]["metrics"] == {"top/auc": 0.9827, "top/rejection_at_0.3": float("inf")}
    out = tmp_path / "part_d1.json"
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "top_tagging.yaml"
    part_study.main(["--recipe", str(recipe), "--from-logs", str(log), "--out", str(out)])
    table = json.loads(out.read_text())["table"]
    assert table["weaver-part"]["1000"]["top/auc"]["n"] == 2
    assert table["weaver-part"]["1000"]["top/rejection_at_0.3"]["infinite"] == 1
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no result lines"):
        part_study.read_log(empty, "top")


def test_study_and_part_tables_merge_into_one_plot(tmp_path: Path) -> None:
    import plot_study_with_part

    entry = {"mean": 0.9, "std": 0.01, "n": 3, "infinite": 0}
    study = {"table": {"full": {"1000": {"top/auc": entry}}, "scratch": {"1000": {}}}}
    part = {"table": {"weaver-part": {"1000": {"top/auc": entry}, "5000": {"top/auc": entry}}}}
    table = plot_study_with_part.merged_table(study, part)
    assert table["ParT (weaver), from scratch*"] == {
        1000: {"top/auc": entry},
        5000: {"top/auc": entry},
    }
    assert set(table) == {"pretrained, fine-tuned", "from scratch", "ParT (weaver), from scratch*"}
    (tmp_path / "study.json").write_text(json.dumps(study))
    (tmp_path / "part.json").write_text(json.dumps(part))
    argv = ["--study", str(tmp_path / "study.json"), "--part", str(tmp_path / "part.json")]
    out = plot_study_with_part.main(
        [*argv, "--metric", "top/auc", "--out", str(tmp_path / "a.png")]
    )
    assert out.stat().st_size > 0


def test_pair_head_harness_times_both_graphs_on_the_same_scores(tmp_path: Path) -> None:
    import bench_pair_head

    out = tmp_path / "pair.json"
    argv = ["--batch-size", "3", "--slots", "12", "--mean-particles", "6", "--width", "8"]
    result = bench_pair_head.main([*argv, "--budget", "0", "--out", str(out)])
    assert result["max_abs_logit_difference"] < 1e-5
    assert result["steps"] >= 3
    assert 0 < result["pairs_of_real_particles_fraction"] < 1
    assert json.loads(out.read_text())["speedup"] == result["speedup"]


def test_suite_plot_has_a_panel_per_task_with_part_and_reference(tmp_path: Path) -> None:
    import plot_suite

    def entry(mean: float) -> dict[str, float]:
        return {"mean": mean, "std": 0.01, "n": 3, "infinite": 0}

    d1 = {"table": {"full": {"1000": {"top/auc": entry(0.99)}}}}
    d3_row = {"pt/model/sigma68": entry(0.05), "pt/reference/sigma68": entry(0.08)}
    d3 = {"table": {"full": {"1000": d3_row}, "scratch": {"1000": d3_row}}}
    part = {"table": {"weaver-part": {"1000": {"top/auc": entry(0.97)}}}}
    for name, payload in (("d1", d1), ("d3", d3), ("part", part)):
        (tmp_path / f"{name}.json").write_text(json.dumps(payload))
    merged = plot_suite.merged_table(d3, {"table": {}})
    assert plot_suite.reference_level(merged, "pt/reference/sigma68") == pytest.approx(0.08)
    assert plot_suite.reference_level(merged, "pt/nothing") is None
    argv = [
        *("--panel", "D1", str(tmp_path / "d1.json"), "top/auc"),
        *("--part", "D1", str(tmp_path / "part.json")),
        *("--panel", "D3", str(tmp_path / "d3.json"), "pt/model/sigma68"),
        *("--reference", "D3", "pt/reference/sigma68"),
    ]
    out = plot_suite.main([*argv, "--out", str(tmp_path / "suite.png")])
    assert out.stat().st_size > 0
    with pytest.raises(SystemExit):
        plot_suite.main([*argv, "--part", "D9", str(tmp_path / "part.json"), "--out", "x.png"])
