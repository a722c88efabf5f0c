"""Simulation throughput against Pythia's own event rate, and the speed-up with workers.

Run by hand (never in the tests)::

    python benchmarks/bench_simulation.py --process qcd --jets 400 --out /tmp/bench_sim.json
    python benchmarks/bench_simulation.py --process qcd --card default   # the README's table

It measures, for one process and one detector card (``--card``, default ``DEFAULT_CARD``:
``jetclass``; the README's table was measured with ``--card default``):

1. Pythia alone: ``Pythia.next()`` in a loop with the process settings (no record read);
2. the full chain on one core (generation, record reading, truth, detector, clustering,
   substructure, writing): events/s and jets/s, without the one-off initialisation;
3. the same request split into two shards on 1 and on 2 worker processes (wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from foundation.simulation.card import DEFAULT_CARD, AnyCard, load_card
from foundation.simulation.generator import Generator
from foundation.simulation.processes import PROCESSES
from foundation.simulation.runner import ShardSpec, plan_shards, run_shards, simulate_shard


def pythia_rate(process_name: str, n_events: int, seed: int) -> float:
    """Events per second of Pythia alone (initialisation excluded)."""
    generator = Generator(PROCESSES[process_name].pythia_settings(), seed)
    start = time.perf_counter()
    done = generator.generate_unread(n_events)
    return done / (time.perf_counter() - start)


def chain_rate(
    process_name: str, n_jets: int, seed: int, folder: Path, card: AnyCard
) -> dict[str, float]:
    """Events and jets per second of the full chain on one core, from shard metadata."""
    process = PROCESSES[process_name]
    spec = ShardSpec(
        process_name,
        0,
        n_jets,
        seed,
        process.pt_range,
        card,
        folder / f"{process_name}_chain.root",
    )
    start = time.perf_counter()
    generator_init = Generator(process.pythia_settings(), 1)
    init_seconds = time.perf_counter() - start
    del generator_init
    metadata = simulate_shard(spec)
    seconds = metadata["wall_seconds"] - init_seconds
    return {
        "events_per_second": metadata["n_events"] / seconds,
        "jets_per_second": metadata["n_jets"] / seconds,
        "jets_per_event": metadata["n_jets"] / metadata["n_events"],
        "pythia_fraction_of_time": metadata["pythia_seconds"] / seconds,
        "init_seconds": init_seconds,
    }


def worker_scaling(
    process_name: str, n_jets: int, seed: int, folder: Path, card: AnyCard
) -> dict[str, float]:
    """Wall time of a two-shard request on 1 and on 2 workers."""
    walls = {}
    for workers in (1, 2):
        out = folder / f"workers{workers}"
        specs = plan_shards(
            [PROCESSES[process_name]], n_jets, out, seed, card, shard_size=(n_jets + 1) // 2
        )
        start = time.perf_counter()
        run_shards(specs, workers=workers, show_progress=False)
        walls[workers] = time.perf_counter() - start
    return {
        "wall_1_worker": walls[1],
        "wall_2_workers": walls[2],
        "speedup_2_workers": walls[1] / walls[2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", default="qcd")
    parser.add_argument("--events", type=int, default=300, help="events for Pythia alone")
    parser.add_argument("--jets", type=int, default=300, help="jets for the full chain")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--card",
        default=DEFAULT_CARD,
        help=f"detector card: shipped name or YAML (default {DEFAULT_CARD}; the README's "
        "table: default)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    card = load_card(args.card)
    with tempfile.TemporaryDirectory() as folder:
        pythia = pythia_rate(args.process, args.events, args.seed)
        chain = chain_rate(args.process, args.jets, args.seed, Path(folder), card)
        scaling = worker_scaling(args.process, args.jets, args.seed, Path(folder), card)
    result = {
        "process": args.process,
        "card": args.card,
        "card_digest": card.digest(),
        "cpu_count": os.cpu_count(),
        "pythia_events_per_second": pythia,
        **{f"chain_{key}": value for key, value in chain.items()},
        "chain_over_pythia_event_rate": chain["events_per_second"] / pythia,
        **scaling,
    }
    width = max(len(key) for key in result)
    for key, value in result.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
