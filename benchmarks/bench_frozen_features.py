"""A frozen backbone run on every batch against :class:`FrozenFeatureCache` (features once per jet).

Run by hand (never timed in tests), on one thread::

    OMP_NUM_THREADS=1 python benchmarks/bench_frozen_features.py [--checkpoint NAME_OR_FOLDER]
        [--jets 256] [--batch-size 64] [--epochs 5] [--mean-particles 50] [--slots 128]
        [--out benchmarks/results/frozen_features_cpu.json]

The same jets (random, the JetClass shape: Gaussian multiplicities around ``--mean-particles``,
σ = 15, packed, zero padding) are reshuffled into batches every "epoch", each batch trimmed to
its longest jet as the training module does. Each epoch is run twice, alternately: the plain
backbone (no-grad forward on every batch) and the cache (``cache(batch)``: keys, lookups, the
backbone on the jets not seen yet, assembly). Only the backbone's work is timed (heads and
optimizer are the same in both and small next to it). The first cached epoch computes every
jet and runs the one-off batch-independence check (about two extra passes over its first
batch); later epochs only look up. Every cached batch is compared with the plain one
(``max_abs_diff``).

The backbone is loaded with ``foundation.load_pretrained`` (or ``foundation.hub
.load_pretrained``); if neither imports, it is built from the checkpoint's ``config.json`` with
random weights (the timing is the same); ``backbone_source`` in the output says which.

Measured on 2026-12-01 with ``OMP_NUM_THREADS=1 python benchmarks/bench_frozen_features.py``
(``benchmarks/results/frozen_features_cpu.json``; particlenet.jetclass-full loaded with
``foundation.load_pretrained``, 256 jets with 50.4 real particles on average, batches of 64,
1 thread, AMD EPYC, on a 2-core machine shared with other jobs: load average 7.7 to 8.6, so
the wall times are inflated about 3.5x and the CPU seconds of this process are the figures to
read): a plain epoch takes 5.7 to 6.6 CPU s (40 jets per CPU second); the first cached epoch
7.1 CPU s (+11 %: the keys and the one-off check on 8 jets), each later one 0.010 CPU s; over
5 epochs 31.7 against 7.1 CPU s (4.4x; 111 against 23 s wall, 4.8x). Cached and plain features
are bit-identical (max |diff| 0). The cache holds 52,656 bytes per jet (13.5 MB for 256 jets).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from harness import CpuShare, cpu_name, make_jets, write_json

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from foundation.models.frozen_features import FrozenFeatureCache
from foundation.models.registry import create_backbone

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "particlenet.jetclass-full"
OUT = ROOT / "benchmarks" / "results" / "frozen_features_cpu.json"


def load_backbone(checkpoint: Path) -> tuple[Backbone, str]:
    """The checkpoint's backbone, frozen, and how it was obtained."""
    try:
        from foundation import load_pretrained  # type: ignore[attr-defined]

        source = "foundation.load_pretrained"
    except ImportError:
        try:
            from foundation.hub import load_pretrained  # type: ignore[attr-defined,no-redef]

            source = "foundation.hub.load_pretrained"
        except ImportError:
            load_pretrained = None  # type: ignore[assignment]
    if load_pretrained is not None:
        backbone = load_pretrained(str(checkpoint)).backbone
    else:
        config = json.loads((checkpoint / "config.json").read_text())["backbone"]
        backbone = create_backbone(config["name"], **config["kwargs"])
        source = f"create_backbone({config['name']!r}) from config.json, random weights"
    backbone.eval().requires_grad_(False)
    return backbone, source


def epoch_batches(jets: JetBatch, batch_size: int, epoch: int) -> list[JetBatch]:
    """The jets reshuffled (seeded by ``epoch``) into trimmed batches of ``batch_size``."""
    order = torch.randperm(len(jets), generator=torch.Generator().manual_seed(1000 + epoch))
    batches = []
    for start in range(0, len(jets), batch_size):
        index = order[start : start + batch_size]
        batches.append(
            JetBatch(
                particles=jets.particles[index],
                mask=jets.mask[index],
                vectors=jets.vectors[index],
                jet=jets.jet[index],
            ).trimmed()
        )
    return batches


def timed_epoch(
    step: Callable[[JetBatch], Features], batches: list[JetBatch]
) -> tuple[dict[str, float], list[Features]]:
    """Wall and CPU seconds (this process) of ``step`` over ``batches``, and its outputs."""
    wall, cpu = time.perf_counter(), time.process_time()
    outputs = [step(batch) for batch in batches]
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}, outputs


