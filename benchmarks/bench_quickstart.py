"""Wall time of ``foundation quickstart`` on an idle machine and beside a busy neighbour.

Run by hand (never in the tests), on an otherwise idle machine::

    python benchmarks/bench_quickstart.py --out /tmp/bench_quickstart.json

It runs the quickstart as a user types it (a fresh output folder each time, so nothing is
reused) twice: alone, then with a neighbour job started first that keeps 2 threads busy (a
torch matrix-multiplication loop, like another user's training). Per run it records the wall
time, the time of each phase as the quickstart prints it, and the 1-minute load average before
the start. Targets (issue 15): under 5 minutes idle and under 10 minutes beside the neighbour
on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NEIGHBOUR = """
import torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a)
"""
"""The busy neighbour: another process's 2-thread torch job."""

PHASE = re.compile(r"^\s+(\w+) done in (?:(\d+) min )?(\d+) s$")


def run_quickstart(out: Path, extra: list[str]) -> dict[str, object]:
    """Run ``foundation quickstart --out OUT``; return its wall time, phases and exit code."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "foundation", "quickstart", "--out", str(out), *extra],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    phases = {}
    for line in result.stdout.splitlines():
        match = PHASE.match(line)
        if match:
            phases[match[1]] = 60 * int(match[2] or 0) + int(match[3])
    if result.returncode:
        print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
    return {
        "wall_s": round(wall, 1),
        "phases_s": phases,
        "exit_code": result.returncode,
        "load_1min_before": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--skip-idle", action="store_true", help="only the busy measurement")
    parser.add_argument("extra", nargs="*", help="extra quickstart arguments (after --)")
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "foundation quickstart --out FRESH_FOLDER " + " ".join(args.extra),
    }
    with tempfile.TemporaryDirectory(prefix="bench-quickstart-") as folder:
        if not args.skip_idle:
            results["idle"] = run_quickstart(Path(folder) / "idle", args.extra)
            print("idle:", results["idle"], flush=True)
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
        try:
            time.sleep(30)  # let the load average see the neighbour
            results["beside_a_2_thread_job"] = run_quickstart(Path(folder) / "busy", args.extra)
            print("beside a 2-thread job:", results["beside_a_2_thread_job"], flush=True)
        finally:
            neighbour.kill()
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
