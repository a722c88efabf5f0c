"""Reliability of simulation and reading (issue 17): locks, unique temporaries, batch shards,
Ctrl-C, bounded inputs, duplicate files, one-line CLI errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import interruptible

from foundation.cli import main
from foundation.data.readers import read_jets
from foundation.errors import DataError
from foundation.locking import OutputLockedError, unique_temporary
from foundation.simulation.card import load_card
from foundation.simulation.processes import resolve_processes
from foundation.simulation.runner import LOCK_FILE, _lock_offset, plan_shards, run_shards
from foundation.simulation.writer import write_shard

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def tiny_plan(out: Path, jets: int = 4, shard_size: int = 2) -> list:
    """qcd jets in shards of ``shard_size`` (Pythia: a few seconds per shard)."""
    return plan_shards(resolve_processes("qcd"), jets, out, 7, load_card("default"), shard_size)


def foundation(*argv: str, **options) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "foundation", *argv],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


# --------------------------------------------------------------------------- bounded inputs
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pt-range", "1e9,2e9"], "HIGH <= 6800 GeV"),
        (["--pt-range", "500,inf"], "HIGH <= 6800 GeV"),
        (["--pileup", "-3"], "expected a mean number of interactions in 0..1000"),
        (["--pileup", "nan"], "expected a mean number of interactions"),
    ],
)
def test_impossible_simulation_requests_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--process", "qcd", "--jets", "2", "--out", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_pt_range_beyond_the_beams_is_refused_by_the_planner(tmp_path: Path) -> None:
    card = load_card("default")
    with pytest.raises(ValueError, match=r"0 < LOW < HIGH <= 6800 GeV"):
        plan_shards(resolve_processes("qcd"), 2, tmp_path, 1, card, 2, (1e9, 2e9))
    with pytest.raises(ValueError, match=r"pileup\.mean_interactions: expected 0\.\.1000"):
        plan_shards(resolve_processes("qcd"), 2, tmp_path, 1, card.with_pileup(-3.0), 2)


# ------------------------------------------------------------------- temporaries and locks
def test_temporaries_are_unique_per_writer_and_stale_ones_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "qcd_00000.root"
    stale = tmp_path / ".qcd_00000.root.tmp-deadwriter"
    stale.write_bytes(b"half a shard")  # left by a killed writer: nobody holds its lock
    with unique_temporary(target) as first, unique_temporary(target) as second:
        assert first != second  # two writers never share a temporary file
        assert not stale.exists()
        assert first.exists() and second.exists()  # a live writer's temporary is kept
    jets = {"jet_pt": np.array([500.0]), "label_QCD": np.array([True])}
    particles = {"px": [np.array([1.0, 2.0])], "py": [np.array([0.5, 0.1])]}
    write_shard(target, jets, particles, {"process": "qcd"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qcd_00000.root"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_second_simulation_of_the_same_shards_is_refused(tmp_path: Path) -> None:
    specs = tiny_plan(tmp_path)
    offset = _lock_offset(specs[1])
    code = textwrap.dedent(
        f"""
        import time
        from foundation.locking import range_locks
        with range_locks({str(tmp_path / LOCK_FILE)!r}, [{offset}]):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"  # a first run writing shard 1
        with pytest.raises(OutputLockedError, match="a shard of this request is being written"):
            run_shards(specs, show_progress=False)
        assert not list(tmp_path.glob("*.root"))  # refused at once: nothing simulated
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # three processes each start Pythia: ~30 s on 2 shared cores
def test_batch_shard_jobs_in_parallel_equal_one_run(tmp_path: Path) -> None:
    """``--shard 0/2`` and ``--shard 1/2`` as two processes, side by side into one folder."""
    argv = ["simulate", "--process", "qcd", "--jets", "2", "--shard-size", "1", "--seed", "7"]
    argv += ["--card", "default"]  # the card of tiny_plan
    jobs = [
        foundation(*argv, "--out", str(tmp_path / "jobs"), "--shard", f"{i}/2", "--no-progress")
        for i in range(2)
    ]
    run_shards(tiny_plan(tmp_path / "single", jets=2, shard_size=1), show_progress=False)
    for job in jobs:
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
    single = sorted((tmp_path / "single").glob("*.root"))
    assert [p.name for p in single] == ["qcd_00000.root", "qcd_00001.root"]
    for path in single:
        a, b = read_jets(path), read_jets(tmp_path / "jobs" / path.name)
        assert np.array_equal(a.particles["part_px"], b.particles["part_px"])
        assert np.array_equal(a.jets["jet_pt"], b.jets["jet_pt"])


# ---------------------------------------------------------------------------------- Ctrl-C
def _pool_workers(parent: int) -> list[int]:
    """Process ids of the multiprocessing workers started by ``parent`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.slow  # a simulation subprocess
@pytest.mark.parametrize(
    "stop, status",
    [
        (lambda pid: os.killpg(pid, signal.SIGINT), 130),  # what a terminal's Ctrl-C sends
        (lambda pid: os.kill(pid, signal.SIGTERM), 143),  # `kill PID`, a batch system's stop
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_ends_the_workers_without_a_traceback(
    tmp_path: Path, stop: Callable[[int], None], status: int
) -> None:
    argv = ["simulate", "--process", "qcd", "--jets", "4000", "--shard-size", "2000"]
    process = foundation(
        *argv,
        "--workers",
        "2",
        "--out",
        str(tmp_path),
        start_new_session=True,
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = _pool_workers(process.pid)
    assert len(workers) == 2, "the pool did not start"
    time.sleep(3)  # the workers are in Pythia now
    stop(process.pid)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "Traceback" not in err
    assert "interrupted: 0 of 2 shards are finished and kept; rerun the same command" in err
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_running(pid) for pid in workers)
    assert not list(tmp_path.glob(".*.tmp-*"))


# ------------------------------------------------------------------------- reading, the hub
def test_a_file_named_twice_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "qcd_00000.root"
    jets = {"jet_pt": np.array([500.0]), "label_QCD": np.array([True])}
    particles = {name: [np.array([1.0, 2.0])] for name in ("px", "py", "pz", "energy")}
    write_shard(target, jets, particles, {"process": "qcd"})
    with pytest.raises(DataError, match=r"qcd_00000.root: field 'paths': expected each file once"):
        read_jets([target, target])
    with pytest.raises(DataError, match="named twice"):
        read_jets([str(tmp_path / "*.root"), target])


def test_hub_download_into_an_existing_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from foundation.hub.pretrained import pretrained_folders

    name = next(iter(pretrained_folders()))
    out = tmp_path / "taken.txt"
    out.write_text("mine")
    assert main(["hub", "download", name, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "mine"