def max_abs_diff(a: list[Features], b: list[Features]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        worst = max(worst, float((x.particles - y.particles).abs().max()))
        worst = max(worst, float((x.jet - y.jet).abs().max()))
    return worst


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    backbone, source = load_backbone(args.checkpoint)
    features = int(backbone.config["in_features"])
    jets = make_jets(args.jets, args.slots, args.mean_particles, features, seed=args.seed)
    load_before = os.getloadavg()
    share = CpuShare()
    cache = FrozenFeatureCache(backbone, max_jets=args.max_jets)

    def plain(batch: JetBatch) -> Features:
        with torch.no_grad():
            return backbone(batch)

    epochs = []
    for epoch in range(args.epochs):
        batches = epoch_batches(jets, args.batch_size, epoch)
        plain_time, expected = timed_epoch(plain, batches)
        cached_time, got = timed_epoch(cache, batches)
        row = {
            "epoch": epoch,
            "plain": plain_time,
            "cached": cached_time,
            "max_abs_diff": max_abs_diff(got, expected),
            "cache_jets": cache.stats.jets,
            "load_average_1min": os.getloadavg()[0],
        }
        epochs.append(row)
        print(
            f"epoch {epoch}: plain {plain_time['wall_s']:.2f} s, cached "
            f"{cached_time['wall_s']:.2f} s (wall), max |diff| {row['max_abs_diff']:.1e}",
            flush=True,
        )
    plain_total = sum(row["plain"]["wall_s"] for row in epochs)
    cached_total = sum(row["cached"]["wall_s"] for row in epochs)
    plain_cpu = sum(row["plain"]["cpu_s"] for row in epochs)
    cached_cpu = sum(row["cached"]["cpu_s"] for row in epochs)
    later = [row["cached"]["cpu_s"] for row in epochs[1:]]
    stats = cache.stats
    return {
        "command": " ".join(
            ["OMP_NUM_THREADS=1 python benchmarks/bench_frozen_features.py", *args.argv]
        ),
        "checkpoint": str(args.checkpoint.relative_to(ROOT))
        if args.checkpoint.is_relative_to(ROOT)
        else str(args.checkpoint),
        "backbone_source": source,
        "num_features": backbone.num_features,
        "jets": args.jets,
        "mean_real_particles": float(jets.mask.sum(dim=1).float().mean()),
        "slots": args.slots,
        "batch_size": args.batch_size,
        "epochs_run": args.epochs,
        "threads": torch.get_num_threads(),
        "epochs": epochs,
        "plain_total_wall_s": plain_total,
        "cached_total_wall_s": cached_total,
        "speedup_total_wall": plain_total / cached_total,
        "plain_total_cpu_s": plain_cpu,
        "cached_total_cpu_s": cached_cpu,
        "speedup_total_cpu": plain_cpu / cached_cpu,
        "plain_jets_per_cpu_s": args.jets * args.epochs / plain_cpu,
        "cached_first_epoch_cpu_overhead": epochs[0]["cached"]["cpu_s"]
        / epochs[0]["plain"]["cpu_s"]
        - 1.0,
        "cached_later_epoch_median_cpu_s": statistics.median(later) if later else None,
        "max_abs_diff": max(row["max_abs_diff"] for row in epochs),
        "cache": {
            "jets": stats.jets,
            "bytes": stats.bytes,
            "bytes_per_jet": stats.bytes / max(stats.jets, 1),
            "hits": stats.hits,
            "misses": stats.misses,
            "uncached": stats.uncached,
        },
        "cpu": cpu_name(),
        "load_average_1_5_15_before": list(load_before),
        "load_average_1_5_15_after": list(os.getloadavg()),
        "cpu_share": share.read(),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--jets", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--mean-particles", type=float, default=50.0)
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--max-jets", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else __import__("sys").argv[1:]
    result = run(args)
    write_json(args.out, result)
    print(
        f"{args.jets} jets x {args.epochs} epochs: plain {result['plain_total_wall_s']:.1f} s, "
        f"cached {result['cached_total_wall_s']:.1f} s ({result['speedup_total_wall']:.1f}x wall, "
        f"{result['speedup_total_cpu']:.1f}x CPU); "
        f"wrote {args.out}"
    )


if __name__ == "__main__":
    main()
