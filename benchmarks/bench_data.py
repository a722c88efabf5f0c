"""Data-path throughput: reading each file format, building the cache, loading batches from it.

Run by hand (never timed in tests)::

    python benchmarks/bench_data.py [--jets 20000] [--mean-particles 40] [--max-particles 128]

Files are generated in a temporary folder with ``tests/synthetic.py``; every figure is
jets per second in one process (single core for numpy work).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from foundation.data.cache import write_cache
from foundation.data.loading import JetCacheDataset, fit_cache_normalizers, make_loader
from foundation.data.readers import read_jets
from foundation.data.schema import JETCLASS_LABELS, QUARK_GLUON_LABELS, TOP_LABELS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic import (
    random_records,
    write_jetclass_root,
    write_quark_gluon_npz,
    write_top_landscape_hdf5,
)


def _best_rate(n_jets: int, run: Callable[[], object], repeats: int = 2) -> float:
    """Jets per second of the fastest of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n_jets / best


def _loader_rate(dataset: JetCacheDataset, batch_size: int, shuffle: bool) -> float:
    loader = make_loader(dataset, batch_size=batch_size, shuffle=shuffle, seed=0)

    def run() -> None:
        for batch in loader:
            assert batch.particles.dtype == torch.float32

    return _best_rate(len(dataset), run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jets", type=int, default=20_000, help="jets per generated file")
    parser.add_argument("--mean-particles", type=float, default=40.0, help="mean multiplicity")
    parser.add_argument("--max-particles", type=int, default=128, help="cache slots per jet N")
    parser.add_argument("--batch-size", type=int, default=256, help="loader batch size")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {
            "JetClass ROOT (TTree)": write_jetclass_root(
                random_records(args.jets, args.mean_particles, 0, JETCLASS_LABELS),
                folder / "jetclass.root",
            ),
            "simulated ROOT (RNTuple + truth)": write_jetclass_root(
                random_records(args.jets, args.mean_particles, 1, JETCLASS_LABELS, truth=True),
                folder / "simulated.root",
                layout="rntuple",
            ),
            "Top Landscape HDF5 (table)": write_top_landscape_hdf5(
                random_records(args.jets, args.mean_particles, 2, TOP_LABELS),
                folder / "top.h5",
            ),
            "Quark-Gluon npz": write_quark_gluon_npz(
                random_records(args.jets, args.mean_particles, 3, QUARK_GLUON_LABELS),
                folder / "qg.npz",
                max_particles=139,
            ),
        }
        for name, path in files.items():
            rows.append(("read", name, _best_rate(args.jets, lambda p=path: read_jets(p))))

        records = read_jets(files["simulated ROOT (RNTuple + truth)"])
        cache = folder / "cache"
        start = time.perf_counter()
        write_cache(records, cache, max_particles=args.max_particles)
        rows.append(
            (
                "cache write",
                f"features + padding, N={args.max_particles}",
                args.jets / (time.perf_counter() - start),
            )
        )

        raw = JetCacheDataset(cache)
        norm, jet_norm = fit_cache_normalizers(raw)
        dataset = JetCacheDataset(cache, normalizer=norm, jet_normalizer=jet_norm)
        label = f"batch {args.batch_size}, N={args.max_particles}, F=17, normalized"
        rows.append(
            ("cache load", f"{label}, sequential", _loader_rate(dataset, args.batch_size, False))
        )
        rows.append(
            ("cache load", f"{label}, shuffled", _loader_rate(dataset, args.batch_size, True))
        )
        rows.append(
            (
                "cache load",
                f"batch {args.batch_size}, raw, shuffled",
                _loader_rate(raw, args.batch_size, True),
            )
        )

    width = max(len(name) for _, name, _ in rows)
    print(f"{'stage':<12} {'what':<{width}} {'jets/s':>12}")
    print("-" * (26 + width))
    for stage, name, rate in rows:
        print(f"{stage:<12} {name:<{width}} {rate:>12,.0f}")
    setup = f"{args.jets} jets per file, mean multiplicity {args.mean_particles}"
    print(f"\n{setup}, numpy {np.__version__}, torch {torch.__version__}, 1 thread")


if __name__ == "__main__":
    main()
